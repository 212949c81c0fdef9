"""Nightly operations on a real Prefect server, walked as the operator does (docs/pipeline.md, Operations):
`prefect work-pool create`, `prefect deploy --all --prefect-file deployments/prefect.yaml`, `prefect worker start`,
`hospital automations apply --block ...`; then what must follow:

- the server's scheduler (not a manual trigger) creates the scheduled runs at 02:00 / Sunday 04:00 hospital time,
  and one of its runs, once due (its scheduled time moved to now through the API), is picked up by the worker and
  publishes the report with its artifacts;
- `hospital serve` registers its own deployments next to the pool ones, leaves those untouched and, when stopped
  (SIGTERM), pauses only its own; a bad --timezone exits 2 with one line and touches nothing;
- a defective batch fails its gate and keeps the last report; the failed pipeline run and a failed backfill each
  send exactly one notification (through a webhook block, to a receiver on 127.0.0.1) naming batch, checkpoint,
  expectations, failing rows, Data Docs and the run's link; successful runs and console runs send none;
- the CLI against the same server, and no PHI or secret anywhere a run writes to (API logs, artifacts, state
  messages, dbt logs and target/, CLI, worker and server output, notification bodies).

One module fixture starts `prefect server start` on a free loopback port with SQLite under a temporary
PREFECT_HOME. The initial batch is landed beforehand with a canary patient (a recognisable name, SSN and e-mail)
written into its patients file; the worker runs with a canary Snowflake password in its environment, and the
webhook block holds a canary token in its secrets. Assertions name no flow-run or task names (they are the lead's
to change): runs are identified by id, deployment and state.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import http.server
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zoneinfo
from pathlib import Path

import duckdb
import pytest

from flows import runs
from flows.contracts.registry import load_registry
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
WEBHOOK_TOKEN = "canary-webhook-token-K4v8"  # the secret part of the webhook URL, kept in the block's secrets
BLOCK = "custom-webhook/hospital-alerts"
AUTOMATION = "hospital-run-failed"
HOSPITAL_ZONE = zoneinfo.ZoneInfo("America/Chicago")
RUN_TIMEOUT = 900
NOTIFY_TIMEOUT = 180


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


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 in a thread that keeps every POST (path and body) it receives."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
                with receiver._lock:
                    receiver.posts.append((self.path, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def messages(self) -> list[tuple[str, dict]]:
        with self._lock:
            return [(path, json.loads(body)) for path, body in self.posts]

    def wait_for(self, needle: str, seconds: float = NOTIFY_TIMEOUT) -> list[tuple[str, dict]]:
        """The messages whose body mentions ``needle``, once there is at least one (or [] after ``seconds``)."""
        deadline = time.monotonic() + seconds
        while True:
            found = [(path, message) for path, message in self.messages() if needle in message["body"]]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(2)


class Platform:
    """The running server and worker, the data home and the environment every command gets."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.ui = f"http://127.0.0.1:{self.port}"
        self.docs_url = f"http://127.0.0.1:{_free_port()}"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(root / "prefect_home"),
            "PREFECT_API_URL": self.api,
            "PREFECT_UI_URL": self.ui,  # the server renders the notifications' run links with it
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_PORT": str(self.port),
            "HOSPITAL_HOME": str(self.home),
            "HOSPITAL_PATIENTS": str(NETWORK.patients),
            "HOSPITAL_SEED": str(NETWORK.seed),
            "HOSPITAL_START_DATE": NETWORK.start_date.isoformat(),
            "HOSPITAL_END_DATE": END.isoformat(),
            "HOSPITAL_LOCK_TIMEOUT_SECONDS": "600",
            "HOSPITAL_DOCS_URL": self.docs_url,  # where `hospital docs --serve` answers; artifacts link there
            "TQDM_DISABLE": "1",
            "SNOWFLAKE_PASSWORD": SECRET,
            "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD": SECRET,
        }
        self.env.pop("PREFECT_PROFILES_PATH", None)
        self.outputs: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.receiver = WebhookReceiver()
        self.deployed_at: dt.datetime | None = None

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

    @contextlib.contextmanager
    def client(self):
        """A synchronous Prefect client of this server."""
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api}), get_client(sync_client=True) as client:
            yield client

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
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.receiver.server.shutdown()
        notifications = [message for _, message in self.receiver.messages()]  # kept for reading after a run
        (self.root / "notifications.json").write_text(json.dumps(notifications, indent=2), encoding="utf-8")


def _save_webhook_block(platform: Platform) -> None:
    """The operator's notification block: the receiver's URL, its secret part in the block's secrets."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.settings import PREFECT_API_URL, temporary_settings

    block = CustomWebhookNotificationBlock(
        name="hospital-alerts",
        url=f"http://127.0.0.1:{platform.receiver.port}/hook/{{{{token}}}}",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        secrets={"token": WEBHOOK_TOKEN},
    )
    with temporary_settings(updates={PREFECT_API_URL: platform.api}):
        block.save(BLOCK.split("/")[1])


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A server, a webhook block, the work pool, the deployments, a worker, and the initial batch with the canary."""
    root = tmp_path_factory.mktemp("prefect_platform")
    platform = Platform(root)
    batch = generate_initial(platform.home / "landing", NETWORK, END, registry=load_registry())
    _inject_canary(batch.path)
    platform.start(str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(platform.port),
                   log="server.log")  # fmt: skip
    try:
        platform.wait_healthy()
        _save_webhook_block(platform)
        platform.command(str(BIN / "prefect"), "work-pool", "create", "hospital-process", "--type", "process")
        platform.deployed_at = dt.datetime.now(dt.UTC)
        platform.command(str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file",
                         "deployments/prefect.yaml")  # fmt: skip
        platform.start(str(BIN / "prefect"), "worker", "start", "--pool", "hospital-process", "--limit", "1",
                       log="worker.log")  # fmt: skip
        yield platform
    finally:
        platform.stop()


def _deployments(platform: Platform) -> dict[str, dict]:
    """Every deployment on the server by `flow/name`: what `prefect deploy` or `serve` set, and its scheduled runs."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    found = {}
    with platform.client() as client:
        flows = {flow.id: flow.name for flow in client.read_flows()}
        for deployment in client.read_deployments():
            scheduled = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment.id]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                ),
                limit=200,
            )
            found[f"{flows[deployment.flow_id]}/{deployment.name}"] = {
                "id": deployment.id, "entrypoint": deployment.entrypoint, "path": deployment.path,
                "pull_steps": deployment.pull_steps, "work_pool": deployment.work_pool_name,
                "job_variables": deployment.job_variables, "parameters": deployment.parameters,
                "tags": sorted(deployment.tags), "paused": deployment.paused,
                "schedules": [(s.schedule.cron, s.schedule.timezone, s.active) for s in deployment.schedules],
                "scheduled_runs": {run.id for run in scheduled},
            }  # fmt: skip
    return found


POOL = ("hospital-pipeline/daily-incremental", "hospital-pipeline/weekly-full-refresh",
        "hospital-backfill/manual-backfill")  # fmt: skip
SERVED = tuple(f"{name}-served" for name in POOL)


def _definition(deployment: dict) -> dict:
    """What serving must never change on a pool deployment (its runs are compared separately)."""
    return {key: value for key, value in deployment.items() if key != "scheduled_runs"}


# --- hospital automations apply ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def automation(platform):
    """`hospital automations apply --block ...` twice, as an operator re-applying after an edit would."""
    first = platform.command(str(BIN / "hospital"), "automations", "apply", "--block", BLOCK)
    second = platform.command(str(BIN / "hospital"), "automations", "apply", "--block", BLOCK)
    with platform.client() as client:
        stored = client.read_automations_by_name(AUTOMATION)
        block = client.read_block_document_by_name(name=BLOCK.split("/")[1], block_type_slug=BLOCK.split("/")[0])
    return first, second, stored, block


def test_automations_apply_creates_once_then_updates_and_keeps_the_webhook_in_the_block(automation):
    first, second, stored, block = automation
    assert len(stored) == 1
    (created,) = stored
    assert first.stdout.startswith(f"created automation {AUTOMATION!r} ({created.id}), notifying through {BLOCK}")
    assert second.stdout.startswith(f"updated automation {AUTOMATION!r} ({created.id})")
    assert created.enabled
    assert [a.block_document_id for a in created.actions if a.type == "send-notification"] == [block.id]
    as_stored = created.model_dump_json()
    assert "127.0.0.1" not in as_stored and WEBHOOK_TOKEN not in as_stored  # the address stays in the block


# --- the scheduler --------------------------------------------------------------------------------------------


def _scheduled_runs(platform: Platform, deployment_id) -> list:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    with platform.client() as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=200,
        )


@pytest.fixture(scope="module")
def scheduled(platform):
    """The runs the server's scheduler service created for each pool deployment (waits for at least 3 each)."""
    deployments = _deployments(platform)
    deadline = time.monotonic() + 180
    while True:
        found = {name: _scheduled_runs(platform, deployments[name]["id"]) for name in POOL}
        if all(len(found[name]) >= 3 for name in POOL[:2]) or time.monotonic() > deadline:
            break
        time.sleep(3)
    with platform.client() as client:
        schedule_ids = {name: [s.id for s in client.read_deployment(deployments[name]["id"]).schedules]
                        for name in POOL}  # fmt: skip
    return deployments, found, schedule_ids


def _wall_clock_utc(day: dt.date, hour: int) -> dt.datetime:
    """``hour``:00 hospital time on ``day`` in UTC (a wall time the spring-forward gap skips: the offset after it,
    as Prefect's scheduler does; tests/unit/test_deployments_schedules.py pins that)."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=HOSPITAL_ZONE, fold=1).astimezone(dt.UTC)


def _next_local(after: dt.datetime, hour: int, weekday: int | None, count: int) -> list[dt.datetime]:
    """The next ``count`` instants after ``after`` at ``hour``:00 hospital time (on ``weekday`` only, if given)."""
    day, found = after.astimezone(HOSPITAL_ZONE).date(), []
    while len(found) < count:
        moment = _wall_clock_utc(day, hour)
        if moment > after and (weekday is None or day.weekday() == weekday):
            found.append(moment)
        day += dt.timedelta(days=1)
    return found


@pytest.mark.parametrize(
    ("name", "hour", "weekday"),
    [("hospital-pipeline/daily-incremental", 2, None), ("hospital-pipeline/weekly-full-refresh", 4, 6)],
)
def test_the_servers_scheduler_creates_the_runs_at_the_documented_hospital_times(platform, scheduled, name, hour,
                                                                                 weekday):  # fmt: skip
    deployments, found, schedule_ids = scheduled
    made = found[name]
    assert len(made) >= 3, f"the scheduler made {len(made)} run(s) of {name}; see {platform.root}/server.log"
    starts = [run.expected_start_time.astimezone(dt.UTC) for run in made]
    assert starts == _next_local(platform.deployed_at, hour, weekday, len(made))
    for run in made:
        assert run.auto_scheduled and "auto-scheduled" in run.tags
        assert run.created_by is not None and run.created_by.type == "SCHEDULE"
        assert run.created_by.id == schedule_ids[name][0]  # created by the deployment's schedule, no one else
        assert run.parameters == deployments[name]["parameters"]
    assert "bulk DML" not in (platform.root / "server.log").read_text(errors="replace")


def test_the_manual_backfill_deployment_has_no_scheduled_runs(scheduled):
    deployments, found, _ = scheduled
    assert deployments["hospital-backfill/manual-backfill"]["schedules"] == []
    assert found["hospital-backfill/manual-backfill"] == []


# --- hospital serve next to the pool deployments -----------------------------------------------------------------


def test_serve_with_a_bad_timezone_exits_2_with_one_line_and_touches_nothing(platform, scheduled):
    before = _deployments(platform)
    done = platform.command(str(BIN / "hospital"), "serve", "--timezone", "Mars/Olympus", check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: --timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as America/Chicago or "
        "Europe/Berlin (got 'Mars/Olympus')"
    ]
    after = _deployments(platform)
    assert {k: _definition(v) for k, v in after.items()} == {k: _definition(v) for k, v in before.items()}


def test_serve_refuses_a_served_name_that_belongs_to_a_work_pool(platform, scheduled):
    with platform.client() as client:
        flow = client.read_flow_by_name("hospital-backfill")
        squatter = client.create_deployment(
            flow_id=flow.id,
            name="manual-backfill-served",
            work_pool_name="hospital-process",
            entrypoint="flows/backfill.py:backfill",
        )
    try:
        before = _deployments(platform)
        done = platform.command(str(BIN / "hospital"), "serve", check=False)
        after = _deployments(platform)
    finally:
        with platform.client() as client:
            client.delete_deployment(squatter)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: deployment hospital-backfill/manual-backfill-served exists on the server and belongs to work pool "
        "'hospital-process': serving would take it over. Delete it (`prefect deployment delete "
        "hospital-backfill/manual-backfill-served`) or run a worker for it instead of serve"
    ]
    assert {k: _definition(v) for k, v in after.items()} == {k: _definition(v) for k, v in before.items()}


def _zone_far_from_two_and_four(now: dt.datetime) -> str:
    """A fixed-offset zone whose local time is about noon now, so no served schedule comes due while serving."""
    offset = (12 - now.hour + 12) % 24 - 12
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


@pytest.fixture(scope="module")
def served(platform, scheduled):
    """`hospital serve --timezone <zone>` against the server: the deployments before, while serving, after SIGTERM."""
    zone = _zone_far_from_two_and_four(dt.datetime.now(dt.UTC))
    before = _deployments(platform)
    process = platform.start(str(BIN / "hospital"), "serve", "--timezone", zone, log="serve.log")
    deadline = time.monotonic() + 300
    while True:
        during = _deployments(platform)
        log = (platform.root / "serve.log").read_text(errors="replace")
        taken_over = any(_definition(during[name]) != _definition(before[name]) for name in POOL)
        if (set(SERVED) <= set(during) and "being served" in log) or taken_over or process.poll() is not None:
            break
        assert time.monotonic() < deadline, f"hospital serve registered nothing in 300 s: {log[-2000:]}"
        time.sleep(3)
    process.send_signal(signal.SIGTERM)
    returncode = process.wait(120)
    after = _deployments(platform)
    log = (platform.root / "serve.log").read_text(errors="replace")
    platform.outputs.append(log)
    return {"zone": zone, "before": before, "during": during, "after": after, "returncode": returncode, "log": log}


def test_serve_registers_its_own_deployments_and_leaves_the_pool_ones_as_deployed(served):
    before, during = served["before"], served["during"]
    for name in POOL:
        assert _definition(during[name]) == _definition(before[name]), f"serve changed {name}"
        assert before[name]["work_pool"] == "hospital-process" and not before[name]["paused"]
        assert before[name]["scheduled_runs"] <= during[name]["scheduled_runs"]
    assert set(SERVED) <= set(during), served["log"][-2000:]
    for name in SERVED:
        twin = during[name]
        assert twin["work_pool"] is None and not twin["paused"] and "served" in twin["tags"]
        assert all(zone == served["zone"] for _, zone, _ in twin["schedules"])
    assert "note: hospital-pipeline/daily-incremental (work pool hospital-process) stays scheduled too" in served["log"]


def test_stopping_serve_pauses_only_its_own_deployments(served):
    before, after = served["before"], served["after"]
    assert served["returncode"] == 0, served["log"][-2000:]
    assert all(after[name]["paused"] and not after[name]["scheduled_runs"] for name in SERVED)
    for name in POOL:
        assert _definition(after[name]) == _definition(before[name])  # not paused, schedules active
        assert before[name]["scheduled_runs"] <= after[name]["scheduled_runs"]  # the scheduler's runs are kept
    assert "Traceback" not in served["log"]


# --- a scheduled run, due, through the worker ---------------------------------------------------------------


def _wait_final(platform: Platform, flow_run_id):
    deadline = time.monotonic() + RUN_TIMEOUT
    with platform.client() as client:
        while time.monotonic() < deadline:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state is not None and flow_run.state.is_final():
                return flow_run
            time.sleep(3)
    raise AssertionError(f"flow run {flow_run_id} did not end within {RUN_TIMEOUT} s; see {platform.root}/worker.log")


@pytest.fixture(scope="module")
def daily_run(platform, automation, scheduled, served):
    """The daily deployment's first run as its scheduler made it, moved to now through the API (the warehouse is
    empty, so it takes the landed initial batch). The serve session ran before: the pool deployment must work."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Cancelled, Scheduled

    _, found, _ = scheduled
    first = found["hospital-pipeline/daily-incremental"][0]
    now = dt.datetime.now(dt.UTC)
    with platform.client() as client:
        # Scheduler runs that would come due while this module runs would start a second pipeline on its data home
        for name in POOL:
            for run in found[name]:
                if run.id != first.id and run.expected_start_time < now + dt.timedelta(minutes=90):
                    client.set_flow_run_state(run.id, Cancelled(message="due while the test module runs"), force=True)
        moved = client.set_flow_run_state(first.id, Scheduled(scheduled_time=now), force=True)
    assert moved.status == SetStateStatus.ACCEPT
    return _wait_final(platform, first.id)


def test_a_run_the_scheduler_made_is_picked_up_by_the_worker_when_due_and_publishes(platform, scheduled, daily_run):
    deployments, _, schedule_ids = scheduled
    assert daily_run.state.is_completed(), daily_run.state.message
    assert daily_run.auto_scheduled and daily_run.created_by.type == "SCHEDULE"
    assert daily_run.created_by.id == schedule_ids["hospital-pipeline/daily-incremental"][0]
    assert daily_run.deployment_id == deployments["hospital-pipeline/daily-incremental"]["id"]
    assert daily_run.work_pool_name == "hospital-process"
    assert (platform.home / "reports" / "latest" / "report.html").is_file()
    run = runs.latest_run(platform.home / "warehouse.duckdb", INITIAL)
    assert (run.status, run.flow_run_id) == ("published", str(daily_run.id))


def _run_deployment(platform: Platform, name: str, parameters: dict):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: platform.api}):
        flow_run = run_deployment(name=name, parameters=parameters, timeout=0)
    return _wait_final(platform, flow_run.id)


def _api_texts(platform: Platform) -> tuple[list[str], list[dict]]:
    """Every log message, artifact and flow run state message the server holds; and the artifacts."""
    from prefect.client.schemas.filters import LogFilter

    texts: list[str] = []
    with platform.client() as client:
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


def test_daily_deployment_publishes_the_report_with_artifacts(platform, daily_run):
    assert daily_run.state.is_completed(), daily_run.state.message
    _, artifacts = _api_texts(platform)
    keys = {a["key"] for a in artifacts}
    assert {"hospital-run-summary", "hospital-report", "hospital-dbt-docs", "hospital-data-docs",
            "hospital-checkpoint-raw", "hospital-checkpoint-marts"} <= keys  # fmt: skip
    summary = next(a for a in artifacts if a["key"] == "hospital-run-summary" and a["flow_run_id"] == daily_run.id)
    assert f"batch `{INITIAL}` published" in summary["data"]
    assert "| raw | passed |" in summary["data"] and "| marts | passed |" in summary["data"]
    assert "Headline KPIs" in summary["data"]


def test_each_dbt_node_ran_as_a_prefect_task(platform, daily_run):
    with platform.client() as client:
        names = {task.name for task in client.read_task_runs(limit=200)}
    assert any(name.startswith("model ") for name in names), sorted(names)[:20]


def test_runs_are_named_after_their_batch_and_stages_and_their_lines_read_cleanly(platform, daily_run):
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
        TaskRunFilterName,
    )

    assert daily_run.name == INITIAL  # renamed once the scheduled run knew its batch
    with platform.client() as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[daily_run.id])))  # fmt: skip
        stages = {run.name for run in children}
        named = ["generate", f"load-{INITIAL}", "checkpoint-raw", "checkpoint-marts", "dbt-build", "dbt-snapshot",
                 "dbt-docs", "publish-report"]  # fmt: skip
        tasks = {task.name for task in client.read_task_runs(task_run_filter=TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=[run.id for run in children]),
            name=TaskRunFilterName(any_=named)), limit=200)}  # fmt: skip
    assert {"land", "load", "gate-raw", "dbt-build", "gate-marts", "publish"} <= stages, stages
    assert set(named) <= tasks, sorted(tasks)
    worker = (platform.root / "worker.log").read_text(errors="replace")
    assert "Flow run 'land'" in worker  # the flow runs' lines are in the worker's output, under their names
    assert "Task run None" not in worker and "\x1b[" not in worker


def test_the_run_links_open_over_http_from_the_docs_server(platform, daily_run):
    """The link artifacts point under HOSPITAL_DOCS_URL; `hospital docs --serve` answers there with the pages,
    and refuses the warehouse and the landing batches it must never serve."""
    _, artifacts = _api_texts(platform)
    keys = ("hospital-report", "hospital-data-docs", "hospital-dbt-docs")
    links = [a["data"] for a in artifacts if a["key"] in keys and a["flow_run_id"] == daily_run.id]
    urls = [match.group(1) if (match := re.search(r"\((http[^)]+)\)", text)) else text for text in links]
    assert len(urls) == 3 and all(url.startswith(platform.docs_url + "/") for url in urls), urls
    server = platform.start(str(BIN / "hospital"), "docs", "--serve", log="docs.log")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(platform.docs_url + "/", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (platform.root / "docs.log").read_text()
                time.sleep(0.5)
        for url in urls:
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200 and b"<html" in response.read(4096).lower(), url
        for refused in ("/warehouse.duckdb", f"/landing/{INITIAL}/manifest.json", "/reports/../warehouse.duckdb"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(platform.docs_url + refused, timeout=10)
            assert caught.value.code == 404, refused
    finally:
        server.terminate()
        server.wait(30)


# --- a defective batch: the gate fails, the report stays, someone hears of it -------------------------------


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


def _assert_gate_notification(platform: Platform, flow_run, messages: list[tuple[str, dict]]) -> None:
    """Exactly one message for the run, with batch, checkpoint, expectations, counts, Data Docs and the run's link."""
    assert len(messages) == 1, [m["subject"] for _, m in messages]
    ((path, message),) = messages
    assert path == f"/hook/{WEBHOOK_TOKEN}"  # the address came from the block, secret part included
    body = message["body"]
    assert flow_run.state.name in message["subject"]
    failed = runs.latest_run(platform.home / "warehouse.duckdb", DEFECTIVE)
    counts = re.search(rf"checkpoint 'raw' on batch {DEFECTIVE}, (\d+) of (\d+) expectations failed\.", body)
    assert counts and 0 < int(counts.group(1)) <= int(counts.group(2)), body
    listed = [line.strip() for line in failed.message.splitlines() if line.startswith("  - suite ")]
    assert listed[0] in body  # suite, expectation, column and failing rows, as the gate names them
    assert re.search(r"failing rows", body)
    assert re.search(r"^Data Docs index: \S+", body, flags=re.MULTILINE), body
    # the failing validation's own page, over http where `hospital docs --serve` answers: it opens from the UI
    assert re.search(rf"^Over http: {re.escape(platform.docs_url)}/data_docs/validations/raw/\S+\.html$", body,
                     flags=re.MULTILINE), body  # fmt: skip
    assert body.rstrip().endswith(f"Flow run: {platform.ui}/runs/flow-run/{flow_run.id}")


def test_the_failed_pipeline_run_notifies_once_with_batch_gate_counts_and_links(platform, defective_run):
    flow_run, _, _ = defective_run
    _assert_gate_notification(platform, flow_run, platform.receiver.wait_for(str(flow_run.id)))


@pytest.fixture(scope="module")
def backfill_run(platform, defective_run):
    """The backfill deployment over the defective day: its day's pipeline (a subflow) fails the gate again."""
    return _run_deployment(platform, "hospital-backfill/manual-backfill", {"start": "2024-03-01", "end": "2024-03-01"})


def test_a_failed_backfill_notifies_once_and_its_failed_day_does_not_notify_again(platform, backfill_run):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    assert backfill_run.state.is_failed()
    _assert_gate_notification(platform, backfill_run, platform.receiver.wait_for(str(backfill_run.id)))
    with platform.client() as client:
        days = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[backfill_run.id]))
        )
    failed_days = [day for day in days if day.state is not None and day.state.is_failed()]
    assert failed_days  # the day's pipeline failed as a subflow of the backfill ...
    bodies = [message["body"] for _, message in platform.receiver.messages()]
    assert not [day.id for day in failed_days if any(str(day.id) in body for body in bodies)]  # ... unannounced


def _raw_rows(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = connection.execute("select table_name from duckdb_tables() where schema_name = 'raw'").fetchall()
        return sum(connection.execute(f'select count(*) from raw."{t}"').fetchone()[0] for (t,) in tables)


def test_cli_rerun_of_a_published_batch_changes_nothing(platform, backfill_run):
    warehouse = platform.home / "warehouse.duckdb"
    rows, count = _raw_rows(warehouse), len(runs.last_runs(warehouse, 100))
    done = platform.command(str(BIN / "hospital"), "run")
    assert "was published before: nothing changed" in done.stdout
    assert (_raw_rows(warehouse), len(runs.last_runs(warehouse, 100))) == (rows, count)


def test_cli_rerun_of_a_failed_batch_resumes_without_duplicates_and_exits_non_zero(platform, backfill_run):
    warehouse = platform.home / "warehouse.duckdb"
    rows = _raw_rows(warehouse)
    done = platform.command(str(BIN / "hospital"), "run", "--batch", DEFECTIVE, check=False)
    assert done.returncode == 1
    assert "Quality gate failed: checkpoint 'raw'" in done.stderr
    assert f"batch {DEFECTIVE} failed at stage: raw checkpoint" in done.stderr
    assert _raw_rows(warehouse) == rows  # the batch's files were skipped, not loaded twice


def test_cli_status_and_docs_show_runs_and_where_things_are(platform, backfill_run):
    status = platform.command(str(BIN / "hospital"), "status").stdout
    assert INITIAL in status and DEFECTIVE in status
    assert "published" in status and "failed" in status
    assert str(platform.home / "reports" / "latest" / "report.html") in status
    docs = platform.command(str(BIN / "hospital"), "docs").stdout
    assert docs.count("file://") == 3


def test_only_the_failed_deployment_runs_were_notified(platform, daily_run, defective_run, backfill_run):
    """By now a successful deployment run (daily), a failed console run (`hospital run --batch`), a backfill's
    failed day and the stages' subflows have all ended; notifications arrive in order, and both expected ones have
    arrived, so anything sent for the others would be here."""
    expected = {str(defective_run[0].id), str(backfill_run.id)}
    for flow_run_id in expected:
        assert platform.receiver.wait_for(flow_run_id)
    linked = [re.findall(r"/runs/flow-run/([0-9a-f-]{36})", message["body"]) for _, message in
              platform.receiver.messages()]  # fmt: skip
    assert sorted(ids[0] for ids in linked) == sorted(expected)
    with platform.client() as client:
        failed_console_runs = [r for r in client.read_flow_runs(limit=200)
                               if r.deployment_id is None and r.state is not None and r.state.is_failed()]  # fmt: skip
    assert failed_console_runs  # there were failed runs without a deployment, and none was announced


def test_no_phi_or_secret_in_logs_artifacts_dbt_output_cli_or_notifications(platform, backfill_run):
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
    notifications = [json.dumps(message) for _, message in platform.receiver.messages()]
    assert notifications
    texts += notifications
    needles = [*CANARY.values(), SECRET, WEBHOOK_TOKEN]
    found = {needle for needle in needles for text in texts if needle.lower() in text.lower()}
    assert not found, f"found in run output: {sorted(found)}"
