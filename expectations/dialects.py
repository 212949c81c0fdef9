"""The few places where the rule SQL differs between the DuckDB and Snowflake warehouses.

Rules are written once, in SQL both engines run (``try_cast``, ``substr``, ``coalesce``, ``not in``, ``values``
lists, ``interval`` literals, anchored regular expressions); what differs is named here and nowhere else: the regex
function, how a string literal escapes, and how ``information_schema.columns`` names the registry's types (the
warehouse I/O layer's ``catalog_type``, so the loader and the gate agree on what a type is called).

One rule for SQL written here or in the rules files: no ``%`` (write ``mod(a, b)``; no ``LIKE`` wildcards in raw
rules). SQLAlchemy escapes ``%`` to ``%%`` in text queries for the Snowflake connector's ``pyformat`` parameters,
and the connector sends a query without parameters as is, so ``%%`` reaches Snowflake.
"""

from __future__ import annotations

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

    def regex_match(self, column: str, pattern: str) -> str:
        """SQL true where ``column`` matches the anchored ``pattern``.

        Braces are doubled: GX substitutes ``{batch}`` with ``str.format``, which turns ``{{`` back into ``{``.
        """
        literal = self.literal(pattern).replace("{", "{{").replace("}", "}}")
        return f"{self.regex_function}({column}, {literal})"


DUCKDB = SqlDialect("duckdb", duckdb_sql.catalog_type, duckdb_sql.literal, "regexp_matches")
SNOWFLAKE = SqlDialect("snowflake", snowflake_sql.catalog_type, snowflake_sql.literal, "regexp_like")
DIALECTS = {dialect.name: dialect for dialect in (DUCKDB, SNOWFLAKE)}
