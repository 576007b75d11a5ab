"""For the tests: every host's result of an ad-hoc run, saved as ``$MEMTUNE_TEST_RESULTS/<host>.json``.

ansible-core 2.19's tree callback (``ansible --tree``, deprecated) saves a result without its ``failed`` and
``unreachable`` flags, so a test reading it cannot tell a failed module from one that succeeded. This one
keeps them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: results_dir
type: aggregate
short_description: save each host's result, with its outcome, as JSON in a directory
description:
  - Writes C($MEMTUNE_TEST_RESULTS/<host>.json) for every task result, with C(failed) and C(unreachable).
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "results_dir"
    CALLBACK_NEEDS_ENABLED = True

    def _save(self, result: Any, failed: bool = False, unreachable: bool = False) -> None:
        saved = json.loads(self._dump_results(result.result))
        saved.update(failed=failed, unreachable=unreachable)
        path = Path(os.environ["MEMTUNE_TEST_RESULTS"]) / f"{result.host.get_name()}.json"
        path.write_text(json.dumps(saved))

    def v2_runner_on_ok(self, result: Any) -> None:
        self._save(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._save(result, failed=True)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._save(result, unreachable=True)
