"""The few places where the rule SQL differs between the DuckDB and Snowflake warehouses.

Rules are written once, in SQL both engines run (``try_cast``, ``substr``, ``coalesce``, ``not in``, ``values``
lists, ``interval`` literals, ``date_trunc``, anchored regular expressions); what differs is named here and nowhere
else: the regex function, how a string literal escapes, how ``information_schema.columns`` names the registry's types
(the warehouse I/O layer's ``catalog_type``, so the loader and the gate agree on what a type is called), the hospital's
local date of a UTC instant, and a month spine.

Rules files write what differs as macros, rendered here per dialect (:func:`render_macros`), so there is one rules
file for both warehouses: ``{{ local_date(column) }}`` is the calendar date in the hospital's time zone of a UTC
instant stored without time zone (dbt's ``local_date()`` macro, spelled the same way on each engine).

One rule for SQL written here or in the rules files: no ``%`` (write ``mod(a, b)``; no ``LIKE`` wildcards in raw
rules). SQLAlchemy escapes ``%`` to ``%%`` in text queries for the Snowflake connector's ``pyformat`` parameters,
and the connector sends a query without parameters as is, so ``%%`` reaches Snowflake.
"""

# SQL here is built from identifiers the rule modules pass and values quoted by `literal`.
# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from flows.warehouse import duckdb_sql, snowflake_sql


@dataclass(frozen=True)
class SqlDialect:
    """What the rule SQL needs to know about one warehouse engine."""

    name: str
    #: Registry type -> ``information_schema.columns.data_type`` of the stored column.
    catalog_type: Callable[[str], str]
    #: SQL string literal of a value.
    literal: Callable[[str], str]
    #: ``regexp_matches`` (DuckDB, searches) or ``regexp_like`` (Snowflake, whole value): the same for anchored
    #: patterns, which is why the rules files ask for ``^...$``.
    regex_function: str
    #: (UTC instant column, IANA time zone) -> SQL of the local calendar date.
    local_date: Callable[[str, str], str]
    #: (one-row relation, first month column, last month column, output column) -> a select of one DATE row per
    #: month from the first to the last (inclusive); no row when the bounds are null.
    month_series: Callable[[str, str, str, str], str]

    def regex_match(self, column: str, pattern: str) -> str:
        """SQL true where ``column`` matches the anchored ``pattern``.

        Braces are doubled: GX substitutes ``{batch}`` with ``str.format``, which turns ``{{`` back into ``{``.
        """
        literal = self.literal(pattern).replace("{", "{{").replace("}", "}}")
        return f"{self.regex_function}({column}, {literal})"


class MacroError(ValueError):
    """A rules-file macro that does not exist or is called wrongly (the caller names the file and entry)."""


def _duckdb_local_date(column: str, timezone: str) -> str:
    # timezone('UTC', ts) reads the naive value as UTC; timezone(zone, tstz) gives the naive local time there.
    return f"cast(timezone({duckdb_sql.literal(timezone)}, timezone('UTC', {column})) as date)"


def _snowflake_local_date(column: str, timezone: str) -> str:
    # The three-argument form converts a TIMESTAMP_NTZ from the source zone and returns a TIMESTAMP_NTZ.
    return f"cast(convert_timezone('UTC', {snowflake_sql.literal(timezone)}, {column}) as date)"


def _duckdb_month_series(bounds: str, first: str, last: str, column: str) -> str:
    return (
        f"select cast(unnest(generate_series({bounds}.{first}, {bounds}.{last}, interval '1 month')) as date)"
        f" as {column} from {bounds} where {bounds}.{first} is not null"
    )


def _snowflake_month_series(bounds: str, first: str, last: str, column: str) -> str:
    # generator(rowcount => ...) needs a constant; an array of the month offsets sizes the spine to the data (the
    # same construct as dbt's snowflake__date_series). cast(), not `::`: SQLAlchemy text reads `:name` as a bind.
    offsets = f"array_generate_range(0, datediff(month, {bounds}.{first}, {bounds}.{last}) + 1)"
    return (
        f"select cast(dateadd(month, cast(month_offsets.value as integer), {bounds}.{first}) as date) as {column}"
        f" from {bounds}, lateral flatten(input => {offsets}) as month_offsets where {bounds}.{first} is not null"
    )


DUCKDB = SqlDialect(
    "duckdb", duckdb_sql.catalog_type, duckdb_sql.literal, "regexp_matches", _duckdb_local_date, _duckdb_month_series
)
SNOWFLAKE = SqlDialect(
    "snowflake",
    snowflake_sql.catalog_type,
    snowflake_sql.literal,
    "regexp_like",
    _snowflake_local_date,
    _snowflake_month_series,
)
DIALECTS = {dialect.name: dialect for dialect in (DUCKDB, SNOWFLAKE)}

MACRO = re.compile(r"\{\{\s*(\w+)\s*\(([^(){}]*)\)\s*\}\}")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def render_macros(sql: str, dialect: SqlDialect, *, timezone: str) -> str:
    """``sql`` with its ``{{ macro(args) }}`` calls written in ``dialect``; raises :class:`MacroError` otherwise.

    Macros: ``local_date(column)``, the date in ``timezone`` (the hospital's) of a UTC instant ``column``.
    """

    def expand(match: re.Match[str]) -> str:
        name, argument = match.group(1), match.group(2).strip()
        if name != "local_date":
            raise MacroError(f"unknown macro {{{{ {name}(...) }}}}; the macros are: local_date(column)")
        if not IDENTIFIER.match(argument):
            raise MacroError(f"local_date() takes one column name, got {argument!r}")
        return dialect.local_date(argument, timezone)

    rendered = MACRO.sub(expand, sql)
    if "{{" in rendered or "}}" in rendered:
        raise MacroError("a '{{' or '}}' that is not a macro call {{ name(column) }}")
    return rendered
