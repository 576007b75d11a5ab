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
  facts_cache:
    description:
      - Where the controller keeps each host's facts from its last contact, so that C(memtune.fleet.tune)
        plans without probing first. When Ansible's fact cache is configured (any C(fact_caching) plugin) the
        facts live there (the action returns them as C(ansible_facts.memtune)); otherwise in this directory,
        one JSON file per host, written atomically.
      - Default, in this order, the variable C(memtune_facts_cache), the environment variable
        C(MEMTUNE_FACTS_CACHE), and C($XDG_CACHE_HOME/memtune/facts) (C(~/.cache/memtune/facts)). V(off) turns
        memtune's own cache off. C(--flush-cache) makes the run probe every host and write its entry afresh.
      - A corrupt, foreign-version or unreadable entry is a warning naming the file, and the host is probed.
    type: str
"""
