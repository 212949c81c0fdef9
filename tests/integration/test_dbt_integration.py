"""The dbt project's integration layer and snapshots against a real generated and loaded DuckDB warehouse.

One module fixture generates a small network (initial batch plus two clean daily batches), loads the initial
batch, runs `dbt build` on staging, integration, their snapshots and the lists with the defect-tolerant tests at
`error`, reruns `dbt snapshot` on the unchanged data, then loads the daily batches, builds again, reruns the
snapshots once more and runs the `unit_tests:` alone. Every assertion reads what that one run left behind.

The marts (models/marts, macros/marts) are left out of the project copy: they are another layer with its own
test file, and this file checks what the marts build on.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import yaml
from dbt.cli.main import dbtRunnerResult

from flows.contracts.registry import load_registry
from generators.batch import NetworkSpec, generate_daily, generate_initial
from generators.clinical import EXPIRED_DISPOSITION, PLANNED_READMISSION_CODE, TRANSFER_DISPOSITION
from tests.integration.dbtkit import PROJECT, copy_project, duckdb_target, invoke, load, query

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=7, patients=2500, start_date=dt.date(2024, 1, 1))
INITIAL_END = dt.date(2024, 3, 31)
DAILY_DAYS = (dt.date(2024, 4, 1), dt.date(2024, 4, 2))
SELECT = ["--select", "staging+", "integration+", "lists", "--vars", "{defect_severity: error}"]
SNAPSHOTS = ("snp_registration__patients", "snp_claims__claims", "snp_provider_registry__physicians")
INTEGRATION_MODELS = {
    "int_encounters_unioned", "int_coverage_periods_sequenced", "int_patients_joined_to_coverage",
    "int_claims_pivoted", "int_readmissions_paired", "int_census_counted", "int_physicians_rostered",
    "int_admissions_joined_to_coverage",
}  # fmt: skip
UNIT_TESTS = {
    "test_int_readmissions_paired_hrrp_rules", "test_int_census_counted_midnight_census",
    "test_int_claims_pivoted_denial_then_paid_on_appeal", "test_int_admissions_joined_to_coverage_coverage_in_effect",
}  # fmt: skip
PASSED = {"success", "pass"}
FAILURE_TABLES = "select table_name from information_schema.tables where table_schema = 'test_failures'"
ADDRESS = ("address_line", "city", "state", "zip")


@dataclass
class IntegrationRun:
    """What the module's dbt runs left behind."""

    warehouse: Path
    results: dict[str, dbtRunnerResult]
    snapshot_rows: dict[str, dict[str, int]] = field(default_factory=dict)
    moved: list[tuple[str, int, int]] = field(default_factory=list)
    observed: dict[str, list] = field(default_factory=dict)
    admission_files: list[Path] = field(default_factory=list)


def statuses(result: dbtRunnerResult) -> dict[str, str]:
    """Node unique id -> status of every node a dbt command ran."""
    return {item.node.unique_id: str(item.status) for item in result.result.results}


def snapshot_rows(warehouse: Path) -> dict[str, int]:
    return {name: query(warehouse, f"select count(*) from snapshots.{name}")[0][0] for name in SNAPSHOTS}


def patient_versions(warehouse: Path, mrn: str) -> int:
    return query(warehouse, f"select count(*) from snapshots.snp_registration__patients where mrn = '{mrn}'")[0][0]


def read_rows(path: Path, delimiter: str) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def moved_patients(initial: Path, daily: list[Path]) -> list[str]:
    """MRNs of patients of the initial batch whose address a daily batch changes (from the landing files)."""
    before = {row["mrn"]: row for row in read_rows(next(initial.glob("patients_*.csv")), ",")}
    moved = []
    for batch in daily:
        for row in read_rows(next(batch.glob("patients_*.csv")), ","):
            old = before.get(row["mrn"])
            if old is not None and any(row[column] != old[column] for column in ADDRESS):
                moved.append(row["mrn"])
    return moved


def delete_a_physician_from_the_latest_roster(warehouse: Path) -> str:
    """Remove one physician from the registry's latest full roster (a hard delete at the source); his NPI."""
    with duckdb.connect(str(warehouse)) as connection:
        # The loader skips a roster identical to one already loaded: the last loaded roster is the current one.
        latest = "select _batch_id from raw.provider_registry__physicians order by _loaded_at desc limit 1"
        (npi,) = connection.execute(
            f"select min(npi) from raw.provider_registry__physicians where _batch_id = ({latest})"
        ).fetchone()
        connection.execute(
            f"delete from raw.provider_registry__physicians where npi = ? and _batch_id = ({latest})", [npi]
        )
    return npi


@pytest.fixture(scope="module")
def integration_run(tmp_path_factory) -> Iterator[IntegrationRun]:
    """Generate, load, build and snapshot; rerun the snapshots; load two daily batches, build, rerun; unit tests."""
    root = tmp_path_factory.mktemp("dbt_integration")
    registry = load_registry()
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    project = root / "dbt_project"
    copy_project(project)
    for layer in ("models/marts", "macros/marts"):
        shutil.rmtree(project / layer, ignore_errors=True)
    initial = generate_initial(landing, NETWORK, INITIAL_END, registry=registry)
    daily = [generate_daily(landing, NETWORK, day, registry=registry) for day in DAILY_DAYS]
    load(initial.path, warehouse)
    moved = moved_patients(initial.path, [batch.path for batch in daily])

    with duckdb_target(warehouse):
        run = IntegrationRun(warehouse, results={})
        run.results["initial_build"] = invoke(project, root, "build", *SELECT)
        run.snapshot_rows["initial"] = snapshot_rows(warehouse)
        before = {mrn: patient_versions(warehouse, mrn) for mrn in moved}
        run.results["initial_rerun"] = invoke(project, root, "snapshot")
        run.snapshot_rows["initial_rerun"] = snapshot_rows(warehouse)

        for batch in daily:
            load(batch.path, warehouse)
        run.results["daily_build"] = invoke(project, root, "build", *SELECT)
        run.snapshot_rows["daily"] = snapshot_rows(warehouse)
        run.moved = [(mrn, before[mrn], patient_versions(warehouse, mrn)) for mrn in moved]
        run.results["daily_rerun"] = invoke(project, root, "snapshot")
        run.snapshot_rows["daily_rerun"] = snapshot_rows(warehouse)
        run.results["unit"] = invoke(project, root, "test", "--select", "test_type:unit")
        run.observed["deleted"] = delete_a_physician_from_the_latest_roster(warehouse)
        run.results["hard_delete"] = invoke(project, root, "build", "--select", "int_physicians_rostered+")
        run.observed["deleted_versions"] = query(
            warehouse,
            "select count(*), count(*) filter (where dbt_valid_to is null)"
            " from snapshots.snp_provider_registry__physicians where npi = '{}'".format(run.observed["deleted"]),
        )

    run.admission_files = [next(batch.glob("admissions_*.txt")) for batch in (initial.path, *(b.path for b in daily))]
    run.observed["readmissions"] = query(
        warehouse,
        "select count(*) filter (where is_eligible_index), count(*) filter (where is_30_day_readmission)"
        " from integration.int_readmissions_paired",
    )
    run.observed["census"] = query(
        warehouse,
        "select count(*), max(midnight_census - staffed_beds), sum(midnight_census)"
        " from integration.int_census_counted",
    )
    run.observed["failure_tables"] = query(warehouse, FAILURE_TABLES)
    yield run


@pytest.mark.parametrize(
    "step", ["initial_build", "initial_rerun", "daily_build", "daily_rerun", "unit", "hard_delete"]
)
def test_every_node_of_every_dbt_command_passes(integration_run, step) -> None:
    result = integration_run.results[step]
    assert result.success, result.exception
    results = statuses(result)
    assert results, f"{step} ran nothing"
    assert {node: status for node, status in results.items() if status not in PASSED} == {}


def yaml_rules(model: str) -> list[dict]:
    """The rules of a model's ``checks_<model>`` test, as its YAML states them."""
    for path in (PROJECT / "models").rglob("*.yml"):
        for node in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
            if node["name"] == model:
                for test in node.get("data_tests", []):
                    body = test.get("checks") if isinstance(test, dict) else None
                    if body and body.get("name") == f"checks_{model}":
                        return body["arguments"]["rules"]
    return []


def test_build_runs_the_integration_models_snapshots_and_unit_tests(integration_run) -> None:
    nodes = statuses(integration_run.results["initial_build"])
    names = {node.split(".")[-1] for node in nodes}
    assert names >= INTEGRATION_MODELS
    assert names >= set(SNAPSHOTS)
    unit = {node.split(".")[-1] for node in statuses(integration_run.results["unit"])}
    assert unit == UNIT_TESTS
    # The snapshots' keys are tested unique in their source models (a `unique` rule of each model's checks test)
    # before the snapshot reads them.
    for model, key in (("int_patients_joined_to_coverage", "mrn"), ("int_claims_pivoted", "claim_id"),
                       ("int_physicians_rostered", "npi")):  # fmt: skip
        assert any(node.startswith(f"test.hospital.checks_{model}.") for node in nodes), model
        rules = yaml_rules(model)
        assert {"unique": key} in rules, (model, rules)


def test_snapshot_rerun_on_unchanged_data_adds_no_rows(integration_run) -> None:
    rows = integration_run.snapshot_rows
    assert all(count > 0 for count in rows["initial"].values())
    assert rows["initial_rerun"] == rows["initial"]
    assert rows["daily_rerun"] == rows["daily"]
    # The daily batches change claims (status transitions): the claims history grows.
    assert rows["daily"]["snp_claims__claims"] > rows["initial"]["snp_claims__claims"]


def test_a_patient_who_moved_in_a_daily_batch_has_exactly_one_new_version(integration_run) -> None:
    assert integration_run.moved, "no patient of the initial batch moved in the daily batches: choose other days"
    for mrn, before, after in integration_run.moved:
        assert before >= 1, mrn
        assert after == before + 1, mrn


def python_readmission_rate(files: list[Path]) -> tuple[int, int]:
    """The HRRP-like rule computed from the landing files alone: (eligible index stays, 30-day readmissions)."""
    latest: dict[str, dict[str, str]] = {}
    for path in files:  # batches in delivery order: a later file wins a tie on updated_at
        for row in read_rows(path, "|"):
            key = row["admission_id"].strip()
            if key and (key not in latest or row["updated_at"] >= latest[key]["updated_at"]):
                latest[key] = row
    by_patient: dict[str, list[dict[str, str]]] = {}
    for key, row in latest.items():
        by_patient.setdefault(row["mrn"].strip(), []).append({**row, "admission_id": key})
    eligible = readmitted = 0
    for stays in by_patient.values():
        stays.sort(key=lambda stay: (stay["admit_at"], stay["admission_id"]))
        for index, following in zip(stays, [*stays[1:], None], strict=True):
            disposition = index["discharge_disposition"].strip()
            if not index["discharge_at"] or disposition in (TRANSFER_DISPOSITION, EXPIRED_DISPOSITION):
                continue
            eligible += 1
            if following is None or following["admit_at"] < index["discharge_at"]:
                continue
            # Timestamps are local (no offset): the first ten characters are the hospital's calendar date.
            days = (
                dt.date.fromisoformat(following["admit_at"][:10]) - dt.date.fromisoformat(index["discharge_at"][:10])
            ).days
            planned = (
                following["admission_type"].strip().title() == "Elective"
                and following["principal_dx_code"].strip().upper() == PLANNED_READMISSION_CODE
            )
            readmitted += 0 <= days <= 30 and not planned
    return eligible, readmitted


def test_readmission_rate_equals_the_rule_computed_from_the_landing_files(integration_run) -> None:
    eligible, readmitted = integration_run.observed["readmissions"][0]
    expected_eligible, expected_readmitted = python_readmission_rate(integration_run.admission_files)
    assert expected_eligible > 0 and expected_readmitted > 0
    assert eligible == expected_eligible
    assert readmitted / eligible == pytest.approx(expected_readmitted / expected_eligible, abs=1e-9)


def test_midnight_census_never_exceeds_staffed_beds(integration_run) -> None:
    rows, worst_excess, occupied = integration_run.observed["census"][0]
    assert rows > 0 and occupied > 0
    assert worst_excess <= 0


def test_builds_whose_tests_all_pass_store_no_failure_tables(integration_run) -> None:
    # Failing rows are stored only while a test fails (macros/policy/test_materialization.sql); every test passed.
    assert integration_run.observed["failure_tables"] == []


def failure_tables(warehouse: Path) -> set[str]:
    return {name for (name,) in query(warehouse, FAILURE_TABLES)}


def test_failing_rows_are_stored_only_while_a_test_fails(integration_run, tmp_path) -> None:
    """A test of a model without PHI (the census) stores its failing rows when it fails, a passing test stores
    nothing, and the table goes once the test passes again; a failing test of a PHI model (readmission pairs)
    stores no row of the model: only its `checks` test's rule names and counts."""
    warehouse = tmp_path / "census.duckdb"
    shutil.copyfile(integration_run.warehouse, warehouse)
    project = integration_run.warehouse.parent / "dbt_project"
    with duckdb.connect(str(warehouse)) as connection:  # one row twice in each: their key tests fail
        for table, order in (("int_census_counted", "census_date, department_id"),
                             ("int_readmissions_paired", "index_admission_id")):  # fmt: skip
            connection.execute(f"insert into integration.{table} select * from integration.{table} "
                               f"order by {order} limit 1")  # fmt: skip
    with duckdb_target(warehouse):
        phi = invoke(project, tmp_path, "test", "--select", "int_readmissions_paired")
        phi_failed = {item.node.alias for item in phi.result.results if str(item.status) in {"fail", "warn"}}
        assert phi_failed == {"checks_int_readmissions_paired"}, phi_failed
        # PHI: no row of the model is stored; the checks test's table holds rule names and counts only.
        assert failure_tables(warehouse) == phi_failed
        with duckdb.connect(str(warehouse)) as connection:
            columns = [row[0] for row in connection.execute(
                "describe test_failures.checks_int_readmissions_paired").fetchall()]  # fmt: skip
            rules = connection.execute("select * from test_failures.checks_int_readmissions_paired").fetchall()
            connection.execute("drop table test_failures.checks_int_readmissions_paired")
        assert columns == ["rule_name", "failing_rows"]
        assert ("unique(index_admission_id)", 1) in rules, rules
        failing = invoke(project, tmp_path, "test", "--select", "int_census_counted")
        stored = failure_tables(warehouse)
        with duckdb.connect(str(warehouse)) as connection:
            rows = {table: connection.execute(f"select count(*) from test_failures.{table}").fetchone()[0]
                    for table in stored}  # fmt: skip
            connection.execute("create or replace table integration.int_census_counted as "
                               "select distinct * from integration.int_census_counted")  # fmt: skip
        passing = invoke(project, tmp_path, "test", "--select", "int_census_counted")
    failed = {item.node.alias for item in failing.result.results if str(item.status) in {"fail", "warn"}}
    ran = {item.node.alias for item in failing.result.results}
    assert failed and len(ran) > len(failed)
    assert stored == failed  # the failing tests' rows, and nothing for the tests that passed
    assert all(count > 0 for count in rows.values()), rows
    assert {str(item.status) for item in passing.result.results} == {"pass"}
    assert failure_tables(warehouse) == set()  # a test that passes again drops what its failure left


def test_a_physician_deleted_from_the_roster_is_invalidated_in_the_snapshot(integration_run) -> None:
    versions, current = integration_run.observed["deleted_versions"][0]
    assert versions >= 1
    assert current == 0
