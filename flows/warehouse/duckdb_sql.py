"""Small SQL helpers of the DuckDB backend: quoting and the registry-to-DuckDB type map."""

from __future__ import annotations

import re

_DECIMAL_RE = re.compile(r"^decimal\((\d+),(\d+)\)$")
_SIMPLE = {
    "varchar": "VARCHAR",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "date": "DATE",
    "boolean": "BOOLEAN",
    "json": "JSON",
    "timestamp": "TIMESTAMPTZ",
    "timestamptz": "TIMESTAMPTZ",
}
# How duckdb_columns() spells the stored types, to compare an existing table with the registry.
_CATALOG = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def stored_type(registry_type: str) -> str:
    """The DuckDB type a registry type is stored as: timestamps of either kind become UTC ``TIMESTAMPTZ``."""
    match = _DECIMAL_RE.match(registry_type)
    if match:
        return f"DECIMAL({match.group(1)},{match.group(2)})"
    return _SIMPLE[registry_type]


def read_type(registry_type: str) -> str:
    """The type the CSV reader parses a registry type as (a local ``timestamp`` is read naive)."""
    return "TIMESTAMP" if registry_type == "timestamp" else stored_type(registry_type)


def catalog_type(registry_type: str) -> str:
    """The stored type as ``duckdb_columns().data_type`` reports it."""
    stored = stored_type(registry_type)
    return _CATALOG.get(stored, stored)


# First lines of DuckDB errors that name a fault without quoting the file's values (others may quote them).
_SAFE_ERRORS = (
    "The CSV Parser state machine reached an invalid state",
    "Invalid unicode (byte sequence mismatch) detected",
    "Maximum line size",
)


def describe_duckdb_error(exc: BaseException) -> str:
    """The error's class, plus DuckDB's own words when they are known not to quote data values."""
    first = str(exc).split("\n", 1)[0]
    known = next((text for text in _SAFE_ERRORS if text in first), None)
    return f"{type(exc).__name__}: {known}" if known else type(exc).__name__
