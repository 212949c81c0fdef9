"""The marts checkpoint on a small hand-made marts schema: a sound one passes, each broken rule is reported.

The marts are written directly in DuckDB (not by dbt: the dbt tests own the models; this tests the gate's rules),
following the KPI mart contract of the brief. The broken copy changes one thing per rule, so each expected
failure is derived from the change that was made.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from expectations import QualityGateFailed, run_checkpoint
from flows.contracts.marts import kpi_mart_names

pytestmark = pytest.mark.integration

PATIENT = ("Ada", "Lovelace", "12 Analytical Way")

SOUND = f"""
create schema raw; create schema marts;
create table raw.registration__patients as
    select '{PATIENT[0]}' as first_name, '{PATIENT[1]}' as last_name, '{PATIENT[2]}' as address_line;
-- Instants are UTC; KPI months are Chicago's. The last stay is on 31 March local time but 1 April in UTC: no
-- mart needs an April row for it.
create table marts.fct_admissions as select * from (values
    (timestamp '2024-01-05 15:00:00', timestamp '2024-01-07 15:00:00'),
    (timestamp '2024-02-10 15:00:00', timestamp '2024-02-12 15:00:00'),
    (timestamp '2024-03-20 15:00:00', timestamp '2024-03-22 15:00:00'),
    (timestamp '2024-04-01 04:30:00', timestamp '2024-04-01 04:45:00')) as t(admitted_at, discharged_at);
create table marts.fct_charges as
    select * from (values (date '2024-01-05', 100.0), (date '2024-02-10', 20.0), (date '2024-03-20', 50.5))
    as t(service_date, amount_usd);
create table marts.fct_claims as select * from (values
    (timestamp '2024-01-06 10:00:00', true), (timestamp '2024-02-06 10:00:00', false),
    (timestamp '2024-03-06 10:00:00', true)) as t(submitted_at, is_denied_initially);
create table marts.mart_admissions_monthly as select * from (values
    ('H001', date '2024-01-01', 1), ('H001', date '2024-02-01', 1), ('H001', date '2024-03-01', 2))
    as t(hospital_id, month_date, admission_count);
create table marts.mart_claim_denials as select * from (values
    ('PAY01', date '2024-01-01', 1, 1.0), ('PAY01', date '2024-02-01', 1, 0.0), ('PAY01', date '2024-03-01', 1, 1.0))
    as t(payer_id, month_date, claim_count, initial_denial_rate);
create table marts.mart_denial_reasons as select * from (values
    (date '2024-01-01', 'CO-16', 'Missing information', 1, 1.0),
    (date '2024-02-01', 'CO-16', 'Missing information', 0, 0.0),
    (date '2024-03-01', 'CO-50', 'Not medically necessary', 1, 1.0))
    as t(month_date, denial_reason_code, denial_reason_description, denied_claim_count, denied_claim_share);
create table marts.mart_patient_demographics as select 'F' as sex, '30-39' as age_band, 3 as patient_count;
create table marts.mart_length_of_stay_by_department as
    select 'H001' as hospital_id, 'H001-MED' as department_id, 'Medicine' as department_name, 3 as discharge_count;
create table marts.mart_length_of_stay_by_diagnosis_chapter as
    select 9 as diagnosis_chapter_number, 'Diseases of the circulatory system' as diagnosis_chapter_title;
create table marts.mart_readmissions_monthly as select * from (values
    (date '2024-01-01', 1, 0, 0.0), (date '2024-02-01', 1, 1, 1.0), (date '2024-03-01', 1, 0, 0.0))
    as t(month_date, index_discharge_count, readmission_count, readmission_rate);
create table marts.mart_bed_occupancy_daily as
    select date '2024-01-05' as census_date, 'H001' as hospital_id, 8 as midnight_census, 10 as staffed_beds,
           0.8 as occupancy_rate;
create table marts.mart_no_shows_by_weekday as
    select 1 as iso_day_of_week, 'Monday' as weekday_name, 0.1 as no_show_rate;
create table marts.mart_no_shows_by_lead_time as select '0-7 days' as lead_time_band, 0.2 as no_show_rate;
create table marts.mart_no_shows_by_department as select 'H001-MED' as department_id, 0.3 as no_show_rate;
create table marts.mart_payer_mix as select * from (values
    (date '2024-01-01', 'medicare', 1.0), (date '2024-02-01', 'medicare', 1.0), (date '2024-03-01', 'medicare', 1.0))
    as t(month_date, payer_type, admission_share);
create table marts.mart_revenue_by_department as select * from (values
    (date '2024-01-01', 'H001-MED', 'Medicine', 100.0), (date '2024-02-01', 'H001-MED', 'Medicine', 20.0),
    (date '2024-03-01', 'H001-MED', 'Medicine', 50.5))
    as t(month_date, department_id, department_name, charge_amount_usd);
create table marts.mart_physician_activity as select * from (values
    (date '2024-01-01', '1234567893', 1), (date '2024-02-01', '1234567893', 1), (date '2024-03-01', '1234567893', 1))
    as t(month_date, npi, admission_count);
"""

# One change per rule, and the rule id each change must fail.
BREAKS = {
    "update marts.mart_readmissions_monthly set readmission_rate = 1.5 where month_date = date '2024-02-01'":
        "mart_readmissions_monthly.fraction.readmission_rate",
    "update marts.mart_bed_occupancy_daily set midnight_census = 12":
        "mart_bed_occupancy_daily.not_above.midnight_census",
    "delete from marts.mart_payer_mix where month_date = date '2024-02-01'": "mart_payer_mix.month_coverage.month_date",
    "update marts.mart_claim_denials set claim_count = 2 where month_date = date '2024-03-01'":
        "mart_claim_denials.totals.claims",
    "alter table marts.mart_no_shows_by_department add column patient_email varchar":
        "mart_no_shows_by_department.identifier_columns",
    "update marts.mart_no_shows_by_lead_time set lead_time_band = 'call 555-867-5309'":
        "mart_no_shows_by_lead_time.identifier_values.lead_time_band",
    f"update marts.mart_length_of_stay_by_department set department_name = '{PATIENT[0]} {PATIENT[1]}'":
        "mart_length_of_stay_by_department.patient_values.department_name",
    f"update marts.mart_revenue_by_department set department_name = '{PATIENT[2]}' where charge_amount_usd > 60":
        "mart_revenue_by_department.patient_values.department_name",
    "drop table marts.mart_physician_activity": "catalog.expected_tables",
}  # fmt: skip


@pytest.fixture(scope="module")
def sound_marts(tmp_path_factory) -> Path:
    warehouse = tmp_path_factory.mktemp("marts") / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(SOUND)
    return warehouse


def test_marts_checkpoint_passes_sound_marts(sound_marts, tmp_path):
    outcome = run_checkpoint("marts", warehouse_path=sound_marts, data_docs_dir=tmp_path / "docs")
    assert outcome.success, [failure.describe() for failure in outcome.failures]
    expected = kpi_mart_names()
    assert {o.suite for o in outcome.outcomes} >= {f"marts.{table}" for table in expected} | {"marts.catalog"}
    assert (tmp_path / "docs" / "index.html").exists()


def test_marts_checkpoint_reports_each_broken_rule_and_a_missing_mart(sound_marts, tmp_path):
    broken = tmp_path / "warehouse.duckdb"
    shutil.copy(sound_marts, broken)
    with duckdb.connect(str(broken)) as connection:
        for statement in BREAKS:
            connection.execute(statement)
    with pytest.raises(QualityGateFailed) as raised:
        run_checkpoint("marts", warehouse_path=broken, data_docs_dir=tmp_path / "docs")
    failures = raised.value.outcome.failures
    failed_rules = {f.note.split(";")[0].removeprefix("rule ") for f in failures}
    assert failed_rules == set(BREAKS.values())
    catalog = next(f for f in failures if f.suite == "marts.catalog")
    assert "missing: mart_physician_activity" in catalog.note
    assert "mart_physician_activity" in str(raised.value)
    assert (tmp_path / "docs" / "index.html").exists()
    # The values that tripped the scans are counted, never shown.
    docs = " ".join(p.read_text(encoding="utf-8") for p in (tmp_path / "docs").rglob("*.html"))
    assert "555-867-5309" not in docs and PATIENT[2] not in docs and f"{PATIENT[0]} {PATIENT[1]}" not in docs
