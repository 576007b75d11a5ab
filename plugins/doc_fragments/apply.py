# Copyright: memtune contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of memtune.fleet.memory_apply that memtune.fleet.tune passes on to it as they are."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  fail_on_conflict:
    description:
      - A sysctl file that the boot applies after memtune's and sets a managed key to another value makes
        memtune's value lose at the next boot. By default that is a warning naming the file and line; V(true)
        fails the task before anything is changed.
    type: bool
    default: false
  on_unsupported:
    description:
      - What to do on a host where C(/proc/sys/vm) cannot be written (a container, or not root).
      - V(skip) reports the task as skipped (C(skipped=true)) with the reason; V(fail) fails the task.
    type: str
    choices: [skip, fail]
    default: skip
  lock_timeout:
    description: Seconds to wait for another memtune run on the same host to finish (the host lock of
      M(memtune.fleet.memory_apply)).
    type: int
    default: 60
  compact_retries:
    description: How many times a hugepage pool that came out short is compacted for and asked for again.
    type: int
    default: 3
"""
