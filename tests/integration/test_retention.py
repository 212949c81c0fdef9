"""A data home after 400 daily runs, pruned by the retention the pipeline applies at the end of every run.

The history is made as runs leave it: one real raw checkpoint run cloned into 400 daily GX runs (results, pages, the
index), 400 published report runs with their dated links, and 400 days of dbt compiled files and rotated logs; the
runs ledger names the GX runs behind the latest report. ``apply_retention`` (90 days) must keep exactly the last 90
days plus what the latest report stands on, leave the disk bounded by the retention rather than the history, and
rebuild the Data Docs index from what it kept; a second pass removes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from expectations import run_checkpoint
from flows import runs
from flows.contracts.registry import load_registry
from flows.retention import apply_retention
from flows.settings import Settings
from generators.batch import NetworkSpec, generate_initial
from tests.integration.dbtkit import load
from tests.integration.gxhistory import CLONED_SUITES, clone_history

pytestmark = pytest.mark.integration

DAYS, KEEP = 400, 90
NETWORK = NetworkSpec(seed=41, patients=500, start_date=dt.date(2024, 1, 1))
NETWORK_BATCH = "initial-20240101-20240114"


def _age(path: Path, when: dt.datetime) -> None:
    stamp = when.timestamp()
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """A data home holding 400 days of runs; returns (settings, now, history of GX runs, report run folders)."""
    root = tmp_path_factory.mktemp("retention")
    landed = generate_initial(root / "landing", NETWORK, dt.date(2024, 1, 14), registry=load_registry())
    source_warehouse = root / "source.duckdb"
    load(landed.path, source_warehouse)
    source = root / "source"
    real = run_checkpoint(
        "raw", warehouse_path=source_warehouse, data_docs_dir=source / "data_docs", results_dir=source / "gx_results",
        batch_id=landed.batch_id, landing_dir=landed.path,
    )  # fmt: skip
    settings = Settings(home=root / "home", retention_days=KEEP)
    paths = settings.paths
    now = dt.datetime.fromisoformat(real.run_time) + dt.timedelta(minutes=5)
    history = clone_history(source, paths.root, now - dt.timedelta(minutes=5), DAYS)
    today = run_checkpoint(  # today's run on the home: it writes the index (from the stored history) as runs do
        "raw", warehouse_path=source_warehouse, data_docs_dir=paths.data_docs, results_dir=paths.root / "gx_results",
        batch_id=landed.batch_id, landing_dir=landed.path,
    )  # fmt: skip
    now = dt.datetime.fromisoformat(today.run_time) + dt.timedelta(minutes=5)
    reports = []
    for (_, when), day in zip(history, range(DAYS), strict=True):
        run = paths.reports / "runs" / f"{when:%Y-%m-%d}_run{day:03d}"
        run.mkdir(parents=True)
        (run / "report.html").write_bytes(b"x" * 4096)
        _age(run / "report.html", when)
        _age(run, when)
        (paths.reports / f"{when:%Y-%m-%d}").symlink_to(Path("runs") / run.name)
        reports.append(run)
        compiled = paths.dbt_target / "compiled" / "hospital" / "models" / f"model_{day:03d}.sql"
        compiled.parent.mkdir(parents=True, exist_ok=True)
        compiled.write_text("select 1")
        _age(compiled, when)
    for number in range(1, 6):  # dbt rotates its log at 10 MB, keeping five: the older ones are history too
        rotated = paths.dbt_logs / f"dbt.log.{number}"
        rotated.parent.mkdir(parents=True, exist_ok=True)
        rotated.write_text("log")
        _age(rotated, now - dt.timedelta(days=60 * number))
    # The latest report is an old one (a gate has failed every day since): it and its GX runs must stay.
    latest_report, latest_gx = reports[0], history[0]
    (paths.reports / "latest").symlink_to(Path("runs") / latest_report.name)
    warehouse = paths.warehouse
    runs.start_run(warehouse, run_id="r0", batch_id="daily-x", run_date=dt.date(2024, 1, 1), flow_run_id=None)
    runs.finish_run(warehouse, run_id="r0", status="published", stage="publish",
                    checkpoint_runs=[(latest_gx[0], latest_gx[1].isoformat())])  # fmt: skip
    return settings, now, history, reports


def test_four_hundred_days_are_pruned_to_ninety_plus_what_the_latest_report_stands_on(year):
    settings, now, history, reports = year
    paths = settings.paths
    before = {name: _size(paths.root / name) for name in ("reports", "gx_results", "data_docs", "dbt")}
    pruned = apply_retention(settings, now=now)
    cutoff = now - dt.timedelta(days=KEEP)
    recent = [i for i, (_, when) in enumerate(history) if when >= cutoff]
    assert len(recent) == KEEP - 1  # the cloned days (before today's run) within 90 days of now
    kept_runs = {p.name for p in (paths.reports / "runs").iterdir()}
    assert kept_runs == {reports[i].name for i in recent} | {reports[0].name}
    assert (paths.reports / "latest" / "report.html").is_file()
    dated = [p for p in paths.reports.iterdir() if p.is_symlink() and p.name != "latest"]
    assert len(dated) == len(recent) + 1 and all(p.exists() for p in dated)  # latest's date too; none dangling
    pages = {p.parent.parent.name for p in (paths.data_docs / "validations").rglob("*.html")}
    assert pages == {history[i][0] for i in recent} | {history[0][0], f"raw {NETWORK_BATCH}"}
    assert history[1][0] not in pages  # the day after the kept one is old and gone
    compiled = list((paths.dbt_target / "compiled").rglob("*.sql"))
    assert len(compiled) == len(recent)
    assert sorted(p.name for p in paths.dbt_logs.iterdir()) == ["dbt.log.1"]  # 60 days old; the rest were older
    after = {name: _size(paths.root / name) for name in before}
    today = sum(
        p.stat().st_size for p in (paths.root / "gx_results").rglob("*.json") if f"raw {NETWORK_BATCH}" in p.parts
    )
    kept_share = (len(recent) + 1) / DAYS  # the retained days and the day the latest report stands on
    assert after["reports"] <= before["reports"] * kept_share + 4096, (before["reports"], after["reports"])
    assert after["gx_results"] - today <= (before["gx_results"] - today) * kept_share + 4096  # not the history's
    assert pruned.counts["report runs"] == DAYS - len(recent) - 1
    assert pruned.counts["GX results"] == (DAYS - len(recent) - 1) * len(CLONED_SUITES)
    index = (paths.data_docs / "index.html").read_text(encoding="utf-8")
    assert history[0][0] in index and history[1][0] not in index and history[recent[-1]][0] in index
    again = apply_retention(settings, now=now)
    assert again.total == 0, again.counts
