"""The two artifacts as a user gets them: built from a clean copy of the tree (the files git knows, committed
or not), installed into fresh virtualenvs outside the checkout, run from a directory outside it with none
of the checkout's Ansible settings.

MEMTUNE_CONTROLLER_PYTHON and MEMTUNE_ANSIBLE_CORE pick the controller (default: Python 3.11, ansible-core
2.19, the pin of pyproject.toml); `make test-packaging-matrix` runs the same tests on the current release."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONTROLLER_PYTHON = os.environ.get("MEMTUNE_CONTROLLER_PYTHON", sys.executable)
ANSIBLE_CORE = os.environ.get("MEMTUNE_ANSIBLE_CORE", "ansible-core>=2.19,<2.20")
TARGET_PYTHON_38 = Path.home() / ".pyenv" / "versions" / "3.8.18" / "bin" / "python"
# ansible-core 2.21 refuses targets older than Python 3.9: MEMTUNE_TARGET_PY38=0 leaves that host out.
HOSTS = ["localhost", "py38"] if os.environ.get("MEMTUNE_TARGET_PY38", "1") == "1" else ["localhost"]


def run(command: list[str | Path], cwd: Path, env: dict[str, str], check: bool = True) -> str:
    """Run a command, its output (stdout and stderr) returned; a failure shows that output."""
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    output = done.stdout + done.stderr
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {done.returncode}:\n{output[-6000:]}")
    return output


def user_env(venv_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a user who installed into ``venv_dir``: nothing of the checkout's Ansible setup."""
    keep = {key: value for key, value in os.environ.items() if key in ("HOME", "LANG", "TERM", "USER")}
    path = f"{venv_dir / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    return {**keep, "PATH": path, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOWS": "1", **extra}


def make_venv(where: Path) -> Path:
    subprocess.run([CONTROLLER_PYTHON, "-m", "venv", str(where)], check=True)
    return where


@dataclass(frozen=True)
class Artifacts:
    tree: Path
    tarball: Path
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """The collection tarball, the wheel and the sdist, built from a copy of the tracked files (anything the
    checkout holds besides them, such as .venv, build/ or .ansible/, is not there to leak in)."""
    base = tmp_path_factory.mktemp("artifacts")
    tree = base / "tree"
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    subprocess.run(
        ["rsync", "-a", "--from0", "--files-from=-", "./", f"{tree}/"], input=listed, cwd=REPO, check=True
    )
    for leftover in (
        "build/sanity/leftover.py",
        ".ansible/collections/x.yml",
        ".venv/bin/x.py",
        "tests/output/x.py",
    ):
        (tree / leftover).parent.mkdir(parents=True, exist_ok=True)  # what a working checkout also holds
        (tree / leftover).write_text("x = 1\n")
    dist = base / "dist"
    env = user_env(Path(sys.prefix))
    run(
        [Path(sys.prefix) / "bin" / "ansible-galaxy", "collection", "build", "--output-path", dist], tree, env
    )
    run([sys.executable, "-m", "build", "--outdir", dist, tree], base, env)
    (tarball,) = dist.glob("memtune-fleet-*.tar.gz")
    (wheel,) = dist.glob("memtune-*.whl")
    (sdist,) = dist.glob("memtune-[0-9]*.tar.gz")
    return Artifacts(tree, tarball, wheel, sdist)


@dataclass(frozen=True)
class Controller:
    """A controller with the collection installed from its tarball (ansible-core, then the collection's
    requirements.txt), and where the collection landed."""

    venv: Path
    collections: Path
    env: dict[str, str]

    @property
    def collection(self) -> Path:
        return self.collections / "ansible_collections" / "memtune" / "fleet"


@pytest.fixture(scope="session")
def bare_controller(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> Controller:
    """ansible-core and the installed tarball, before the collection's requirements are installed."""
    base = tmp_path_factory.mktemp("controller")
    where = make_venv(base / "venv")
    env = user_env(where, ANSIBLE_COLLECTIONS_PATH=str(base / "collections"))
    run([where / "bin" / "pip", "install", "--quiet", ANSIBLE_CORE], base, env)
    run(
        [
            where / "bin" / "ansible-galaxy",
            "collection",
            "install",
            "-p",
            base / "collections",
            artifacts.tarball,
        ],
        base,
        env,
    )
    return Controller(where, base / "collections", env)


@pytest.fixture(scope="session")
def controller(bare_controller: Controller) -> Controller:
    pip = bare_controller.venv / "bin" / "pip"
    requirements = bare_controller.collection / "requirements.txt"
    run(
        [pip, "install", "--quiet", "-r", requirements, "ansible-runner"],
        bare_controller.venv,
        bare_controller.env,
    )
    return bare_controller


@pytest.fixture(scope="session")
def wheel_venv(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = make_venv(tmp_path_factory.mktemp("wheel") / "venv")
    run([where / "bin" / "pip", "install", "--quiet", artifacts.wheel], where, user_env(where))
    return where


@pytest.fixture(scope="session")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This machine twice: with its own Python 3, and with Python 3.8 as the oldest target the modules
    support."""
    path = tmp_path_factory.mktemp("inventory") / "hosts.ini"
    interpreters = {"localhost": "/usr/bin/python3", "py38": TARGET_PYTHON_38}
    path.write_text(
        "".join(
            f"{host} ansible_connection=local ansible_python_interpreter={interpreters[host]}\n"
            for host in HOSTS
        )
    )
    return path
