"""memtune: Linux memory tuning for fleets, driven by Ansible.

The engine: ``plan(facts, policies) -> DesiredState`` over policies loaded with ``load_policy_set`` and facts
read with ``load_host_facts`` (a saved file) or ``parse_facts`` (a dict).
"""

from memtune.engine.desired import DesiredState, Provenance
from memtune.engine.plan import plan
from memtune.errors import PolicyError
from memtune.facts.model import HostFacts, parse_facts
from memtune.hosts.files import load_host_facts
from memtune.policy.load import load_policy_set, policy_from_data
from memtune.policy.model import Policy, PolicySet
from memtune.report.explain import explain

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
    "load_host_facts",
    "load_policy_set",
    "parse_facts",
    "plan",
    "policy_from_data",
]
