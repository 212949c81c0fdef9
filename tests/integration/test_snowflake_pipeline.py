"""`hospital run` on Snowflake end to end, against fakesnow's server (docs/snowflake.md, "The whole pipeline").

One module fixture starts Prefect's test harness and fakesnow's server (tests/integration/snowkit.py: the emulator
the real connector, dbt-snowflake and GX's snowflake-sqlalchemy all reach over http), saves a prefect-snowflake
``SnowflakeConnector`` block pointing at it, and runs the pipeline flow with ``HOSPITAL_WAREHOUSE=snowflake`` and
``HOSPITAL_SNOWFLAKE_BLOCK`` on the initial batch of a small network (300 patients, January 2024): land, PUT and
COPY INTO, the raw gate on Snowflake, ``dbt build`` and the snapshots on the ``snowflake`` target, the marts gate,
dbt docs, and the report published from the Snowflake marts. The same seed then runs on the embedded DuckDB, and the
two published reports must show the same KPIs.

The daily batch goes as far as the emulator allows: an incremental run of dbt-snowflake first creates its new rows
as ``create or replace temporary table <database>.<schema>.<model>__dbt_tmp``, and fakesnow (DuckDB) refuses a
temporary table outside its ``temp`` catalog; so the daily run loads and passes the raw gate, then must fail at the
dbt stage on exactly the incremental models, for exactly that reason, with nothing published and the initial report
still the latest (the gap is named here and in docs/snowflake.md; merges and snapshot updates are tested on DuckDB).
dbt's unit tests hit the same gap and are left out of builds on the emulator only. What dbt would send to Snowflake
(every model, snapshot and test, incremental filters included) is compiled with ``dbt compile --target snowflake``
and parsed with sqlglot's Snowflake dialect.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from generators.batch import NetworkSpec, initial_batch_id
from tests.integration.snowkit import emulator_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NETWORK = NetworkSpec(seed=5, patients=300, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 1, 31)
INITIAL = initial_batch_id(NETWORK.start_date, END)
DAILY = "daily-20240201"
DATABASE = "HOSPITAL"
BLOCK = "hospital-emulator"
CANARY = "canary-pw-7f3e9b21d4c8"  # the block's password (the emulator accepts any): looked for everywhere


@dataclass
class Runs:
    """The two data homes after their runs, and what the flows returned or raised."""

    snowflake_home: Path
    duckdb_home: Path
    snowflake: dict
    duckdb: dict
    daily_error: BaseException | None
    server: dict
    compiled: Path  # dbt compile --target snowflake's target folder (run while the emulator held the built models)


def _env(patch: pytest.MonkeyPatch, values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            patch.delenv(name, raising=False)
        else:
            patch.setenv(name, value)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Iterator[Runs]:
    import snowflake.connector
    from prefect.testing.utilities import prefect_test_harness
    from prefect_snowflake import SnowflakeConnector, SnowflakeCredentials

    from flows.pipeline import pipeline
    from flows.settings import Settings

    root = tmp_path_factory.mktemp("snowflake-pipeline")
    common = {"HOSPITAL_PATIENTS": str(NETWORK.patients), "HOSPITAL_SEED": str(NETWORK.seed),
              "HOSPITAL_START_DATE": NETWORK.start_date.isoformat(), "HOSPITAL_END_DATE": END.isoformat(),
              "HOSPITAL_DEFECT_RATE": None, "HOSPITAL_HOME": None,
              "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch, prefect_test_harness(server_startup_timeout=180):
        _env(patch, common)
        with emulator_server() as server:
            with snowflake.connector.connect(**server) as connection:
                connection.cursor().execute(f"create database if not exists {DATABASE}")
            credentials = SnowflakeCredentials(account=server["account"], user=server["user"],
                                               password=CANARY, role="HOSPITAL_LOADER")  # fmt: skip
            SnowflakeConnector(credentials=credentials, database=DATABASE, warehouse="emulator",
                               schema="RAW").save(BLOCK, overwrite=True)  # fmt: skip
            # The block holds the credentials; the variables say where the account is reached (the emulator)
            # and that it is one (one dbt thread: its sessions share one in-memory database).
            _env(patch, {"HOSPITAL_WAREHOUSE": "snowflake", "HOSPITAL_SNOWFLAKE_BLOCK": BLOCK,
                         "SNOWFLAKE_HOST": server["host"], "SNOWFLAKE_PORT": str(server["port"]),
                         "SNOWFLAKE_PROTOCOL": server["protocol"], "SNOWFLAKE_EMULATOR": "1",
                         "SNOWFLAKE_THREADS": "1", "SNOWFLAKE_PASSWORD": None,
                         "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD": None})  # fmt: skip
            snowflake_home = root / "snowflake-home"
            on_snowflake = pipeline(batch_id=INITIAL, home=str(snowflake_home), dbt_node_tasks=False)
            daily_error = None
            try:
                pipeline(batch_id=DAILY, home=str(snowflake_home), dbt_node_tasks=False)
            except Exception as error:  # the emulator's merge gap: asserted below
                daily_error = error
            compiled = _compile(root, Settings(home=snowflake_home))
            _env(patch, {"HOSPITAL_WAREHOUSE": None, "HOSPITAL_SNOWFLAKE_BLOCK": None})
            duckdb_home = root / "duckdb-home"
            on_duckdb = pipeline(batch_id=INITIAL, home=str(duckdb_home), dbt_node_tasks=False)
            yield Runs(snowflake_home, duckdb_home, on_snowflake, on_duckdb, daily_error, dict(server), compiled)


def _compile(root: Path, settings) -> Path:
    """``dbt compile`` on the ``snowflake`` target, as the pipeline's dbt would run it (its resource's profile)."""
    from flows.dbt_runner import run_dbt

    target = root / "compile-target"
    run_dbt(["compile"], project_dir=settings.dbt_project_dir, warehouse=settings.resource(), target_path=target,
            log_path=root / "compile-logs", node_tasks=False)  # fmt: skip
    return target


def _manifest(home: Path) -> dict:
    return json.loads((home / "reports" / "latest" / "manifest.json").read_text(encoding="utf-8"))


def test_the_initial_batch_is_published_from_the_snowflake_marts(runs: Runs) -> None:
    assert runs.snowflake["status"] == "published", runs.snowflake
    stages = [stage for stage, _, _ in runs.snowflake["stages"]]
    assert stages == ["land", "load", "raw checkpoint", "dbt build and snapshots", "marts checkpoint", "publish"]
    assert [c["checkpoint"] for c in runs.snowflake["checkpoints"]] == ["raw", "marts"]
    assert all(c["success"] for c in runs.snowflake["checkpoints"])
    assert not (runs.snowflake_home / "warehouse.duckdb").exists()  # nothing went to the embedded file
    report = runs.snowflake_home / "reports" / "latest" / "report.html"
    assert report.exists() and (runs.snowflake_home / "dbt_docs" / "static_index.html").exists()


def test_the_snowflake_run_publishes_the_same_kpis_as_the_duckdb_run_of_the_same_seed(runs: Runs) -> None:
    assert runs.duckdb["status"] == "published", runs.duckdb
    on_snowflake, on_duckdb = _manifest(runs.snowflake_home), _manifest(runs.duckdb_home)
    assert on_snowflake["kpis"] == on_duckdb["kpis"]
    assert any(k["value"] not in ("n/a", "suppressed") for k in on_snowflake["kpis"])
    assert on_snowflake["tables"] == on_duckdb["tables"] and on_snowflake["missing_marts"] == []
    assert on_snowflake["suppressed_cells"] == on_duckdb["suppressed_cells"]


def test_the_run_and_load_ledgers_live_in_snowflake(runs: Runs) -> None:
    import snowflake.connector

    with snowflake.connector.connect(**runs.server, database=DATABASE) as connection:
        ledger = connection.cursor().execute(
            "select batch_id, status from ledger.pipeline_runs order by started_at").fetchall()  # fmt: skip
        loads = connection.cursor().execute("select count(distinct batch_id) from ledger.load_ledger").fetchone()
    assert ledger[0] == (INITIAL, "published")
    assert loads[0] == 2  # the initial batch and the daily one (the daily run failed after loading)


def test_the_daily_batch_runs_until_the_emulators_temporary_table_gap_and_publishes_nothing(runs: Runs) -> None:
    # EMULATOR GAP (docs/snowflake.md): fakesnow refuses dbt-snowflake's database-qualified temporary tables, which
    # every incremental run creates; on Snowflake the daily build merges the day's rows (tested on DuckDB).
    import re

    from flows.runs import last_runs
    from flows.warehouse.resource import as_resource

    assert runs.daily_error is not None, "the daily run passed on the emulator: the gap closed, drop this test"
    message = str(runs.daily_error)
    failed = re.findall(r"model (\w+) \(error\)", message)
    incremental = {path.stem for path in (Path(__file__).parents[2] / "dbt_project" / "models").rglob("*.sql")
                   if "materialized='incremental'" in path.read_text().replace('"', "'").replace(" ", "")}  # fmt: skip
    assert failed and set(failed) <= incremental, (failed, message)
    log = (runs.snowflake_home / "dbt" / "logs" / "dbt.log").read_text(encoding="utf-8")
    reasons = set(re.findall(r"Database Error in model \w+ .*\n\s+(.*)", log))
    assert reasons == {'001003 (42000): Parser Error: TEMPORARY table names can *only* use the "temp" catalog'}
    resource = as_resource({"kind": "snowflake", "home": str(runs.snowflake_home), "block": BLOCK})
    with pytest.MonkeyPatch.context() as patch:
        _env(patch, {"SNOWFLAKE_HOST": runs.server["host"], "SNOWFLAKE_PORT": str(runs.server["port"]),
                     "SNOWFLAKE_PROTOCOL": runs.server["protocol"]})  # fmt: skip
        daily = [run for run in last_runs(resource, 10) if run.batch_id == DAILY]
    assert daily and daily[0].status == "failed" and daily[0].stage == "dbt build and snapshots"
    assert _manifest(runs.snowflake_home)["run_id"] == runs.snowflake["run_id"]  # the initial report stays latest


def test_no_secret_reaches_the_data_home_prefects_logs_or_artifacts(runs: Runs) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter

    leaked = [path for path in runs.snowflake_home.rglob("*")
              if path.is_file() and CANARY.encode() in path.read_bytes()]  # fmt: skip
    assert leaked == []  # dbt's manifest.json, run_results.json and logs, Data Docs, the report, the ledgers' files

    def every(read, **kwargs) -> list:
        items, offset = [], 0
        while page := read(limit=200, offset=offset, **kwargs):  # the API's page size
            items += page
            offset += len(page)
        return items

    with get_client(sync_client=True) as client:
        logs = every(client.read_logs, log_filter=LogFilter())
        artifacts = every(client.read_artifacts)
        flow_runs = every(client.read_flow_runs)
    assert len(logs) > 20 and artifacts and flow_runs  # the runs logged and left artifacts: the search sees them
    assert not [log.message for log in logs if CANARY in log.message]
    assert not [a.key for a in artifacts if CANARY in str(a.data)]
    assert not [r.name for r in flow_runs if CANARY in str(r.parameters)]  # subflows got a reference, no secret
    assert "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD" not in os.environ  # dbt's variables lived only for its commands


def test_the_sql_dbt_sends_to_snowflake_parses_in_snowflakes_dialect(runs: Runs) -> None:
    # fakesnow translates what it receives; sqlglot's Snowflake dialect checks what a real account would receive.
    import sqlglot

    manifest = json.loads((runs.compiled / "manifest.json").read_text(encoding="utf-8"))
    nodes = [node for node in manifest["nodes"].values() if node["resource_type"] in ("model", "snapshot", "test")]
    compiled = {node["name"]: node["compiled_code"] for node in nodes if node.get("compiled_code")}
    # every model, snapshot and data test (44 + 3 + 92: each model's rules are one `checks` test)
    assert len(compiled) == len(nodes) > 130
    unparsed = {}
    for name, sql in compiled.items():
        try:
            sqlglot.parse(sql, read="snowflake")
        except sqlglot.errors.ParseError as error:
            unparsed[name] = str(error).splitlines()[0]
    assert unparsed == {}
    incremental = [sql for sql in compiled.values() if "_loaded_at >" in sql and "from HOSPITAL" in sql]
    assert incremental, "the incremental models compiled without their is_incremental() filter"
