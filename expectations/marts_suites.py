"""Marts-layer suites: KPI fractions in [0, 1], capacity, month coverage, totals and no direct identifiers.

Built from ``marts_rules.yml`` and the tables that exist: one suite per table of the marts schema, plus a
``marts.catalog`` suite that fails naming any KPI mart of ``flows.contracts.marts`` that is missing (its rules wait
until it exists). Local calendar rules use the hospitals' time zone the caller passes (the registry's).
The same rules run on DuckDB and Snowflake: the rules file's macros and the month spine are written per dialect by
``expectations/dialects.py``; catalogue names are compared lower-cased (Snowflake upper-cases unquoted names).
"""

# SQL here is assembled from the registry and the rules files (trusted configuration); values are quoted.
# ruff: noqa: S608

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import great_expectations.expectations as gxe

from expectations.dialects import DUCKDB, MacroError, SqlDialect, render_macros
from expectations.rules import (
    EXPECTATIONS_DIR,
    Rule,
    RulesConfigError,
    SuiteSpec,
    Thresholds,
    failing_rows_query,
    gx_rule,
    mostly,
    quote,
    read_yaml,
    sql_rule,
)
from flows.contracts.marts import MARTS_SCHEMA, kpi_mart_names

DEFAULT_MARTS_RULES = EXPECTATIONS_DIR / "marts_rules.yml"
TEXT_TYPES = ("VARCHAR", "TEXT", "STRING")
REQUIRED_KEYS = ("fractions", "month_coverage", "totals", "identifiers")
#: Facts written once elsewhere, which a rules file must not repeat: key -> where the fact lives.
DEFINED_ELSEWHERE = {
    "local_timezone": "the hospitals' time zone is the source registry's defaults.timezone (flows/sources.yml)",
    "expected_tables": "the list of published marts is flows/contracts/marts.py",
}


def load_marts_rules(path: Path) -> dict[str, Any]:
    """The marts rules file, with its required sections checked."""
    document = read_yaml(path)
    missing = [key for key in REQUIRED_KEYS if key not in document]
    if missing:
        raise RulesConfigError(f"{path}: missing section(s) {missing}; see expectations/marts_rules.yml")
    for key, home in DEFINED_ELSEWHERE.items():
        if key in document:
            raise RulesConfigError(f"{path}: remove '{key}': {home}, and the marts gate reads it from there")
    document.setdefault("schema", MARTS_SCHEMA)
    for entry, sql in _rule_sql(document):
        try:  # the macros' names and arguments; the zone is the caller's (marts_suites)
            render_macros(sql, DUCKDB, timezone="UTC")
        except MacroError as exc:
            raise RulesConfigError(f"{path}: {entry}: {exc}") from exc
    return document


def _rule_sql(rules: dict[str, Any]) -> list[tuple[str, str]]:
    """(entry name, SQL) of every SQL snippet of the rules file, for checking its macros."""
    coverage = rules.get("month_coverage") or {}
    snippets = [("month_coverage.default", coverage.get("default") or "")]
    snippets += [(f"month_coverage.by_table.{table}", sql) for table, sql in (coverage.get("by_table") or {}).items()]
    for entry in rules.get("totals") or []:
        snippets += [(f"totals.{entry.get('name')}.{side}", entry.get(side) or "") for side in ("mart", "fact")]
    expressions = ((rules.get("identifiers") or {}).get("raw_values") or {}).get("expressions") or {}
    snippets += [(f"identifiers.raw_values.expressions.{name}", sql) for name, sql in expressions.items()]
    return [(entry, str(sql)) for entry, sql in snippets]


def marts_suites(
    rules: dict[str, Any],
    thresholds: Thresholds,
    columns: dict[tuple[str, str], dict[str, str]],
    dialect: SqlDialect = DUCKDB,
    *,
    timezone: str | None = None,
    expected_tables: Sequence[str] | None = None,
) -> list[SuiteSpec]:
    """One suite per table of the marts schema, and the catalogue suite, in ``dialect``'s SQL.

    ``columns``: column name -> catalogue type of every table, by (schema, table), names lower-cased.
    ``timezone``: the hospitals' time zone (the registry's ``defaults.timezone``), in which ``{{ local_date() }}``
    gives local calendar dates; required when a rule uses that macro. ``expected_tables``: the KPI marts that must
    exist, by default every KPI mart of ``flows.contracts.marts``.
    """
    if timezone is None:
        uses = [entry for entry, sql in _rule_sql(rules) if "{{" in sql]
        if uses:
            raise RulesConfigError(
                f"marts rule {uses[0]} uses a macro of the hospitals' local calendar: pass timezone= (the source "
                "registry's defaults.timezone, Registry.timezone)"
            )
    rules = _rendered(rules, dialect, timezone or "UTC")
    schema = rules["schema"]
    tables = {table: cols for (table_schema, table), cols in columns.items() if table_schema == schema}
    expected = list(expected_tables) if expected_tables is not None else kpi_mart_names()
    suites = [_catalog_suite(schema, expected, set(tables))]
    for table in sorted(tables):
        table_rules = [
            *_fraction_rules(table, tables[table], rules["fractions"], thresholds),
            *_not_above_rules(table, tables[table], rules.get("not_above") or [], thresholds),
            *_coverage_rules(table, tables[table], rules["month_coverage"], dialect),
            *_totals_rules(table, rules["totals"], set(tables)),
            *_identifier_rules(schema, table, tables[table], rules["identifiers"], columns, thresholds),
        ]
        # A query asset: GX 1.24.1 table assets drop the schema in some metrics on this dialect.
        suites.append(SuiteSpec(f"marts.{table}", tuple(table_rules), query=f"select * from {schema}.{table}"))
    return suites


def _rendered(rules: dict[str, Any], dialect: SqlDialect, timezone: str) -> dict[str, Any]:
    """A copy of the rules with every SQL snippet's macros written in ``dialect``, local dates in ``timezone``."""

    def render(sql: str) -> str:
        return render_macros(sql, dialect, timezone=timezone)

    coverage = dict(rules["month_coverage"])
    coverage["default"] = render(coverage["default"])
    coverage["by_table"] = {table: render(sql) for table, sql in (coverage.get("by_table") or {}).items()}
    totals = [{**entry, "mart": render(entry["mart"]), "fact": render(entry["fact"])} for entry in rules["totals"]]
    identifiers = dict(rules["identifiers"])
    raw_values = dict(identifiers["raw_values"])
    raw_values["expressions"] = {name: render(sql) for name, sql in raw_values["expressions"].items()}
    identifiers["raw_values"] = raw_values
    return {**rules, "month_coverage": coverage, "totals": totals, "identifiers": identifiers}


def _catalog_suite(schema: str, expected: list[str], present: set[str]) -> SuiteSpec:
    missing = sorted(set(expected) - present)
    note = f"missing: {', '.join(missing)}" if missing else None
    rule = Rule(
        "catalog.expected_tables",
        gxe.ExpectColumnDistinctValuesToContainSet(
            column="table_name",
            value_set=sorted(expected),
            meta={"rule_id": "catalog.expected_tables", "column": "table_name", "note": note},
        ),
        "table_name",
    )
    query = (
        "select lower(table_name) as table_name from information_schema.tables"
        f" where lower(table_schema) = {quote(schema.lower())}"
    )
    return SuiteSpec("marts.catalog", (rule,), query=query)


def _fraction_rules(table: str, columns: dict[str, str], config: dict, thresholds: Thresholds) -> list[Rule]:
    if not fnmatch.fnmatchcase(table, config.get("tables", "mart_*")):
        return []
    built = []
    for column in columns:
        if column.endswith(tuple(config.get("suffixes", ["_rate", "_share"]))):
            rule_id = f"{table}.fraction.{column}"
            rate = thresholds.max_failing_rate(rule_id)
            built.append(
                gx_rule(
                    rule_id,
                    column,
                    gxe.ExpectColumnValuesToBeBetween,
                    column=column,
                    min_value=0,
                    max_value=1,
                    **mostly(rate),
                )
            )
    return built


def _not_above_rules(table: str, columns: dict[str, str], config: list, thresholds: Thresholds) -> list[Rule]:
    built = []
    for entry in config:
        if entry["table"] != table:
            continue
        if entry["column"] not in columns or entry["limit"] not in columns:
            built.append(_config_error(table, f"not_above names a column {table} does not have"))
            continue
        rule_id = f"{table}.not_above.{entry['column']}"
        built.append(
            gx_rule(
                rule_id,
                entry["column"],
                gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                column_A=entry["limit"],
                column_B=entry["column"],
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                **mostly(thresholds.max_failing_rate(rule_id)),
            )
        )
    return built


def _coverage_rules(table: str, columns: dict[str, str], config: dict, dialect: SqlDialect) -> list[Rule]:
    month = config.get("column", "month_date")
    if month not in columns or not table.startswith("mart_"):
        return []
    data = (config.get("by_table") or {}).get(table, config["default"])
    query = (
        f"with data_months as ({data}),"
        " bounds as (select min(month_date) as first_month, max(month_date) as last_month from data_months),"
        f" months as ({dialect.month_series('bounds', 'first_month', 'last_month', 'month_date')})"
        f" select months.month_date from months where months.month_date not in"
        f" (select cast({month} as date) from {{batch}} where {month} is not null)"
    )
    return [sql_rule(f"{table}.month_coverage.{month}", month, query, f"{table} has a row for every month of the data")]


def _totals_rules(table: str, config: list, present: set[str]) -> list[Rule]:
    built = []
    for entry in config:
        if entry["table"] != table:
            continue
        query = (
            f"select 1 as mismatch from (select ({entry['mart']}) as mart_total, ({entry['fact']}) as fact_total)"
            f" as totals where abs(coalesce(mart_total, 0) - coalesce(fact_total, 0)) > {float(entry['tolerance'])!r}"
            " and exists (select 1 from {batch})"
        )
        built.append(
            sql_rule(
                f"{table}.totals.{entry['name']}", None, query, f"{entry['name']}: {table} total equals the fact's"
            )
        )
    return built


def _identifier_rules(
    schema: str,
    table: str,
    columns: dict[str, str],
    config: dict,
    all_columns: dict[tuple[str, str], dict[str, str]],
    thresholds: Thresholds,
) -> list[Rule]:
    names = " or ".join(f"lower(column_name) like {quote(pattern)}" for pattern in config["column_name_patterns"])
    name_query = (
        "select lower(column_name) as column_name from information_schema.columns"
        f" where lower(table_schema) = {quote(schema.lower())} and lower(table_name) = {quote(table.lower())}"
        f" and ({names})"
        " and (select count(*) from {batch}) >= 0"  # GX requires every query to name its batch
    )
    built = [sql_rule(f"{table}.identifier_columns", None, name_query, "No column named like a direct identifier")]
    scanned = config.get("value_scan_tables") or ["*"]
    if not any(fnmatch.fnmatchcase(table, pattern) for pattern in scanned):
        return built
    exempt = set(config.get("exempt_columns") or [])
    raw_table = config["raw_values"]["table"]
    raw_schema, _, raw_name = raw_table.partition(".")
    raw_present = (raw_schema, raw_name) in all_columns
    for column, data_type in columns.items():
        if not data_type.upper().startswith(TEXT_TYPES) or f"{table}.{column}" in exempt:
            continue
        rule_id = f"{table}.identifier_values.{column}"
        rate = thresholds.max_failing_rate(rule_id)
        built.append(
            gx_rule(
                rule_id,
                column,
                gxe.ExpectColumnValuesToNotMatchRegexList,
                column=column,
                regex_list=list(config["value_patterns"].values()),
                **mostly(rate),
            )
        )
        if raw_present:
            lookups = " union all ".join(
                f"select {expression} as value from {raw_table}"
                for expression in config["raw_values"]["expressions"].values()
            )
            condition = f"{column} is not null and {column} in (select value from ({lookups}) as patient_values)"
            built.append(
                sql_rule(
                    f"{table}.patient_values.{column}",
                    column,
                    failing_rows_query(condition),
                    f"No {column} value equals a patient's name or street address",
                    rate,
                )
            )
    return built


def _config_error(table: str, message: str) -> Rule:
    return sql_rule(f"{table}.config", None, "select 1 as config_error from {batch} limit 1", message)
