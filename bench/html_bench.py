"""Benchmark: the HTML fleet report of 10,000 hosts (not a test; nothing is asserted).

The fleet is plan_bench.py's (10,000 synthetic hosts from the captured trees, in 40 inventory groups; every
10th host with vm.swappiness changed so the page has drift to show). Writes the report with `memtune audit
--format html --save json=...`, then opens the page from file:// in Debian's headless Chromium (Playwright,
the tests' launch arguments) RUNS times and records the file sizes, the audit's time, and the browser's
first contentful paint and the time until the heat map's first page of rows is drawn (from navigation
start, the page's own performance clock), medians; a screenshot in build/html-report/fleet-bench.png.

Usage: .venv/bin/python bench/html_bench.py [HOSTS] [RUNS]
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from audit_bench import write_fleet
from plan_bench import REPO, medians

sys.path.insert(0, str(REPO / "tests" / "support"))
from browser import CHROMIUM, CHROMIUM_ARGS
from playwright.sync_api import sync_playwright

SHOT = REPO / "build" / "html-report" / "fleet-bench.png"
PAINT = """() => {
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const drawn = performance.getEntriesByName("memtune-drawn")[0];
  return [paint ? paint.startTime : null, drawn ? drawn.startTime : null,
          document.querySelectorAll("#heatmap td.cell").length];
}"""


def browse(page_file: Path, runs: int) -> tuple[float, float, int, str]:
    """Medians of (first contentful paint ms, heat map drawn ms), the cells drawn, Chromium's version."""
    paints, drawn, cells = [], [], 0
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        version = browser.version
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(page_file.as_uri())
            page.wait_for_selector("body[data-state=ready]")
            page.wait_for_function("performance.getEntriesByName('first-contentful-paint').length > 0")
            paint, done, cells = page.evaluate(PAINT)
            page.screenshot(path=str(SHOT))
            paints.append(paint)
            drawn.append(done)
            page.close()
        browser.close()
    return statistics.median(paints), statistics.median(drawn), cells, version


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    load_before = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory() as directory:
        facts_dir, variables = write_fleet(Path(directory), size, groups=40)
        page_file, json_file = Path(directory) / "report.html", Path(directory) / "report.json"
        command = [str(REPO / ".venv/bin/memtune"), "audit", "--facts", str(facts_dir), "--policy"]
        command += [str(REPO / "policies"), "--vars", str(variables), "--format", "html"]
        command += ["--save", f"json={json_file}"]

        def audit() -> None:
            with page_file.open("w") as out:
                done = subprocess.run(command, stdout=out, cwd=REPO)
            assert done.returncode in (0, 1), f"{command}: exit {done.returncode}"

        wall, cpu = medians(audit, max(1, runs // 2), children=True)
        paint, drawn, cells, version = browse(page_file, runs)
        html_mb, json_mb = page_file.stat().st_size / 1e6, json_file.stat().st_size / 1e6
    print(f"# memtune HTML report benchmark, {time.strftime('%Y-%m-%d %H:%M')}, medians")
    print(
        f"machine: {os.cpu_count()} cores, {platform.release()}, Python {platform.python_version()}, "
        f"Chromium {version} headless, load average before {load_before}, after {os.getloadavg()[0]:.2f}"
    )
    print(f"hosts: {size} synthetic in 40 groups (every 10th host with vm.swappiness changed)")
    print(f"audit --format html --save json  wall {wall:5.2f} s  CPU {cpu:5.2f} s")
    print(f"report.html {html_mb:6.2f} MB   (report.json {json_mb:6.2f} MB)")
    print(f"first contentful paint {paint:7.0f} ms   heat map drawn {drawn:7.0f} ms", end="")
    print(f"   ({cells} cells on page 1)")


if __name__ == "__main__":
    main()
