"""The dbt project on the Snowflake target, executed by dbt-snowflake against fakesnow's server (docs/dbt.md).

One module fixture generates a small network (300 patients, January 2024), starts fakesnow's server
(tests/integration/snowkit.py), loads the batch with the platform's Snowflake loader (PUT + COPY on the emulator),
writes a profiles dir in tmp that points dbt-snowflake at the server's host and port, and runs one ``dbt build``
without data tests: every seed, every model and a first snapshot of each snapshot. fakesnow translates Snowflake SQL
to DuckDB, so this checks that the ``snowflake__`` spellings and dbt-snowflake's own macros are accepted and compute
what the rules say, not that Snowflake itself would; a second (merge) run and snapshot updates fail on fakesnow and
stay tested on DuckDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import snowflake.connector
from dbt.cli.main import dbtRunner, dbtRunnerResult

from flows.contracts.registry import load_registry
from flows.warehouse import load_batch, render_summary
from flows.warehouse.snowflake_backend import SnowflakeWarehouse
from generators.batch import NetworkSpec, generate_initial
from tests.integration.dbtkit import copy_project
from tests.integration.snowkit import emulator_server

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=5, patients=300, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 1, 31)
DATABASE = "HOSPITAL"
SALT = "fakesnow-test-salt-" + "0123456789abcdef" * 2
# Every model of the project builds on fakesnow on a first run (docs/dbt.md, "Run on fakesnow").
# Data tests run on DuckDB (557 through the emulator's HTTP server would take minutes); one dbt command, one parse.
BUILD = ["build", "--exclude", "resource_type:test", "resource_type:unit_test"]
FACTS_AND_DIMS = (
    "dim_patients", "dim_physicians", "dim_departments", "dim_hospitals", "dim_payers", "dim_dates",
    "fct_admissions", "fct_appointments", "fct_charges", "fct_claims",
)  # fmt: skip


@dataclass
class SnowflakeBuild:
    """What the module's build and scoped tests left behind on the emulator."""

    connect_kwargs: dict
    build: dbtRunnerResult
    scoped_tests: dbtRunnerResult


def _profiles(folder: Path, server: dict) -> Path:
    """A profiles.yml with the project's profile name whose snowflake target points at the emulator."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(
        "hospital:\n"
        "  target: snowflake\n"
        "  outputs:\n"
        "    snowflake:\n"
        "      type: snowflake\n"
        f"      account: {server['account']}\n"
        f"      user: {server['user']}\n"
        f"      password: {server['password']}\n"
        f"      host: {server['host']}\n"
        f"      port: {server['port']}\n"
        f"      protocol: {server['protocol']}\n"
        f"      database: {DATABASE}\n"
        "      warehouse: emulator\n"
        "      role: HOSPITAL_TRANSFORMER\n"
        "      schema: staging\n"
        # One session: the emulator's connections share one in-memory DuckDB database.
        "      threads: 1\n",
        encoding="utf-8",
    )
    return folder


def _dbt(project: Path, profiles: Path, root: Path, *args: str) -> dbtRunnerResult:
    command = [*args, "--project-dir", str(project), "--profiles-dir", str(profiles),
               "--target-path", str(root / "target"), "--log-path", str(root / "logs")]  # fmt: skip
    return dbtRunner().invoke(command)


@pytest.fixture(scope="module")
def snowflake_build(tmp_path_factory) -> Iterator[SnowflakeBuild]:
    """Generate, load on the emulator with the project's loader, then a first dbt build (no data tests)."""
    root = tmp_path_factory.mktemp("dbt_fakesnow")
    registry = load_registry()
    batch = generate_initial(root / "landing", NETWORK, END, registry=registry).path
    project = copy_project(root / "project")
    with emulator_server() as server:
        with snowflake.connector.connect(**server) as connection:
            connection.cursor().execute(f"create database if not exists {DATABASE}")
        loaded_after = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        connection = snowflake.connector.connect(**server, database=DATABASE, schema="RAW")
        with SnowflakeWarehouse(connection, emulator=True, registry=registry) as warehouse:
            loaded = load_batch(batch, registry, warehouse)
        assert loaded.outcome == "loaded", render_summary(loaded)
        profiles = _profiles(root / "profiles", server)
        build = _dbt(project, profiles, root, *BUILD, "--vars", f"{{surrogate_salt: {SALT}}}")
        # The daily command's narrowed test queries (macros/tests/daily_scope.sql) in the Snowflake spelling.
        scope = f"{{tests_loaded_after: '{loaded_after}'}}"
        scoped = _dbt(project, profiles, root, "test", "--select", "stg_billing__charges", "--vars", scope)
        yield SnowflakeBuild({**server, "database": DATABASE}, build, scoped)


def _rows(build: SnowflakeBuild, statement: str) -> list[tuple]:
    with snowflake.connector.connect(**build.connect_kwargs) as connection:
        return connection.cursor().execute(statement).fetchall()


def _failures(result: dbtRunnerResult) -> list[str]:
    return [f"{item.node.name}: {item.status}: {item.message}" for item in result.result if item.status != "success"]


def test_seeds_and_every_model_build_on_the_snowflake_target(snowflake_build: SnowflakeBuild) -> None:
    assert snowflake_build.build.success, _failures(snowflake_build.build)
    built = {item.node.name for item in snowflake_build.build.result if item.node.resource_type == "model"}
    seeds = [item for item in snowflake_build.build.result if item.node.resource_type == "seed"]
    assert len(seeds) == 7
    assert len(built) == 44 and set(FACTS_AND_DIMS) <= built and "stg_claims__claims" in built


def test_first_snapshots_on_the_snowflake_target_hold_one_current_version_per_key(
    snowflake_build: SnowflakeBuild,
) -> None:
    snapshots = [item for item in snowflake_build.build.result if item.node.resource_type == "snapshot"]
    assert len(snapshots) == 3 and all(item.status == "success" for item in snapshots), _failures(snowflake_build.build)
    (patients, versions, current) = _rows(
        snowflake_build,
        "select (select count(*) from integration.int_patients_joined_to_coverage),"
        " (select count(*) from snapshots.snp_registration__patients),"
        " (select count(*) from snapshots.snp_registration__patients where dbt_valid_to is null)",
    )[0]
    assert patients == versions == current > 0


def test_snowflake_facts_and_dims_hold_rows(snowflake_build: SnowflakeBuild) -> None:
    empty = [name for name in FACTS_AND_DIMS if _rows(snowflake_build, f"select count(*) from marts.{name}")[0][0] == 0]
    assert empty == []


def test_snowflake_facts_have_one_row_per_distinct_raw_key(snowflake_build: SnowflakeBuild) -> None:
    # Staging dedupes raw to the latest version of each trimmed, non-empty key; a fact holds one row per key.
    pairs = {
        "fct_admissions": ("adt__admissions", "admission_id"),
        "fct_appointments": ("scheduling__appointments", "appointment_id"),
        "fct_charges": ("billing__charges", "charge_id"),
        "fct_claims": ("claims__claims", "claim_id"),
    }
    for fact, (table, key) in pairs.items():
        (facts,) = _rows(snowflake_build, f"select count(*) from marts.{fact}")[0]
        (keys,) = _rows(snowflake_build, f"select count(distinct nullif(trim({key}), '')) from raw.{table}")[0]
        assert facts == keys > 0, fact


def test_snowflake_kpi_marts_reconcile_with_the_facts(snowflake_build: SnowflakeBuild) -> None:
    (admissions, monthly) = _rows(
        snowflake_build,
        "select (select count(*) from marts.fct_admissions),"
        " (select sum(admission_count) from marts.mart_admissions_monthly)",
    )[0]
    (charges, revenue) = _rows(
        snowflake_build,
        "select (select sum(amount_usd) from marts.fct_charges),"
        " (select sum(charge_amount_usd) from marts.mart_revenue_by_department)",
    )[0]
    (claims, denials) = _rows(
        snowflake_build,
        "select (select count(*) from marts.fct_claims), (select sum(claim_count) from marts.mart_claim_denials)",
    )[0]
    assert admissions == monthly > 0
    assert charges == pytest.approx(revenue, abs=0.005) and charges > 0  # float sums in another order: to the cent
    assert claims == denials > 0


def test_daily_scoped_tests_run_on_the_snowflake_target(snowflake_build: SnowflakeBuild) -> None:
    # Every row was loaded after the instant, so the scoped tests see the whole (clean) batch and pass.
    results = snowflake_build.scoped_tests.result
    assert snowflake_build.scoped_tests.success, _failures(snowflake_build.scoped_tests)
    assert all(item.status == "pass" for item in results)
    # The model's rules run as its two `checks` tests (one query each), on the emulator's Snowflake SQL.
    assert {item.node.name for item in results} == {"checks_stg_billing__charges", "defect_checks_stg_billing__charges"}
    compiled = [item.node.compiled_code for item in results]
    assert sum(sql.count("as rule_name") for sql in compiled) >= 10  # every rule of the model, not a few
    assert all("in_scope where _loaded_at >" in sql for sql in compiled)
