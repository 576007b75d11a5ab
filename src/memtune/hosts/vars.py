"""The inventory variables memtune reads for one host, from a vars file (the CLI) or the play (the action)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from memtune.engine.desired import DesiredState
from memtune.engine.plan import plan
from memtune.errors import PolicyError
from memtune.facts.model import HostFacts
from memtune.model import Model
from memtune.policy.load import policy_from_data
from memtune.policy.model import Policy, PolicySet
from memtune.policy.source import load_yaml_file


class HostVars(Model):
    """The inventory variables memtune reads for one host (the action plugin passes the same)."""

    memtune_inputs: dict[str, Any] = {}
    memtune_workloads: list[str] | None = None
    memtune_container_workloads: bool = False
    group_names: list[str] = []
    memtune_group_policies: list[dict[str, Any]] = []
    memtune_host_policy: dict[str, Any] | None = None

    def inline_policies(self, source: str, host: str | None = None) -> list[Policy]:
        """The inline group and host policies; ``layer`` and ``name`` (default: ``host``) may be left
        out of them."""
        policies = [
            policy_from_data(
                data,
                f"{source}.memtune_group_policies[{index}]",
                defaults={"layer": "group", "name": f"inline-{index}"},
            )
            for index, data in enumerate(self.memtune_group_policies)
        ]
        if self.memtune_host_policy is not None:
            policies.append(
                policy_from_data(
                    self.memtune_host_policy,
                    f"{source}.memtune_host_policy",
                    defaults={"layer": "host", "name": host or "inline"},
                )
            )
        return policies

    def plan(
        self,
        facts: HostFacts,
        policies: PolicySet,
        host: str,
        source: str,
        workloads: list[str] | None = None,
    ) -> DesiredState:
        """The host's plan: ``policies`` layered with its groups, its inline group and host policies (named
        after ``source``), its inputs and its workloads (``workloads``, when given, instead). The one place
        the CLI and the tune and audit actions plan a host."""
        return plan(
            facts,
            policies,
            host=host,
            groups=self.group_names,
            workloads=workloads or self.memtune_workloads,
            inputs=self.memtune_inputs,
            inline=self.inline_policies(source, host),
            container_workloads=self.memtune_container_workloads,
        )


def load_vars(path: Path) -> dict[str, HostVars]:
    """A YAML or JSON mapping of host name to its variables."""
    data, marks = load_yaml_file(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyError("expected a mapping of host name to variables", str(path), 1, 1)
    result: dict[str, HostVars] = {}
    for host, values in data.items():
        try:
            result[str(host)] = HostVars.model_validate(values or {})
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            loc = (host, *error["loc"])
            _marked, (line, column) = marks.locate(loc)
            where = ".".join(str(part) for part in loc)
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            raise PolicyError(f"{where}: {message}", str(path), line, column) from None
    return result
