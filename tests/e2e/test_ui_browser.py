"""The Prefect UI shows a deployed run: its name, parameters and the evidence artifacts.

Drives Debian's chromium (headless) with Playwright for Python; `playwright install` is never
run (it downloads browsers). `scripts/install-e2e.sh` installs both when missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser_page(stack, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-e2e.sh`")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="pip install playwright (bash scripts/install-e2e.sh)")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 1000},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            context.close()


def open_tab(page, label: str) -> None:
    """The run page's tabs are items of a role=tablist list (not role=tab)."""
    page.get_by_role("tablist").get_by_text(label, exact=True).filter(visible=True).first.click()


def test_flow_run_page_shows_run_and_evidence_artifacts(stack, completed_run, browser_page):
    page = browser_page
    run_id, run_name = completed_run["id"], completed_run["name"]
    page.goto(f"{stack.url}/runs/flow-run/{run_id}", wait_until="domcontentloaded")

    name = page.get_by_text(run_name, exact=True).filter(visible=True).first
    name.wait_for(state="visible")
    assert name.is_visible()
    page.get_by_text("Completed", exact=True).filter(visible=True).first.wait_for()

    open_tab(page, "Artifacts")
    artifact = page.get_by_text("evidence-summary", exact=True).filter(visible=True).first
    artifact.wait_for(state="visible")
    assert artifact.is_visible()
    fields = page.get_by_text("evidence-fields", exact=True).filter(visible=True).first
    fields.wait_for(state="visible")

    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "ui-flow-run-artifacts.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000

    open_tab(page, "Parameters")  # the run's JSON parameters, rendered by the UI
    page.get_by_text("tool_options").filter(visible=True).first.wait_for(state="visible")
    page.screenshot(path=str(OUTPUT / "ui-flow-run-parameters.png"), full_page=True)


def test_drift_artifact_is_shown_in_the_ui(stack, drift_runs, browser_page):
    """The second run of an analysis lists evidence-drift; its page renders the table."""
    page = browser_page
    _, second = drift_runs
    page.goto(f"{stack.url}/runs/flow-run/{second['id']}", wait_until="domcontentloaded")
    page.get_by_text("Completed", exact=True).filter(visible=True).first.wait_for()
    open_tab(page, "Artifacts")
    drift = page.get_by_text("evidence-drift", exact=True).filter(visible=True).first
    drift.wait_for(state="visible")
    drift.click()  # the artifact's own page: its table
    page.get_by_text("significant").filter(visible=True).first.wait_for(state="visible")
    page.get_by_text("fisher-exact").or_(page.get_by_text("welch-t")).or_(
        page.get_by_text("mann-whitney")).filter(visible=True).first.wait_for(state="visible")
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "ui-evidence-drift.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
