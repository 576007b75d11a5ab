"""The HTML fleet report in a real browser (Debian's headless Chromium through Playwright) on the audit of
the captured fleet: one heat map cell per host and knob with the right kind, filters, sorting, a host's
detail with provenance and memory picture, no network request; ``memtune report render`` on saved JSON
reports, good and bad. Screenshots: build/html-report/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from memtune.report.html import page
from tests.support.browser import Opened, browser, expected_cells, open_page, screenshot, shown_cells
from tests.support.cli import CAPTURED, POLICIES, REPORT_SCHEMA, facts_dir, run

__all__ = ["browser", "facts_dir"]
GROUPS = {"small": ["web"], "numa2": ["db", "numa"], "numa3": ["db", "numa"]}


@pytest.fixture(scope="module")
def audited(facts_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The captured fleet's audit as HTML (standard output) and JSON (--save), with inventory groups."""
    directory = tmp_path_factory.mktemp("html")
    variables = directory / "vars.yml"
    variables.write_text("".join(f"{host}: {{group_names: {groups}}}\n" for host, groups in GROUPS.items()))
    saved = directory / "report.json"
    result = run(
        "audit", "--facts", facts_dir, "--policy", POLICIES, "--vars", variables,
        "--format", "html", "--save", f"json={saved}",
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    html_file = directory / "report.html"
    html_file.write_text(result.stdout)
    report = json.loads(saved.read_text())
    REPORT_SCHEMA.validate(report)
    return html_file, report


@pytest.fixture
def fleet_page(browser: Browser, audited: tuple[Path, dict[str, Any]]) -> tuple[Opened, Path, dict[str, Any]]:
    """The audit's page opened in the browser, its file and its JSON report."""
    html_file, report = audited
    return open_page(browser, html_file), html_file, report


def test_the_heat_map_has_one_cell_per_host_and_knob_with_its_kind(
    fleet_page: tuple[Opened, Path, dict[str, Any]],
) -> None:
    opened, html_file, report = fleet_page
    expected = expected_cells(report)
    knobs = {knob for _, knob in expected}
    shown = shown_cells(opened)
    assert len(shown) == len(CAPTURED) * len(knobs)
    planned = {key: kind for key, kind in shown.items() if kind != "none"}
    assert planned == expected
    assert {"runtime_drift", "boot_drift"} <= set(planned.values())
    labels = opened.page.inner_text("#heatmap tbody")
    assert "runtime drift" in opened.page.text_content("#heatmap tbody") and "RT" in labels
    summary = opened.page.inner_text("#summary")
    assert f"{len(CAPTURED)} hosts" in summary and "Top drifting knobs: vm.swappiness" in summary
    groups = opened.page.eval_on_selector_all("#heatmap tr.grouprow th", "rs => rs.map(r => r.textContent)")
    assert groups == ["group (no group) (1 host)", "group db (2 hosts)", "group web (1 host)"]
    screenshot(opened, "fleet")
    assert opened.errors == [] and opened.network(html_file.resolve().as_uri()) == []


def test_filtering_by_kind_hides_the_hosts_without_it(
    fleet_page: tuple[Opened, Path, dict[str, Any]],
) -> None:
    opened, _, report = fleet_page
    with_boot_drift = {host for (host, _), kind in expected_cells(report).items() if kind == "boot_drift"}
    assert 0 < len(with_boot_drift) < len(CAPTURED)
    opened.page.select_option("#kind-filter", "boot_drift")
    rows = opened.page.eval_on_selector_all("#heatmap tr[data-host]", "rows => rows.map(r => r.dataset.host)")
    assert set(rows) == with_boot_drift
    dimmed = opened.page.eval_on_selector_all("#heatmap td.cell.other", "cs => cs.map(c => c.dataset.kind)")
    assert dimmed and "boot_drift" not in dimmed
    shown = opened.page.inner_text("#shown")
    assert shown == f"hosts 1\N{EN DASH}{len(rows)} of {len(rows)} (filtered from {len(CAPTURED)})"
    opened.page.fill("#host-filter", "numa3")
    rows = opened.page.eval_on_selector_all("#heatmap tr[data-host]", "rows => rows.map(r => r.dataset.host)")
    assert rows == (["numa3"] if "numa3" in with_boot_drift else [])


def test_sorting_by_failing_knobs_puts_the_most_drifted_host_first(
    fleet_page: tuple[Opened, Path, dict[str, Any]],
) -> None:
    opened, _, _ = fleet_page
    opened.page.click("button[data-sort=failing]")
    counts = opened.page.eval_on_selector_all("#heatmap td.count", "cells => cells.map(c => +c.textContent)")
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert opened.page.get_attribute("th:has(button[data-sort=failing])", "aria-sort") == "descending"


def test_a_hosts_detail_shows_its_provenance_and_memory(
    browser: Browser, fleet_page: tuple[Opened, Path, dict[str, Any]]
) -> None:
    opened, html_file, report = fleet_page
    opened.page.click("#heatmap tr[data-host=numa2] button.host")
    assert opened.page.url.endswith("#host=numa2")
    detail = opened.page.inner_text("#detail")
    numa2 = next(host for host in report["hosts"] if host["host"] == "numa2")
    for check in numa2["checks"]:
        origin = check["provenance"]
        assert f"{origin['file']}:{origin['line']} rule {origin['rule']} ({origin['layer']})" in detail
    memory = numa2["memory"]
    assert len(memory["nodes"]) == 2 and "node 1" in detail
    assert "Memory pressure (PSI)" in detail and "Transparent huge pages" in detail
    screenshot(opened, "fleet-host")
    linked = open_page(browser, html_file, "#host=small")
    assert linked.page.inner_text("#detail-title") == "Host small"
    assert linked.network(html_file.resolve().as_uri()) == []


def test_render_turns_a_saved_json_report_into_the_same_page(
    audited: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    html_file, report = audited
    saved, out = tmp_path / "report.json", tmp_path / "page.html"
    saved.write_text(json.dumps(report))
    result = run("report", "render", saved, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_text() == html_file.read_text()


def test_save_html_writes_the_same_page(
    audited: tuple[Path, dict[str, Any]], facts_dir: Path, tmp_path: Path
) -> None:
    html_file, _ = audited
    saved = tmp_path / "saved.html"
    variables = html_file.parent / "vars.yml"
    args = ["audit", "--facts", facts_dir, "--policy", POLICIES, "--vars", variables]
    result = run(*args, "--format", "json", "--save", f"html={saved}")
    assert result.exit_code == 1 and json.loads(result.stdout)["summary"]["hosts"] == len(CAPTURED)
    assert saved.read_text() == html_file.read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"schema_version": 2, "summary": {}, "hosts": []}',
            "a report of schema version 2; this memtune reads version 1",
        ),
        (
            '{"schema_version": 1, "summary": {"hosts": 1',
            ":1:45: not JSON: Expecting ',' delimiter (the file ends early: truncated?)",
        ),
        ("[1, 2]", "not a memtune report: expected a JSON object, got list"),
        ('{"schema_version": 1, "hosts": []}', "not a memtune report at summary: Field required"),
    ],
)
def test_render_refuses_a_report_it_cannot_read_with_exit_2(text: str, message: str, tmp_path: Path) -> None:
    saved, out = tmp_path / "report.json", tmp_path / "page.html"
    saved.write_text(text)
    result = run("report", "render", saved, "-o", out)
    assert result.exit_code == 2, result.stdout
    assert f"{saved}{message}" in result.stderr or f"{saved}: {message}" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


@pytest.mark.parametrize("cut", ["inside a string", "between values"])
def test_render_names_a_truncated_report(
    audited: tuple[Path, dict[str, Any]], tmp_path: Path, cut: str
) -> None:
    """A report cut short (a CI job killed while saving it) is an error, never half a page, wherever the
    cut falls (the clean-clone CI run cut one inside a string, where the decoder names the string's start)."""
    _, report = audited
    text = json.dumps(report, indent=1)
    middle = (
        text.index(': "', len(text) // 2) + 4 if cut == "inside a string" else text.index(",", len(text) // 2)
    )
    saved, out = tmp_path / "report.json", tmp_path / "page.html"
    saved.write_text(text[:middle])
    result = run("report", "render", saved, "-o", out)
    assert result.exit_code == 2 and "(the file ends early: truncated?)" in result.stderr, result.stderr
    assert not out.exists()


def test_a_report_without_hosts_renders_an_empty_state(browser: Browser, tmp_path: Path) -> None:
    counts = dict.fromkeys(("hosts", "drifted_hosts", "errors", "checks", "failed_checks", "moved"), 0)
    empty = {"schema_version": 1, "hosts": [], "summary": {**counts, "findings": {}}}
    saved, out = tmp_path / "empty.json", tmp_path / "empty.html"
    saved.write_text(json.dumps(empty))
    assert run("report", "render", saved, "-o", out).exit_code == 0
    opened = open_page(browser, out)
    assert opened.page.get_attribute("body", "data-state") == "empty"
    assert "no hosts" in opened.page.inner_text("#empty")
    assert opened.errors == []
    screenshot(opened, "fleet-empty")


def test_a_kind_the_page_does_not_know_is_shown_by_its_name(browser: Browser, tmp_path: Path) -> None:
    """Reports from a newer memtune (another finding kind) still render: the kind's own name, a neutral
    colour."""
    check = [0, None, 10, 60, None, None, None, [[1, 2, True]]]
    data = {
        **{"page_version": 1, "title": "t", "summary": {}, "summary_line": "1 hosts", "baseline": None},
        **{"provenances": [], "errors": [], "moved": []},
        "strings": ["vm.swappiness", "stale_rule", "left behind"],
        "hosts": [["h1", [], [check], None]],
    }
    out = tmp_path / "future.html"
    out.write_text(page("fleet", "future", data))
    opened = open_page(browser, out)
    cell = opened.page.locator("#heatmap td.cell")
    assert cell.get_attribute("data-kind") == "stale_rule"
    assert "k-other" in (cell.get_attribute("class") or "")
    assert cell.inner_text().startswith("STA") and "stale rule" in (cell.text_content() or "")
    assert opened.errors == []


def test_a_page_whose_data_is_broken_says_so(browser: Browser, tmp_path: Path) -> None:
    out = tmp_path / "broken.html"
    out.write_text(page("fleet", "broken", {"page_version": 1}).replace('{"page_version":1}', '{"page_vers'))
    opened = open_page(browser, out)
    assert opened.page.get_attribute("body", "data-state") == "error"
    assert "The report data cannot be read" in opened.page.inner_text("[role=alert]")
    assert opened.errors == []


def test_a_host_not_audited_and_an_odd_host_name_show_as_they_are(
    browser: Browser, facts_dir: Path, tmp_path: Path
) -> None:
    """A host whose facts are corrupt is a row of ``error`` cells with its message; a host name with HTML
    in it is text."""
    fleet = Path(shutil.copytree(facts_dir, tmp_path / "fleet"))
    (fleet / "gone.json").write_text('{"ansible_facts": ')
    odd = "<img src=x onerror=alert(1)>&host"
    shutil.copy(fleet / "small.json", fleet / f"{odd}.json")
    result = run("audit", "--facts", fleet, "--policy", POLICIES, "--format", "html")
    assert result.exit_code == 2, result.stderr
    out = tmp_path / "report.html"
    out.write_text(result.stdout)
    opened = open_page(browser, out)
    gone = opened.page.eval_on_selector_all(
        "#heatmap tr[data-host=gone] td.cell", "cells => cells.map(c => c.dataset.kind)"
    )
    assert gone and set(gone) == {"error"}
    opened.page.click("#heatmap tr[data-host=gone] button.host")
    assert "Not audited: " in opened.page.inner_text("#detail") and "not JSON" in opened.page.inner_text(
        "#detail"
    )
    assert opened.page.locator("img").count() == 0
    assert opened.page.locator(f'#heatmap tr[data-host="{odd}"] button.host').inner_text() == odd
    assert opened.errors == []
    screenshot(opened, "fleet-errors")
