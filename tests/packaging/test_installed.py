"""Issue 16: the collection tarball and the wheel, each installed alone as a user installs them, work from a
directory outside the checkout; ansible-test sanity passes on the installed tarball with no ignore files."""

from __future__ import annotations

import json
import re
import shutil
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.packaging.conftest import HOSTS, REPO, Artifacts, Controller, run, user_env

pytestmark = pytest.mark.packaging

COLLECTION_CONTENT = (
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "MANIFEST.json",
    "FILES.json",
    "requirements.txt",
)
ASK_VERSIONS = (
    "import re, sys, ansible_test._internal.python_requirements as r; print('%d.%d' % sys.version_info[:2], "
    "re.search(r'pip=.([0-9.]+)', open(r.__file__).read())[1])"
)
NOT_CONTENT = ("tests/", "bench/", "lab/", "molecule/", "Makefile", ".ci", ".ansible/", "build/", ".venv/")


def tarball_names(artifacts: Artifacts) -> list[str]:
    with tarfile.open(artifacts.tarball) as tar:
        return tar.getnames()


def test_tarball_holds_only_collection_content(artifacts: Artifacts) -> None:
    names = tarball_names(artifacts)
    for name in COLLECTION_CONTENT:
        assert name in names
    assert "src/memtune/engine/plan.py" in names and "policies/baseline.yml" in names
    assert [name for name in names if name.startswith(NOT_CONTENT)] == []


def test_both_artifacts_carry_the_same_policies_and_schemas(artifacts: Artifacts) -> None:
    with tarfile.open(artifacts.tarball) as tar, zipfile.ZipFile(artifacts.wheel) as wheel:
        in_tarball = {
            name: tar.extractfile(name).read()  # type: ignore[union-attr]
            for name in tar.getnames()
            if re.fullmatch(r"(policies|schemas)/[^/]+", name)
        }
        in_wheel = {
            name.removeprefix("memtune/"): wheel.read(name)
            for name in wheel.namelist()
            if re.fullmatch(r"memtune/(policies|schemas)/[^/]+", name)
        }
    on_disk = {str(path.relative_to(REPO)): path.read_bytes() for path in REPO.glob("[ps][oc]*/*.*")}
    assert in_tarball == in_wheel == {name: data for name, data in on_disk.items() if name in in_tarball}
    assert len(in_tarball) == len(list(REPO.glob("policies/*.yml"))) + len(list(REPO.glob("schemas/*")))


def test_wheel_lists_every_package_of_the_source_tree() -> None:
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    in_tree = {
        ".".join(init.parent.relative_to(REPO / "src").parts) for init in (REPO / "src").rglob("__init__.py")
    }
    assert in_tree <= set(packages)


def test_the_action_says_which_requirements_it_misses(bare_controller: Controller, inventory: Path) -> None:
    """A wrong install step (the collection without its requirements.txt) fails, saying what works."""
    output = run(
        [
            bare_controller.venv / "bin" / "ansible-playbook",
            "-i",
            inventory,
            "-l",
            "localhost",
            "memtune.fleet.tune",
            "--check",
        ],
        bare_controller.venv.parent,
        bare_controller.env,
        check=False,
    )
    requirements = bare_controller.collection / "requirements.txt"
    assert f"-m pip install -r {requirements}" in output
    assert "pip install memtune" not in output


def test_installed_collection_runs_from_elsewhere(
    controller: Controller, inventory: Path, tmp_path: Path
) -> None:
    bin_dir = controller.venv / "bin"
    env = {
        **controller.env,
        "ANSIBLE_CACHE_PLUGIN": "jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts"),
    }
    listed = run([bin_dir / "ansible-doc", "-l", "memtune.fleet"], tmp_path, env)
    for plugin in ("tune", "audit", "fleet_report", "memory_facts", "memory_apply"):
        assert f"memtune.fleet.{plugin} " in listed
    if "py38" in HOSTS:
        setup = [bin_dir / "ansible", "-i", inventory, "py38", "-m", "ansible.builtin.setup"]
        python = run([*setup, "-a", "filter=ansible_python_version"], tmp_path, env)
        assert '"ansible_python_version": "3.8.18"' in python

    run([bin_dir / "ansible-playbook", "-i", inventory, "memtune.fleet.probe"], tmp_path, env)
    assert sorted(path.name for path in (tmp_path / "facts").iterdir() if not path.name.startswith(".")) != []
    tuned = run(
        [bin_dir / "ansible-playbook", "-i", inventory, "memtune.fleet.tune", "--check", "--diff"],
        tmp_path,
        env,
    )
    for host in HOSTS:
        assert re.search(rf"{host}\s*: ok=\d+\s.*failed=0", tuned), tuned
    assert str(controller.collection / "policies") in tuned  # provenance: the bundled policies of the tarball

    audit = [
        bin_dir / "ansible-playbook",
        "-i",
        inventory,
        "memtune.fleet.audit",
        "-e",
        "memtune_fail_on_drift=false",
    ]
    run(audit, tmp_path, env)
    report = json.loads((tmp_path / "memtune-audit.json").read_text())
    assert sorted(host["host"] for host in report["hosts"]) == HOSTS
    assert not list(controller.collection.rglob("memtune-audit.*"))
    written = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("memtune-audit.*")}
    checked = run([*audit, "--check", "-v"], tmp_path, env)
    assert re.search(r"localhost\s*: ok=\d+\s+changed=0\s.*failed=0", checked), checked
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("memtune-audit.*")} == written


def test_wheel_cli_from_elsewhere(
    wheel_venv: Path, controller: Controller, inventory: Path, tmp_path: Path
) -> None:
    facts = tmp_path / "facts"
    env = {
        **controller.env,
        "ANSIBLE_CACHE_PLUGIN": "jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts),
    }
    run([controller.venv / "bin" / "ansible-playbook", "-i", inventory, "memtune.fleet.probe"], tmp_path, env)
    memtune = wheel_venv / "bin" / "memtune"
    cli_env = user_env(wheel_venv)
    assert run([memtune, "--version"], tmp_path, cli_env).strip() == "memtune 0.1.0"
    schema = json.loads(run([memtune, "schema"], tmp_path, cli_env))
    assert schema["$schema"].startswith("https://json-schema.org/")
    planned = json.loads(run([memtune, "plan", "--facts", facts, "--format", "json"], tmp_path, cli_env))
    assert sorted(planned) == HOSTS
    bundled = wheel_venv / "lib"
    assert str(bundled) in json.dumps(planned)  # provenance: the wheel's package data
    out = run(
        [memtune, "audit", "--facts", facts, "--save", f"json={tmp_path / 'audit.json'}"],
        tmp_path,
        cli_env,
        check=False,
    )
    assert json.loads((tmp_path / "audit.json").read_text())["summary"]["hosts"] == len(HOSTS), out


def test_ansible_test_sanity_on_the_installed_tarball(controller: Controller) -> None:
    """Every sanity test, no --exclude, no tests/sanity/ignore-*.txt (the tarball has no tests/ at all)."""
    assert not (controller.collection / "tests").exists()
    python = run(
        [controller.venv / "bin" / "python", "-c", ASK_VERSIONS], controller.venv, controller.env
    ).split()
    # ansible-test fetches get-pip.py from a host this machine cannot reach: the stand-in runs the pip wheel
    # that ships with the Python (as `make sanity` does).
    cache = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{python[1].replace('.', '_')}.py"
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "scripts" / "offline-get-pip.py", cache)
    output = run(
        [controller.venv / "bin" / "ansible-test", "sanity", "--python", python[0], "--color", "no"],
        controller.collection,
        controller.env,
    )
    assert "targets skipped" not in output
    assert 'Running sanity test "changelog"' in output and 'Running sanity test "pylint"' in output


def test_execution_environment_context(artifacts: Artifacts, controller: Controller, tmp_path: Path) -> None:
    """`ansible-builder create` (no container engine here), and the context's own introspection of the
    installed collection finding its requirements."""
    (artifacts.tree / "build" / "dist").mkdir(parents=True, exist_ok=True)
    shutil.copy(artifacts.tarball, artifacts.tree / "build" / "dist")
    builder = Path(sys.prefix) / "bin" / "ansible-builder"
    run(
        [builder, "create", "-f", "execution-environment.yml", "-c", tmp_path / "context"],
        artifacts.tree,
        user_env(Path(sys.prefix)),
    )
    context = tmp_path / "context"
    assert (
        context / "_build" / "collections" / artifacts.tarball.name
    ).read_bytes() == artifacts.tarball.read_bytes()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": f"/build/collections/{artifacts.tarball.name}", "type": "file"}]
    assert "COPY _build /build" in (context / "Dockerfile").read_text()
    found = run(
        [
            controller.venv / "bin" / "python",
            context / "_build" / "scripts" / "introspect.py",
            "introspect",
            controller.collections,
        ],
        tmp_path,
        controller.env,
    )
    declared = [
        line
        for line in (controller.collection / "requirements.txt").read_text().splitlines()
        if line[:1].isalpha()
    ]
    # PyYAML comes with ansible-core, which the EE installs anyway: introspection leaves it out.
    expected = [
        f"{line}  # from collection memtune.fleet" for line in declared if not line.startswith("pyyaml")
    ]
    assert yaml.safe_load(found) == {"python": expected, "system": []}


def test_ansible_runner_project(controller: Controller, tmp_path: Path) -> None:
    private = tmp_path / "runner"
    shutil.copytree(REPO / "examples" / "runner", private)
    extravars = yaml.safe_load((private / "env" / "extravars").read_text())
    (private / "env" / "extravars").write_text(
        yaml.safe_dump({**extravars, "memtune_report_dir": str(private / "report")})
    )
    output = run(
        [controller.venv / "bin" / "ansible-runner", "run", private, "-p", "audit.yml"],
        tmp_path,
        controller.env,
    )
    (artifacts,) = (private / "artifacts").iterdir()
    assert (artifacts / "status").read_text() == "successful", output
    assert (artifacts / "rc").read_text() == "0"
    assert json.loads((private / "report" / "memtune-audit.json").read_text())["summary"]["hosts"] == 1
