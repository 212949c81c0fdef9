"""The dbt project's staging layer and lists against a real generated and loaded DuckDB warehouse (docs/dbt.md).

One module fixture generates a small network (initial batch plus one clean daily batch), loads it, runs
`dbt build` with the defect-tolerant tests at `error`, `dbt docs generate`, then loads a daily batch with defects
and runs `dbt test` at the default severity. Every assertion reads what that one run left behind.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import sqlglot
from dbt.cli.main import dbtRunner, dbtRunnerResult

from flows.registry import load_registry
from flows.warehouse import load_batch, open_warehouse
from generators.batch import NetworkSpec, generate_daily, generate_initial

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"
NETWORK = NetworkSpec(seed=7, patients=2500, start_date=dt.date(2024, 1, 1))
INITIAL_END = dt.date(2024, 3, 31)
CLEAN_DAY = dt.date(2024, 4, 1)
DEFECT_DAY = dt.date(2024, 4, 2)
# High enough that a one-day batch carries missing keys, negative amounts, orphans and stray case.
DEFECT_RATE = 0.3
STAGING_MODELS = 11
LISTS = 6
# Tests that may warn on clean data, and why. Everything else must pass at `error` on clean data.
KNOWN_CLEAN_WARNINGS: set[str] = set()
PHI_MODELS = {
    "stg_registration__patients", "stg_payers__coverage", "stg_scheduling__appointments",
    "stg_adt__admissions", "stg_billing__charges", "stg_claims__claims",
}  # fmt: skip


@dataclass
class DbtRun:
    """What the module's dbt runs left behind."""

    root: Path
    warehouse: Path
    project: Path
    docs: Path
    build: dbtRunnerResult
    docs_result: dbtRunnerResult
    defect_test: dbtRunnerResult
    clean: dict[str, list] = field(default_factory=dict)
    defects: dict[str, list] = field(default_factory=dict)


def invoke(project: Path, root: Path, *args: str) -> dbtRunnerResult:
    """Run one dbt command against the temporary project copy; target and logs stay under ``root``."""
    common = ["--project-dir", str(project), "--profiles-dir", str(project), "--log-path", str(root / "logs")]
    command = [*args, *common]
    if "--target-path" not in args:
        command += ["--target-path", str(root / "target")]
    try:
        return dbtRunner().invoke(command)
    finally:
        release_warehouse()


def release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process, so the test (or the loader) can open it."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def statuses(result: dbtRunnerResult) -> dict[str, str]:
    """Node name -> status of every node a dbt command ran."""
    return {item.node.name: str(item.status) for item in result.result.results}


def query(warehouse: Path, statement: str) -> list:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(statement).fetchall()


def load(batch: Path, warehouse: Path) -> None:
    with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
        load_batch(batch, load_registry(), handle)


CHANGED_APPOINTMENT = """
    select appointment_id, status, updated_at from raw.scheduling__appointments
    where _batch_id = 'daily-20240401' and appointment_id in (
        select appointment_id from raw.scheduling__appointments where _batch_id like 'initial-%'
    )
    order by appointment_id limit 1
"""
FAILURE_TABLES = "select table_name from information_schema.tables where table_schema = 'test_failures'"


@pytest.fixture(scope="module")
def dbt_run(tmp_path_factory) -> Iterator[DbtRun]:
    """Generate, load, `dbt build` (strict), `dbt docs generate`, then a defect batch and `dbt test`."""
    root = tmp_path_factory.mktemp("dbt")
    registry = load_registry()
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    project = root / "dbt_project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    initial = generate_initial(landing, NETWORK, INITIAL_END, registry=registry)
    clean_day = generate_daily(landing, NETWORK, CLEAN_DAY, registry=registry)
    for batch in (initial, clean_day):
        load(batch.path, warehouse)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOSPITAL_WAREHOUSE_PATH", str(warehouse))
        patch.setenv("DBT_TARGET", "duckdb")
        build = invoke(project, root, "build", "--vars", "{defect_severity: error}")
        docs = root / "dbt_docs"
        docs_result = invoke(project, root, "docs", "generate", "--target-path", str(docs))
        run = DbtRun(root, warehouse, project, docs, build, docs_result, defect_test=None)  # type: ignore[arg-type]
        run.clean["changed"] = query(warehouse, CHANGED_APPOINTMENT)
        if run.clean["changed"]:
            key = run.clean["changed"][0][0]
            run.clean["staged"] = query(
                warehouse,
                "select appointment_id, appointment_status, updated_at from staging.stg_scheduling__appointments "
                f"where appointment_id = '{key}'",
            )
        run.clean["failure_tables"] = query(warehouse, FAILURE_TABLES)

        defect_day = generate_daily(landing, NETWORK, DEFECT_DAY, registry=registry, defect_rate=DEFECT_RATE)
        load(defect_day.path, warehouse)
        run.defect_test = invoke(project, root, "test")
        run.defects["failure_tables"] = query(warehouse, FAILURE_TABLES)
        run.defects["ground_truth"] = (defect_day.path / "defects.ground_truth.csv").read_text().splitlines()
        run.defects["kept"] = query(
            warehouse,
            "select (select count(*) from raw.billing__charges where charge_id is null),"
            " (select count(*) from staging.stg_billing__charges where charge_id is null),"
            " (select count(*) from raw.billing__charges where amount < 0),"
            " (select count(*) from staging.stg_billing__charges where charge_amount_usd < 0),"
            " (select count(*) from raw.claims__claims where claim_id is null),"
            " (select count(*) from staging.stg_claims__claims where claim_id is null)",
        )
        run.defects["specialties"] = query(
            warehouse,
            "select count(*) filter (where specialty <> trim(specialty)),"
            " count(*) filter (where specialty_name not in (select specialty_name from lists.specialties))"
            " from raw.provider_registry__physicians, staging.stg_provider_registry__physicians",
        )
        yield run


def test_dbt_build_runs_every_seed_model_and_test_and_clean_data_passes_at_error(dbt_run) -> None:
    assert dbt_run.build.success, dbt_run.build.exception
    results = statuses(dbt_run.build)
    kinds = [item.node.resource_type for item in dbt_run.build.result.results]
    assert kinds.count("model") == STAGING_MODELS
    assert kinds.count("seed") == LISTS
    assert kinds.count("test") > 100
    not_passed = {name: status for name, status in results.items() if status not in {"success", "pass"}}
    unexplained = {name: status for name, status in not_passed.items()
                   if not (status == "warn" and name in KNOWN_CLEAN_WARNINGS)}  # fmt: skip
    assert unexplained == {}


def test_staging_keeps_the_latest_version_of_a_record_changed_in_the_daily_batch(dbt_run) -> None:
    changed = dbt_run.clean["changed"]
    assert changed, "the daily batch changed no appointment of the initial batch: choose another day"
    key, status, updated_at = changed[0]
    staged = dbt_run.clean["staged"]
    assert len(staged) == 1
    assert staged[0][0] == key
    assert staged[0][1] == status.strip().title()
    assert staged[0][2] == updated_at.astimezone(dt.UTC).replace(tzinfo=None)


def test_staging_has_one_row_per_key_for_every_model(dbt_run) -> None:
    keys = {
        "stg_facilities__hospitals": "hospital_id", "stg_facilities__departments": "department_id",
        "stg_provider_registry__physicians": "npi", "stg_registration__patients": "mrn",
        "stg_payers__payers": "payer_id", "stg_payers__plans": "plan_id", "stg_payers__coverage": "coverage_id",
        "stg_scheduling__appointments": "appointment_id", "stg_adt__admissions": "admission_id",
        "stg_billing__charges": "charge_id", "stg_claims__claims": "claim_id",
    }  # fmt: skip
    for model, key in keys.items():
        rows, distinct = query(dbt_run.warehouse, f"select count({key}), count(distinct {key}) from staging.{model}")[0]
        assert rows == distinct > 0, model


def test_no_phi_model_has_stored_test_failures(dbt_run) -> None:
    for moment in (dbt_run.clean, dbt_run.defects):
        tables = {name for (name,) in moment["failure_tables"]}
        assert tables, "failures of non-PHI tests should be stored"
        leaked = {table for table in tables for model in PHI_MODELS if model[:25] in table}
        assert leaked == set()
    # The defect run failed tests on PHI models (warnings), and still nothing of theirs was stored.
    warned = {name for name, status in statuses(dbt_run.defect_test).items() if status == "warn"}
    assert any(model in name for name in warned for model in PHI_MODELS)


def truth_count(run: DbtRun, source: str, defect: str) -> int:
    """Rows of the defect batch's ground truth with this source and defect."""
    return sum(1 for line in run.defects["ground_truth"][1:] if f'"{source}"' in line and f'"{defect}"' in line)


def test_defects_warn_without_errors_and_staging_keeps_defect_rows(dbt_run) -> None:
    results = statuses(dbt_run.defect_test)
    assert dbt_run.defect_test.success, {name: s for name, s in results.items() if s not in {"pass", "warn"}}
    assert set(results.values()) <= {"pass", "warn"}
    assert "warn" in results.values()
    raw_null, staged_null, raw_negative, staged_negative, raw_null_claims, staged_null_claims = dbt_run.defects["kept"][
        0
    ]
    # Missing keys and negative amounts are the quality gate's: staging keeps every such row.
    assert staged_null == raw_null >= truth_count(dbt_run, "billing__charges", "missing_key") > 0
    assert staged_negative == raw_negative >= truth_count(dbt_run, "billing__charges", "negative_amount") > 0
    assert staged_null_claims == raw_null_claims >= truth_count(dbt_run, "claims__claims", "missing_key") > 0
    # Stray whitespace and case are staging's to normalise: every specialty matches the list again.
    shouty_raw, unknown_staged = dbt_run.defects["specialties"][0]
    assert shouty_raw > 0 and truth_count(dbt_run, "provider_registry__physicians", "stray_whitespace_case") > 0
    assert unknown_staged == 0
    # Duplicated rows are deduplicated: the primary keys stay unique.
    assert all(status == "pass" for name, status in results.items() if name.startswith("unique_stg_"))


def test_dbt_docs_generate_writes_the_site_into_the_given_folder(dbt_run) -> None:
    assert dbt_run.docs_result.success, dbt_run.docs_result.exception
    for name in ("index.html", "manifest.json", "catalog.json"):
        assert (dbt_run.docs / name).is_file(), name


def test_compiled_project_parses_as_snowflake_sql_with_snowflake_dispatch(dbt_run, monkeypatch) -> None:
    """dbt-snowflake is not installed, so dispatch is forced to the snowflake__ macros on the duckdb target."""
    from dbt.context.providers import BaseDatabaseWrapper

    original = BaseDatabaseWrapper.dispatch

    def dispatch_as_snowflake(self, macro_name, macro_namespace=None, packages=None):
        # Only the project's own macros: dbt's and the adapter's internals still need the duckdb ones to run.
        if macro_namespace != "hospital":
            return original(self, macro_name, macro_namespace, packages)
        self._get_adapter_macro_prefixes = lambda: ["snowflake", "default"]
        try:
            return original(self, macro_name, macro_namespace, packages)
        finally:
            del self._get_adapter_macro_prefixes

    monkeypatch.setattr(BaseDatabaseWrapper, "dispatch", dispatch_as_snowflake)
    monkeypatch.setenv("HOSPITAL_WAREHOUSE_PATH", str(dbt_run.root / "compile.duckdb"))
    target = dbt_run.root / "snowflake_target"
    result = invoke(dbt_run.project, dbt_run.root, "compile", "--target-path", str(target))
    assert result.success, result.exception
    compiled = sorted((target / "compiled" / "hospital").rglob("*.sql"))
    models = [path for path in compiled if path.name.startswith("stg_")]
    assert len(models) == STAGING_MODELS
    for path in compiled:
        sqlglot.parse(path.read_text(), read="snowflake")
    claims = next(path for path in models if path.name == "stg_claims__claims.sql").read_text()
    assert "convert_timezone('UTC'" in claims and "array_size(status_history)" in claims
    assert re.search(r"(?<!convert_)timezone\('UTC'", claims) is None and "json_extract_string" not in claims
    physicians = next(path for path in models if path.name == "stg_provider_registry__physicians.sql").read_text()
    assert "initcap(" in physicians and "lambda" not in physicians
