"""Fleet run time: memtune against Ansible's floor (ping) and a per-key ansible.posix.sysctl role.

Not a test: nothing is asserted. Each variant is a whole `ansible-playbook` run (process start, inventory,
strategy, every host), timed from outside; wall time, CPU time (the playbook and every process under it)
and the 1-minute load average are recorded per run, medians reported. Variants run interleaved, one of
each per round, so load on the shared machine falls on all of them alike.

Variants (playbooks in bench/playbooks/, the six knobs of bench/policy/six-knobs.yml):
  ping            ansible.builtin.ping: one module call a host, the floor
  perkey          role perkey_sysctl: one ansible.posix.sysctl task per key (6 calls a host), changing
  perkey-conv     the same role again: nothing left to change, still 6 calls a host
  tune-probe      memtune.fleet.tune on a changing run with --flush-cache: no facts from a last contact, so
                  probe + apply (2 calls a host), the path every changing run took before the facts cache
  tune            memtune.fleet.tune on a changing run planned from the cached facts (1 call a host)
  tune-conv       memtune.fleet.tune on a converged run (1 call a host)
  audit           memtune.fleet.audit on the converged hosts (1 call a host)
  tune-stale      a changing run where the first host's cached MemTotal is off by 1 GiB: that host's
                  memory_apply says stale and it is planned again (2 calls), the others make 1

Targets: tune <= 1.3x ping, tune-conv <= 1.15x ping, audit <= 1.3x ping, perkey / tune >= 5x.
The facts cache lives in the run's own directory (MEMTUNE_FACTS_CACHE); one untimed run fills it first.

Local aliases (default): N inventory hosts bench-01..N, connection local, Debian's /usr/bin/python3; they
share one kernel. So that every alias of a *changing* run really has something to change (two module
calls, an actual write), the changing runs give each alias its own vm.max_map_count (262144 + alias
number; a host policy for memtune, a host variable for the role); the converged runs use the common
values (tune-conv after one untimed converging run; perkey-conv right after perkey, where only the first
alias has a value to change: the role makes its six calls a host either way). Between runs, untimed:
memory_apply state=absent, the six knobs put back, the role's file removed.
Everything is restored at the end, on failure too.

--lab runs the same variants on the QEMU fleet (inventories/lab/hosts.yml, which must be up: see
bench/bench.mk, which starts and stops it under the lab's lock), over ssh.
--mitogen adds each variant under the mitogen_linear strategy (PyPI mitogen).

Usage: .venv/bin/python bench/fleet_bench.py [--hosts 10,50] [--rounds 5] [--lab] [--mitogen] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("MEMTUNE_BENCH_CACHE", Path.home() / ".cache/memtune/bench"))
ANSIBLE_RELEASE = "12.3.0"  # the `ansible` 12.x line pairs with ansible-core 2.19
KNOBS = {
    "vm.swappiness": 10,
    "vm.min_free_kbytes": 90112,
    "vm.watermark_scale_factor": 20,
    "vm.dirty_background_ratio": 5,
    "vm.dirty_ratio": 10,
    "vm.max_map_count": 262144,
}
PERKEY_FILE = Path("/etc/sysctl.d/60-memtune-bench-perkey.conf")
MEMTUNE_FILE = Path("/etc/sysctl.d/90-memtune.conf")
VARIANTS = ("ping", "perkey", "perkey-conv", "tune-probe", "tune", "tune-conv", "audit", "tune-stale")
PLAYBOOK = {
    "ping": "ping.yml",
    "perkey": "perkey.yml",
    "perkey-conv": "perkey.yml",
    "tune-probe": "tune.yml",
    "tune": "tune.yml",
    "tune-conv": "tune.yml",
    "audit": "audit.yml",
    "tune-stale": "tune.yml",
}
EXTRA_ARGS = {"tune-probe": ["--flush-cache"]}


def posix_collection() -> Path:
    """A collections path holding ansible.posix alone, extracted from the `ansible` wheel (not installed)."""
    root = CACHE / f"ansible-{ANSIBLE_RELEASE}-collections"
    if (root / "ansible_collections/ansible/posix/plugins/modules/sysctl.py").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    wheel = CACHE / f"ansible-{ANSIBLE_RELEASE}-py3-none-any.whl"
    if not wheel.exists():
        subprocess.run(
            [
                str(BIN / "pip"),
                "download",
                "--quiet",
                "--no-deps",
                "-d",
                str(CACHE),
                f"ansible=={ANSIBLE_RELEASE}",
            ],
            check=True,
        )
    partial = Path(tempfile.mkdtemp(prefix=".posix-", dir=CACHE))
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("ansible_collections/ansible/posix/"):
                archive.extract(name, partial)
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    return root


def mitogen_strategy() -> Path | None:
    try:
        import ansible_mitogen  # type: ignore[import-not-found]
    except ImportError:
        return None
    return Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"


@dataclass
class Run:
    wall: float
    cpu: float
    load: float
    changed: int
    hosts_ok: int


@dataclass
class Results:
    runs: dict[tuple[str, str, int, str], list[Run]] = field(default_factory=dict)

    def add(self, key: tuple[str, str, int, str], run: Run) -> None:
        self.runs.setdefault(key, []).append(run)


RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class Fleet:
    """One inventory (local aliases or the lab), the environment to run playbooks on it, and its reset."""

    def __init__(self, workdir: Path, kind: str, hosts: list[str], host_vars: dict[str, dict[str, object]]):
        self.workdir, self.kind, self.hosts = workdir, kind, hosts
        self.env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=f"{REPO}:{posix_collection()}",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_DEPRECATION_WARNINGS="False",
            # as ansible.cfg asks of ssh: one process a module call, no temporary files (local honours it too)
            ANSIBLE_PIPELINING="True",
            PATH=f"{BIN}:{os.environ.get('PATH', '')}",
            MEMTUNE_FACTS_CACHE=str(workdir / "facts-cache"),
        )
        self.common = self._inventory("common", host_vars, distinct=False)
        self.distinct = self._inventory("distinct", host_vars, distinct=kind == "local")

    def _inventory(self, name: str, host_vars: dict[str, dict[str, object]], distinct: bool) -> Path:
        hosts: dict[str, dict[str, object]] = {}
        for index, host in enumerate(self.hosts, 1):
            variables = dict(host_vars[host])
            if distinct:  # one kernel under every alias: each alias wants its own value, so each one writes
                value = KNOBS["vm.max_map_count"] + index
                variables["perkey_sysctl_max_map_count"] = value
                variables["memtune_host_policy"] = {
                    "rules": [{"name": "alias", "source": "bench", "sysctl": {"vm.max_map_count": value}}]
                }
            hosts[host] = variables
        path = self.workdir / f"{name}.json"
        group_vars = {"bench_dir": str(self.workdir), "bench_knobs": list(KNOBS)}
        path.write_text(json.dumps({"bench": {"hosts": hosts, "vars": group_vars}}))
        return path

    def make_stale(self) -> None:
        """The first host's cached facts say 1 GiB more RAM than it has: a fingerprinted fact changed."""
        entry_path = Path(self.env["MEMTUNE_FACTS_CACHE"]) / f"{self.hosts[0]}.json"
        entry = json.loads(entry_path.read_text())
        entry["facts"]["memory"]["mem_total_kb"] += 1 << 20
        entry_path.write_text(json.dumps(entry))

    def playbook(
        self, name: str, inventory: Path, strategy: str, forks: int, extra: tuple[str, ...] = ()
    ) -> tuple[Run, str]:
        env = dict(self.env)
        if strategy == "mitogen":
            env.update(ANSIBLE_STRATEGY_PLUGINS=str(mitogen_strategy()), ANSIBLE_STRATEGY="mitogen_linear")
        command = [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "-f",
            str(forks),
            *extra,
            str(BENCH / "playbooks" / name),
        ]
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=BENCH, capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        recap = RECAP.findall(done.stdout)
        ok = sum(1 for _, _, _, unreachable, failed in recap if unreachable == "0" and failed == "0")
        changed = sum(1 for _, _, c, _, _ in recap if c != "0")
        if done.returncode != 0 or ok != len(self.hosts):
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
            )
        return Run(wall, cpu, load, changed, ok), done.stdout

    def reset(self) -> None:
        if self.kind == "local":
            reset_local(self.env)
        else:
            self.playbook("reset.yml", self.common, "linear", 10)


def reset_local(env: dict[str, str], original: dict[str, str] | None = None) -> None:
    """This machine: memtune rolled back, the role's file removed, the six knobs at their original values."""
    subprocess.run(
        [
            str(BIN / "ansible"),
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "memtune.fleet.memory_apply",
            "-a",
            "state=absent",
            "-e",
            "ansible_python_interpreter=/usr/bin/python3",
        ],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    PERKEY_FILE.unlink(missing_ok=True)
    for key, value in (original or ORIGINAL).items():
        Path("/proc/sys", key.replace(".", "/")).write_text(f"{value}\n")


ORIGINAL: dict[str, str] = {}


def read_knobs() -> dict[str, str]:
    return {key: Path("/proc/sys", key.replace(".", "/")).read_text().strip() for key in KNOBS}


@contextmanager
def local_fleet(size: int) -> Iterator[Fleet]:
    """N local aliases of this machine; this machine's knobs and files put back afterwards."""
    ORIGINAL.clear()
    ORIGINAL.update(read_knobs())
    had_state = Path("/var/lib/memtune").exists()
    if MEMTUNE_FILE.exists() or PERKEY_FILE.exists():
        sys.exit(f"{MEMTUNE_FILE} or {PERKEY_FILE} exists: this machine is tuned already; roll it back first")
    hosts = [f"bench-{index:02d}" for index in range(1, size + 1)]
    host_vars: dict[str, dict[str, object]] = {
        host: {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
        for host in hosts
    }
    with tempfile.TemporaryDirectory(prefix="memtune-fleet-bench-") as workdir:
        fleet = Fleet(Path(workdir), "local", hosts, host_vars)
        try:
            yield fleet
        finally:
            reset_local(fleet.env)
            if not had_state:
                shutil.rmtree("/var/lib/memtune", ignore_errors=True)
            changed = {
                key: (ORIGINAL[key], value) for key, value in read_knobs().items() if value != ORIGINAL[key]
            }
            if changed:
                print(f"WARNING: knobs not restored: {changed}", file=sys.stderr)


@contextmanager
def lab_fleet() -> Iterator[Fleet]:
    """The QEMU guests of inventories/lab/hosts.yml (already up); each guest's knobs put back afterwards."""
    import yaml

    inventory = yaml.safe_load((REPO / "inventories/lab/hosts.yml").read_text())
    host_vars: dict[str, dict[str, object]] = {}

    def connection(variables: object) -> dict[str, object]:
        return {k: v for k, v in (variables or {}).items() if k.startswith("ansible_")}  # type: ignore[attr-defined]

    def walk(group: dict[str, object], inherited: dict[str, object]) -> None:
        here = {**inherited, **connection(group.get("vars"))}
        for host, variables in (group.get("hosts") or {}).items():  # type: ignore[attr-defined]
            host_vars[host] = {**host_vars.get(host, {}), **here, **connection(variables)}
        for child in (group.get("children") or {}).values():  # type: ignore[attr-defined]
            walk(child or {}, here)

    walk(inventory["all"], {})
    with tempfile.TemporaryDirectory(prefix="memtune-fleet-bench-") as workdir:
        fleet = Fleet(Path(workdir), "lab", sorted(host_vars), host_vars)
        fleet.playbook("capture.yml", fleet.common, "linear", 10)
        try:
            yield fleet
        finally:
            fleet.reset()


def one_round(fleet: Fleet, strategies: list[str], results: Results, forks: int, quick_check: bool) -> None:
    """One run of each variant, in the same order every round; resets untimed."""
    size = len(fleet.hosts)
    for strategy in strategies:
        plan = [
            ("ping", fleet.common),
            ("reset", None),
            ("perkey", fleet.distinct),
            ("perkey-conv", fleet.common),  # the first alias changes its max_map_count, no other has work
            ("reset", None),
            ("tune-probe", fleet.distinct),
            ("reset", None),
            ("tune", fleet.distinct),
            ("tune-conv", fleet.common),
            ("audit", fleet.common),
            ("reset", None),
            ("tune-stale", fleet.distinct),
        ]
        for variant, inventory in plan:
            if variant == "reset":
                fleet.reset()
                continue
            assert inventory is not None
            if variant == "tune-conv" and fleet.kind == "local":  # converge on the common values, untimed
                fleet.playbook(PLAYBOOK[variant], fleet.common, strategy, forks)
            if variant == "tune-stale":
                fleet.make_stale()
            extra = tuple(EXTRA_ARGS.get(variant, ()))
            run, output = fleet.playbook(PLAYBOOK[variant], inventory, strategy, forks, extra)
            results.add((fleet.kind, strategy, size, variant), run)
            if quick_check and variant in ("tune", "tune-conv", "audit"):
                calls = re.findall(r"remote_calls", output)
                print(f"  {variant}: changed hosts {run.changed}/{size}, {len(calls)} remote_calls lines")
            print(
                f"  {fleet.kind} {strategy:7} N={size:<3} {variant:12} wall {run.wall:6.2f} s  "
                f"cpu {run.cpu:6.2f} s  load {run.load:4.2f}  changed {run.changed}/{size}",
                flush=True,
            )


def report(results: Results, commands: str) -> str:
    lines = [
        f"# memtune fleet benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}",
        machine(),
        f"command: {commands}",
        "medians over rounds; ratios of median wall times; CPU: ansible-playbook and every process under it",
        "",
        f"{'fleet':6} {'strategy':8} {'N':>3} {'variant':12} {'runs':>4} {'wall s':>7} {'cpu s':>7} "
        f"{'load':>5} {'x ping':>7} {'cpu x':>6} {'target':>14}",
    ]
    targets = {
        "tune-conv": ("<= 1.15x ping", 1.15),
        "audit": ("<= 1.3x ping", 1.3),
        "tune": ("<= 1.3x ping", 1.3),
    }
    for (kind, strategy, size, variant), runs in sorted(results.runs.items(), key=sort_key):
        floor = results.runs.get((kind, strategy, size, "ping"))
        wall = statistics.median(r.wall for r in runs)
        ratio = wall / statistics.median(r.wall for r in floor) if floor else float("nan")
        cpu = statistics.median(r.cpu for r in runs)
        cpu_ratio = cpu / statistics.median(r.cpu for r in floor) if floor else float("nan")
        target = ""
        if variant in targets:
            text, limit = targets[variant]
            target = f"{text} {'met' if ratio <= limit else 'MISSED'}"
        lines.append(
            f"{kind:6} {strategy:8} {size:>3} {variant:12} {len(runs):>4} {wall:7.2f} "
            f"{cpu:7.2f} {statistics.median(r.load for r in runs):5.2f} "
            f"{ratio:6.2f}x {cpu_ratio:5.2f}x {target:>14}"
        )
    lines.append("")
    for (kind, strategy, size, variant), runs in sorted(results.runs.items(), key=sort_key):
        if variant not in ("perkey", "perkey-conv"):
            continue
        mine = results.runs.get((kind, strategy, size, "tune" if variant == "perkey" else "tune-conv"))
        if mine:
            ratio = statistics.median(r.wall for r in runs) / statistics.median(r.wall for r in mine)
            which = "changing" if variant == "perkey" else "converged"
            verdict = "met" if ratio >= 5 else "MISSED"
            lines.append(
                f"{kind} {strategy} N={size}: per-key role / memtune tune, {which}: {ratio:.2f}x "
                f"(target >= 5x {verdict})"
            )
    lines += marginal(results)
    return "\n".join(lines)


def marginal(results: Results) -> list[str]:
    """Per-host cost: the slope of median wall time between the smallest and largest N (what is left
    once ansible-playbook's start-up, the same for every variant, is taken out)."""
    lines = []
    for kind, strategy in sorted({(key[0], key[1]) for key in results.runs}):
        sizes = sorted({key[2] for key in results.runs if key[:2] == (kind, strategy)})
        if len(sizes) < 2:
            continue
        small, large = sizes[0], sizes[-1]
        slope = {}
        for variant in VARIANTS:
            low, high = (results.runs.get((kind, strategy, size, variant)) for size in (small, large))
            if low and high:
                walls = [statistics.median(r.wall for r in runs) for runs in (low, high)]
                slope[variant] = (walls[1] - walls[0]) / (large - small)
        if "ping" not in slope:
            continue
        lines.append(f"\n{kind} {strategy}: per-host cost, slope of median wall time N={small}->{large}")
        for variant, seconds in slope.items():
            ratio = seconds / slope["ping"]
            lines.append(f"  {variant:12} {seconds * 1000:6.0f} ms/host  {ratio:5.2f}x ping")
        for role, mine in (("perkey", "tune"), ("perkey-conv", "tune-conv")):
            if role in slope and mine in slope:
                lines.append(f"  {role} / {mine}: {slope[role] / slope[mine]:.2f}x per host")
    return lines


def sort_key(item: tuple[tuple[str, str, int, str], list[Run]]) -> tuple[str, str, int, int]:
    (kind, strategy, size, variant), _ = item
    return (kind, strategy, size, VARIANTS.index(variant))


def machine() -> str:
    core = subprocess.run([str(BIN / "ansible"), "--version"], capture_output=True, text=True).stdout.split(
        "\n"
    )[0]
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"machine: {os.cpu_count()} cores, {mem_gib:.0f} GiB, kernel {platform.release()}, controller Python "
        f"{platform.python_version()}, {core.strip()}, target python /usr/bin/python3"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", default="10,50", help="local alias fleet sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--forks", type=int, default=5, help="ansible forks (Ansible's default: 5)")
    parser.add_argument("--lab", action="store_true", help="the QEMU fleet instead of local aliases")
    parser.add_argument("--mitogen", action="store_true", help="also under the mitogen_linear strategy")
    parser.add_argument("--quick", action="store_true", help="N=10, 1 round (development)")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    if args.quick:
        args.hosts, args.rounds = "10", 1
    strategies = ["linear"]
    if args.mitogen:
        if mitogen_strategy() is None:
            sys.exit("--mitogen: the mitogen package is not installed (pip install -e '.[bench]')")
        strategies.append("mitogen")
    link = REPO / "ansible_collections/memtune/fleet"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("..") / "..")
    results = Results()
    sizes = [int(size) for size in args.hosts.split(",")] if not args.lab else [0]
    for size in sizes:
        with lab_fleet() if args.lab else local_fleet(size) as fleet:
            fleet.reset()
            fleet.playbook(PLAYBOOK["tune"], fleet.distinct, "linear", args.forks)  # fill the facts cache
            fleet.reset()
            for number in range(args.rounds):
                print(f"round {number + 1}/{args.rounds}, {fleet.kind}, N={len(fleet.hosts)}", flush=True)
                one_round(fleet, strategies, results, args.forks, quick_check=False)
    text = report(results, " ".join(["bench/fleet_bench.py", *sys.argv[1:]]))
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
