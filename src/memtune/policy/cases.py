"""``memtune test``: YAML cases that pin what policies plan on given facts (docs/policies.md "Policy tests").

A case file names the policies (``policies:``, paths relative to the file; default the bundled ones) and
``cases``: each plans one host from a facts file or a captured /proc + /sys tree, with inventory variables
and forced workloads, and expects per knob a value, a conflict, a skip or absence, or the plan's error."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr, ValidationError

from memtune.engine.desired import DesiredState
from memtune.engine.merge import ConflictError
from memtune.engine.plan import plan
from memtune.errors import PolicyError, raise_all
from memtune.facts.model import FactsError, HostFacts, parse_facts
from memtune.hosts.files import load_host_facts
from memtune.hosts.vars import HostVars
from memtune.model import Model
from memtune.policy.load import load_policy_set, validation_errors
from memtune.policy.model import PolicySet, bundled_policy_dir
from memtune.policy.source import load_yaml_file
from memtune.report.junit import _attr, _text


class Expect(Model):
    """One knob's expectation other than a plain value: a conflict (words of its message), a skip (words
    of the reason), or that the plan does not set it."""

    conflict: StrictStr | None = None
    skipped: StrictStr | None = None
    absent: StrictBool = False


class Case(Model):
    name: StrictStr
    facts: StrictStr | None = Field(None, description="A facts JSON file, relative to the case file")
    tree: StrictStr | None = Field(
        None, description="A captured /proc + /sys tree, relative to the case file"
    )
    host: StrictStr = "host"
    workloads: list[StrictStr] | None = Field(None, description="Forced workloads (memtune_workloads)")
    vars: HostVars = HostVars()
    expect: dict[StrictStr, StrictInt | StrictStr | dict[StrictStr, StrictInt] | Expect] = {}
    error: StrictStr | None = Field(None, description="The plan must fail with a message containing this")


class CaseFile(Model):
    policies: list[StrictStr] = []
    cases: list[Case]


@dataclass(frozen=True)
class Outcome:
    """One expectation of one case: ``problem`` is None when it held."""

    file: str
    case: str
    what: str
    problem: str | None


def load_cases(path: Path) -> tuple[CaseFile, PolicySet]:
    """The case file and its policies; PolicyError (file:line) when either is invalid."""
    data, marks = load_yaml_file(path)
    try:
        cases = CaseFile.model_validate(data)
    except ValidationError as exc:
        raise_all(validation_errors(exc, data, str(path), marks))
        raise  # unreachable: a ValidationError has at least one error
    dirs = [path.parent / entry for entry in cases.policies] or [bundled_policy_dir()]
    return cases, load_policy_set(dirs)


def case_facts(base: Path, case: Case) -> HostFacts:
    if (case.facts is None) == (case.tree is None):
        raise FactsError(f"case {case.name!r}: give exactly one of facts or tree")
    if case.facts is not None:
        return load_host_facts(base / case.facts)
    root = base / str(case.tree)
    if not root.is_dir():
        raise FactsError(f"case {case.name!r}: {root}: no such captured tree")
    collect, tree = _probe()
    if collect is None:
        raise FactsError(f"case {case.name!r}: tree needs the memtune.fleet collection's probe; use facts")
    return parse_facts(collect(tree(str(root))), str(root))


def _probe() -> tuple[Any, Any]:
    """The probe's collect() and Tree, in-process: from the installed memtune.fleet collection, else from
    the checkout memtune runs from (its ansible_collections/memtune/fleet link)."""
    utils = "ansible_collections.memtune.fleet.plugins.module_utils"
    checkout = Path(__file__).resolve().parents[3]
    for attempt in range(2):
        try:
            return (
                importlib.import_module(f"{utils}._probe.collect").collect,
                importlib.import_module(f"{utils}._host.tree").Tree,
            )
        except ImportError:
            if attempt or not (checkout / "ansible_collections" / "memtune" / "fleet").is_dir():
                return None, None
            sys.path.append(str(checkout))
    return None, None


def run_case(file: str, base: Path, case: Case, policies: PolicySet) -> list[Outcome]:
    """The outcomes of one case; FactsError when its facts cannot be read (invalid input)."""
    facts = case_facts(base, case)
    desired: DesiredState | None = None
    failure: PolicyError | None = None
    try:
        desired = plan(
            facts,
            policies,
            host=case.host,
            groups=case.vars.group_names,
            workloads=case.workloads if case.workloads is not None else case.vars.memtune_workloads,
            inputs=case.vars.memtune_inputs,
            inline=case.vars.inline_policies(f"{file}:{case.name}.vars", case.host),
            container_workloads=case.vars.memtune_container_workloads,
        )
    except PolicyError as exc:
        failure = exc
    outcomes: list[Outcome] = []
    if case.error is not None:
        problem = (
            None
            if failure is not None and case.error in str(failure)
            else f"expected the plan to fail with {case.error!r}; "
            + (f"it failed with: {failure}" if failure else "it planned")
        )
        outcomes.append(Outcome(file, case.name, "error", problem))
    for knob, wanted in case.expect.items():
        outcomes.append(Outcome(file, case.name, knob, _check(knob, wanted, desired, failure)))
    return outcomes


def _check(knob: str, wanted: Any, desired: DesiredState | None, failure: PolicyError | None) -> str | None:
    conflict = wanted.conflict if isinstance(wanted, Expect) else None
    if conflict is not None:
        found = [c for c in failure.conflicts if c.knob == knob] if isinstance(failure, ConflictError) else []
        if any(conflict in c.message() for c in found):
            return None
        return f"expected a conflict on {knob} mentioning {conflict!r}; " + (
            f"got: {found[0].message()}"
            if found
            else f"the plan {'failed: ' + str(failure) if failure else 'has none'}"
        )
    if desired is None:
        return f"the plan failed: {failure}"
    values = desired.values()
    if isinstance(wanted, Expect) and wanted.skipped is not None:
        reasons = [s.reason for s in desired.skipped if s.knob == knob]
        if any(wanted.skipped in reason for reason in reasons):
            return None
        return f"expected {knob} skipped ({wanted.skipped!r}); " + (
            f"skipped: {reasons[0]}"
            if reasons
            else f"planned {values[knob][0]!r}"
            if knob in values
            else "not set"
        )
    if isinstance(wanted, Expect):
        return None if knob not in values else f"expected {knob} absent; planned {values[knob][0]!r}"
    if knob not in values:
        return f"expected {knob} = {wanted!r}; the plan does not set it"
    got = values[knob][0]
    return (
        None if got == wanted else f"expected {knob} = {wanted!r}; planned {got!r} ({values[knob][1].at()})"
    )


Verdict = Literal[0, 1, 2]


def run_files(paths: list[Path]) -> tuple[list[Outcome], list[str]]:
    """Every case of every file (directories: their *.yml and *.yaml): outcomes, and invalid-input errors."""
    outcomes: list[Outcome] = []
    errors: list[str] = []
    files = [
        p
        for path in paths
        for p in (sorted([*path.glob("*.yml"), *path.glob("*.yaml")]) if path.is_dir() else [path])
    ]
    for file in files:
        try:
            cases, policies = load_cases(file)
            for case in cases.cases:
                outcomes += run_case(str(file), file.parent, case, policies)
        except (PolicyError, FactsError) as exc:
            errors.append(str(exc))
    return outcomes, errors


def verdict(outcomes: list[Outcome], errors: list[str]) -> Verdict:
    if errors:
        return 2
    return 1 if any(o.problem for o in outcomes) else 0


def junit(outcomes: list[Outcome], errors: list[str]) -> str:
    """JUnit XML: one testsuite per case file, one testcase per expectation; invalid files are errors."""
    suites: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        suites.setdefault(outcome.file, []).append(outcome)
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="memtune test">\n']
    for file, found in suites.items():
        failures = sum(1 for o in found if o.problem)
        parts.append(
            f'  <testsuite name={_attr(file)} tests="{len(found)}" failures="{failures}" errors="0" '
            'skipped="0" time="0">\n'
        )
        for o in found:
            head = f'    <testcase classname={_attr(o.case)} name={_attr(o.what)} time="0"'
            if o.problem is None:
                parts.append(head + "/>\n")
            else:
                parts.append(
                    f"{head}>\n      <failure message={_attr(o.problem)}>{_text(o.problem)}</failure>\n"
                    "    </testcase>\n"
                )
        parts.append("  </testsuite>\n")
    if errors:
        parts.append(
            f'  <testsuite name="invalid input" tests="{len(errors)}" failures="0" errors="{len(errors)}" '
            'skipped="0" time="0">\n'
        )
        for error in errors:
            parts.append(
                f'    <testcase classname="memtune test" name={_attr(error.split(": ", 1)[0])} time="0">\n'
                f"      <error message={_attr(error)}>{_text(error)}</error>\n    </testcase>\n"
            )
        parts.append("  </testsuite>\n")
    parts.append("</testsuites>\n")
    return "".join(parts)
