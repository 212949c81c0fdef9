"""The marts checkpoint pushed down to Snowflake (fakesnow), on the hand-made marts of the DuckDB marts test.

The same SQL builds the sound marts (``SOUND``) and the same changes break them (``BREAKS``), from
``test_expectations_marts.py``; two fakesnow databases hold a sound and a broken copy for the module. The sound marts
pass only if the month rules use hospital-local months: the last stay is admitted on 31 March in Chicago but on
1 April in UTC, and no mart has an April row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import fakesnow
import pytest
import snowflake.connector

from expectations import QualityGateFailed, run_checkpoint
from expectations.dialects import DUCKDB, SNOWFLAKE
from flows.contracts.marts import kpi_mart_names
from tests.integration.test_expectations_marts import BREAKS, PATIENT, SOUND

pytestmark = pytest.mark.integration


def statements(script: str) -> list[str]:
    """The statements of a DuckDB script, adapted for fakesnow: no comment lines, one statement per call.

    ``create schema`` gets ``if not exists`` (valid on both): a Snowflake connection opened on a database already
    has its ``PUBLIC`` schema, and fakesnow's connect creates the schema it is given.
    """
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    parts = [part.strip() for part in "\n".join(lines).split(";")]
    return [part.replace("create schema ", "create schema if not exists ", 1) for part in parts if part]


def connector(database: str) -> Callable[[], snowflake.connector.SnowflakeConnection]:
    def connect() -> snowflake.connector.SnowflakeConnection:
        return snowflake.connector.connect(database=database, schema="MARTS")

    return connect


@pytest.fixture(scope="module")
def accounts() -> Iterator[dict[str, Callable[[], snowflake.connector.SnowflakeConnection]]]:
    """A fakesnow account with database SOUND (the sound marts) and BROKEN (the same, with every BREAKS change)."""
    with fakesnow.patch():
        connects = {name: connector(name) for name in ("SOUND", "BROKEN")}
        for name, connect in connects.items():
            connection = connect()
            try:
                cursor = connection.cursor()
                for statement in statements(SOUND) + (list(BREAKS) if name == "BROKEN" else []):
                    cursor.execute(statement)
            finally:
                connection.close()
        yield connects


def _check(connect: Callable[[], snowflake.connector.SnowflakeConnection], root: Path):
    return run_checkpoint("marts", warehouse="snowflake", snowflake_connect=connect, data_docs_dir=root / "docs")


def test_snowflake_marts_checkpoint_passes_sound_marts_with_local_months(accounts, tmp_path):
    outcome = _check(accounts["SOUND"], tmp_path)
    assert outcome.success, [failure.describe() for failure in outcome.failures]
    expected = kpi_mart_names()
    assert {o.suite for o in outcome.outcomes} >= {f"marts.{table}" for table in expected} | {"marts.catalog"}
    rules = {(o.note or "").split(";")[0].removeprefix("rule ") for o in outcome.outcomes}
    # Every kind of marts rule ran in Snowflake, the month spine and local months included.
    for rule in (
        "mart_admissions_monthly.month_coverage.month_date",
        "mart_claim_denials.month_coverage.month_date",
        "mart_readmissions_monthly.fraction.readmission_rate",
        "mart_bed_occupancy_daily.not_above.midnight_census",
        "mart_revenue_by_department.totals.charges_usd",
        "mart_no_shows_by_department.identifier_columns",
        "mart_no_shows_by_lead_time.identifier_values.lead_time_band",
        "mart_revenue_by_department.patient_values.department_name",
        "catalog.expected_tables",
    ):
        assert rule in rules
    assert outcome.data_docs_index is not None and outcome.data_docs_index.exists()


def test_snowflake_marts_checkpoint_fails_exactly_the_broken_rules(accounts, tmp_path):
    with pytest.raises(QualityGateFailed) as raised:
        _check(accounts["BROKEN"], tmp_path)
    failures = raised.value.outcome.failures
    assert {f.note.split(";")[0].removeprefix("rule ") for f in failures} == set(BREAKS.values())
    catalog = next(f for f in failures if f.suite == "marts.catalog")
    assert "missing: mart_physician_activity" in catalog.note
    # The one month deleted from the payer mix is the one month the spine misses.
    coverage = next(f for f in failures if f.suite == "marts.mart_payer_mix")
    assert coverage.unexpected_count == 1
    docs = " ".join(p.read_text(encoding="utf-8") for p in (tmp_path / "docs").rglob("*.html"))
    assert "555-867-5309" not in docs and PATIENT[2] not in docs and f"{PATIENT[0]} {PATIENT[1]}" not in docs


def test_snowflake_month_rules_count_in_the_configured_time_zone(accounts, tmp_path):
    # In UTC the last stay (admitted 04:30, discharged 04:45 on 1 April UTC) falls in April, which no mart has: the
    # marts whose months come from fct_admissions now miss exactly one month; claims and charges are unaffected.
    outcome = run_checkpoint(
        "marts", warehouse="snowflake", snowflake_connect=accounts["SOUND"], data_docs_dir=tmp_path / "docs",
        timezone="UTC", raise_on_failure=False,
    )  # fmt: skip
    failed = {(f.note or "").split(";")[0].removeprefix("rule "): f.unexpected_count for f in outcome.failures}
    from_admissions = ("mart_admissions_monthly", "mart_payer_mix", "mart_physician_activity")
    from_admissions += ("mart_readmissions_monthly",)  # by the month of the index discharge
    assert failed == {f"{table}.month_coverage.month_date": 1 for table in from_admissions}


@pytest.mark.parametrize(
    ("first", "last"), [("2023-11-01", "2024-02-01"), ("2024-03-01", "2024-03-01"), (None, None)], ids=str
)
def test_snowflake_month_spine_lists_the_same_months_as_duckdbs(accounts, first, last):
    bounds = f"select cast({_date(first)} as date) as first_month, cast({_date(last)} as date) as last_month"
    spines = {}
    for dialect in (DUCKDB, SNOWFLAKE):
        sql = f"with bounds as ({bounds}) {dialect.month_series('bounds', 'first_month', 'last_month', 'month_date')}"
        if dialect is DUCKDB:
            rows = duckdb.sql(sql).fetchall()
        else:
            connection = accounts["SOUND"]()
            try:
                rows = connection.cursor().execute(sql).fetchall()
            finally:
                connection.close()
        spines[dialect.name] = sorted(row[0] for row in rows)
    months = 0 if first is None else (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1
    assert len(spines["duckdb"]) == months
    assert spines["snowflake"] == spines["duckdb"]


def _date(value: str | None) -> str:
    return "null" if value is None else f"'{value}'"
