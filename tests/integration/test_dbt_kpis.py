"""The KPI marts against the same KPIs computed independently in Python from the landing files and raw tables.

One module fixture generates a small network, loads it into a fresh warehouse and builds lists, staging and
everything downstream once; every test reads what that build left behind. The expectations are derived in Python,
independently of dbt: claims and admissions from the landing files (as the first tests did), the other KPIs from
the loader's raw tables (deduplicated to the latest version of each record in Python, `dbtkit.raw_latest`), with
instants converted from UTC to the hospital's zone (America/Chicago, flows/sources.yml) for every calendar rule.
The rules are the ones written as comments in the marts (docs/dbt.md, "KPI marts").
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dbt.cli.main import dbtRunnerResult

from flows.contracts.registry import load_registry
from generators.batch import NetworkSpec, generate_initial
from tests.integration.dbtkit import PROJECT, copy_project, duckdb_target, invoke, load, query, raw_latest

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=9, patients=2500, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 3, 31)
SALT = "kpi-test-salt-" + "0123456789abcdef" * 2
# The surrogate salt and the calendar read no other model, so `staging+` alone leaves them out: named here.
SELECT = ["--select", "lists", "staging+", "int_surrogate_salt_generated", "dim_dates", "--indirect-selection",
          "cautious"]  # fmt: skip
VARS = ["--vars", f"{{defect_severity: error, surrogate_salt: {SALT}}}"]
KPI_MARTS = {
    "fct_claims", "mart_claim_denials", "mart_admissions_monthly", "mart_denial_reasons", "mart_patient_demographics",
    "mart_length_of_stay_by_department", "mart_length_of_stay_by_diagnosis_chapter", "mart_readmissions_monthly",
    "mart_bed_occupancy_daily", "mart_no_shows_by_weekday", "mart_no_shows_by_lead_time",
    "mart_no_shows_by_department", "mart_payer_mix", "mart_revenue_by_department", "mart_physician_activity",
}  # fmt: skip
HOSPITAL_ZONE = ZoneInfo("America/Chicago")
DUE_STATUSES = {"Completed", "No Show"}


@dataclass
class Built:
    """The landed batch, the warehouse built from it, the build's result and the docs site generated from it."""

    landing: Path
    warehouse: Path
    result: dbtRunnerResult
    docs: Path
    docs_result: dbtRunnerResult


@pytest.fixture(scope="module")
def built_kpis(tmp_path_factory) -> Iterator[Built]:
    """Generate the initial batch, load it and run one dbt build of lists, staging and everything downstream."""
    root = tmp_path_factory.mktemp("kpis")
    project = copy_project(root / "dbt_project")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    batch = generate_initial(landing, NETWORK, END, registry=load_registry())
    load(batch.path, warehouse)
    with duckdb_target(warehouse):
        result = invoke(project, root, "build", *SELECT, *VARS)
        # The docs site as the pipeline publishes it: `dbt docs generate --target-path <data home>/dbt_docs`.
        docs = root / "dbt_docs"
        docs_result = invoke(project, root, "docs", "generate", *VARS, "--target-path", str(docs))
    yield Built(landing, warehouse, result, docs, docs_result)


def latest_versions(records: list[dict], key: str) -> list[dict]:
    """The last version of each record (by updated_at), records without a key left out, as staging does."""
    latest: dict[str, dict] = {}
    for record in records:
        if not record.get(key):
            continue
        if record[key] not in latest or record["updated_at"] >= latest[record[key]]["updated_at"]:
            latest[record[key]] = record
    return list(latest.values())


def landed_claims(landing: Path) -> list[dict]:
    records = []
    for path in sorted(landing.glob("*/claims_*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    for record in records:
        record["updated_at"] = dt.datetime.fromisoformat(record["updated_at"])
    return latest_versions(records, "claim_id")


def landed_admissions(landing: Path) -> list[dict]:
    registry_source = load_registry().sources["adt__admissions"]
    records = []
    for path in sorted(landing.glob("*/admissions_*.txt")):
        with path.open(newline="", encoding="utf-8") as handle:
            records.extend(csv.DictReader(handle, delimiter=registry_source.delimiter))
    return latest_versions(records, "admission_id")


def expected_denials(landing: Path) -> dict[tuple[str, dt.date], tuple[int, int, float]]:
    """(payer, local month of submission) -> claims, initially denied, denial rate."""
    counts: dict[tuple[str, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    for claim in landed_claims(landing):
        history = claim["status_history"]
        if isinstance(history, str):
            history = json.loads(history)
        submitted = dt.datetime.fromisoformat(history[0]["at"]).astimezone(HOSPITAL_ZONE)
        key = (claim["payer_id"], submitted.date().replace(day=1))
        counts[key][0] += 1
        # Initial denial: the payer's first answer to the submission (the second event) is a denial.
        counts[key][1] += len(history) > 1 and history[1]["status"].lower() == "denied"
    return {key: (claims, denied, denied / claims) for key, (claims, denied) in counts.items()}


def expected_admissions(landing: Path) -> dict[tuple[str, dt.date], tuple[int, int, float | None]]:
    """(hospital, local month) -> admissions (by admission month), discharges and mean nights (by discharge month)."""
    admitted: dict[tuple[str, dt.date], int] = defaultdict(int)
    nights: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    for stay in landed_admissions(landing):
        # Timestamps are written in local time without an offset: their dates are the local calendar dates.
        admit = dt.datetime.fromisoformat(stay["admit_at"]).date()
        admitted[(stay["hospital_id"], admit.replace(day=1))] += 1
        if stay["discharge_at"]:
            discharge = dt.datetime.fromisoformat(stay["discharge_at"]).date()
            nights[(stay["hospital_id"], discharge.replace(day=1))].append((discharge - admit).days)
    return {
        key: (admitted.get(key, 0), len(nights.get(key, [])), statistics.fmean(nights[key]) if key in nights else None)
        for key in admitted.keys() | nights.keys()
    }


def test_every_node_of_the_build_passes(built_kpis) -> None:
    assert built_kpis.result.success, built_kpis.result.exception
    statuses = {item.node.name: str(item.status) for item in built_kpis.result.result.results}
    assert {name: status for name, status in statuses.items() if status not in {"success", "pass"}} == {}
    assert set(statuses) >= KPI_MARTS


def test_denial_rate_per_payer_and_month_matches_the_landed_histories(built_kpis) -> None:
    rows = query(
        built_kpis.warehouse,
        "select payer_id, month_date, claim_count, initially_denied_count, initial_denial_rate "
        "from marts.mart_claim_denials",
    )
    actual = {(payer, month): (claims, denied, rate) for payer, month, claims, denied, rate in rows}
    expected = expected_denials(built_kpis.landing)
    assert expected, "the generated network has no claims"
    assert actual.keys() == expected.keys()
    for key, (claims, denied, rate) in expected.items():
        assert actual[key][:2] == (claims, denied), key
        assert actual[key][2] == pytest.approx(rate), key


def test_monthly_admissions_and_average_stay_match_the_landed_adt_files(built_kpis) -> None:
    rows = query(
        built_kpis.warehouse,
        "select hospital_id, month_date, admission_count, discharge_count, average_length_of_stay_nights "
        "from marts.mart_admissions_monthly",
    )
    actual = {(hospital, month): (admissions, discharges, los) for hospital, month, admissions, discharges, los in rows}
    expected = expected_admissions(built_kpis.landing)
    assert expected, "the generated network has no admissions"
    assert actual.keys() == expected.keys()
    for key, (admissions, discharges, los) in expected.items():
        assert actual[key][:2] == (admissions, discharges), key
        assert actual[key][2] == pytest.approx(los), key


def test_median_stay_lies_within_the_months_stays(built_kpis) -> None:
    rows = query(
        built_kpis.warehouse,
        "select median_length_of_stay_nights, average_length_of_stay_nights, discharge_count "
        "from marts.mart_admissions_monthly where discharge_count > 0",
    )
    assert rows
    assert all(median is not None and median >= 0 for median, _, _ in rows)


# --- The other KPI marts, recomputed from the raw tables -------------------------------------------------------


@dataclass
class Raw:
    """The latest version of every record the KPIs read, from the loader's raw tables (Python dedupe)."""

    admissions: list[dict]
    appointments: list[dict]
    charges: list[dict]
    claims: list[dict]
    departments: dict[str, dict]
    patients: dict[str, dict]
    coverage: list[dict]
    plan_payer: dict[str, str]
    payer_type: dict[str, str]


@pytest.fixture(scope="module")
def raw(built_kpis) -> Raw:
    warehouse = built_kpis.warehouse
    return Raw(
        admissions=raw_latest(warehouse, "adt__admissions", "admission_id"),
        appointments=raw_latest(warehouse, "scheduling__appointments", "appointment_id"),
        charges=raw_latest(warehouse, "billing__charges", "charge_id", version="posted_at"),
        claims=raw_latest(warehouse, "claims__claims", "claim_id"),
        departments={
            row["department_id"]: row for row in raw_latest(warehouse, "facilities__departments", "department_id")
        },
        patients={row["mrn"]: row for row in raw_latest(warehouse, "registration__patients", "mrn")},
        coverage=raw_latest(warehouse, "payers__coverage", "coverage_id"),
        plan_payer={row["plan_id"]: row["payer_id"] for row in raw_latest(warehouse, "payers__plans", "plan_id")},
        payer_type={row["payer_id"]: row["payer_type"] for row in raw_latest(warehouse, "payers__payers", "payer_id")},
    )


def local(instant: dt.datetime | None) -> dt.date | None:
    """The hospital's calendar date of a UTC instant."""
    return instant.astimezone(HOSPITAL_ZONE).date() if instant is not None else None


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def read_list(name: str, delimiter: str) -> list[dict[str, str]]:
    """A reference list (seed file) as the lists' source publishes it."""
    with (PROJECT / "seeds" / "lists" / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def age_band(birth: dt.date | None, on: dt.date) -> str:
    """Safe Harbor age bands with 90+ on top (as documented for dim_patients)."""
    if birth is None or birth > on:
        return "unknown"
    age = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    for lower, band in ((90, "90+"), (85, "85-89"), (75, "75-84"), (65, "65-74"), (45, "45-64"), (18, "18-44")):
        if age >= lower:
            return band
    return "0-17"


def lead_time_band(days: int) -> str:
    if days < 0:
        return "invalid"
    for upper, band in ((0, "0 days"), (7, "1-7 days"), (14, "8-14 days"), (30, "15-30 days"), (60, "31-60 days")):
        if days <= upper:
            return band
    return "61+ days"


def nights(stay: dict) -> int:
    return (local(stay["discharge_at"]) - local(stay["admit_at"])).days


def stats(values: list[int]) -> tuple[int, float, float]:
    return len(values), statistics.fmean(values), float(statistics.median(values))


def rows_by_key(warehouse: Path, sql: str, width: int) -> dict[tuple, tuple]:
    """Mart rows keyed by their first ``width`` columns."""
    return {tuple(row[:width]): tuple(row[width:]) for row in query(warehouse, sql)}


def assert_same(actual: dict, expected: dict) -> None:
    """Same keys, and every value equal (floats to 1e-9)."""
    assert expected, "nothing to compare: the generated network lacks this KPI"
    assert actual.keys() == expected.keys()
    for key, values in expected.items():
        assert actual[key] == pytest.approx(values, rel=1e-9, abs=1e-9), key


def test_denial_reasons_count_each_claims_first_denial_in_its_submission_month(built_kpis, raw) -> None:
    expected: dict[tuple, int] = defaultdict(int)
    for claim in raw.claims:
        events = sorted(json.loads(claim["status_history"]), key=lambda event: event["at"])
        denials = [event for event in events if event["status"].lower() == "denied"]
        if denials:
            submitted = min(dt.datetime.fromisoformat(e["at"]) for e in events if e["status"].lower() == "submitted")
            expected[(month_of(local(submitted)), denials[0]["reason_code"].upper())] += 1
    actual = rows_by_key(
        built_kpis.warehouse,
        "select month_date, denial_reason_code, denied_claim_count from marts.mart_denial_reasons",
        2,
    )
    assert_same(actual, {key: (count,) for key, count in expected.items()})


def test_inpatient_demographics_count_each_patient_once_at_first_admission(built_kpis, raw) -> None:
    first: dict[str, dict] = {}
    for stay in sorted(raw.admissions, key=lambda stay: (stay["admit_at"], stay["admission_id"])):
        if stay["mrn"] and stay["mrn"] not in first:
            first[stay["mrn"]] = stay
    expected: dict[tuple, int] = defaultdict(int)
    for mrn, stay in first.items():
        patient = raw.patients.get(mrn)
        sex = patient["sex"].strip().upper() if patient else "U"
        birth = patient["birth_date"] if patient else None
        expected[(sex, age_band(birth, local(stay["admit_at"])))] += 1
    actual = rows_by_key(
        built_kpis.warehouse, "select sex, age_band, patient_count from marts.mart_patient_demographics", 2
    )
    assert_same(actual, {key: (count,) for key, count in expected.items()})


def test_length_of_stay_by_department_and_chapter_match_the_raw_stays(built_kpis, raw) -> None:
    chapters = read_list("icd10cm_chapters", "|")
    by_department: dict[tuple, list[int]] = defaultdict(list)
    by_chapter: dict[int | None, list[int]] = defaultdict(list)
    for stay in raw.admissions:
        if stay["discharge_at"] is None:
            continue
        by_department[(stay["hospital_id"], stay["department_id"])].append(nights(stay))
        category = (stay["principal_dx_code"] or "").strip().upper()[:3]
        chapter = next(
            (int(c["chapter_number"]) for c in chapters if c["first_code"] <= category <= c["last_code"]), None
        )
        by_chapter[chapter].append(nights(stay))
    actual = rows_by_key(
        built_kpis.warehouse,
        "select hospital_id, department_id, discharge_count, average_length_of_stay_nights,"
        " median_length_of_stay_nights from marts.mart_length_of_stay_by_department",
        2,
    )
    assert_same(actual, {key: stats(values) for key, values in by_department.items()})
    actual = rows_by_key(
        built_kpis.warehouse,
        "select diagnosis_chapter_number, discharge_count, average_length_of_stay_nights,"
        " median_length_of_stay_nights from marts.mart_length_of_stay_by_diagnosis_chapter",
        1,
    )
    assert_same(actual, {(chapter,): stats(values) for chapter, values in by_chapter.items()})
    assert len(by_chapter) > 3, "too few chapters to test the chapter join"


def test_monthly_readmission_rate_follows_the_hrrp_rules_on_the_raw_stays(built_kpis, raw) -> None:
    dispositions = {row["discharge_disposition_code"]: row for row in read_list("discharge_dispositions", "|")}
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for stay in raw.admissions:
        if stay["mrn"]:
            by_patient[stay["mrn"]].append(stay)
    counts: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for stays in by_patient.values():
        stays.sort(key=lambda stay: (stay["admit_at"], stay["admission_id"]))
        for index, following in zip(stays, [*stays[1:], None], strict=True):
            disposition = dispositions.get((index["discharge_disposition"] or "").strip(), {})
            # Index stays: discharged, alive, not transferred out to acute care.
            if index["discharge_at"] is None or "true" in (
                disposition.get("is_expired"),
                disposition.get("is_transfer_to_acute_care"),
            ):
                continue
            month = month_of(local(index["discharge_at"]))
            counts[month][0] += 1
            if following is None or following["admit_at"] < index["discharge_at"]:
                continue
            days = (local(following["admit_at"]) - local(index["discharge_at"])).days
            planned = (
                following["admission_type"].strip().title() == "Elective"
                and following["principal_dx_code"].strip().upper() == "Z51.11"
            )
            counts[month][1] += 0 <= days <= 30 and not planned
    expected = {(month,): (index, readmitted, readmitted / index) for month, (index, readmitted) in counts.items()}
    actual = rows_by_key(
        built_kpis.warehouse,
        "select month_date, index_discharge_count, readmission_count, readmission_rate"
        " from marts.mart_readmissions_monthly",
        1,
    )
    assert_same(actual, expected)
    assert sum(readmitted for _, readmitted, _ in expected.values()) > 0, "no readmission: the rate is not tested"


def test_daily_occupancy_is_the_midnight_census_over_staffed_beds(built_kpis, raw) -> None:
    stays = [(stay["department_id"], local(stay["admit_at"]), local(stay["discharge_at"])) for stay in raw.admissions]
    first_day = min(admitted for _, admitted, _ in stays)
    last_day = max(local(stay["updated_at"]) for stay in raw.admissions)
    inpatient = {key: row for key, row in raw.departments.items() if row["is_inpatient"]}
    expected: dict[tuple, list[int]] = {}
    day = first_day
    while day <= last_day:
        for department_id, department in inpatient.items():
            census = sum(
                1
                for stay_department, admitted, discharged in stays
                if stay_department == department_id and admitted <= day and (discharged is None or discharged > day)
            )
            totals = expected.setdefault((day, department["hospital_id"]), [0, 0])
            totals[0] += census
            totals[1] += department["staffed_beds"]
        day += dt.timedelta(days=1)
    actual = rows_by_key(
        built_kpis.warehouse,
        "select census_date, hospital_id, midnight_census, staffed_beds, occupancy_rate"
        " from marts.mart_bed_occupancy_daily",
        2,
    )
    assert_same(actual, {key: (census, beds, census / beds) for key, (census, beds) in expected.items()})
    assert any(census > 0 for census, _ in expected.values())


def test_no_show_rates_by_weekday_lead_time_and_department_match_the_raw_appointments(built_kpis, raw) -> None:
    weekday: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    lead: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    department: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for appointment in raw.appointments:
        status = appointment["status"].strip().title()
        # Denominator: appointments due and with a known outcome (Completed or No Show).
        if status not in DUE_STATUSES:
            continue
        visit = local(appointment["scheduled_at"])
        hospital = raw.departments[appointment["department_id"]]["hospital_id"]
        for counts, key in (
            (weekday, (visit.isoweekday(),)),
            (lead, (lead_time_band((visit - local(appointment["booked_at"])).days),)),
            (department, (hospital, appointment["department_id"])),
        ):
            counts[key][0] += 1
            counts[key][1] += status == "No Show"
    marts = {
        "mart_no_shows_by_weekday": (weekday, "iso_day_of_week", 1),
        "mart_no_shows_by_lead_time": (lead, "lead_time_band", 1),
        "mart_no_shows_by_department": (department, "hospital_id, department_id", 2),
    }
    for mart, (counts, key_columns, width) in marts.items():
        actual = rows_by_key(
            built_kpis.warehouse,
            f"select {key_columns}, appointment_count, no_show_count, no_show_rate from marts.{mart}",
            width,
        )
        assert_same(actual, {key: (due, missed, missed / due) for key, (due, missed) in counts.items()})
    assert sum(missed for _, missed in weekday.values()) > 0


def test_payer_mix_uses_the_coverage_in_effect_on_the_admission_day(built_kpis, raw) -> None:
    periods: dict[str, list[dict]] = defaultdict(list)
    for period in raw.coverage:
        if period["mrn"]:
            periods[period["mrn"]].append(period)
    counts: dict[tuple, int] = defaultdict(int)
    for stay in raw.admissions:
        admitted = local(stay["admit_at"])
        in_effect = [
            period
            for period in periods.get(stay["mrn"], [])
            if period["effective_date"] <= admitted
            and (period["termination_date"] is None or period["termination_date"] >= admitted)
        ]
        payer_type = "self_pay"
        if in_effect:
            latest = max(in_effect, key=lambda period: (period["effective_date"], period["coverage_id"]))
            payer_type = raw.payer_type.get(raw.plan_payer.get(latest["plan_id"]), "unknown")
        counts[(month_of(admitted), payer_type)] += 1
    months: dict[dt.date, int] = defaultdict(int)
    for (month, _), count in counts.items():
        months[month] += count
    expected = {key: (count, count / months[key[0]]) for key, count in counts.items()}
    actual = rows_by_key(
        built_kpis.warehouse,
        "select month_date, payer_type, admission_count, admission_share from marts.mart_payer_mix",
        2,
    )
    assert_same(actual, expected)
    assert len({payer_type for _, payer_type in expected}) >= 3


def test_revenue_by_department_attributes_each_charge_to_its_encounters_department(built_kpis, raw) -> None:
    encounters = {
        ("inpatient", stay["admission_id"]): (stay["hospital_id"], stay["department_id"]) for stay in raw.admissions
    }
    for appointment in raw.appointments:
        hospital = raw.departments[appointment["department_id"]]["hospital_id"]
        encounters[("outpatient", appointment["appointment_id"])] = (hospital, appointment["department_id"])
    expected: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    for charge in raw.charges:
        hospital, department = encounters.get(
            (charge["encounter_type"].strip().lower(), charge["encounter_id"]), (None, None)
        )
        totals = expected[(month_of(charge["service_date"]), hospital, department)]
        totals[0] += 1
        totals[1] += charge["amount"]
    actual = rows_by_key(
        built_kpis.warehouse,
        "select month_date, hospital_id, department_id, charge_count, charge_amount_usd"
        " from marts.mart_revenue_by_department",
        3,
    )
    assert actual == {key: tuple(values) for key, values in expected.items()}
    assert (None, None) not in {key[1:] for key in expected}, "clean data: every charge has its encounter"


def test_physician_activity_counts_attended_admissions_and_held_appointments(built_kpis, raw) -> None:
    expected: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for stay in raw.admissions:
        if stay["attending_npi"]:
            expected[(month_of(local(stay["admit_at"])), stay["attending_npi"])][0] += 1
    for appointment in raw.appointments:
        if appointment["npi"] and appointment["status"].strip().title() == "Completed":
            expected[(month_of(local(appointment["scheduled_at"])), appointment["npi"])][1] += 1
    actual = rows_by_key(
        built_kpis.warehouse,
        "select month_date, npi, admission_count, appointment_count from marts.mart_physician_activity",
        2,
    )
    assert_same(actual, {key: tuple(values) for key, values in expected.items()})


def test_kpi_totals_reconcile_with_the_facts(built_kpis) -> None:
    (totals,) = query(
        built_kpis.warehouse,
        "select"
        " (select sum(admission_count) from marts.mart_admissions_monthly),"
        " (select count(*) from marts.fct_admissions),"
        " (select sum(charge_amount_usd) from marts.mart_revenue_by_department),"
        " (select sum(amount_usd) from marts.fct_charges),"
        " (select sum(claim_count) from marts.mart_claim_denials),"
        " (select count(*) from marts.fct_claims),"
        " (select sum(admission_count) from marts.mart_payer_mix),"
        " (select count(*) from marts.fct_admissions),"
        " (select sum(denied_claim_count) from marts.mart_denial_reasons),"
        " (select sum(initially_denied_count) from marts.mart_claim_denials),"
        " (select sum(discharge_count) from marts.mart_length_of_stay_by_diagnosis_chapter),"
        " (select sum(discharge_count) from marts.mart_length_of_stay_by_department),"
        " (select sum(patient_count) from marts.mart_patient_demographics),"
        " (select count(distinct patient_key) from marts.fct_admissions)",
    )
    pairs = list(zip(totals[::2], totals[1::2], strict=True))
    assert all(mart == fact for mart, fact in pairs), pairs
    assert all(fact > 0 for _, fact in pairs), pairs


def test_docs_site_is_generated_and_its_catalog_holds_names_and_types_only(built_kpis, raw) -> None:
    assert built_kpis.docs_result.success, built_kpis.docs_result.exception
    for name in ("index.html", "manifest.json", "catalog.json"):
        assert (built_kpis.docs / name).is_file(), name
    catalog = json.loads((built_kpis.docs / "catalog.json").read_text(encoding="utf-8"))
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert documented >= KPI_MARTS | {"stg_registration__patients", "int_readmissions_paired"}
    for node in [*catalog["nodes"].values(), *catalog["sources"].values()]:
        # Column entries are name, type, position and comment; statistics are flags or sizes, never values.
        for column in node["columns"].values():
            assert set(column) <= {"name", "type", "index", "comment"}, column
        for statistic in node["stats"].values():
            assert isinstance(statistic["value"], bool | int | float | None) or statistic["id"] == "last_modified"
    # And no generated patient's identifier appears anywhere in the site (the catalog reads PHI tables' schemas).
    site = "".join((built_kpis.docs / name).read_text(encoding="utf-8") for name in ("catalog.json", "manifest.json"))
    identifiers = {
        value
        for patient in raw.patients.values()
        for value in (patient["mrn"], patient["ssn"], patient["phone"], patient["email"], patient["address_line"])
        if value
    }
    assert len(identifiers) > 5000
    assert [value for value in identifiers if value in site] == []
