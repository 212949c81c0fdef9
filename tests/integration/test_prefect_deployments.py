"""The pipeline on a real Prefect server: deployments from deployments/prefect.yaml, a process worker, a daily run
that publishes, a defective batch that fails its gate, the CLI against the same server, and no PHI or secret
anywhere a run writes to (API logs, artifacts, state messages, dbt logs and target/, CLI and worker output).

One module fixture starts `prefect server start` on a free loopback port with SQLite under a temporary
PREFECT_HOME. The initial batch is landed beforehand with a canary patient (a recognisable name, SSN and e-mail)
written into its patients file, and the worker runs with a canary Snowflake password in its environment.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from flows import runs
from flows.registry import load_registry
from generators.batch import NetworkSpec, generate_initial

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NETWORK = NetworkSpec(seed=11, patients=1000, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 2, 29)
INITIAL = "initial-20240101-20240229"
DEFECTIVE = "daily-20240301"
CANARY = {"first_name": "Quintavius", "last_name": "Zzcanarywood", "ssn": "987-65-4329",
          "email": "quintavius.canary@example.org"}  # fmt: skip
SECRET = "canary-Snowflake-pw-7Yq2"
RUN_TIMEOUT = 900


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _inject_canary(batch: Path) -> None:
    """Overwrite the first patient's name, SSN and e-mail with the canary; keep the manifest's checksums true."""
    manifest_path = batch / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    entry = next(e for e in manifest["files"] if e["source"] == "registration__patients")
    path = batch / entry["file"]
    lines = path.read_bytes().decode("utf-8").splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    row = next(csv.reader([lines[1]]))
    for column, value in CANARY.items():
        row[header.index(column)] = value
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=lines[1][len(lines[1].rstrip("\r\n")) :]).writerow(row)
    lines[1] = buffer.getvalue()
    data = "".join(lines).encode("utf-8")
    path.write_bytes(data)
    entry["sha256"], entry["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


class Platform:
    """The running server and worker, the data home and the environment every command gets."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(root / "prefect_home"),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_PORT": str(self.port),
            "HOSPITAL_HOME": str(self.home),
            "HOSPITAL_PATIENTS": str(NETWORK.patients),
            "HOSPITAL_SEED": str(NETWORK.seed),
            "HOSPITAL_START_DATE": NETWORK.start_date.isoformat(),
            "HOSPITAL_END_DATE": END.isoformat(),
            "HOSPITAL_LOCK_TIMEOUT_SECONDS": "600",
            "TQDM_DISABLE": "1",
            "SNOWFLAKE_PASSWORD": SECRET,
            "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD": SECRET,
        }
        self.env.pop("PREFECT_PROFILES_PATH", None)
        self.outputs: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str, log: str) -> subprocess.Popen:
        handle = (self.root / log).open("w")
        process = subprocess.Popen(args, cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def command(self, *args: str, check: bool = True, attempts: int = 3) -> subprocess.CompletedProcess:
        """Run a CLI command; SQLite 'database is locked' on a busy server is retried."""
        for attempt in range(attempts):
            done = subprocess.run(args, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
            self.outputs += [done.stdout, done.stderr]
            if done.returncode == 0 or "database is locked" not in done.stdout + done.stderr:
                break
            time.sleep(2 + attempt * 3)
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done

    def wait_healthy(self, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.api}/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise AssertionError(f"prefect server did not answer on {self.api} within {seconds} s")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A server, the work pool, the deployments, a worker, and the initial batch landed with the canary."""
    root = tmp_path_factory.mktemp("prefect_platform")
    platform = Platform(root)
    batch = generate_initial(platform.home / "landing", NETWORK, END, registry=load_registry())
    _inject_canary(batch.path)
    platform.start(str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(platform.port),
                   log="server.log")  # fmt: skip
    try:
        platform.wait_healthy()
        platform.command(str(BIN / "prefect"), "work-pool", "create", "hospital-process", "--type", "process")
        platform.command(str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
                         "deployments/prefect.yaml")  # fmt: skip
        platform.start(str(BIN / "prefect"), "worker", "start", "--pool", "hospital-process", "--limit", "1",
                       log="worker.log")  # fmt: skip
        yield platform
    finally:
        platform.stop()


def _run_deployment(platform: Platform, name: str, parameters: dict):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: platform.api}):
        flow_run = run_deployment(name=name, parameters=parameters, timeout=0)
        deadline = time.monotonic() + RUN_TIMEOUT
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                flow_run = client.read_flow_run(flow_run.id)
                if flow_run.state is not None and flow_run.state.is_final():
                    return flow_run
                time.sleep(3)
    raise AssertionError(f"{name} did not finish within {RUN_TIMEOUT} s; see {platform.root}/worker.log")


def _api_texts(platform: Platform) -> tuple[list[str], list[dict]]:
    """Every log message, artifact and flow run state message the server holds; and the artifacts."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    texts: list[str] = []
    with temporary_settings(updates={PREFECT_API_URL: platform.api}), get_client(sync_client=True) as client:
        offset = 0
        while True:
            logs = client.read_logs(log_filter=LogFilter(), limit=200, offset=offset)
            texts += [log.message for log in logs]
            if len(logs) < 200:
                break
            offset += 200
        artifacts = client.read_artifacts()
        texts += [f"{a.key} {a.description} {json.dumps(a.data)}" for a in artifacts]
        texts += [f"{r.name} {r.state.message if r.state else ''}" for r in client.read_flow_runs(limit=200)]
        records = [{"key": a.key, "type": a.type, "data": a.data, "flow_run_id": a.flow_run_id} for a in artifacts]
    return texts, records


@pytest.fixture(scope="module")
def daily_run(platform):
    """The daily deployment's first run: the warehouse is empty, so it takes the landed initial batch."""
    return _run_deployment(platform, "hospital-pipeline/daily-incremental", {})


def test_daily_deployment_publishes_the_report_with_artifacts(platform, daily_run):
    assert daily_run.state.is_completed(), daily_run.state.message
    latest = platform.home / "reports" / "latest" / "report.html"
    assert latest.is_file()
    run = runs.latest_run(platform.home / "warehouse.duckdb", INITIAL)
    assert (run.status, run.flow_run_id) == ("published", str(daily_run.id))
    _, artifacts = _api_texts(platform)
    keys = {a["key"] for a in artifacts}
    assert {"hospital-run-summary", "hospital-report", "hospital-dbt-docs", "hospital-data-docs",
            "hospital-checkpoint-raw", "hospital-checkpoint-marts"} <= keys  # fmt: skip
    summary = next(a for a in artifacts if a["key"] == "hospital-run-summary" and a["flow_run_id"] == daily_run.id)
    assert f"batch `{INITIAL}` published" in summary["data"]
    assert "| raw | passed |" in summary["data"] and "| marts | passed |" in summary["data"]
    assert "Headline KPIs" in summary["data"]


def test_each_dbt_node_ran_as_a_prefect_task(platform, daily_run):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: platform.api}), get_client(sync_client=True) as client:
        names = {task.name for task in client.read_task_runs(limit=200)}
    assert any(name.startswith("model ") for name in names), sorted(names)[:20]


@pytest.fixture(scope="module")
def defective_run(platform, daily_run):
    report = platform.home / "reports" / "latest" / "report.html"
    before = (os.readlink(report.parent), hashlib.sha256(report.read_bytes()).hexdigest())
    flow_run = _run_deployment(
        platform, "hospital-pipeline/daily-incremental", {"batch_id": DEFECTIVE, "defect_rate": 0.25}
    )
    after = (os.readlink(report.parent), hashlib.sha256(report.read_bytes()).hexdigest())
    return flow_run, before, after


def test_defective_batch_fails_its_gate_and_keeps_the_last_report(platform, defective_run):
    flow_run, before, after = defective_run
    assert flow_run.state.is_failed()
    assert "Quality gate failed" in flow_run.state.message
    failed = runs.latest_run(platform.home / "warehouse.duckdb", DEFECTIVE)
    assert (failed.status, failed.stage) == ("failed", "raw checkpoint")
    listed = [line for line in failed.message.splitlines() if line.startswith("  - suite ")]
    assert listed, failed.message  # the failed expectations are named
    assert listed[0].strip()[2:60] in flow_run.state.message
    assert after == before


def _raw_rows(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = connection.execute("select table_name from duckdb_tables() where schema_name = 'raw'").fetchall()
        return sum(connection.execute(f'select count(*) from raw."{t}"').fetchone()[0] for (t,) in tables)


def test_cli_rerun_of_a_published_batch_changes_nothing(platform, defective_run):
    warehouse = platform.home / "warehouse.duckdb"
    rows, count = _raw_rows(warehouse), len(runs.last_runs(warehouse, 100))
    done = platform.command(str(BIN / "hospital"), "run")
    assert "was published before: nothing changed" in done.stdout
    assert (_raw_rows(warehouse), len(runs.last_runs(warehouse, 100))) == (rows, count)


def test_cli_rerun_of_a_failed_batch_resumes_without_duplicates_and_exits_non_zero(platform, defective_run):
    warehouse = platform.home / "warehouse.duckdb"
    rows = _raw_rows(warehouse)
    done = platform.command(str(BIN / "hospital"), "run", "--batch", DEFECTIVE, check=False)
    assert done.returncode == 1
    assert "Quality gate failed: checkpoint 'raw'" in done.stderr
    assert f"batch {DEFECTIVE} failed at stage: raw checkpoint" in done.stderr
    assert _raw_rows(warehouse) == rows  # the batch's files were skipped, not loaded twice


def test_cli_status_and_docs_show_runs_and_where_things_are(platform, defective_run):
    status = platform.command(str(BIN / "hospital"), "status").stdout
    assert INITIAL in status and DEFECTIVE in status
    assert "published" in status and "failed" in status
    assert str(platform.home / "reports" / "latest" / "report.html") in status
    docs = platform.command(str(BIN / "hospital"), "docs").stdout
    assert docs.count("file://") == 3


def test_no_phi_or_secret_in_logs_artifacts_dbt_output_or_cli(platform, defective_run):
    warehouse = platform.home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:  # the canary really went through
        loaded = connection.execute(
            "select count(*) from raw.registration__patients where last_name = ?", [CANARY["last_name"]]
        ).fetchone()[0]
    assert loaded == 1
    texts, _ = _api_texts(platform)
    assert len(texts) > 100
    for folder in (platform.home / "dbt", platform.home / "dbt_docs"):
        texts += [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]
    texts += platform.outputs
    texts += [(platform.root / name).read_text(errors="replace") for name in ("worker.log", "server.log")]
    needles = [*CANARY.values(), SECRET]
    found = {needle for needle in needles for text in texts if needle.lower() in text.lower()}
    assert not found, f"found in run output: {sorted(found)}"


def test_a_second_writer_waits_for_the_warehouse_slot_then_fails_clearly(platform, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.locking import WarehouseLockTimeout, warehouse_limit_name, warehouse_lock

    warehouse = tmp_path / "busy.duckdb"
    with temporary_settings(updates={PREFECT_API_URL: platform.api}):
        with warehouse_lock(warehouse, timeout_seconds=60) as name:
            assert name == warehouse_limit_name(warehouse)
            with pytest.raises(WarehouseLockTimeout) as caught, warehouse_lock(warehouse, timeout_seconds=3):
                pass
        with warehouse_lock(warehouse, timeout_seconds=10):  # released: the next run gets the slot
            pass
    assert str(warehouse) in str(caught.value) and name in str(caught.value)
