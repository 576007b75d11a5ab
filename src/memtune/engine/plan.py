"""``plan(facts, policies) -> DesiredState``: pure and deterministic; reads no file and no clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from memtune.engine.desired import SCHEMA_VERSION, DesiredState
from memtune.engine.kinds import KINDS
from memtune.engine.knobs import parse_version
from memtune.engine.layers import Planner
from memtune.engine.merge import ConflictError
from memtune.engine.rules import rules_of
from memtune.engine.sizes import parse_size
from memtune.errors import PolicyError
from memtune.facts.model import HostFacts
from memtune.policy.model import InputSpec, Policy, PolicySet

INPUTS_SOURCE = "memtune_inputs"


def resolve_inputs(policies: Sequence[Policy], given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Check the inventory's inputs against what the active policies declare; apply defaults."""
    specs: dict[str, InputSpec] = {}
    for policy in policies:
        for name, spec in policy.inputs.items():
            specs.setdefault(name, spec)
    resolved: dict[str, Any] = {
        name: input_value(name, spec, spec.default)
        for name, spec in specs.items()
        if spec.default is not None
    }
    warnings: list[str] = []
    for name, value in given.items():
        if name not in specs:
            warnings.append(f"{INPUTS_SOURCE}.{name} is not used by the policies of this host")
            continue
        resolved[name] = input_value(name, specs[name], value)
    return resolved, warnings


def input_value(name: str, spec: InputSpec, value: Any) -> Any:
    if value is None:
        return None
    try:
        if spec.type == "int":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            number = int(value)  # a str that is not an integer raises ValueError
            if not -(2**63) <= number < 2**64:
                raise ValueError
            return number
        if spec.type == "size":
            if isinstance(value, bool):
                raise ValueError
            return parse_size(value)
        if spec.type == "bool":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if spec.type == "version":
            parse_version(str(value))
        return str(value)
    except ValueError:
        raise PolicyError(
            f"{name}: expected {'a ' + spec.type if spec.type != 'int' else 'an int'}, got {value!r}",
            INPUTS_SOURCE,
        ) from None


def _places(facts: HostFacts, name: str, most: int = 3) -> str:
    workload = facts.workload(name)
    places = [instance.where() for instance in workload.instances] if workload else []
    return ", ".join(places[:most]) + (f" and {len(places) - most} more" if len(places) > most else "")


def plan(
    facts: HostFacts,
    policies: PolicySet,
    *,
    host: str | None = None,
    groups: Sequence[str] = (),
    workloads: Sequence[str] | None = None,
    inputs: Mapping[str, Any] | None = None,
    inline: Sequence[Policy] = (),
    container_workloads: bool = False,
) -> DesiredState:
    """Plan one host. Layers, lowest first: baseline, workloads (``workloads`` forces them; by default the
    detected ones that have a policy, in name order), ``groups`` in the given order, then ``host``'s policy;
    ``inline`` group and host policies (from inventory variables) follow the files of their layer.

    Detected workloads are those that run on the host itself: one seen only in containers or Kubernetes
    pods does not choose a workload policy for the host unless ``container_workloads`` (the inventory's
    ``memtune_container_workloads``) or ``workloads`` asks."""
    warnings: list[str] = []
    if workloads is None:
        detected = facts.workload_names if container_workloads else facts.host_workload_names
        chosen = sorted(detected & policies.workloads.keys())
        warnings += [
            f"workload {name} detected; no policy for it"
            for name in sorted(detected - policies.workloads.keys())
        ]
        warnings += [
            f"workload {name} runs only in containers or pods ({_places(facts, name)}): its policy is not "
            "applied to the host (memtune_container_workloads: true or memtune_workloads opts in)"
            for name in sorted((facts.workload_names - detected) & policies.workloads.keys())
        ]
    else:
        missing = [name for name in workloads if name not in policies.workloads]
        if missing:
            raise PolicyError(
                f"no workload policy {missing[0]!r} (have: {', '.join(sorted(policies.workloads))})",
                "memtune_workloads",
            )
        chosen = list(dict.fromkeys(workloads))
    layers: list[tuple[str, Policy]] = [("baseline", policies.baseline)] if policies.baseline else []
    origins: dict[int, str] = {}
    for name in chosen:
        for policy in policies.workload_chain(name):
            if not any(policy is seen for _layer, seen in layers):
                layers.append(("workload", policy))
                origins[id(policy)] = name
    layers += [("group", policies.groups[name]) for name in groups if name in policies.groups]
    layers += [("group", policy) for policy in inline if policy.layer == "group"]
    if host is not None and host in policies.hosts:
        layers.append(("host", policies.hosts[host]))
    layers += [("host", policy) for policy in inline if policy.layer == "host"]
    resolved, input_warnings = resolve_inputs([policy for _layer, policy in layers], inputs or {})
    planner = Planner(facts, frozenset(chosen), resolved, container_workloads=container_workloads)
    if workloads is None:
        planner.saw(planner.workloads_path)  # the detected workloads chose the workload layers
    planner.warnings += warnings + input_warnings
    planner.origins = origins
    for layer, policy in layers:
        if policy.guards is not None:
            planner.guards = policy.guards
        for rule in rules_of(policy, layer):
            planner.apply(rule)
    conflicts = [conflict for found in planner.conflicts.values() for conflict in found]
    if conflicts:
        raise ConflictError(conflicts)
    sections: dict[str, Any] = {}
    for kind in KINDS:
        sections.update(kind.finish(planner, planner.states[kind.name]))
    return DesiredState.model_construct(
        schema_version=SCHEMA_VERSION,
        **sections,
        skipped=planner.skipped,
        warnings=planner.warnings,
        facts_read=sorted(planner.reads),
    )
