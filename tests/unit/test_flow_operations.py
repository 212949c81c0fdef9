"""Operations parts of the runtime: the warehouse lock, abandoned runs, retention, the docs server's paths, settings
checks, interruption and disk-full detection, the console's one-message filter, and a clean interpreter exit."""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows import runs
from flows.contracts.batch_ids import InvalidBatchId, check_batch_id, run_name
from flows.docs_server import docs_link, served_path
from flows.errors import disk_full, safe_message
from flows.locking import WarehouseLockTimeout, current_holder, lock_path, warehouse_lock
from flows.retention import Pruned, apply_retention, prune_dbt, prune_landing_leftovers, prune_reports
from flows.settings import Settings

pytestmark = pytest.mark.unit

HOLD = """
import sys, time
from pathlib import Path
from flows.locking import warehouse_lock
with warehouse_lock(Path(sys.argv[1]), timeout_seconds=5, run_id="run-a", batch_id="daily-20240101"):
    print("held", flush=True)
    time.sleep(600)
"""


def _hold_lock_in_another_process(warehouse: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_run_waits_then_fails_naming_the_holder(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = _hold_lock_in_another_process(warehouse)
    try:
        assert current_holder(warehouse).run_id == "run-a"
        waited = []
        began = time.monotonic()
        with pytest.raises(WarehouseLockTimeout) as caught, warehouse_lock(warehouse, timeout_seconds=1.5,
                                                                          on_wait=waited.append):  # fmt: skip
            pass
        assert time.monotonic() - began >= 1.4
        assert waited and waited[0].pid == holder.pid
        assert "run run-a of batch daily-20240101" in str(caught.value) and str(warehouse) in str(caught.value)
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_releases_the_lock_at_once(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = _hold_lock_in_another_process(warehouse)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert current_holder(warehouse) is None  # the file still names the dead run; the lock is what counts
    assert "run-a" in lock_path(warehouse).read_text()
    began = time.monotonic()
    with warehouse_lock(warehouse, timeout_seconds=5, run_id="run-b") as me:
        assert time.monotonic() - began < 1
        assert current_holder(warehouse).run_id == "run-b" == me.run_id
    assert current_holder(warehouse) is None


def test_the_next_run_marks_a_dead_runs_row_interrupted(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    runs.start_run(warehouse, run_id="dead", batch_id="daily-20240201", run_date=dt.date(2024, 2, 1), flow_run_id="f")
    runs.start_run(warehouse, run_id="done", batch_id="daily-20240131", run_date=dt.date(2024, 1, 31), flow_run_id="g")
    runs.finish_run(warehouse, run_id="done", status="published", stage="publish")
    abandoned = runs.close_abandoned(warehouse)
    assert [r.run_id for r in abandoned] == ["dead"]
    dead = runs.latest_run(warehouse, "daily-20240201")
    assert (dead.status, dead.message) == ("interrupted", runs.DIED_MESSAGE)
    assert runs.latest_run(warehouse, "daily-20240131").status == "published"
    assert runs.close_abandoned(warehouse) == []


def _run_folder(reports: Path, name: str, age_days: float, now: float) -> Path:
    folder = reports / "runs" / name
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("<html></html>")
    stamp = now - age_days * 86400
    os.utime(folder, (stamp, stamp))
    return folder


def test_retention_prunes_old_report_runs_but_never_the_latest(tmp_path):
    reports, now = tmp_path / "reports", time.time()
    old_latest = _run_folder(reports, "2024-01-01_a", 200, now)
    old = _run_folder(reports, "2024-01-02_b", 100, now)
    recent = _run_folder(reports, "2024-03-01_c", 10, now)
    (reports / "latest").symlink_to(Path("runs") / old_latest.name)
    (reports / "2024-01-02").symlink_to(Path("runs") / old.name)
    (reports / "2024-03-01").symlink_to(Path("runs") / recent.name)
    (reports / ".staging-x-1234").mkdir()
    pruned = Pruned()
    kept = prune_reports(reports, dt.datetime.now(dt.UTC) - dt.timedelta(days=90), pruned)
    assert kept == {old_latest.resolve(), recent.resolve()}
    assert not old.exists() and not (reports / "2024-01-02").is_symlink()  # no dangling dated link
    assert (reports / "latest" / "report.html").exists() and (reports / "2024-03-01").exists()
    assert not (reports / ".staging-x-1234").exists()
    assert pruned.counts == {"report runs": 1, "dated report links": 1, "abandoned report stagings": 1}


def test_retention_prunes_stale_dbt_files_and_dead_partial_batches(tmp_path):
    dbt_dir, now = tmp_path / "dbt", time.time()
    stale = dbt_dir / "target" / "compiled" / "p" / "models" / "removed_model.sql"
    fresh = dbt_dir / "target" / "run" / "p" / "models" / "kept_model.sql"
    rotated, current = dbt_dir / "logs" / "dbt.log.1", dbt_dir / "logs" / "dbt.log"
    for path in (stale, fresh, rotated, current):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    for path in (stale, rotated, current):
        os.utime(path, (now - 120 * 86400, now - 120 * 86400))
    pruned = Pruned()
    prune_dbt(dbt_dir, dt.datetime.now(dt.UTC) - dt.timedelta(days=90), pruned)
    assert not stale.exists() and not rotated.exists() and fresh.exists() and current.exists()
    landing = tmp_path / "landing"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (landing / f".daily-20240101.partial-{dead.stdout.strip()}").mkdir(parents=True)
    (landing / f".daily-20240102.partial-{os.getpid()}").mkdir()  # alive: a generator still writing it
    prune_landing_leftovers(landing, pruned)
    assert [p.name for p in landing.iterdir()] == [f".daily-20240102.partial-{os.getpid()}"]


def test_apply_retention_reads_the_days_from_settings(tmp_path):
    settings = Settings(home=tmp_path, retention_days=30)
    reports, now = settings.paths.reports, time.time()
    _run_folder(reports, "2024-01-01_a", 40, now)
    _run_folder(reports, "2024-01-02_b", 20, now)
    pruned = apply_retention(settings)
    assert sorted(p.name for p in (reports / "runs").iterdir()) == ["2024-01-02_b"]
    assert pruned.counts["report runs"] == 1 and "report runs" in pruned.describe()


def test_the_docs_server_serves_only_the_published_folders(tmp_path):
    home = Settings(home=tmp_path).paths
    for name in ("reports/runs/r1/report.html", "data_docs/index.html", "dbt_docs/static_index.html",
                 "landing/b/patients.csv", "gx_results/x.json", "secret.txt"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    home.warehouse.write_text("phi")
    (tmp_path / "reports" / "latest").symlink_to(Path("runs") / "r1")
    (tmp_path / "data_docs" / "escape").symlink_to(tmp_path / "landing")
    assert served_path(home, "/reports/latest/report.html") == (tmp_path / "reports/runs/r1/report.html").resolve()
    assert served_path(home, "/data_docs/") == (tmp_path / "data_docs/index.html").resolve()
    for refused in ("/warehouse.duckdb", "/landing/b/patients.csv", "/gx_results/x.json", "/reports/../secret.txt",
                    "/reports/%2e%2e/secret.txt", "/data_docs/escape/b/patients.csv", "/secret.txt"):  # fmt: skip
        assert served_path(home, refused) is None, refused
    url = "http://127.0.0.1:8765"
    assert docs_link(url, home, tmp_path / "data_docs" / "index.html") == f"{url}/data_docs/index.html"
    assert docs_link(url, home, tmp_path / "landing" / "b" / "patients.csv") is None
    assert docs_link(url, home, "/elsewhere/report.html") is None


def test_settings_refuse_an_unknown_time_zone_and_a_non_http_docs_url(tmp_path):
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        Settings(home=tmp_path, timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="http"):
        Settings(home=tmp_path, docs_url="file:///tmp")
    assert Settings(home=tmp_path, docs_url="http://h:1/").docs_url == "http://h:1"


@pytest.mark.parametrize(
    ("batch_id", "problem"),
    [("x/../y", "not valid"), ("../etc", "not valid"), ("daily-20241340", "impossible date"),
     ("initial-20230101-20231231", "network starts on 2024-01-01")],
)  # fmt: skip
def test_batch_ids_are_checked_before_anything_runs(batch_id, problem):
    with pytest.raises(InvalidBatchId, match=problem):
        check_batch_id(batch_id, dt.date(2024, 1, 1))


def test_run_names_are_the_batch_and_say_when_they_rebuild():
    assert run_name("daily-20260101") == "daily-20260101"
    assert run_name("daily-20260101", full_refresh=True, force=True) == "daily-20260101-full-refresh"
    assert run_name("daily-20260101", force=True) == "daily-20260101-forced"


def test_an_interruption_is_found_under_dbts_wrapping():
    from prefect.exceptions import TerminationSignal

    from flows.dbt_runner import interruption

    for stop in (KeyboardInterrupt(), TerminationSignal(signal.SIGTERM)):
        try:
            try:
                raise stop
            except BaseException as inner:
                raise ValueError("Failed to invoke dbt command") from inner
        except ValueError as wrapped:
            assert interruption(wrapped) is stop
    assert interruption(ValueError("a parse error")) is None


def test_a_full_disk_is_named_with_its_stage_and_what_was_kept(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("Failed to commit") from inner
    except RuntimeError as error:
        assert disk_full(error) is not None
        message = safe_message(error, stage="load", home=tmp_path)
    assert message.startswith(f"No space left on device on the file system of {tmp_path}")
    assert "during stage load" in message and "run the batch again" in message
    assert disk_full(RuntimeError("IO Error: No space left on device")) is not None  # DuckDB's own text
    assert disk_full(RuntimeError("other")) is None
    assert safe_message(RuntimeError("Jane Doe")) == "RuntimeError (details in the flow run's logs)"


def test_the_console_prints_a_platform_errors_message_once_without_traceback():
    from expectations.results import CheckpointOutcome, QualityGateFailed
    from flows.run_cli import _OneMessage

    error = QualityGateFailed(CheckpointOutcome("raw", False, "r", "daily-1", None, ()))
    record = logging.LogRecord("prefect.flow_runs", logging.ERROR, "", 0, "Encountered exception during execution: "
                               "%r", (error,), (type(error), error, None))  # fmt: skip
    assert _OneMessage().filter(record)
    assert record.exc_info is None and record.getMessage().endswith(" ...") and "Fix the source" not in record.msg
    finished = logging.LogRecord("prefect.flow_runs", logging.INFO, "", 0, "Finished in state Failed('Quality gate"
                                 " failed: x\\n  - suite y')", (), None)  # fmt: skip
    assert _OneMessage().filter(finished) and "suite y" not in finished.getMessage()
    other = ValueError("a bug")
    record = logging.LogRecord("prefect.flow_runs", logging.ERROR, "", 0, "boom", (), (ValueError, other, None))
    assert _OneMessage().filter(record) and record.exc_info is not None  # a bug keeps its traceback


LEAKY = """
import sys
if sys.argv[1] == "with-flows":
    import flows  # registers the exit hook
import duckdb, duckdb_engine, great_expectations, sqlalchemy as sa
engine = sa.create_engine("duckdb:///:memory:")
with engine.connect() as connection:
    connection.execute(sa.text("select 1")).fetchall()
engine.dispose()
"""


def test_no_nanobind_leak_lines_at_exit_and_the_test_can_see_them():
    cwd = Path(__file__).resolve().parents[2]
    clean = subprocess.run([sys.executable, "-c", LEAKY, "with-flows"], capture_output=True, text=True, cwd=cwd)
    assert clean.returncode == 0 and "nanobind" not in clean.stderr, clean.stderr[-500:]
    leaky = subprocess.run([sys.executable, "-c", LEAKY, "without"], capture_output=True, text=True, cwd=cwd)
    assert "nanobind: leaked" in leaky.stderr  # what users saw before: proves this check can fail
