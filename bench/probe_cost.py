"""CPU time and peak RSS of one memory_facts probe on this machine (target: < 50 ms of CPU).

Two figures, each the median of RUNS fresh processes of the target's python3:
  collect   the probe's work alone: `collect(Tree("/"))`, timed inside the process after imports;
  module    the whole module as Ansible runs it on a target: the AnsiballZ wrapper Ansible built for
            this host (kept with ANSIBLE_KEEP_REMOTE_FILES), interpreter start-up and payload
            unpacking included, Ansible's connection and file transfer not.
Usage: .venv/bin/python bench/probe_cost.py [RUNS]
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 30

COLLECT_ONCE = """
import resource, sys, time
sys.path.insert(0, {repo!r})
from ansible_collections.memtune.fleet.plugins.module_utils._probe.collect import collect
from ansible_collections.memtune.fleet.plugins.module_utils._host.tree import Tree
start = time.process_time()
facts = collect(Tree("/"))
cpu = time.process_time() - start
print(cpu, len(facts["workloads"]))
"""


def child_cpu(command: list[str], stdin: str = "") -> tuple[float, float, str]:
    """(CPU seconds, peak RSS in MiB, stdout) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, after.ru_maxrss / 1024, done.stdout


def ansiballz_wrapper(python: str, module: str = "memtune.fleet.memory_facts") -> Path:
    """Run ``module`` once through Ansible, keeping the AnsiballZ file it sent; return its path."""
    keep = Path(tempfile.mkdtemp(prefix="memtune-bench-"))
    env = dict(
        os.environ,
        ANSIBLE_KEEP_REMOTE_FILES="1",
        ANSIBLE_REMOTE_TMP=str(keep),
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(REPO),
        ANSIBLE_PIPELINING="0",
    )
    subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            "-m",
            module,
            "-e",
            f"ansible_python_interpreter={python}",
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    [wrapper] = keep.glob(f"ansible-tmp-*/AnsiballZ_{module.rsplit('.', 1)[1]}.py")
    return wrapper


def main() -> None:
    (REPO / "ansible_collections" / "memtune").mkdir(parents=True, exist_ok=True)
    link = REPO / "ansible_collections" / "memtune" / "fleet"
    if not link.exists():
        link.symlink_to(Path("..") / "..")
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    try:
        measure(python, RUNS)
    finally:
        for kept in Path(tempfile.gettempdir()).glob("memtune-bench-*"):
            shutil.rmtree(kept, ignore_errors=True)


def measure(python: str, runs: int) -> None:
    collect_cpu = []
    for _ in range(runs):
        _, _, out = child_cpu([python, "-c", COLLECT_ONCE.format(repo=str(REPO))])
        collect_cpu.append(float(out.split()[0]))
    wrapper, ping = ansiballz_wrapper(python), ansiballz_wrapper(python, "ansible.builtin.ping")
    module_cpu, rss, ping_cpu = [], [], []
    for _ in range(runs):
        cpu, peak, out = child_cpu([python, str(wrapper)])
        if '"memtune"' not in out:
            sys.exit(f"the module printed no facts: {out[:200]}")
        module_cpu.append(cpu)
        rss.append(peak)
        ping_cpu.append(child_cpu([python, str(ping)])[0])
    print(f"# memory_facts probe cost, {time.strftime('%Y-%m-%d')}, {runs} runs each, medians")
    print(
        f"machine: {os.cpu_count()} cores, {platform.release()}, target python {python} "
        f"({subprocess.run([python, '-V'], capture_output=True, text=True).stdout.strip()})"
    )
    print(f"collect() CPU (the probe):        {statistics.median(collect_cpu) * 1000:7.1f} ms")
    floor, whole = statistics.median(ping_cpu), statistics.median(module_cpu)
    print(f"ansible.builtin.ping process CPU: {floor * 1000:7.1f} ms (Ansible's own floor for any module)")
    print(
        f"memory_facts process CPU:         {whole * 1000:7.1f} ms "
        f"({(whole - floor) * 1000:+.1f} ms over ping)"
    )
    print(f"memory_facts peak RSS:            {max(rss):7.1f} MiB (largest child process of the run)")


if __name__ == "__main__":
    main()
