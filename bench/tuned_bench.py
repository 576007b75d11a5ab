"""TuneD against memtune on this machine: the same six sysctls, applied and verified.

Not a test: nothing is asserted. Installs TuneD and D-Bus (Debian packages, scripts/apt-ensure); this
machine has no systemd, so it starts a system bus (`dbus-daemon --system`) and `tuned --daemon` with no
profile, by hand, and stops both by their pids at the end. Per round, interleaved and each timed as a
whole command (wall and CPU, load average beside):
  tuned-adm profile memtune-bench   a custom profile (/etc/tuned/memtune-bench/tuned.conf, [sysctl] with the
                                    six knobs of bench/policy/six-knobs.yml), from `tuned-adm off`
  tuned-adm profile (again)         the same profile when it is already active
  tuned-adm verify                  TuneD's own check of the active profile
  memtune tune / tune-conv / audit  bench/playbooks/{tune,audit}.yml on one local host (ansible-playbook)
Then what each one verifies: the runtime value changed behind its back, and a sysctl.d file that will undo
a knob at the next boot. Everything is put back at the end, on failure too: TuneD off and stopped, the
bus stopped, the profile removed, /etc/tuned/active_profile and profile_mode as they were, the knobs.

Usage: .venv/bin/python bench/tuned_bench.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_bench import KNOBS, REPO, Fleet, local_fleet, machine, read_knobs

PROFILE = "memtune-bench"
PROFILE_DIR = Path("/etc/tuned") / PROFILE
STATE_FILES = [
    Path("/etc/tuned") / name for name in ("active_profile", "profile_mode", "post_loaded_profile")
]
SHADOW = Path("/etc/sysctl.d/99-zz-memtune-bench-shadow.conf")
TUNED_PID = Path("/run/tuned/tuned.pid")
BUS_SOCKET = Path("/run/dbus/system_bus_socket")


DAEMON: list[int] = []  # the tuned daemon's pid, once it runs: its CPU counts with tuned-adm's


def daemon_cpu() -> float:
    if not DAEMON:
        return 0.0
    fields = Path(f"/proc/{DAEMON[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(
    command: list[str], check: bool = True
) -> tuple[float, float, float, subprocess.CompletedProcess[str]]:
    """(wall, CPU of the command and of the tuned daemon meanwhile, load average before, the result)."""
    load = os.getloadavg()[0]
    before, daemon_before = resource.getrusage(resource.RUSAGE_CHILDREN), daemon_cpu()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after, daemon_after = resource.getrusage(resource.RUSAGE_CHILDREN), daemon_cpu()
    if check and done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)}: exit {done.returncode}\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime + daemon_after - daemon_before
    return wall, cpu, load, done


def talks_to_daemon() -> bool:
    """`tuned-adm active` got its answer from the daemon (without one it reads the files and says so)."""
    done = subprocess.run(["tuned-adm", "active"], capture_output=True, text=True)
    return "profile" in done.stdout and "Cannot talk" not in done.stdout + done.stderr


def bus_answers() -> bool:
    with socket.socket(socket.AF_UNIX) as bus:
        try:
            bus.connect(str(BUS_SOCKET))
        except OSError:
            return False
    return True


def stop_pid(pid: int, what: str) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    print(f"WARNING: {what} (pid {pid}) did not stop on SIGTERM", file=sys.stderr)


@contextmanager
def tuned_daemon() -> Iterator[None]:
    """A system bus and TuneD with no profile; both stopped and TuneD's state files restored afterwards."""
    subprocess.run([str(REPO / "scripts/apt-ensure"), "tuned", "dbus"], check=True)
    saved = {path: path.read_bytes() if path.exists() else None for path in STATE_FILES}
    vm_before = {p: p.read_text() for p in Path("/proc/sys/vm").iterdir() if os.access(p, os.R_OK | os.W_OK)}
    bus_pid = tuned_pid = None
    try:
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
        sysctls = "\n".join(f"{key}={value}" for key, value in KNOBS.items())
        (PROFILE_DIR / "tuned.conf").write_text(
            f"[main]\nsummary=memtune benchmark: six vm sysctls\n\n[sysctl]\n{sysctls}\n"
        )
        if not bus_answers():
            Path("/run/dbus").mkdir(parents=True, exist_ok=True)
            started = subprocess.run(
                ["dbus-daemon", "--system", "--fork", "--print-pid"],
                capture_output=True,
                text=True,
                check=True,
            )
            bus_pid = int(started.stdout.split()[0])
        subprocess.run(["tuned", "--daemon", "--pid", str(TUNED_PID), "--profile", ""], check=True)
        for _ in range(300):
            if TUNED_PID.exists() and talks_to_daemon():
                tuned_pid = int(TUNED_PID.read_text().split()[0])
                DAEMON[:] = [tuned_pid]
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(
                "tuned did not answer `tuned-adm active` within 30 s (see /var/log/tuned/tuned.log)"
            )
        yield
    finally:
        DAEMON.clear()
        subprocess.run(["tuned-adm", "off"], capture_output=True)
        if tuned_pid is None and TUNED_PID.exists():
            tuned_pid = int(TUNED_PID.read_text().split()[0])
        if tuned_pid is not None:
            stop_pid(tuned_pid, "tuned")
        if bus_pid is not None:
            stop_pid(bus_pid, "dbus-daemon")
            BUS_SOCKET.unlink(missing_ok=True)
            Path("/run/dbus/pid").unlink(missing_ok=True)
        (PROFILE_DIR / "tuned.conf").unlink(missing_ok=True)
        if PROFILE_DIR.exists():
            PROFILE_DIR.rmdir()
        SHADOW.unlink(missing_ok=True)
        for path, content in saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
        for path, value in vm_before.items():
            if path.read_text() != value:
                try:
                    path.write_text(value)
                except OSError as exc:
                    print(f"WARNING: could not restore {path}: {exc}", file=sys.stderr)


def median_line(name: str, runs: list[tuple[float, float, float]]) -> str:
    wall, cpu, load = (statistics.median(run[i] for run in runs) for i in range(3))
    return f"{name:34} {len(runs):>4} {wall:7.2f} {cpu:7.2f} {load:5.2f}"


def what_is_verified(fleet: Fleet) -> list[str]:
    """Each tool against two kinds of drift, from the tuned state: a runtime write, a shadowing file."""
    lines = ["", "what each verifies (profile / plan applied first, then one kind of drift):"]
    for drift in (
        "runtime vm.swappiness=60 written behind its back",
        f"{SHADOW} sets vm.swappiness=60 for the next boot",
    ):
        for tool in ("tuned", "memtune"):
            fleet.reset()
            subprocess.run(["tuned-adm", "off"], check=True, capture_output=True)
            if tool == "tuned":
                subprocess.run(["tuned-adm", "profile", PROFILE], check=True, capture_output=True)
            else:
                fleet.playbook("tune.yml", fleet.common, "linear", 5)
            if drift.startswith("runtime"):
                Path("/proc/sys/vm/swappiness").write_text("60\n")
            else:
                SHADOW.write_text("vm.swappiness = 60\n")
            if tool == "tuned":
                done = timed(["tuned-adm", "verify"], check=False)[3]
                verdict = "reports drift" if done.returncode else "passes (sees nothing)"
            else:
                done = subprocess.run(
                    [
                        str(REPO / ".venv/bin/ansible-playbook"),
                        "-i",
                        str(fleet.common),
                        "-e",
                        "bench_fail_on_drift=true",
                        str(REPO / "bench/playbooks/audit.yml"),
                    ],
                    env=fleet.env,
                    cwd=REPO / "bench",
                    capture_output=True,
                    text=True,
                )
                verdict = "reports drift" if done.returncode else "passes (sees nothing)"
            SHADOW.unlink(missing_ok=True)
            lines.append(
                f"  {drift:62} {'tuned-adm verify' if tool == 'tuned' else 'memtune audit':17} {verdict}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("tuned_bench.py needs root (it starts TuneD and writes /proc/sys)")
    runs: dict[str, list[tuple[float, float, float]]] = {}
    verify_output = ""
    with local_fleet(1) as fleet, tuned_daemon():
        for number in range(args.rounds):
            fleet.reset()
            subprocess.run(["tuned-adm", "off"], check=True, capture_output=True)
            for name, command in (
                ("tuned-adm profile (changing)", ["tuned-adm", "profile", PROFILE]),
                ("tuned-adm profile (already active)", ["tuned-adm", "profile", PROFILE]),
                ("tuned-adm verify", ["tuned-adm", "verify"]),
            ):
                wall, cpu, load, done = timed(command)
                runs.setdefault(name, []).append((wall, cpu, load))
                verify_output = done.stdout if name == "tuned-adm verify" else verify_output
            if read_knobs() != {key: str(value) for key, value in KNOBS.items()}:
                raise RuntimeError(f"TuneD's profile left other values: {read_knobs()}")
            subprocess.run(["tuned-adm", "off"], check=True, capture_output=True)
            fleet.reset()
            for name, variant in (
                ("memtune tune (changing)", "tune.yml"),
                ("memtune tune (converged)", "tune.yml"),
                ("memtune audit", "audit.yml"),
            ):
                run, _ = fleet.playbook(variant, fleet.common, "linear", 5)
                runs.setdefault(name, []).append((run.wall, run.cpu, run.load))
            print(f"round {number + 1}/{args.rounds} done", flush=True)
        verified = what_is_verified(fleet)
    tuned_version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "tuned"], capture_output=True, text=True
    )
    print(f"# TuneD against memtune, one host (this machine), {time.strftime('%Y-%m-%d %H:%M %Z')}, medians")
    print(machine() + f", TuneD {tuned_version.stdout}")
    print(f"command: bench/tuned_bench.py {' '.join(sys.argv[1:])}")
    print(f"{'command':34} {'runs':>4} {'wall s':>7} {'cpu s':>7} {'load':>5}")
    for name, values in runs.items():
        print(median_line(name, values))
    print("\n`tuned-adm verify` said: " + " ".join(verify_output.split("\n")[:1]))
    print("\n".join(verified))


if __name__ == "__main__":
    main()
