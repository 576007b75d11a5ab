"""Headless Chromium from Debian's package (``make chromium``), driven by Playwright, for the HTML pages'
tests and benchmark: one browser per test module, every request recorded, anything but the page's own
file refused."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The heat map's order of severity: a cell shows the first of these among its checks' findings.
RANK = ["runtime_drift", "shortfall", "boot_drift", "leftover", "unmanaged", "unsupported"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "html-report"


@dataclass
class Opened:
    page: Page
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def network(self, *own: str) -> list[str]:
        """Every request the page made but the loads of its own files."""
        return [url for url in self.requests if url.split("#")[0] not in own]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(
    browser: Browser, path: Path, fragment: str = "", width: int = 1400, links: tuple[Path, ...] = ()
) -> Opened:
    """``path`` loaded from file:// until its script marked the body ready, empty or failed; ``links``:
    other pages it may navigate to (every other request is refused, and recorded)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    opened = Opened(page)
    page.on("request", lambda request: opened.requests.append(request.url))
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    own = path.resolve().as_uri()
    allowed = {own, *(link.resolve().as_uri() for link in links)}

    def only_the_page(route: Route, request: Request) -> None:
        if request.url.split("#")[0] in allowed:
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_the_page)
    page.goto(own + fragment)
    page.wait_for_selector("body[data-state]")
    return opened


def screenshot(opened: Opened, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    opened.page.screenshot(path=str(target), full_page=True)
    return target


def expected_cells(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(host, knob) -> the kind its cell shows: the most severe finding over the knob's checks (its NUMA
    nodes), ``ok`` without one."""
    cells: dict[tuple[str, str], list[str]] = {}
    for host in report["hosts"]:
        for check in host["checks"]:
            kinds = cells.setdefault((host["host"], check["knob"]), [])
            kinds += [finding["kind"] for finding in check["findings"]]
    return {key: min(kinds, key=RANK.index) if kinds else "ok" for key, kinds in cells.items()}


def shown_cells(opened: Opened) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = opened.page.eval_on_selector_all(
        "#heatmap tr[data-host] td.cell",
        "cells => cells.map(c => [c.closest('tr').dataset.host, c.dataset.knob, c.dataset.kind])",
    )
    return {(host, knob): kind for host, knob, kind in found}
