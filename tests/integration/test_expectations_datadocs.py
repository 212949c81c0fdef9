"""Data Docs over a year of daily runs: pruned to the retention, index built from what is kept, bounded work per run.

A real raw checkpoint run on a small batch gives one result and one page per suite; two suites of it are cloned into
400 daily runs (results and pages where the checkpoint writes them, run times shifted by a day each), as a data home
holds them after a year. A Python audit hook counts the files opened and the folders listed under the results
folder while a checkpoint builds its Data Docs: counted, not timed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import urllib.parse
from pathlib import Path

import pytest
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

from expectations import prune, run_checkpoint
from expectations.datadocs import SITE_NAME, read_summary
from flows.contracts.registry import load_registry
from generators.batch import NetworkSpec, generate_initial
from tests.integration.dbtkit import load
from tests.integration.gxhistory import CLONED_SUITES, clone_history

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=31, patients=1000, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 1, 31)
HISTORY_DAYS, KEEP_DAYS = 400, 30


class FileCounter:
    """Files opened and folders listed under ``root`` while ``active`` (a ``sys.addaudithook`` hook: never removed,
    so it stays inert outside ``counting``)."""

    def __init__(self) -> None:
        self.root, self.active, self.opened, self.listed, self.paths = "", False, 0, 0, []

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active or not args or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path = os.fsdecode(os.fspath(args[0]))
        if not path.startswith(self.root):
            return
        if event == "open":
            self.opened += 1
            self.paths.append(path)
        elif event in ("os.listdir", "os.scandir"):
            self.listed += 1

    def counting(self, root: Path, call):
        self.root, self.opened, self.listed, self.paths, self.active = str(root), 0, 0, [], True
        try:
            return call()
        finally:
            self.active = False


COUNTER = FileCounter()
sys.addaudithook(COUNTER)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("datadocs_history")
    landed = generate_initial(root / "landing", NETWORK, END, registry=load_registry())
    warehouse = root / "warehouse.duckdb"
    load(landed.path, warehouse)
    return landed, warehouse


def _run(batch, home: Path):
    landed, warehouse = batch
    return run_checkpoint(
        "raw", warehouse_path=warehouse, data_docs_dir=home / "data_docs", results_dir=home / "gx_results",
        batch_id=landed.batch_id, landing_dir=landed.path,
    )  # fmt: skip


def _index_pages(docs: Path) -> set[str]:
    """The validation pages the index's table links (its rows' link paths)."""
    html = (docs / "index.html").read_text(encoding="utf-8")
    return {urllib.parse.unquote(path) for path in re.findall(r"'_table_row_link_path': '(validations/[^']+)'", html)}


def _stored(home: Path) -> tuple[set[str], int]:
    files = [p for p in (home / "gx_results").rglob("*.json")] + list((home / "data_docs" / "validations").rglob("*"))
    pages = {p.relative_to(home / "data_docs").as_posix() for p in (home / "data_docs" / "validations").rglob("*.html")}
    return pages, sum(p.stat().st_size for p in files if p.is_file())


def _run_bytes(home: Path, run_name: str) -> int:
    """Bytes of one run's results and pages."""
    folders = [home / "gx_results", home / "data_docs" / "validations"]
    return sum(p.stat().st_size for folder in folders for p in folder.rglob("*") if p.is_file() and run_name in p.parts)


def test_a_year_of_daily_runs_is_pruned_to_the_retention_and_later_runs_read_only_their_own(batch, tmp_path):
    source = tmp_path / "source"
    first = _run(batch, source)
    suites = len(first.validation_pages)
    assert suites == len(load_registry().sources)
    home = tmp_path / "home"
    first_time = dt.datetime.fromisoformat(first.run_time)
    history = clone_history(source, home, first_time, HISTORY_DAYS)
    cloned = HISTORY_DAYS * len(CLONED_SUITES)

    # A home of a year, from before the summary existed: the first run reads each stored result once to write it.
    upgrade = COUNTER.counting(home / "gx_results", lambda: _run(batch, home))
    assert upgrade.success and COUNTER.opened >= cloned
    pages, year_bytes = _stored(home)
    assert len(pages) == cloned + suites and _index_pages(home / "data_docs") == pages

    # Retention: 30 days, and the run the published report points to is kept whatever its age.
    kept_old = history[0]
    now = first_time + dt.timedelta(minutes=5)
    report = prune(
        home / "data_docs", home / "gx_results", keep_days=KEEP_DAYS, now=now,
        keep_runs=[(kept_old[0], kept_old[1].isoformat())],
    )  # fmt: skip
    recent = [run for run in history if run[1] >= now - dt.timedelta(days=KEEP_DAYS)]
    assert len(recent) == KEEP_DAYS - 1  # the cloned days before today's run, within 30 days of now
    expected_kept = (len(recent) + 1) * len(CLONED_SUITES) + suites
    pages, kept_bytes = _stored(home)
    assert report.kept_pages == len(pages) == expected_kept
    assert report.removed_results == report.removed_pages == cloned + suites - expected_kept
    # Disk: what a day's run stores times the kept days, however many days were stored (every cloned day stores
    # the same bytes: same files, same-length names and times).
    day, run = _run_bytes(home, recent[-1][0]), _run_bytes(home, upgrade.run_id)
    assert year_bytes == HISTORY_DAYS * day + run
    assert kept_bytes == (len(recent) + 1) * day + run
    kept_runs = {page.split("/")[-3] for page in pages}
    assert kept_runs == {name for name, _ in recent} | {kept_old[0], upgrade.run_id}
    assert _index_pages(home / "data_docs") == pages  # the index lists exactly what is kept

    # The next run opens only its own results (each written once, read back once for its page) and the store's id
    # file, and lists no folder, however long the history was; its pages join the index.
    later = COUNTER.counting(home / "gx_results", lambda: _run(batch, home))
    own = {str(home / "gx_results" / Path(*page.path.relative_to(home / "data_docs" / "validations").parts[:-1]) /
               page.path.with_suffix(".json").name) for page in later.validation_pages}  # fmt: skip
    assert COUNTER.listed == 0
    assert sorted(COUNTER.paths) == sorted([*own, *own, str(home / "gx_results" / ".ge_store_backend_id")])
    assert _index_pages(home / "data_docs") == pages | {
        page.path.relative_to(home / "data_docs").as_posix() for page in later.validation_pages
    }
    assert len(read_summary(home / "data_docs").validations) == expected_kept + suites


def test_gx_stock_index_reads_every_stored_result_which_the_counter_sees(batch, tmp_path):
    # The control: GX's DefaultSiteIndexBuilder on the same kind of home opens every stored result, so the counts
    # above would catch a build that went back to reading the history.
    from expectations.checkpoints import build_context

    source = tmp_path / "source"
    first = _run(batch, source)
    home = tmp_path / "home"
    clone_history(source, home, dt.datetime.fromisoformat(first.run_time), 60)
    context = build_context(home / "data_docs", home / "gx_results")
    site = context.variables.data_docs_sites[SITE_NAME]
    site["site_index_builder"] = {"class_name": "DefaultSiteIndexBuilder"}
    site["site_section_builders"] = {"profiling": "False"}
    nothing_to_render = [ExpectationSuiteIdentifier(name="no.such.suite")]  # the index only, as after a run
    COUNTER.counting(
        home / "gx_results",
        lambda: context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=nothing_to_render),
    )
    assert COUNTER.opened >= 60 * len(CLONED_SUITES) and COUNTER.listed > 60
