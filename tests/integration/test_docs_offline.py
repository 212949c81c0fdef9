"""Data Docs and dbt docs in a real browser with the network cut: every asset from the data home, nothing fetched.

One module fixture generates and loads a small network, runs the raw checkpoint twice (the batch as delivered:
passes; then with a manifest that disagrees with the ledger: exactly one suite fails), builds dbt and generates the
dbt docs with the pipeline's own task. Headless Chromium (Debian's chromium + chromedriver) resolves every host to
nothing and proxies everything but loopback to a closed port, so any CDN request fails and shows in the console.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from expectations import CheckpointOutcome, run_checkpoint
from flows.contracts.registry import load_registry
from flows.publish_reports import generate_dbt_docs
from generators.batch import NetworkSpec, generate_initial
from tests.integration.dbtkit import copy_project, duckdb_target, invoke, load
from tests.integration.test_expectations_raw import _leaked, _patient_values

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=23, patients=1000, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 1, 31)
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
    # The network is cut: no name resolves, and every request but loopback's (which Chromium never proxies) goes
    # to a closed port.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--proxy-server=127.0.0.1:9",
)  # fmt: skip
MODEL = "model.hospital.fct_admissions"


@dataclass
class Home:
    """A data home after two raw checkpoint runs and the dbt docs."""

    root: Path
    docs: Path
    passed: CheckpointOutcome
    failed: CheckpointOutcome
    dbt_page: Path
    landing: Path


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    root = tmp_path_factory.mktemp("docs_offline")
    batch = generate_initial(root / "landing", NETWORK, END, registry=load_registry())
    warehouse, docs = root / "warehouse.duckdb", root / "data_docs"
    load(batch.path, warehouse)
    passed = run_checkpoint("raw", warehouse_path=warehouse, data_docs_dir=docs, batch_id=batch.batch_id,
                            landing_dir=batch.path)  # fmt: skip
    # The same batch checked against a manifest that counts one admission more than the ledger loaded.
    changed = root / "changed" / batch.batch_id
    shutil.copytree(batch.path, changed)
    manifest = json.loads((changed / "manifest.json").read_text(encoding="utf-8"))
    next(entry for entry in manifest["files"] if entry["source"] == "adt__admissions")["rows"] += 1
    (changed / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    failed = run_checkpoint("raw", warehouse_path=warehouse, data_docs_dir=docs, batch_id=batch.batch_id,
                            landing_dir=changed, raise_on_failure=False)  # fmt: skip
    project = copy_project(root / "dbt_project")
    with duckdb_target(warehouse):
        built = invoke(project, root, "build", "--exclude", "resource_type:test")
    assert built.success
    # The pipeline's task, outside a flow: its dbt runner needs no Prefect API (a closed port here), so no server.
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        dbt_page = generate_dbt_docs.fn(project, warehouse, root / "dbt_docs", root / "dbt.log")
    return Home(root, docs, passed, failed, dbt_page, batch.path)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with the network cut; fails (never skips) when it or its driver is missing."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing: install them with `make browser`.")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*OFFLINE_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1366, 900)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def http_root(home):
    """The data home over http on loopback (as a hospital would serve it), for the module."""
    handler = functools.partial(_QuietHandler, directory=str(home.root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


def _open(driver, url: str, ready: str = "return document.readyState === 'complete'") -> list[str]:
    """Load ``url`` and wait for ``ready``; returns the console's errors and every request that left the machine."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(ready))
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    requests = driver.execute_script("return performance.getEntriesByType('resource').map(r => r.name)")
    remote = [name for name in requests if not name.startswith(("file:", "data:", "http://127.0.0.1"))]
    return errors + [f"request off the machine: {name}" for name in remote]


def _libraries(driver) -> dict:
    return driver.execute_script(
        "return {jquery: typeof window.jQuery === 'function' && window.jQuery.fn.jquery,"
        " table: typeof (window.jQuery && jQuery.fn.bootstrapTable) === 'function',"
        " datepicker: typeof (window.jQuery && jQuery.fn.datepicker) === 'function',"
        " tooltip: typeof (window.jQuery && jQuery.fn.tooltip) === 'function'}"
    )


def _icon_font(driver, selector: str) -> list[tuple[str, float]]:
    """(font family of the ::before glyph, rendered width) of each visible icon matching ``selector``."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).filter(e => e.offsetParent !== null)"
        ".map(e => [getComputedStyle(e, '::before').fontFamily, e.getBoundingClientRect().width])",
        selector,
    )


def _index_rows(driver) -> list[dict]:
    return driver.execute_script(
        "return $('table.ge-index-page-validation-results-table').bootstrapTable('getData')"
        ".map(r => ({page: decodeURIComponent(r._table_row_link_path), state: r._validation_success_text,"
        " run: r.run_name}))"
    )


def test_data_docs_index_offline_lists_both_runs_validations_with_their_state(home, browser):
    problems = _open(browser, (home.docs / "index.html").as_uri())
    assert problems == []
    assert _libraries(browser) == {"jquery": "3.7.1", "table": True, "datepicker": True, "tooltip": True}
    rows = _index_rows(browser)
    expected = {
        (str(page.path.relative_to(home.docs)), "Success" if page.success else "Failed")
        for outcome in (home.passed, home.failed)
        for page in outcome.validation_pages
    }
    assert len(expected) == 2 * len(load_registry().sources)
    assert {(row["page"], row["state"]) for row in rows} == expected
    assert [row["page"] for row in rows if row["state"] == "Failed"] == [
        str(home.failed.failing_page.relative_to(home.docs))
    ]
    # The table is drawn (GX's offline failure: only the "Clear Filters" buttons), with its icons in Font Awesome.
    drawn = browser.execute_script(
        "return document.querySelectorAll('.ge-index-page-validation-results-table tbody tr').length"
    )
    assert drawn == 10  # bootstrap-table's first page of 22 rows
    icons = _icon_font(browser, ".ge-index-page-validation-results-table i.fas")
    assert len(icons) == 10 and all("Font Awesome" in family and width > 0 for family, width in icons), icons
    assert "newsletter" not in browser.page_source.lower()


def test_index_run_time_filter_opens_its_datepicker_offline(home, browser):
    _open(browser, (home.docs / "index.html").as_uri())
    browser.execute_script("$('.date-filter-control').first().focus()")
    shown = browser.execute_script("return $('.datepicker-dropdown:visible').length")
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert (shown, errors) == (1, [])


def test_failing_validation_page_offline_shows_its_counts_and_failed_marks(home, browser):
    page = home.failed.failing_page
    assert page is not None and home.failed.failing_pages[0].suite == "raw.adt__admissions"
    assert _open(browser, page.as_uri()) == []
    assert _libraries(browser)["table"] is True
    statistics = browser.execute_script(
        "const cells = Array.from(document.querySelectorAll('td'));"
        "const value = name => { const cell = cells.find(td => td.innerText.trim() === name);"
        " return cell ? cell.nextElementSibling.innerText.trim() : null; };"
        "return {'Evaluated Expectations': value('Evaluated Expectations'),"
        " 'Unsuccessful Expectations': value('Unsuccessful Expectations')}"
    )
    failing = home.failed.failing_pages[0]
    assert statistics["Evaluated Expectations"] == str(failing.evaluated)
    assert statistics["Unsuccessful Expectations"] == str(failing.failed) == "1"
    # bootstrap-table took over the page's tables (search boxes), and the failed mark is drawn in Font Awesome.
    assert browser.execute_script("return document.querySelectorAll('.bootstrap-table .search input').length") > 0
    marks = _icon_font(browser, "i.fa-times")
    assert marks and all("Font Awesome" in family and width > 0 for family, width in marks), marks


def test_pages_work_over_http_too(home, browser, http_root):
    for path in (home.docs / "index.html", home.failed.failing_page, home.passed.validation_pages[0].path):
        url = f"{http_root}/{path.relative_to(home.root).as_posix()}"
        assert _open(browser, url.replace(" ", "%20")) == [], url
        assert _libraries(browser)["table"] is True, url


def test_no_page_links_a_cdn_or_the_newsletter(home):
    pages = list(home.docs.rglob("*.html"))
    assert len(pages) >= 2 * 11 + 11 + 1  # validation pages, suite pages, index
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "cdn" not in html and "unpkg" not in html and "amazonaws" not in html, page
        assert "newsletter" not in html.lower() and "vegaEmbed" not in html, page


def test_dbt_docs_static_page_offline_shows_a_models_columns(home, browser):
    assert home.dbt_page.name == "static_index.html"
    ready = "return document.querySelectorAll('tr.column-row').length > 0"
    problems = _open(browser, f"{home.dbt_page.as_uri()}#!/model/{MODEL}", ready)
    assert problems == []
    manifest = json.loads((home.dbt_page.parent / "manifest.json").read_text(encoding="utf-8"))
    columns = set(manifest["nodes"][MODEL]["columns"])
    shown = set(browser.execute_script(
        "return Array.from(document.querySelectorAll('tr.column-row')).map(tr => tr.cells[0].innerText.trim())"
    ))  # fmt: skip
    assert len(columns) >= 5 and columns <= shown
    # The tree's icons are drawn: the page's fix of its uninterpolated icon links keeps every shown one.
    icons = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.menu-icon-on use, svg.menu-icon-off use'))"
        ".filter(u => u.closest('svg').getClientRects().length > 0).map(u => u.href.baseVal)"
    )
    assert len(icons) >= 5 and [icon for icon in icons if not icon.startswith("#icn-")] == []


def test_dbt_docs_static_page_holds_no_patient_value(home):
    html = home.dbt_page.read_text(encoding="utf-8")
    catalog = json.loads((home.dbt_page.parent / "catalog.json").read_text(encoding="utf-8"))
    # The catalog on DuckDB carries no statistics (no row counts, no min/max values): only "has stats? no".
    assert {stat for node in catalog["nodes"].values() for stat in node["stats"]} == {"has_stats"}
    values = _patient_values(home.landing)
    assert len(values) > 500
    assert _leaked(values, html) == []
    planted = sorted(values)[:: max(1, len(values) // 20)]
    assert set(_leaked(values, html + "\n".join(planted))) >= set(planted)
