# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options every action that plans a host takes (memtune.fleet.tune, memtune.fleet.audit)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  policies:
    description:
      - Policy files or directories. By default the policies bundled with memtune (C(policies/) of the
        checkout).
    type: list
    elements: path
  workloads:
    description:
      - The workload policies to apply, instead of those of the workloads detected on the host.
      - Overrides the inventory variable C(memtune_workloads).
    type: list
    elements: str
  inputs:
    description:
      - Values for the policies' declared inputs (for example C(postgresql_shared_buffers)), merged over the
        inventory variable C(memtune_inputs).
    type: dict
"""
