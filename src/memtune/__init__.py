"""memtune: Linux memory tuning for fleets, driven by Ansible.

The engine: ``plan(facts, policies) -> DesiredState`` over policies loaded with ``load_policy_set``.
"""

from memtune.desired import DesiredState, Provenance
from memtune.errors import PolicyError
from memtune.explain import explain
from memtune.facts import HostFacts, parse_facts
from memtune.plan import plan
from memtune.policy import Policy, PolicySet
from memtune.policy_load import load_policy_set, policy_from_data

__version__ = "0.1.0"

__all__ = [
    "DesiredState",
    "HostFacts",
    "Policy",
    "PolicyError",
    "PolicySet",
    "Provenance",
    "__version__",
    "explain",
    "load_policy_set",
    "parse_facts",
    "plan",
    "policy_from_data",
]
