"""Data Docs pieces without a checkpoint: asset links, page depths, retention rules, the failure message."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from pathlib import Path

import pytest
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

from expectations.datadocs import VIEWS_DIR, OfflinePageView, install_assets, prune, validation_page
from flows.contracts.quality import CheckpointOutcome, ExpectationOutcome, QualityGateFailed, ValidationPage

pytestmark = pytest.mark.unit

VENDOR = Path(__file__).resolve().parents[2] / "expectations" / "assets" / "vendor" / "bootstrap-table"
NOW = dt.datetime(2026, 1, 31, 3, 0, tzinfo=dt.UTC)


def test_every_asset_the_templates_link_is_installed_and_a_second_install_copies_nothing(tmp_path):
    linked = set(re.findall(r"static/vendor/([\w./-]+)", (VIEWS_DIR / "offline_assets.j2").read_text()))
    assert len(linked) == 10  # 5 stylesheets, 5 scripts
    written = install_assets(tmp_path)
    assert written
    vendor = tmp_path / "static" / "vendor"
    assert {path for path in linked if not (vendor / path).is_file()} == set()
    # Font Awesome's stylesheet loads its fonts from ../webfonts/: each one it names is there.
    fonts = set(re.findall(r"\.\./webfonts/([\w.-]+)", (vendor / "font-awesome/css/all.min.css").read_text()))
    assert fonts and {font for font in fonts if not (vendor / "font-awesome/webfonts" / font).is_file()} == set()
    assert install_assets(tmp_path) == []


def test_no_template_links_anything_off_the_machine():
    for template in VIEWS_DIR.iterdir():
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", text), template.name
    # GX's newsletter footer is rendered by this template on every page: it renders nothing.
    assert OfflinePageView().env.get_template("cloud-footer.j2").render().strip() == ""


@pytest.mark.parametrize("suite", ["raw", "raw.adt__admissions", "marts.core.fct_claims"])
def test_pages_link_assets_relative_to_their_own_folder(tmp_path, suite):
    macros = OfflinePageView().env.get_template("offline_assets.j2").module
    key = ValidationResultIdentifier(
        ExpectationSuiteIdentifier(name=suite), RunIdentifier("raw daily-20260101", NOW), "warehouse-" + suite
    )
    page = validation_page(tmp_path, key)
    expected = os.path.relpath(tmp_path, page.parent) + "/"
    assert str(macros.site_root("ValidationResultsPageRenderer", suite)) == expected
    suite_page = tmp_path.joinpath("expectations", *suite.split(".")).with_suffix(".html")
    assert (
        str(macros.site_root("ExpectationSuitePageRenderer", suite))
        == os.path.relpath(tmp_path, suite_page.parent) + "/"
    )
    assert str(macros.site_root("SiteIndexPageRenderer", None)) == "./"


def test_vendored_bootstrap_table_is_the_recorded_release():
    recorded = dict(re.findall(r"\| `([\w.-]+)` \| `[^`]+` \| `([0-9a-f]{64})` \|", (VENDOR / "README.md").read_text()))
    assert len(recorded) == 4
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert "v1.19.1" in (VENDOR / "bootstrap-table.min.js").read_text(encoding="utf-8")[:400]
    assert "MIT License" in (VENDOR / "LICENSE").read_text()


def _store(base: Path, suffix: str, suite: str, run_name: str, when: dt.datetime) -> Path:
    path = base.joinpath(*suite.split("."), run_name, when.strftime("%Y%m%dT%H%M%S.%fZ"), f"warehouse-{suite}{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}", encoding="utf-8")
    return path


def test_prune_removes_runs_older_than_the_retention_except_kept_ones(tmp_path):
    docs, results = tmp_path / "data_docs", tmp_path / "gx_results"
    runs = {
        "new": ("raw daily-20260130", NOW - dt.timedelta(days=1)),
        "edge": ("raw daily-20260101", NOW - dt.timedelta(days=30)),  # exactly at the cutoff: kept
        "old": ("raw daily-20251231", NOW - dt.timedelta(days=31)),
        "kept": ("marts", NOW - dt.timedelta(days=200)),
        "marts": ("marts", NOW - dt.timedelta(days=201)),  # same name, other time: not kept
        "by_name": ("raw initial-20250101", NOW - dt.timedelta(days=300)),
    }
    files = {
        label: (
            _store(results, ".json", "raw.x", name, when),
            _store(docs / "validations", ".html", "raw.x", name, when),
        )
        for label, (name, when) in runs.items()
    }
    stray = results / "notes" / "readme.json"  # not GX's layout: never touched
    stray.parent.mkdir(parents=True)
    stray.write_text("{}")
    report = prune(
        docs, results, keep_days=30, now=NOW,
        keep_runs=[("marts", runs["kept"][1].isoformat()), ("raw initial-20250101", None)],
    )  # fmt: skip
    gone = {label for label, (result, page) in files.items() if not result.exists() and not page.exists()}
    assert gone == {"old", "marts"}
    assert (report.removed_results, report.removed_pages) == (2, 2) and report.freed_bytes == 4 * len("{}")
    assert stray.exists()
    assert not (results / "raw" / "x" / "raw daily-20251231").exists()  # emptied folders go too


def test_prune_refuses_a_naive_now_and_a_negative_retention(tmp_path):
    with pytest.raises(ValueError, match="timezone-aware"):
        prune(tmp_path, tmp_path, keep_days=30, now=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="keep_days"):
        prune(tmp_path, tmp_path, keep_days=-1, now=NOW)


def _outcome(pages: tuple[ValidationPage, ...]) -> CheckpointOutcome:
    failures = tuple(
        ExpectationOutcome(page.suite, "expect_column_values_to_not_be_null", "mrn", False, 3, 1.5, 200)
        for page in pages
        if not page.success
    )
    return CheckpointOutcome(
        checkpoint="raw", success=not failures, run_id="raw daily-20260130", batch_id="daily-20260130",
        data_docs_index=Path("/home/data_docs/index.html"), outcomes=failures, run_time=NOW.isoformat(),
        validation_pages=pages,
    )  # fmt: skip


def test_quality_gate_failed_names_the_failing_pages_as_urls_and_round_trips_through_a_dict():
    pages = (
        ValidationPage("raw.a", True, Path("/home/data_docs/validations/raw/a/raw daily/t/w.html"), 5, 0),
        ValidationPage("raw.b", False, Path("/home/data_docs/validations/raw/b/raw daily/t/w.html"), 7, 2),
    )
    outcome = _outcome(pages)
    message = str(QualityGateFailed(outcome))
    assert (
        "Failing validation page:\n  - raw.b (2 of 7 failed): file:///home/data_docs/validations/raw/b/raw%20daily/t/w.html"
        in message
    )
    assert "raw/a/" not in message
    assert "Data Docs index: file:///home/data_docs/index.html" in message
    assert outcome.failing_page == pages[1].path
    assert outcome.run_key == ("raw daily-20260130", NOW.isoformat())
    assert CheckpointOutcome.from_dict(outcome.to_dict()) == outcome


def test_quality_gate_failed_lists_at_most_ten_pages():
    pages = tuple(
        ValidationPage(f"marts.m{i}", False, Path(f"/d/validations/marts/m{i}/marts/t/w.html"), 4, 1) for i in range(12)
    )
    message = str(QualityGateFailed(_outcome(pages)))
    assert message.count("(1 of 4 failed)") == 10 and "... and 2 more, listed in the index" in message
