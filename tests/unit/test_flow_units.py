"""Pure parts of the pipeline flows: retry policy, batch choice, the runs ledger, artifacts, schedules."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from deployments.serve import read_deployments
from expectations.results import CheckpointOutcome, ExpectationOutcome, QualityGateFailed
from flows import runs
from flows.artifacts import checkpoint_rows, render_summary
from flows.backfill import BackfillRangeError, backfill_days
from flows.contracts.batch_ids import next_batch_id, parse_batch_id
from flows.faults import TransientWarehouseError, is_transient
from flows.kpis import Kpi
from flows.settings import Settings
from flows.transform import (
    DbtVarsError,
    batch_loaded_after,
    build_args,
    dbt_vars_mapping,
    scope_instant,
    transform_vars,
)
from flows.warehouse.errors import ChecksumMismatchError, RejectThresholdError, WarehouseBusyError

pytestmark = pytest.mark.unit


def _outcome(*failing: bool) -> CheckpointOutcome:
    outcomes = tuple(
        ExpectationOutcome("raw.adt__admissions", f"expect_{i}", "mrn", not bad, 3 if bad else 0, 1.5 if bad else 0.0)
        for i, bad in enumerate(failing)
    )
    return CheckpointOutcome("raw", not any(failing), "run-1", "daily-20260101", None, outcomes)


_HOLD = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"


def test_a_real_duckdb_lock_error_is_transient(tmp_path):
    """Another process holding the file makes DuckDB raise 'Could not set lock on file': worth a retry."""
    path = str(tmp_path / "w.duckdb")
    duckdb.connect(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(duckdb.Error) as caught:
            duckdb.connect(path)
    finally:
        holder.communicate("", timeout=60)
    assert "lock" in str(caught.value).lower()
    assert is_transient(caught.value)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (WarehouseBusyError("warehouse x is in use by another process"), True),
        (TransientWarehouseError("dbt build: the warehouse is locked"), True),
        (ConnectionResetError("Connection reset by peer"), True),
        (QualityGateFailed(_outcome(True)), False),
        (RejectThresholdError("patients.csv: 9 of 10 rows could not be parsed"), False),
        (ChecksumMismatchError("claims.jsonl: sha256 differs from the manifest"), False),
        (ValueError("invalid literal for int()"), False),
    ],
)
def test_only_transient_faults_are_retried(error, transient):
    assert is_transient(error) is transient


def test_a_data_fault_raised_from_a_lock_error_is_still_not_retried():
    try:
        try:
            raise OSError("Could not set lock on file")
        except OSError as lock:
            raise RejectThresholdError("file x: too many rejects") from lock
    except RejectThresholdError as error:
        assert not is_transient(error)


def test_next_batch_is_the_initial_history_until_it_is_published():
    kwargs = {"start": dt.date(2024, 1, 1), "end": dt.date(2024, 1, 31), "today": dt.date(2024, 3, 1)}
    assert next_batch_id(set(), **kwargs) == "initial-20240101-20240131"
    assert next_batch_id({"daily-20240201"}, **kwargs) == "initial-20240101-20240131"


def test_next_batch_is_the_day_after_the_newest_published_one_up_to_yesterday():
    kwargs = {"start": dt.date(2024, 1, 1), "end": dt.date(2024, 1, 31)}
    published = {"initial-20240101-20240131", "daily-20240201", "daily-20240202"}
    assert next_batch_id(published, today=dt.date(2024, 3, 1), **kwargs) == "daily-20240203"
    assert next_batch_id(published, today=dt.date(2024, 2, 3), **kwargs) is None  # 02-03 is today: not yet
    assert next_batch_id(published, today=dt.date(2024, 2, 4), **kwargs) == "daily-20240203"


def test_batch_ids_say_what_to_generate():
    assert parse_batch_id("initial-20240101-20241231") == ("initial", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert parse_batch_id("daily-20250102") == ("daily", None, dt.date(2025, 1, 2))
    assert parse_batch_id("hms-extract-7")[0] == "delivered"


def test_backfill_days_are_in_order_and_inclusive():
    assert backfill_days(dt.date(2024, 2, 27), dt.date(2024, 3, 1)) == [
        dt.date(2024, 2, 27), dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1),
    ]  # fmt: skip
    with pytest.raises(BackfillRangeError, match="before its start"):
        backfill_days(dt.date(2024, 3, 2), dt.date(2024, 3, 1))


def test_runs_ledger_records_a_failed_then_a_published_run(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    assert runs.last_runs(warehouse) == []
    runs.start_run(warehouse, run_id="a", batch_id="daily-20240201", run_date=dt.date(2024, 2, 1), flow_run_id=None)
    runs.finish_run(warehouse, run_id="a", status="failed", stage="raw checkpoint", message="Quality gate failed")
    assert runs.latest_run(warehouse, "daily-20240201").status == "failed"
    assert runs.published_batches(warehouse) == set()
    runs.start_run(warehouse, run_id="b", batch_id="daily-20240201", run_date=dt.date(2024, 2, 1), flow_run_id="f")
    runs.finish_run(warehouse, run_id="b", status="published", stage="publish", rows_loaded=12, report_dir="r")
    latest = runs.latest_run(warehouse, "daily-20240201")
    assert (latest.run_id, latest.status, latest.rows_loaded, latest.report_dir) == ("b", "published", 12, "r")
    assert runs.published_batches(warehouse) == {"daily-20240201"}
    assert [r.run_id for r in runs.last_runs(warehouse)] == ["b", "a"]
    with pytest.raises(ValueError, match="'interrupted' or 'published', not 'done'"):
        runs.finish_run(warehouse, run_id="b", status="done", stage=None)


def test_checkpoint_table_lists_failures_first_without_values():
    rows = checkpoint_rows(_outcome(False, True))
    assert [r["result"] for r in rows] == ["FAILED", "passed"]
    assert rows[0]["failing_rows"] == 3
    assert set(rows[0]) == {"checkpoint", "suite", "expectation", "column", "result", "failing_rows",
                            "failing_percent", "note"}  # fmt: skip


def test_summary_names_stages_gates_kpis_and_links():
    markdown = render_summary(
        batch_id="daily-20240201",
        status="published",
        stage_rows=[("load", "10 rows loaded", "1.0")],
        checkpoints=[_outcome(False, False)],
        kpis=[Kpi("Admissions", "1,234", "marts.mart_admissions_monthly")],
        links={"report": "file:///r/report.html", "dbt_docs": None},
    )
    assert "| load | 10 rows loaded | 1.0 |" in markdown
    assert "| raw | passed | 2 | 0 |" in markdown
    assert "| Admissions | 1,234 | `marts.mart_admissions_monthly` |" in markdown
    assert "[report](file:///r/report.html)" in markdown
    assert "dbt_docs" not in markdown


def test_build_leaves_snapshots_and_their_tests_to_their_own_stage():
    assert build_args(full_refresh=False) == ["build", "--exclude", "resource_type:snapshot"]
    assert "--full-refresh" in build_args(full_refresh=True)


LOADED = dt.datetime(2026, 11, 24, 2, 0, 0, 250_000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("loaded_at", "instant"),
    [
        (LOADED, "2026-11-24 02:00:00"),  # the fraction is dropped: still strictly before the load
        (LOADED.replace(microsecond=0), "2026-11-24 01:59:59"),  # a whole second: one second earlier
        (LOADED.astimezone(dt.timezone(dt.timedelta(hours=-6))), "2026-11-24 02:00:00"),  # any zone, given in UTC
    ],
)
def test_scope_instant_is_the_last_whole_utc_second_before_the_load(loaded_at, instant):
    assert scope_instant(loaded_at) == instant
    as_utc = dt.datetime.strptime(instant, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    assert as_utc < loaded_at <= as_utc + dt.timedelta(seconds=1)  # the tests keep `_loaded_at > instant`
    with pytest.raises(ValueError, match="no time zone"):
        scope_instant(loaded_at.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("kind", "full_refresh", "loaded_after", "given", "expected"),
    [
        ("daily", False, LOADED, None, {"tests_loaded_after": "2026-11-24 02:00:00"}),
        ("daily", False, LOADED, "{salt: 7, day: 2024-02-01}",
         {"salt": 7, "day": dt.date(2024, 2, 1), "tests_loaded_after": "2026-11-24 02:00:00"}),
        ("daily", False, LOADED, "{tests_loaded_after: null}", {"tests_loaded_after": None}),  # the caller's wins
        ("daily", True, LOADED, None, {}),  # a full refresh tests every row
        ("daily", True, LOADED, "{salt: 7}", {"salt": 7}),
        ("initial", False, LOADED, None, {}),  # the initial history tests every row
        ("delivered", False, LOADED, None, {}),
        ("daily", False, None, "{salt: 7}", {"salt": 7}),  # no ledger row for the batch: test every row
    ],
)  # fmt: skip
def test_daily_batches_scope_dbt_tests_to_their_first_load_and_keep_other_vars(
    kind, full_refresh, loaded_after, given, expected
):
    vars_yaml = transform_vars(kind, full_refresh=full_refresh, loaded_after=loaded_after, vars_yaml=given)
    assert dbt_vars_mapping(vars_yaml) == expected
    if "tests_loaded_after" in expected and given is None:
        assert vars_yaml.startswith("{")  # run_dbt leaves "{..." arguments out of the command it names
        assert build_args(full_refresh=False, vars_yaml=vars_yaml)[-2:] == ["--vars", vars_yaml]
    if kind != "daily" or full_refresh or loaded_after is None:
        assert vars_yaml == given  # passed through untouched


@pytest.mark.parametrize("given", ["[1, 2]", "{salt: [", "just text"])
def test_dbt_vars_that_are_not_a_mapping_are_refused_naming_them(given):
    with pytest.raises(DbtVarsError, match="not a YAML mapping") as refused:
        transform_vars("daily", full_refresh=False, loaded_after=LOADED, vars_yaml=given)
    assert repr(given) in str(refused.value)


def test_batch_loaded_after_is_the_batchs_first_load_in_utc(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    assert batch_loaded_after(warehouse, "daily-20240201") is None  # no warehouse yet
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create schema ledger")
    assert batch_loaded_after(warehouse, "daily-20240201") is None  # no ledger yet
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("set TimeZone = 'America/Chicago'")  # the session zone must not shift the instant
        connection.execute("create table ledger.load_ledger (batch_id varchar, loaded_at timestamptz)")
        connection.execute(
            "insert into ledger.load_ledger values ('daily-20240201', '2024-02-02 08:00:05.5+00'), "
            "('daily-20240201', '2024-02-02 08:00:01.25+00'), ('daily-20240202', '2024-02-01 00:00:00+00')"
        )
    first = batch_loaded_after(warehouse, "daily-20240201")
    assert first == dt.datetime(2024, 2, 2, 8, 0, 1, 250_000, tzinfo=dt.UTC)
    assert first.utcoffset() == dt.timedelta(0)
    assert batch_loaded_after(warehouse, "daily-20240203") is None


def test_deployments_have_the_documented_schedules():
    deployments = {d["name"]: d for d in read_deployments()}
    assert set(deployments) == {"daily-incremental", "weekly-full-refresh", "manual-backfill"}
    daily = deployments["daily-incremental"]
    assert daily["schedules"][0]["cron"] == "0 2 * * *"
    assert daily["schedules"][0]["timezone"] == daily["parameters"]["timezone"]
    assert deployments["weekly-full-refresh"]["parameters"]["full_refresh"] is True
    assert deployments["manual-backfill"]["entrypoint"] == "flows/backfill.py:backfill"
    assert {d["work_pool"]["name"] for d in deployments.values()} == {"hospital-process"}
    for spec in deployments.values():
        assert (Path(__file__).resolve().parents[2] / spec["entrypoint"].split(":")[0]).is_file()


def test_serve_builds_the_same_deployments_with_their_schedules():
    from deployments.serve import runner_deployments

    served = {d.name: d for d in runner_deployments(timezone="Europe/Berlin")}
    assert set(served) == {"daily-incremental-served", "weekly-full-refresh-served", "manual-backfill-served"}
    daily = served["daily-incremental-served"]
    assert [(s.schedule.cron, s.schedule.timezone) for s in daily.schedules] == [("0 2 * * *", "Europe/Berlin")]
    assert daily.parameters["timezone"] == "Europe/Berlin"
    assert served["manual-backfill-served"].schedules in (None, [])


def test_no_flows_module_shadows_an_installed_package():
    """Prefect puts flows/ on sys.path when a worker loads `flows/pipeline.py:pipeline`; a module named like a
    package (flows/dbt.py once) then hides it from every import in the flow run."""
    import importlib.metadata

    flows_dir = Path(__file__).resolve().parents[2] / "flows"
    names = [p.stem for p in flows_dir.glob("*.py") if p.stem != "__init__"] + ["warehouse"]
    installed = set(importlib.metadata.packages_distributions()) | set(sys.stdlib_module_names)
    assert "dbt" in installed and "json" in installed  # the check sees both kinds of name
    assert not sorted(set(names) & installed)


def test_kpis_are_network_totals_and_small_counts_are_suppressed(tmp_path):
    from flows.kpis import read_kpis

    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create schema marts")
        connection.execute(
            "create table marts.mart_admissions_monthly as select * from (values "
            "('h1', date '2024-01-01', 3, 2, 4.0, 4.0), ('h2', date '2024-01-01', 4, 3, 2.0, 2.0)) "
            "as t(hospital_id, month_date, admission_count, discharge_count, average_length_of_stay_nights, "
            "median_length_of_stay_nights)"
        )
        connection.execute(
            "create table marts.mart_claim_denials as select * from (values ('p1', 30, 3), ('p2', 10, 5)) "
            "as t(payer_id, claim_count, initially_denied_count)"
        )
    kpis = {k.label: k.value for k in read_kpis(warehouse)}
    assert kpis["Admissions"] == "<11"  # 7 admissions
    assert kpis["Average length of stay (nights)"] == "<11"  # rests on 5 discharges
    assert kpis["Claims submitted"] == "40"
    assert kpis["Initial denial rate"] == f"{8 / 40:.1%}"
    assert "No-show rate" not in kpis  # that mart does not exist here


@pytest.mark.parametrize(
    ("name", "level", "message", "shown"),
    [
        ("prefect.flow_runs", "INFO", "checkpoint raw passed", True),
        ("prefect.task_runs", "INFO", "7 of 616 OK created sql view model staging.stg_x", False),
        ("prefect.task_runs", "INFO", "7 of 616 START sql view model staging.stg_x", False),
        ("prefect.task_runs", "INFO", "50 of 616 PASS not_null_x", True),
        ("prefect.task_runs", "INFO", "616 of 616 PASS unique_y", True),
        ("prefect.task_runs", "INFO", "Done. PASS=610 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=610", True),
        ("prefect.task_runs", "ERROR", "9 of 616 ERROR creating sql table model marts.x", True),
    ],
)
def test_quiet_console_shows_stages_dbt_progress_and_problems(name, level, message, shown):
    import logging

    from flows.run_cli import _QuietTasks

    record = logging.LogRecord(name, getattr(logging, level), __file__, 1, message, None, None)
    assert _QuietTasks().filter(record) is shown


@pytest.mark.unit
def test_hospital_run_summary_prints_the_flows_published_result(tmp_path, capsys):
    """The flow's return value (as the pipeline builds it) is what the CLI's summary reads: stages, total, rows."""
    from flows.pipeline import _Progress
    from flows.run_cli import _print_result

    progress = _Progress(batch_id="daily-20240302")
    progress.run("land batch", lambda: {"rows": 1234}, lambda value: f"{value['rows']} rows")
    progress.run("load", lambda: None, lambda value: "loaded")
    progress.facts.update(rows_landed=1234, rows_loaded=1230, rows_rejected=4, mart_rows=99, marts=14)
    result = progress.published("run-1", {"report_html": str(tmp_path / "report.html")})
    _print_result(result, Settings(home=tmp_path))
    out = capsys.readouterr().out
    assert f"Batch daily-20240302 published in {result['seconds']:.0f} s." in out
    assert "land batch" in out and "1234 rows" in out and "loaded" in out
    assert "1,234 landed, 1,230 loaded into raw, 4 rejected, 99 in 14 marts" in out
    assert set(result["stage_seconds"]) == {"land batch", "load"}


def test_a_relative_data_home_is_taken_from_the_working_directory_once(tmp_path, monkeypatch):
    # dbt resolves relative paths from its project folder and GX refuses them: every path must be absolute.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOSPITAL_HOME", raising=False)
    default = Settings()
    assert default.home == tmp_path / "data"
    assert default.paths.dbt_docs.is_absolute() and default.paths.dbt_docs.is_relative_to(tmp_path / "data")
    monkeypatch.setenv("HOSPITAL_HOME", "elsewhere/home")
    assert Settings().home == tmp_path / "elsewhere" / "home"
