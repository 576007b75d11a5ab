# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``rollout_page(report, audit_page='')``: the rollout report (the role's rollout.json) as one
self-contained HTML page: batches, each host's outcome and before/after evidence, the fleet's evidence,
and, with ``audit_page`` (a fleet report page, relative to the rollout page), a link from each host to its
detail there (``audit_page#host=NAME``)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

MEMTUNE_IMPORT_ERROR: ImportError | None = None
try:
    from memtune.report.html import page
except ImportError as exc:  # ansible-test's import sanity runs without the controller package
    MEMTUNE_IMPORT_ERROR = exc

PAGE_VERSION = 1


def rollout_page(report: dict[str, Any], audit_page: str = "") -> str:
    if MEMTUNE_IMPORT_ERROR is not None:
        raise AnsibleFilterError(
            f"rollout_page needs the memtune package on the controller ({MEMTUNE_IMPORT_ERROR})"
        )
    if not isinstance(report, dict) or not isinstance(report.get("hosts"), list):
        raise AnsibleFilterError("rollout_page: expected the rollout report (a mapping with hosts)")
    data = {"page_version": PAGE_VERSION, "audit_page": audit_page or None, "report": report}
    return page("rollout", "memtune rollout report", data)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rollout_page": rollout_page}
