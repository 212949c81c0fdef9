"""Pure parts of the quality gates: thresholds, rule SQL, rules-file checks, suites derived from the registry."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
import yaml

from expectations.dialects import DUCKDB, SNOWFLAKE, render_macros
from expectations.duckdb_support import UnsupportedVersionError, check_versions
from expectations.marts_suites import DEFAULT_MARTS_RULES, load_marts_rules
from expectations.raw_suites import load_raw_rules, registry_rules
from expectations.rules import (
    DEFAULT_THRESHOLDS,
    ExpectNoFailingRows,
    RulesConfigError,
    Thresholds,
    failing_rows_query,
    load_thresholds,
    npi_check_failing,
    read_yaml,
)
from flows.contracts.registry import load_registry
from generators.providers import npi_check_digit

pytestmark = pytest.mark.unit


def test_longest_matching_threshold_pattern_wins_over_default():
    thresholds = Thresholds(0.0, {"scheduling__*": 0.01, "scheduling__appointments.references.mrn": 0.005})
    assert thresholds.max_failing_rate("scheduling__appointments.references.mrn") == 0.005
    assert thresholds.max_failing_rate("scheduling__appointments.not_null.mrn") == 0.01
    assert thresholds.max_failing_rate("adt__admissions.references.mrn") == 0.0


def test_committed_thresholds_tolerate_half_a_percent_orphan_appointments_only():
    thresholds = load_thresholds(DEFAULT_THRESHOLDS, "raw")
    assert thresholds.max_failing_rate("scheduling__appointments.references.mrn") == 0.005
    assert thresholds.max_failing_rate("adt__admissions.references.mrn") == 0.0


def test_threshold_outside_zero_to_one_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "thresholds.yml"
    path.write_text("raw:\n  default: 0\n  overrides:\n    x.y.z: 5\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match=r"thresholds\.yml: raw\.x\.y\.z: threshold 5\.0 is not between"):
        load_thresholds(path, "raw")


def test_failing_rows_query_selects_the_rows_meeting_the_condition():
    query = failing_rows_query("value < 0", "row_id").format(batch="numbers")
    with duckdb.connect() as connection:
        connection.execute("create table numbers as select range as row_id, range - 4 as value from range(100)")
        assert sorted(row for (row,) in connection.execute(query).fetchall()) == [0, 1, 2, 3]


# 100 rows in the batch: a 5% threshold tolerates 5 failing rows, not 6; without a threshold one row fails the rule.
@pytest.mark.parametrize(
    ("failing", "rate", "passes"), [(0, 0.0, True), (1, 0.0, False), (4, 0.05, True), (5, 0.05, True), (6, 0.05, False)]
)
def test_no_failing_rows_expectation_tolerates_its_share_of_the_batch_and_reports_the_count(failing, rate, passes):
    expectation = ExpectNoFailingRows(unexpected_rows_query="select 1 from {batch}", max_failing_rate=rate)
    result = expectation._validate({"unexpected_rows_query.row_count": failing, "table.row_count": 100})
    assert result == {"success": passes, "result": {"observed_value": failing}}


def test_npi_check_sql_agrees_with_the_luhn_rule():
    rng = np.random.default_rng(3)
    stems = rng.integers(100_000_000, 300_000_000, 400)
    valid = [f"{stem}{digit}" for stem, digit in zip(stems, npi_check_digit(stems), strict=True)]
    wrong = [f"{npi[:9]}{(int(npi[9]) + 1) % 10}" for npi in valid]
    values = [*valid, *wrong, "12345", "12345678x9"]
    with duckdb.connect() as connection:
        connection.execute("create table npis (npi varchar)")
        connection.executemany("insert into npis values (?)", [[value] for value in values])
        # GX passes every query through str.format (for {batch}); the rule's regex braces are doubled for it.
        condition = npi_check_failing("npi").format()
        failing = {row[0] for row in connection.execute(f"select npi from npis where {condition}").fetchall()}
    assert failing == set(values) - set(valid)
    assert len(failing) == len(wrong) + 2


def test_version_guard_names_both_packages_when_pins_differ():
    with pytest.raises(UnsupportedVersionError, match=r"great-expectations .* \(tested: 0\.0\.1\)"):
        check_versions({"great-expectations": "0.0.1"})
    check_versions()  # the installed versions are the pinned ones


def test_every_source_gets_not_null_unique_and_type_rules_from_the_registry():
    registry = load_registry()
    admissions = registry["adt__admissions"]
    ids = [rule.id for rule in registry_rules(admissions, Thresholds(0.0, {}))]
    nullable = {column.name for column in admissions.columns if column.nullable}
    assert {f"adt__admissions.not_null.{c}" for c in admissions.column_names if c not in nullable} <= set(ids)
    assert not [c for c in nullable if f"adt__admissions.not_null.{c}" in ids]
    assert "adt__admissions.unique.admission_id+updated_at" in ids
    assert {"adt__admissions.columns", "adt__admissions.types"} <= set(ids)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("nope__nothing: {}", "source 'nope__nothing' is not in the registry"),
        ("adt__admissions: {colours: {}}", "unknown rule kind"),
        ("adt__admissions: {allowed_values: {colour: [red]}}", r"column\(s\) \['colour'\] are not in"),
    ],
)
def test_rules_file_with_unknown_source_kind_or_column_is_refused(tmp_path, entry, message):
    path = tmp_path / "rules.yml"
    path.write_text(f"sources:\n  {entry}\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match=message):
        load_raw_rules(path, load_registry())


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        ("2024-04-01 04:30:00", "2024-03-31"),  # CDT, UTC-5: still 31 March in Chicago
        ("2024-01-01 05:30:00", "2023-12-31"),  # CST, UTC-6
        ("2024-01-01 06:30:00", "2024-01-01"),
    ],
)
def test_local_date_macro_gives_the_chicago_calendar_date_of_a_utc_instant(utc, local):
    sql = render_macros("select {{ local_date(admitted_at) }} as day from t", DUCKDB, timezone="America/Chicago")
    with duckdb.connect() as connection:
        connection.execute(f"create table t as select timestamp '{utc}' as admitted_at")
        assert str(connection.execute(sql).fetchone()[0]) == local


def test_local_date_macro_is_convert_timezone_on_snowflake():
    sql = render_macros("{{ local_date(submitted_at) }}", SNOWFLAKE, timezone="America/Chicago")
    assert sql == "cast(convert_timezone('UTC', 'America/Chicago', submitted_at) as date)"


@pytest.mark.parametrize("sql", ["{{ utc_date(admitted_at) }}", "{{ local_date(admitted_at, 'UTC') }}", "{{ x }}"])
def test_marts_rules_with_a_bad_macro_are_refused_naming_file_and_entry(tmp_path, sql):
    rules = read_yaml(DEFAULT_MARTS_RULES)
    rules["month_coverage"]["by_table"]["mart_payer_mix"] = f"select {sql} as month_date from marts.fct_admissions"
    path = tmp_path / "marts_rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    with pytest.raises(RulesConfigError, match=r"marts_rules\.yml: month_coverage\.by_table\.mart_payer_mix"):
        load_marts_rules(path)


def test_marts_rules_using_a_macro_need_a_local_timezone(tmp_path):
    rules = read_yaml(DEFAULT_MARTS_RULES)
    del rules["local_timezone"]
    path = tmp_path / "marts_rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    with pytest.raises(RulesConfigError, match=r"month_coverage\.default uses a macro; set local_timezone"):
        load_marts_rules(path)


def test_duckdb_month_spine_covers_first_to_last_month_across_a_year_end():
    spine = DUCKDB.month_series("bounds", "first_month", "last_month", "month_date")
    sql = f"with bounds as (select date '2023-11-01' as first_month, date '2024-02-01' as last_month) {spine}"
    with duckdb.connect() as connection:
        months = [str(row[0]) for row in connection.execute(sql).fetchall()]
    assert sorted(months) == ["2023-11-01", "2023-12-01", "2024-01-01", "2024-02-01"]
