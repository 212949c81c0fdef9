"""Raw-layer suites: one per registry source, validating one batch's rows where they were loaded.

Every source gets its basic suite from the source registry alone (expected columns and types, non-nullable columns
not null, record key unique within the batch, row counts reconciled with the manifest and the load ledger); the
business rules of ``raw_rules.yml`` (or a rules file of another registry) come on top. Nothing here reads
settings: the registry, the rules, the thresholds and the manifest are arguments.
"""

# SQL here is assembled from the registry and the rules files (trusted configuration); values are quoted.
# ruff: noqa: S608

from __future__ import annotations

from pathlib import Path
from typing import Any

import great_expectations.expectations as gxe

from expectations.dialects import DUCKDB, SqlDialect
from expectations.rules import (
    EXPECTATIONS_DIR,
    Rule,
    RulesConfigError,
    SuiteSpec,
    Thresholds,
    failing_rows_query,
    gx_rule,
    mostly,
    npi_check_failing,
    quote,
    read_yaml,
    sql_rule,
)
from flows.contracts.manifest import MANIFEST, InvalidManifest, Manifest
from flows.contracts.manifest import read_manifest as parse_landed_manifest
from flows.contracts.registry import DEFAULT_REGISTRY, Registry, Source

DEFAULT_RAW_RULES = EXPECTATIONS_DIR / "raw_rules.yml"
RULES_FOR_REGISTRIES = EXPECTATIONS_DIR / "registries"
AUDIT_COLUMNS = ("_batch_id", "_source_file", "_row_number", "_file_sha256", "_loaded_at")
RAW_SCHEMA = "raw"
RULE_KINDS = {
    "allowed_values", "patterns", "trimmed", "ranges", "date_order", "pairs_not_above", "npi_check_digit",
    "references", "row_conditions", "category_pairs",
}  # fmt: skip


def rules_file_for(registry: Registry) -> Path | None:
    """The rules file of a registry: raw_rules.yml for the platform's own, registries/<name> for another."""
    if registry.path.resolve() == DEFAULT_REGISTRY.resolve():
        return DEFAULT_RAW_RULES
    candidate = RULES_FOR_REGISTRIES / registry.path.name
    return candidate if candidate.exists() else None


def load_raw_rules(path: Path | None, registry: Registry) -> dict[str, dict[str, Any]]:
    """Rules per source from a rules file, checked against the registry (unknown sources, kinds, columns)."""
    if path is None:
        return {}
    sources = read_yaml(path).get("sources") or {}
    for name, rules in sources.items():
        if name not in registry.sources:
            raise RulesConfigError(f"{path}: source {name!r} is not in the registry {registry.path}")
        unknown = set(rules or {}) - RULE_KINDS
        if unknown:
            raise RulesConfigError(
                f"{path}: source {name!r}: unknown rule kind(s) {sorted(unknown)}; use {sorted(RULE_KINDS)}"
            )
        _check_columns(path, registry[name], rules or {})
    return {name: rules or {} for name, rules in sources.items()}


def _check_columns(path: Path, source: Source, rules: dict[str, Any]) -> None:
    known = set(source.column_names)
    named: list[str] = []
    for kind in ("allowed_values", "patterns", "ranges"):
        named += list(rules.get(kind) or {})
    named += list(rules.get("trimmed") or []) + list(rules.get("npi_check_digit") or [])
    for pair in (rules.get("date_order") or []) + (rules.get("pairs_not_above") or []):
        named += list(pair)
    named += [reference["column"] for reference in rules.get("references") or []]
    for pair in rules.get("category_pairs") or []:
        named += list(pair["columns"])
    missing = sorted(set(named) - known)
    if missing:
        raise RulesConfigError(f"{path}: source {source.name!r}: column(s) {missing} are not in its registry entry")


def batch_query(source: Source, batch_id: str) -> str:
    """The rows one batch loaded into the source's raw table (the batch the suite validates)."""
    return f"select * from {RAW_SCHEMA}.{source.table} where _batch_id = {quote(batch_id)}"


def registry_rules(source: Source, thresholds: Thresholds, dialect: SqlDialect = DUCKDB) -> list[Rule]:
    """The rules every source gets from its registry entry alone."""
    name = source.name
    expected = [*source.column_names, *AUDIT_COLUMNS]
    rules = [
        gx_rule(
            f"{name}.columns",
            None,
            gxe.ExpectTableColumnsToMatchSet,
            column_set=expected,
            exact_match=source.unexpected_columns == "fail",
        ),
        _types_rule(source, dialect),
    ]
    for column in source.columns:
        if not column.nullable:
            rule_id = f"{name}.not_null.{column.name}"
            rate = thresholds.max_failing_rate(rule_id)
            rules.append(
                gx_rule(rule_id, column.name, gxe.ExpectColumnValuesToNotBeNull, column=column.name, **mostly(rate))
            )
    if source.primary_key:
        key = list(source.primary_key)
        if "updated_at" in source.column_names and "updated_at" not in key:
            key.append("updated_at")  # with updated_at, the key identifies one version of a record
        rule_id = f"{name}.unique.{'+'.join(key)}"
        rate = thresholds.max_failing_rate(rule_id)
        if len(key) == 1:
            rules.append(gx_rule(rule_id, key[0], gxe.ExpectColumnValuesToBeUnique, column=key[0], **mostly(rate)))
        else:
            rules.append(
                gx_rule(rule_id, "+".join(key), gxe.ExpectCompoundColumnsToBeUnique, column_list=key, **mostly(rate))
            )
    return rules


def _types_rule(source: Source, dialect: SqlDialect) -> Rule:
    # Names are compared lower-cased: Snowflake's catalogue upper-cases unquoted identifiers.
    expected = ", ".join(
        f"({quote(column.name)}, {quote(dialect.catalog_type(column.type).upper().replace(' ', ''))})"
        for column in source.columns
    )
    query = (
        "select columns.column_name from information_schema.columns as columns"
        f" inner join (values {expected}) as expected(column_name, data_type)"
        " on lower(columns.column_name) = expected.column_name"
        f" where lower(columns.table_schema) = {quote(RAW_SCHEMA)}"
        f" and lower(columns.table_name) = {quote(source.table)}"
        " and replace(upper(columns.data_type), ' ', '') <> expected.data_type"
        " and (select count(*) from {batch}) >= 0"  # GX requires every query to name its batch
    )
    return sql_rule(f"{source.name}.types", None, query, f"Columns of raw.{source.table} have their registry types")


#: The reconciliation's note in each outcome: with the sender's manifest, or (a batch delivered without one) not.
MANIFEST_NOTE = "manifest = ledger = loaded + rejected = raw"
NO_MANIFEST_NOTE = "no manifest: ledger = loaded + rejected = raw"


def reconciliation_rule(source: Source, batch_id: str, manifest: Manifest | None) -> Rule:
    """Row counts reconcile: manifest rows = ledger rows in file = loaded + rejected, and raw rows = loaded."""
    files = manifest.rows_by_source().get(source.name, []) if manifest is not None else []
    claims = " union all ".join(f"select {quote(file)} as file, {int(rows)} as file_rows" for file, rows in files)
    manifest_check = ""
    if claims:
        manifest_check = (
            f"select 'manifest rows differ from ledger' as problem from ({claims}) as manifest"
            " left join ledger_rows on ledger_rows.file = manifest.file"
            " where ledger_rows.rows_in_file is null or ledger_rows.rows_in_file <> manifest.file_rows union all "
        )
    query = (
        "with ledger_rows as (select file, outcome, rows_in_file, rows_loaded, rows_rejected"
        f" from ledger.load_ledger where batch_id = {quote(batch_id)} and source = {quote(source.name)}"
        " and outcome in ('loaded', 'skipped')),"
        " batch_rows as (select count(*) as row_count from {batch}) "
        f"{manifest_check}"
        "select 'ledger rows in file differ from loaded + rejected' as problem from ledger_rows"
        " where outcome = 'loaded' and rows_in_file <> rows_loaded + rows_rejected"
        " union all select 'raw rows differ from ledger rows loaded' as problem from batch_rows"
        " where row_count <> (select coalesce(sum(rows_loaded), 0) from ledger_rows where outcome = 'loaded')"
    )
    description = "Row counts reconcile: " + ("manifest = " if claims else "") + "ledger = loaded + rejected = raw"
    rule = sql_rule(f"{source.name}.row_counts", None, query, description)
    # Which reconciliation ran is part of the outcome, so a caller can check that the manifest part did not drop out.
    rule.expectation.meta["note"] = MANIFEST_NOTE if claims else NO_MANIFEST_NOTE
    return rule


def configured_rules(
    source: Source, rules: dict[str, Any], thresholds: Thresholds, dialect: SqlDialect = DUCKDB
) -> list[Rule]:
    """The business rules of one source from its rules-file entry."""
    name, built = source.name, []

    def rate(rule_id: str) -> float:
        return thresholds.max_failing_rate(rule_id)

    for column, values in (rules.get("allowed_values") or {}).items():
        rule_id = f"{name}.allowed_values.{column}"
        built.append(
            gx_rule(
                rule_id,
                column,
                gxe.ExpectColumnValuesToBeInSet,
                column=column,
                value_set=list(values),
                **mostly(rate(rule_id)),
            )
        )
    for column, pattern in (rules.get("patterns") or {}).items():
        rule_id = f"{name}.pattern.{column}"
        built.append(
            gx_rule(
                rule_id,
                column,
                gxe.ExpectColumnValuesToMatchRegex,
                column=column,
                regex=pattern,
                **mostly(rate(rule_id)),
            )
        )
    for column in rules.get("trimmed") or []:
        rule_id = f"{name}.trimmed.{column}"
        built.append(
            gx_rule(
                rule_id,
                column,
                gxe.ExpectColumnValuesToNotMatchRegex,
                column=column,
                regex=r"^\s|\s$",
                **mostly(rate(rule_id)),
            )
        )
    for column, bounds in (rules.get("ranges") or {}).items():
        rule_id = f"{name}.range.{column}"
        built.append(
            gx_rule(
                rule_id,
                column,
                gxe.ExpectColumnValuesToBeBetween,
                column=column,
                min_value=bounds.get("min"),
                max_value=bounds.get("max"),
                **mostly(rate(rule_id)),
            )
        )
    for later, earlier in rules.get("date_order") or []:
        rule_id = f"{name}.date_order.{later}"
        built.append(
            gx_rule(
                rule_id,
                f"{later}, {earlier}",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                column_A=later,
                column_B=earlier,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                **mostly(rate(rule_id)),
            )
        )
    for lower, higher in rules.get("pairs_not_above") or []:
        rule_id = f"{name}.not_above.{lower}"
        built.append(
            gx_rule(
                rule_id,
                f"{lower}, {higher}",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB,
                column_A=higher,
                column_B=lower,
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                **mostly(rate(rule_id)),
            )
        )
    for column in rules.get("npi_check_digit") or []:
        rule_id = f"{name}.npi_check_digit.{column}"
        query = failing_rows_query(npi_check_failing(column, dialect), "_row_number")
        built.append(sql_rule(rule_id, column, query, f"{column} is an NPI with a valid check digit", rate(rule_id)))
    for reference in rules.get("references") or []:
        built.append(_reference_rule(name, reference, rate(f"{name}.references.{reference['column']}")))
    for condition in rules.get("row_conditions") or []:
        rule_id = f"{name}.{condition['name']}.{condition['column']}"
        query = failing_rows_query(f"({condition['failing_when']})", "_row_number")
        description = f"{condition['name'].replace('_', ' ')} ({condition['column']})"
        built.append(sql_rule(rule_id, condition["column"], query, description, rate(rule_id)))
    for pair in rules.get("category_pairs") or []:
        first, second = pair["columns"]
        rule_id = f"{name}.category_pairs.{first}+{second}"
        built.append(
            gx_rule(
                rule_id,
                f"{first}+{second}",
                gxe.ExpectColumnPairValuesToBeInSet,
                column_A=first,
                column_B=second,
                value_pairs_set=[tuple(p) for p in pair["allowed"]],
                ignore_row_if="either_value_is_missing",
                **mostly(rate(rule_id)),
            )
        )
    return built


def _reference_rule(source_name: str, reference: dict[str, Any], rate: float) -> Rule:
    column = reference["column"]
    targets = []
    for target in reference["to"]:
        table, _, key = target.partition(".")
        targets.append(f"select {key} from {RAW_SCHEMA}.{_table_of(table)} where {key} is not null")
    condition = f"{column} is not null and {column} not in ({' union all '.join(targets)})"
    rule_id = f"{source_name}.references.{column}"
    description = f"{column} exists in {' or '.join(reference['to'])}"
    return sql_rule(rule_id, column, failing_rows_query(condition, "_row_number"), description, rate)


def _table_of(source_name: str) -> str:
    # Source names are <system>__<entity>, the raw table's name.
    return source_name


def raw_suites(
    registry: Registry,
    batch_id: str,
    thresholds: Thresholds,
    rules: dict[str, dict[str, Any]],
    manifest: Manifest | None,
    present_tables: set[str],
    dialect: SqlDialect = DUCKDB,
) -> list[SuiteSpec]:
    """One suite per registry source whose raw table exists, validating the rows of ``batch_id``.

    ``present_tables`` are lower-case table names of the raw schema; ``dialect`` is the warehouse's SQL dialect.

    A source in the manifest whose table does not exist gets a suite of its reconciliation rule alone on an empty
    query, so the checkpoint fails naming it instead of crashing.
    """
    suites = []
    in_manifest = {entry.source for entry in manifest.files} if manifest is not None else set()
    for source in registry.sources.values():
        if source.table not in present_tables:
            if source.name in in_manifest:
                suites.append(_missing_table_suite(source))
            continue
        suite_rules = [
            *registry_rules(source, thresholds, dialect),
            reconciliation_rule(source, batch_id, manifest),
            *configured_rules(source, rules.get(source.name, {}), thresholds, dialect),
        ]
        suites.append(SuiteSpec(f"raw.{source.name}", tuple(suite_rules), query=batch_query(source, batch_id)))
    return suites


def _missing_table_suite(source: Source) -> SuiteSpec:
    rule = sql_rule(
        f"{source.name}.table_exists", None, "select 1 as missing_table from {batch}",
        f"raw.{source.table} exists (the manifest lists a file of this source)",
    )  # fmt: skip
    return SuiteSpec(f"raw.{source.name}", (rule,), query="select 1 as missing_table")


def read_manifest(landing_dir: Path | None, batch_id: str | None = None) -> Manifest | None:
    """The batch's manifest (``flows.contracts.manifest``), if the batch folder has one (a delivered batch may not).

    ``landing_dir`` must be the batch's own folder (named ``batch_id``): given the landing root, the manifest would
    silently not be found and its reconciliation would drop out of the gate, so that is an error.
    """
    if landing_dir is None:
        return None
    if batch_id is not None and landing_dir.name != batch_id:
        raise RulesConfigError(
            f"landing_dir {landing_dir} is not the folder of batch {batch_id}: pass the batch's own folder "
            f"(<landing>/{batch_id}) so the raw gate reconciles the batch's manifest"
        )
    if not landing_dir.is_dir():
        raise RulesConfigError(f"batch folder {landing_dir} does not exist: the raw gate reconciles what landed there")
    try:
        return parse_landed_manifest(landing_dir)
    except InvalidManifest as exc:
        raise RulesConfigError(f"{landing_dir / MANIFEST}: the batch manifest cannot be read ({exc})") from exc
