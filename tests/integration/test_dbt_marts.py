"""The de-identified dimensional marts against two real warehouses built two ways (docs/dbt.md, "Marts").

One module fixture generates a small network (initial batch plus three daily batches) and builds:
warehouse A incrementally (initial load + build, then each daily batch loaded + an incremental build) and
warehouse B at once (every batch loaded, one `--full-refresh` build). Both pin the same surrogate salt, so their
marts must be identical. Every assertion reads what those runs left behind.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunnerResult

from flows.contracts.registry import load_registry
from flows.transform import SCOPE_ENV
from generators.batch import NetworkSpec, generate_daily, generate_initial
from tests.integration.dbtkit import PROJECT, copy_project, duckdb_target, invoke, load, query

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=11, patients=2500, start_date=dt.date(2024, 1, 1))
INITIAL_END = dt.date(2024, 3, 31)
DAILY = [dt.date(2024, 4, 1), dt.date(2024, 4, 2), dt.date(2024, 4, 3)]
SALT = "marts-test-salt-" + "0123456789abcdef" * 2
SELECT = ["--select", "lists", "staging", "integration", "marts", "--indirect-selection", "cautious"]
VARS = ["--vars", f"{{defect_severity: error, surrogate_salt: {SALT}}}"]
MARTS = {
    "dim_patients", "dim_physicians", "dim_departments", "dim_hospitals", "dim_payers", "dim_dates",
    "fct_admissions", "fct_appointments", "fct_charges", "fct_claims", "mart_claim_denials",
    "mart_admissions_monthly", "mart_denial_reasons", "mart_patient_demographics",
    "mart_length_of_stay_by_department", "mart_length_of_stay_by_diagnosis_chapter", "mart_readmissions_monthly",
    "mart_bed_occupancy_daily", "mart_no_shows_by_weekday", "mart_no_shows_by_lead_time",
    "mart_no_shows_by_department", "mart_payer_mix", "mart_revenue_by_department", "mart_physician_activity",
}  # fmt: skip
# Integration tables built incrementally (docs/dbt.md, "Daily builds"): compared like the marts.
INTEGRATION = {
    "int_claims_pivoted", "int_encounters_unioned", "int_coverage_periods_sequenced", "int_patients_joined_to_coverage",
}  # fmt: skip
# Load-audit columns: when a row was loaded differs between two warehouses by construction.
AUDIT_COLUMNS = {"_loaded_at", "_loaded_through"}
# HHS de-identification guidance (2012), section 3.4: three-digit ZIPs of 20,000 people or fewer (2000 Census).
HHS_RESTRICTED_ZIP3 = {
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879", "884",
    "890", "893",
}  # fmt: skip
INCREMENTAL_FACTS = ("fct_admissions", "fct_appointments", "fct_charges")
# Incremental models whose daily run narrows a large staging model's raw rows before the dedupe.
NARROWED_READS = (*INCREMENTAL_FACTS, *sorted(INTEGRATION), "dim_patients")


@dataclass
class Marts:
    """What the module's two build sequences left behind."""

    root: Path
    landing: Path
    incremental: Path
    full: Path
    runs: dict[str, list[dbtRunnerResult]] = field(default_factory=dict)
    parse_events: list[list[str]] = field(default_factory=list)


def build(
    project: Path, root: Path, warehouse: Path, *extra: str, tests_loaded_after: str | None = None, command="build",
    scope_in: str = "vars", events: list[str] | None = None,
) -> dbtRunnerResult:  # fmt: skip
    """``dbt build`` (or ``command``) of the marts; ``tests_loaded_after`` is the daily command's test scope, given
    as a var (``scope_in="vars"``, a command typed by hand) or as the pipeline gives it (``"env"``: SCOPE_ENV)."""
    scoped = tests_loaded_after is not None and scope_in == "vars"
    dbt_vars = VARS if not scoped else [VARS[0], VARS[1][:-1] + f", tests_loaded_after: '{tests_loaded_after}'}}"]
    with duckdb_target(warehouse), pytest.MonkeyPatch.context() as patch:
        patch.setenv(SCOPE_ENV, tests_loaded_after if tests_loaded_after and scope_in == "env" else "")
        selection = SELECT if command == "build" else []
        return invoke(project, root, command, *selection, *dbt_vars, *extra, events=events)


PARSE_EVENTS = {"UnableToPartialParse", "PartialParsingEnabled"}


def utc_now() -> str:
    """Now in UTC, as the daily command's ``tests_loaded_after`` (rows loaded from now on are the day's)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


@pytest.fixture(scope="module")
def marts(tmp_path_factory) -> Iterator[Marts]:
    """Generate once; build warehouse A day by day (incremental) and warehouse B in one full refresh."""
    root = tmp_path_factory.mktemp("marts")
    registry = load_registry()
    project = root / "dbt_project"
    copy_project(project)
    run = Marts(root, root / "landing", root / "incremental.duckdb", root / "full.duckdb")
    batches = [generate_initial(run.landing, NETWORK, INITIAL_END, registry=registry)]
    batches += [generate_daily(run.landing, NETWORK, day, registry=registry) for day in DAILY]

    # As the pipeline runs it: the first build tests every row, each daily build (the daily command) tests the
    # large models' rows loaded by that day's load only, the instant given in the environment as the flow does.
    run.runs["incremental"] = []
    for number, batch in enumerate(batches):
        loaded_after = utc_now()
        load(batch.path, run.incremental)
        scope = loaded_after if number else None
        events: list[str] = []
        run.runs["incremental"].append(
            build(project, root, run.incremental, tests_loaded_after=scope, scope_in="env", events=events)
        )
        run.parse_events.append([name for name in events if name in PARSE_EVENTS])
    for batch in batches:
        load(batch.path, run.full)
    run.runs["full"] = [build(project, root, run.full, "--full-refresh")]
    yield run


def columns(warehouse: Path, table: str, schema: str = "marts") -> list[tuple[str, str]]:
    return query(
        warehouse,
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position",
    )


def differing_rows(left: Path, right: Path, tables: list[tuple[str, str]]) -> dict[str, tuple[int, int, int]]:
    """Per table (schema, name) that differs: rows of ``right``, rows only in left, rows only in right.

    Compared as multisets (``EXCEPT ALL`` both ways) on every column but the load-audit ones.
    """
    differences: dict[str, tuple[int, int, int]] = {}
    with duckdb.connect() as connection:
        connection.execute(f"attach '{left}' as lft (read_only)")
        connection.execute(f"attach '{right}' as rgt (read_only)")
        for schema, table in tables:
            names = [name for name, _ in columns(right, table, schema) if name not in AUDIT_COLUMNS]
            assert [name for name, _ in columns(left, table, schema) if name not in AUDIT_COLUMNS] == names, table
            listed = ", ".join(f'"{name}"' for name in names)
            rows = connection.execute(f"select count(*) from rgt.{schema}.{table}").fetchone()[0]
            only = [
                connection.execute(
                    f"select count(*) from (select {listed} from {one}.{schema}.{table} "
                    f"except all select {listed} from {other}.{schema}.{table})"
                ).fetchone()[0]
                for one, other in (("lft", "rgt"), ("rgt", "lft"))
            ]
            if rows == 0 or any(only):
                differences[f"{schema}.{table}"] = (rows, *only)
    return differences


def patient_key(mrn: str) -> str:
    """The documented key: SHA-256 of salt | entity | natural key (macros/marts/surrogate_key.sql)."""
    return hashlib.sha256(f"{SALT}|patient|{mrn}".encode()).hexdigest()


def landing_patients(landing: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(landing.glob("*/patients_*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def test_every_node_of_every_build_passes(marts) -> None:
    for name, results in marts.runs.items():
        for result in results:
            assert result.success, (name, result.exception)
            statuses = {item.node.name: str(item.status) for item in result.result.results}
            assert {n: s for n, s in statuses.items() if s not in {"success", "pass"}} == {}, name
            assert set(statuses) >= MARTS, name


def test_daily_builds_ran_the_facts_incrementally(marts) -> None:
    incremental = (*NARROWED_READS, "fct_claims")
    for result in marts.runs["incremental"][1:]:
        compiled = {item.node.name: getattr(item.node, "compiled_code", "") for item in result.result.results}
        for model in incremental:
            assert "loaded_after" in compiled[model], model
        # Narrowed to the day's keys before the staging dedupe (macros/incremental/reads.sql), not a filter on the
        # view; fct_claims reads the claims int_claims_pivoted rewrote (a filter on a table).
        assert [model for model in NARROWED_READS if "changed_since_last_run" not in compiled[model]] == []
    for result in (marts.runs["incremental"][0], marts.runs["full"][0]):
        compiled = {item.node.name: getattr(item.node, "compiled_code", "") for item in result.result.results}
        assert [model for model in incremental if "loaded_after" in compiled[model]] == []


def compiled_tests(result: dbtRunnerResult) -> dict[str, str]:
    return {
        item.node.name: item.node.compiled_code for item in result.result.results if item.node.resource_type == "test"
    }


def test_daily_builds_test_the_large_models_on_the_days_rows_and_full_builds_on_all(marts) -> None:
    daily = compiled_tests(marts.runs["incremental"][-1])
    scoped = {
        name for name, sql in daily.items() if "in_scope where _loaded_at >" in sql or "where _loaded_at >" in sql
    }
    # Each model's rules run as one `checks` test (macros/tests/checks.sql), on the day's rows of the large models.
    assert {"checks_stg_billing__charges", "checks_fct_charges", "checks_fct_claims"} <= scoped, scoped
    for model in INTEGRATION:
        assert f"checks_{model}" in scoped, model
    # Coverage sequencing is tested per re-sequenced patient: every period of a patient with a new row.
    sequenced = daily["checks_int_coverage_periods_sequenced"]
    assert "where mrn in (select mrn from" in sequenced, sequenced
    assert "unique(coverage_id)" in sequenced, sequenced
    small = ("checks_dim_", "defect_checks_dim_", "checks_stg_facilities", "defect_checks_stg_facilities")
    assert not any(name.startswith(small) for name in scoped)  # small tables: every row, every day
    assert any(name.startswith(small) for name in daily)  # ... and they are tested
    for result in (marts.runs["incremental"][0], marts.runs["full"][0]):
        assert not any("_loaded_at >" in sql for sql in compiled_tests(result).values())


def test_daily_builds_keep_dbts_partial_parsing(marts) -> None:
    """The daily instant changes every day; given in the environment (read at execution only) it must not make dbt
    re-parse the project, as a changed --vars does (docs/dbt.md, "Fixed costs")."""
    first, *daily = marts.parse_events
    assert "UnableToPartialParse" in first  # the first build of a fresh target parses everything
    assert len(daily) == len(DAILY)
    assert all("UnableToPartialParse" not in events for events in daily), daily


def test_daily_scoped_tests_fail_on_a_bad_new_row_and_leave_older_rows_out(marts, tmp_path) -> None:
    # A re-posted charge line with a negative amount (a later posting: it becomes the latest version) loaded now.
    warehouse = tmp_path / "scoped.duckdb"
    shutil.copyfile(marts.incremental, warehouse)
    before = utc_now()
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "insert into raw.billing__charges select * replace (-1 * abs(amount) - 1 as amount,"
            " posted_at + interval 1 day as posted_at, now() as _loaded_at)"
            " from raw.billing__charges where charge_id is not null and amount > 0 limit 1"
        )
    after = utc_now()
    select = ["--select", "stg_billing__charges"]
    caught = build(marts.root / "dbt_project", tmp_path, warehouse, *select, tests_loaded_after=before, command="test")
    # The failure names the rule and its count, from the failures table (rule names and counts, no value).
    stored = query(warehouse, "select rule_name, failing_rows from test_failures.defect_checks_stg_billing__charges")
    skipped = build(marts.root / "dbt_project", tmp_path, warehouse, *select, tests_loaded_after=after, command="test")
    failed = {item.node.name for item in caught.result.results if item.status == "fail"}
    assert failed == {"defect_checks_stg_billing__charges"}, failed
    assert ("accepted_range(charge_amount_usd)", 1) in stored, stored
    assert all(count == 1 for _, count in stored), stored  # the one new row only, not the history's
    assert skipped.success and all(item.status == "pass" for item in skipped.result.results)


def test_daily_incremental_runs_give_the_same_marts_as_one_full_refresh(marts) -> None:
    tables = {name for (name,) in query(marts.full, "select table_name from information_schema.tables "
                                                    "where table_schema = 'marts'")}  # fmt: skip
    assert tables == MARTS
    compared = [("marts", table) for table in sorted(MARTS)] + [("integration", table) for table in sorted(INTEGRATION)]
    assert differing_rows(marts.incremental, marts.full, compared) == {}


def test_a_status_changed_in_a_daily_batch_replaces_the_appointment_row(marts) -> None:
    changed = query(
        marts.incremental,
        "select appointment_id, appointment_status from staging.stg_scheduling__appointments "
        "where _batch_id like 'daily-%' and appointment_id in (select appointment_id from "
        "raw.scheduling__appointments where _batch_id like 'initial-%')",
    )
    assert changed, "no appointment of the initial batch changed in a daily batch: choose other days"
    with duckdb.connect(str(marts.incremental), read_only=True) as connection:
        for appointment_id, status in changed:
            key = hashlib.sha256(f"{SALT}|appointment|{appointment_id}".encode()).hexdigest()
            rows = connection.execute(
                "select appointment_status from marts.fct_appointments where appointment_key = ?", [key]
            ).fetchall()
            assert rows == [(status,)], appointment_id


def identifier_hits(warehouse: Path, tables: list[tuple[str, str]], identifiers: set[str]) -> dict[str, int]:
    """Distinct cells per column equal to an identifier or, in text columns, containing one of 7+ characters."""
    hits: dict[str, int] = {}
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        connection.execute("create temp table identifiers (value varchar)")
        connection.executemany("insert into identifiers values (?)", [(value,) for value in identifiers])
        for schema, table in tables:
            described = connection.execute(
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{table}'"
            ).fetchall()
            for name, kind in described:
                # Only text can hold part of a name, SSN, phone, e-mail or street; any type can equal one.
                contains = "or (length(identifiers.value) >= 7 and contains(cells.value, identifiers.value))"
                count = connection.execute(
                    f'with cells as (select distinct cast("{name}" as varchar) as value from {schema}.{table}) '
                    "select count(*) from cells inner join identifiers on cells.value = identifiers.value "
                    f"{contains if kind == 'VARCHAR' else ''}"
                ).fetchone()[0]
                if count:
                    hits[f"{schema}.{table}.{name}"] = count
    return hits


def test_no_mart_column_holds_a_direct_identifier_of_a_generated_patient(marts) -> None:
    patients = landing_patients(marts.landing)
    assert len(patients) >= 2500
    identifiers: set[str] = set()
    for row in patients:
        full_name = f"{row['first_name']} {row['last_name']}"
        values = (row["first_name"], row["last_name"], full_name, row["mrn"], row["ssn"], row["phone"],
                  row["email"], row["address_line"])  # fmt: skip
        identifiers.update(value.strip() for value in values if value and value.strip())
    # A surname can be a word of a non-identifying vocabulary (the surname "English", the language "English"):
    # those words are not evidence of a leak.
    identifiers -= {row["preferred_language"].strip() for row in patients}
    # The scan can find them: the PHI zone's patients hold every kind.
    staged = identifier_hits(marts.full, [("staging", "stg_registration__patients")], identifiers)
    for column in ("first_name", "last_name", "mrn", "ssn", "phone", "email", "address_line"):
        assert staged.get(f"staging.stg_registration__patients.{column}", 0) > 0, column
    assert identifier_hits(marts.full, [("marts", table) for table in sorted(MARTS)], identifiers) == {}


def test_patient_keys_are_keyed_hashes_not_hashes_of_the_mrn(marts) -> None:
    staged = query(marts.full, "select mrn from staging.stg_registration__patients where mrn is not null")
    keys = {key for (key,) in query(marts.full, "select patient_key from marts.dim_patients")}
    assert keys == {patient_key(mrn) for (mrn,) in staged}
    unkeyed = {hashlib.sha256(mrn.encode()).hexdigest() for (mrn,) in staged}
    unkeyed |= {hashlib.md5(mrn.encode()).hexdigest() for (mrn,) in staged}
    assert keys.isdisjoint(unkeyed)


def test_dim_patients_has_no_birth_date_and_bands_ages_90_and_over(marts) -> None:
    described = columns(marts.full, "dim_patients")
    assert not any("birth" in name for name, _ in described)
    assert {name for name, kind in described if kind in {"DATE", "TIMESTAMP"}} == {"age_as_of_date", "_loaded_through"}
    # The watermark is one table-wide load instant, not a date of each patient.
    for warehouse in (marts.incremental, marts.full):
        assert len(query(warehouse, "select distinct _loaded_through from marts.dim_patients")) == 1
    (as_of,) = {day for (day,) in query(marts.full, "select distinct age_as_of_date from marts.dim_patients")}
    # The data's last day: the latest record change of patients, admissions or appointments.
    assert as_of == max(DAILY)
    staged = query(marts.full, "select mrn, birth_date from staging.stg_registration__patients where mrn is not null")
    bands = dict(query(marts.full, "select patient_key, age_band from marts.dim_patients"))
    aged_90 = 0
    for mrn, birth in staged:
        age = as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))
        if birth <= as_of and age >= 90:
            aged_90 += 1
            assert bands[patient_key(mrn)] == "90+", mrn
        elif birth <= as_of:
            assert bands[patient_key(mrn)] != "90+", mrn
    assert aged_90 > 0, "no patient aged 90+: the test would not test the band"


def test_restricted_zip3_areas_become_000_and_others_keep_three_digits(marts) -> None:
    seed = (PROJECT / "seeds" / "lists" / "restricted_zip3.csv").read_text().splitlines()[1:]
    assert {line.split(",")[0] for line in seed} == HHS_RESTRICTED_ZIP3
    staged = query(marts.full, "select mrn, zip_code from staging.stg_registration__patients where mrn is not null")
    zip3 = dict(query(marts.full, "select patient_key, zip3 from marts.dim_patients"))
    restricted = 0
    for mrn, zip_code in staged:
        if zip_code is None or len(zip_code) != 5 or not zip_code.isdigit():
            assert zip3[patient_key(mrn)] is None, mrn
        elif zip_code[:3] in HHS_RESTRICTED_ZIP3:
            restricted += 1
            assert zip3[patient_key(mrn)] == "000", mrn
        else:
            assert zip3[patient_key(mrn)] == zip_code[:3], mrn
    assert restricted > 0, "no patient lives in a restricted ZIP3 area: the test would not test it"


def test_fact_row_counts_and_amounts_reconcile_with_staging(marts) -> None:
    for warehouse in (marts.incremental, marts.full):
        reconciled = query(
            warehouse,
            "select"
            " (select count(distinct admission_id) from staging.stg_adt__admissions),"
            " (select count(*) from marts.fct_admissions),"
            " (select count(distinct appointment_id) from staging.stg_scheduling__appointments),"
            " (select count(*) from marts.fct_appointments),"
            " (select count(distinct charge_id) from staging.stg_billing__charges),"
            " (select count(*) from marts.fct_charges),"
            " (select sum(charge_amount_usd) from staging.stg_billing__charges where charge_id is not null),"
            " (select sum(amount_usd) from marts.fct_charges),"
            " (select count(*) filter (where appointment_status = 'No Show')"
            "  from staging.stg_scheduling__appointments),"
            " (select count(*) filter (where is_no_show) from marts.fct_appointments),"
            " (select count(*) filter (where discharged_at is null) from staging.stg_adt__admissions),"
            " (select count(*) filter (where is_open) from marts.fct_admissions)",
        )[0]
        pairs = list(zip(reconciled[::2], reconciled[1::2], strict=True))
        assert all(staged == fact for staged, fact in pairs), pairs
        assert all(staged > 0 for staged, _ in pairs[:4]), pairs


LATE_CHANGE_MODELS = ["int_claims_pivoted", "fct_claims", "int_coverage_periods_sequenced", "dim_patients",
                      "int_encounters_unioned", "int_patients_joined_to_coverage"]  # fmt: skip


def insert_raw_version(connection: duckdb.DuckDBPyConnection, table: str, key: str, value: str, **changes) -> None:
    """Append a new version of a raw record (its latest row with ``changes``), loaded now."""
    replaced = ", ".join(f"? as {column}" for column in changes)
    connection.execute(
        f"insert into raw.{table} select * replace ({replaced}, 'late-test' as _batch_id, now() as _loaded_at) "
        f"from raw.{table} where {key} = ? order by updated_at desc, _loaded_at desc limit 1",
        [*changes.values(), value],
    )


def make_late_changes(connection: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Load late changes whose effects reach rows of other keys; return the records changed."""
    two_periods = connection.execute(
        "select mrn, min(coverage_id), max(coverage_id) from integration.int_coverage_periods_sequenced"
        " group by mrn having count(*) >= 2 order by mrn limit 2"
    ).fetchall()
    (single,) = connection.execute(
        "select min(mrn) from integration.int_coverage_periods_sequenced where period_count = 1"
    ).fetchone()
    assert len(two_periods) == 2 and single, "no patient with two coverage periods: choose another network"
    (earlier_patient, first_period, _), (moving_patient, _, moved_period) = two_periods
    # 1. A period that began before the patient's first one arrives late: every period of the patient renumbers.
    (effective,) = connection.execute(
        "select effective_date from integration.int_coverage_periods_sequenced where coverage_id = ?", [first_period]
    ).fetchone()
    insert_raw_version(connection, "payers__coverage", "coverage_id", first_period, coverage_id="COVLATE0001",
                       effective_date=effective - dt.timedelta(days=400),
                       termination_date=effective - dt.timedelta(days=1))  # fmt: skip
    # 2. A period corrected to another patient: both patients' timelines change.
    insert_raw_version(connection, "payers__coverage", "coverage_id", moved_period, mrn=single,
                       updated_at=dt.datetime(2024, 12, 1, tzinfo=dt.UTC))  # fmt: skip
    # 3. A late status change of a submitted claim (the clearinghouse resends it with the denial).
    claim_id, history, updated = connection.execute(
        "select claim_id, status_history, updated_at from raw.claims__claims where claim_id = (select min(claim_id)"
        " from integration.int_claims_pivoted where final_claim_status = 'submitted')"
        " order by updated_at desc, _loaded_at desc limit 1"
    ).fetchone()
    denied_at = updated + dt.timedelta(days=20)
    denial = {"status": "denied", "at": denied_at.strftime("%Y-%m-%dT%H:%M:%SZ"), "reason_code": "CO-16"}
    insert_raw_version(connection, "claims__claims", "claim_id", claim_id, claim_status="denied",
                       denial_reason_code="CO-16", status_history=json.dumps([*json.loads(history), denial]),
                       updated_at=denied_at)  # fmt: skip
    # 4. A record changed 800 days after the data's last day: every age band is as of that day now.
    (appointment_id,) = connection.execute("select min(appointment_id) from raw.scheduling__appointments").fetchone()
    (last_day,) = connection.execute("select max(age_as_of_date) from marts.dim_patients").fetchone()
    later = dt.datetime.combine(last_day + dt.timedelta(days=800), dt.time(12), tzinfo=dt.UTC)
    insert_raw_version(connection, "scheduling__appointments", "appointment_id", appointment_id, updated_at=later)
    return {"earlier": earlier_patient, "moving": moving_patient, "single": single, "claim": claim_id}


def test_late_changes_recompute_every_dependent_row_like_a_full_refresh(marts, tmp_path) -> None:
    incremental, full = tmp_path / "late_incremental.duckdb", tmp_path / "late_full.duckdb"
    shutil.copyfile(marts.incremental, incremental)
    with duckdb.connect(str(incremental)) as connection:
        bands_before = dict(connection.execute("select patient_key, age_band from marts.dim_patients").fetchall())
        changed = make_late_changes(connection)
    shutil.copyfile(incremental, full)
    project, select = marts.root / "dbt_project", ["--select", *LATE_CHANGE_MODELS]
    assert build(project, tmp_path, incremental, *select, command="run").success
    assert build(project, tmp_path, full, *select, "--full-refresh", command="run").success

    tables = [("integration", name) for name in LATE_CHANGE_MODELS if name.startswith("int_")]
    tables += [("marts", name) for name in LATE_CHANGE_MODELS if not name.startswith("int_")]
    assert differing_rows(incremental, full, tables) == {}
    # The changes did reach rows of other keys (else the comparison above proves little).
    periods = dict(query(incremental, "select mrn, period_count from integration.int_coverage_periods_sequenced"))
    before = dict(query(marts.incremental, "select mrn, period_count from integration.int_coverage_periods_sequenced"))
    assert periods[changed["earlier"]] == before[changed["earlier"]] + 1
    assert query(incremental, "select period_number from integration.int_coverage_periods_sequenced "
                              "where coverage_id = 'COVLATE0001'") == [(1,)]  # fmt: skip
    assert (periods[changed["moving"]], periods[changed["single"]]) == (before[changed["moving"]] - 1, 2)
    key = hashlib.sha256(f"{SALT}|claim|{changed['claim']}".encode()).hexdigest()
    assert query(incremental, f"select final_claim_status, is_denied_initially from marts.fct_claims "
                              f"where claim_key = '{key}'") == [("denied", True)]  # fmt: skip
    bands_after = dict(query(incremental, "select patient_key, age_band from marts.dim_patients"))
    assert sum(bands_after[key] != band for key, band in bands_before.items()) > 0


def test_a_table_built_before_its_model_became_incremental_asks_for_a_full_refresh(marts, tmp_path) -> None:
    """A warehouse built by an earlier version holds int_claims_pivoted as a plain table without ``_loaded_at``:
    the daily run must say what to do, not fail with a binder error about aggregates in a WHERE clause."""
    warehouse = tmp_path / "upgraded.duckdb"
    shutil.copyfile(marts.incremental, warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("alter table integration.int_claims_pivoted drop column _loaded_at")
    project = marts.root / "dbt_project"
    result = build(project, tmp_path, warehouse, "--select", "int_claims_pivoted", command="run")
    assert not result.success
    messages = " ".join(str(item.message) for item in result.result.results if item.message)
    assert "has no _loaded_at column" in messages and "full refresh" in messages, messages
    rebuilt = build(project, tmp_path, warehouse, "--select", "int_claims_pivoted", "--full-refresh", command="run")
    assert rebuilt.success
    assert [name for name, _ in columns(warehouse, "int_claims_pivoted", "integration")][-1] == "_loaded_at"
