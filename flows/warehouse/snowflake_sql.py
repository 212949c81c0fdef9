"""The SQL the Snowflake backend runs: identifiers, types, named file formats, PUT, COPY INTO, ledger DDL.

Every statement is built here from registry names (checked or quoted) and fixed keywords; values travel as
bound parameters. docs/snowflake.md shows the statements for one file.
"""

# ruff: noqa: S608  (statements are built from checked or quoted registry names, see ident() and literal())

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from flows.contracts.registry import Source
from flows.warehouse.base import LEDGER_SCHEMA, LEDGER_TABLE, RAW_SCHEMA, REJECTS_TABLE
from flows.warehouse.files import normalize_encoding
from flows.warehouse.model import FileJob, ReadColumn

LEDGER = f"{LEDGER_SCHEMA}.{LEDGER_TABLE}"
REJECTS = f"{RAW_SCHEMA}.{REJECTS_TABLE}"
STAGE = f"{RAW_SCHEMA}.hospital_landing"
AUDIT_DDL = (
    "_batch_id VARCHAR NOT NULL, _source_file VARCHAR NOT NULL, _row_number BIGINT NOT NULL, "
    "_file_sha256 VARCHAR NOT NULL, _loaded_at TIMESTAMP_TZ NOT NULL"
)
LEDGER_DDL = f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
    batch_id VARCHAR NOT NULL, file VARCHAR NOT NULL, source VARCHAR, sha256 VARCHAR, bytes BIGINT,
    rows_in_file BIGINT, rows_loaded BIGINT NOT NULL, rows_rejected BIGINT NOT NULL, outcome VARCHAR NOT NULL,
    message VARCHAR NOT NULL, loaded_at TIMESTAMP_TZ NOT NULL)"""
REJECTS_DDL = f"""CREATE TABLE IF NOT EXISTS {REJECTS} (
    batch_id VARCHAR NOT NULL, source VARCHAR NOT NULL, file VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL,
    line_number BIGINT NOT NULL, row_number BIGINT, raw_line VARCHAR, reason VARCHAR NOT NULL,
    loaded_at TIMESTAMP_TZ NOT NULL)"""

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
_TYPES = {
    "varchar": "VARCHAR",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "date": "DATE",
    "boolean": "BOOLEAN",
    "json": "VARIANT",
    "timestamp": "TIMESTAMP_TZ",
    "timestamptz": "TIMESTAMP_TZ",
}
#: How INFORMATION_SCHEMA.COLUMNS spells each stored type (to compare an existing table with the registry).
CATALOG_TYPES = {
    "VARCHAR": "TEXT",
    "INTEGER": "NUMBER",
    "BIGINT": "NUMBER",
    "DOUBLE": "FLOAT",
    "DATE": "DATE",
    "BOOLEAN": "BOOLEAN",
    "VARIANT": "VARIANT",
    "TIMESTAMP_TZ": "TIMESTAMP_TZ",
}
_ENCODINGS = {"utf-8": "UTF8", "latin-1": "ISO-8859-1"}


def ident(name: str) -> str:
    """An identifier: plain names stay unquoted (so Snowflake upper-cases them, as dbt expects)."""
    if _PLAIN.fullmatch(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A Snowflake string literal (backslashes and quotes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t") + "'"


def stored_type(registry_type: str) -> str:
    """The Snowflake type of a registry type: both timestamp kinds are stored as UTC ``TIMESTAMP_TZ``."""
    match = _DECIMAL.match(registry_type)
    return f"NUMBER({match.group(1)},{match.group(2)})" if match else _TYPES[registry_type]


def catalog_type(registry_type: str) -> str:
    """The stored type as ``INFORMATION_SCHEMA.COLUMNS.DATA_TYPE`` names it."""
    stored = stored_type(registry_type)
    return "NUMBER" if stored.startswith("NUMBER") else CATALOG_TYPES[stored]


def raw_table(source: Source) -> str:
    """The qualified raw table of a source."""
    return f"{RAW_SCHEMA}.{ident(source.table)}"


def create_raw_table(source: Source) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a source's raw table: registry columns, then the audit columns."""
    columns = ", ".join(f"{ident(c.name)} {stored_type(c.type)}" for c in source.columns)
    return f"CREATE TABLE IF NOT EXISTS {raw_table(source)} ({columns}, {AUDIT_DDL})"


def file_format_options(source: Source) -> str:
    """The named file format's options, from the registry entry."""
    if source.format != "csv":
        outer = "TRUE" if source.format == "json" else "FALSE"
        return f"TYPE = JSON STRIP_OUTER_ARRAY = {outer} ENCODING = {literal(_ENCODINGS[normalize_encoding(source)])}"
    options = [
        "TYPE = CSV",
        f"FIELD_DELIMITER = {literal(source.delimiter)}",
        f"SKIP_HEADER = {1 if source.header else 0}",
        f"FIELD_OPTIONALLY_ENCLOSED_BY = {literal(source.quote) if source.quote else 'NONE'}",
        # a doubled quote inside a quoted value is Snowflake's default; any other escape is named
        f"ESCAPE = {literal(source.escape) if source.escape and source.escape != source.quote else 'NONE'}",
        "ESCAPE_UNENCLOSED_FIELD = NONE",
        f"ENCODING = {literal(_ENCODINGS[normalize_encoding(source)])}",
        "SKIP_BLANK_LINES = TRUE",
        "ERROR_ON_COLUMN_COUNT_MISMATCH = TRUE",
        "EMPTY_FIELD_AS_NULL = TRUE",
        "REPLACE_INVALID_CHARACTERS = FALSE",
    ]
    return " ".join(options)


def file_format_name(source: Source) -> str:
    """``raw.ff_<source>_<hash>``: the hash of the options makes a changed registry entry a new format."""
    digest = hashlib.sha256(file_format_options(source).encode()).hexdigest()[:8]
    return f"{RAW_SCHEMA}.ff_{source.name}_{digest}"


def create_file_format(source: Source) -> str:
    """``CREATE FILE FORMAT IF NOT EXISTS`` for a source (never replaced: a change gets a new name)."""
    return f"CREATE FILE FORMAT IF NOT EXISTS {file_format_name(source)} {file_format_options(source)}"


def stage_path(job: FileJob) -> str:
    """``<batch_id>/<attempt>/``: each load attempt gets its own folder on the stage.

    Snowflake's load metadata would otherwise skip a file re-sent after a rolled-back attempt, and the only
    way past that is ``FORCE = TRUE``, which this backend never uses: the ledger decides what is loaded.
    """
    return f"{job.batch_id}/{job.loaded_at:%Y%m%dT%H%M%S%fZ}/"


def put(job: FileJob, local: Path | None = None) -> str:
    """``PUT`` the landing file (or ``local``, the loader's checked copy of it) to the internal stage, compressed."""
    uri = "file://" + str(Path(local or job.file.path).resolve())
    return f"PUT {literal(uri)} @{STAGE}/{stage_path(job)} AUTO_COMPRESS = TRUE OVERWRITE = FALSE PARALLEL = 4"


def staged_file(job: FileJob) -> str:
    """The staged file as COPY names it (``.gz`` added by AUTO_COMPRESS)."""
    return f"@{STAGE}/{stage_path(job)}{job.file.name}.gz"


def field_ref(position: int, column: ReadColumn, source: Source, prefix: str = "$") -> str:
    """The file field of a column: ``$3`` for csv, ``$1:"key"`` for json (``prefix`` swaps the reference)."""
    if prefix != "$":
        return f"{prefix}{position}"
    if source.format == "csv":
        return f"${position}"
    key = (column.header_name or column.name).replace('"', '\\"')
    return f'$1:"{key}"'


def value_expr(column: ReadColumn, field: str, source: Source, *, text: bool | None = None) -> str:
    """The typed value of a field; local timestamps become UTC with ``CONVERT_TIMEZONE``.

    ``text`` says the field is text (csv fields, or the emulator's text table); else it is a JSON value.
    """
    kind = column.type
    text = source.format == "csv" if text is None else text
    as_text = field if text else f"{field}::VARCHAR"
    if kind == "varchar":
        return as_text
    if kind == "json":
        return f"PARSE_JSON({field})" if text else field
    if kind == "timestamp":
        return f"CONVERT_TIMEZONE({literal(source.timezone)}, 'UTC', {as_text}::TIMESTAMP_NTZ)"
    return f"{as_text}::{stored_type(kind)}"


def target_columns(job: FileJob) -> list[str]:
    """The raw table columns a file fills, in file order, then the audit columns."""
    names = [ident(c.name) for c in job.columns]
    return [*names, "_batch_id", "_source_file", "_row_number", "_file_sha256", "_loaded_at"]


def select_list(job: FileJob, prefix: str = "$", row_number: str = "METADATA$FILE_ROW_NUMBER") -> list[str]:
    """The SELECT list of the load: typed fields, then the audit values."""
    text = True if prefix != "$" else None
    values = [
        value_expr(column, field_ref(i, column, job.source, prefix), job.source, text=text)
        for i, column in enumerate(job.columns, start=1)
    ]
    # Audit values are inlined as literals: the batch id and file name are checked plain names (batch.py),
    # the sha256 is hex, and bind variables are not accepted inside a COPY transformation.
    loaded_at = job.loaded_at.strftime("%Y-%m-%d %H:%M:%S.%f +00:00")
    return [
        *values,
        literal(job.batch_id),
        literal(job.file.name),
        row_number,
        literal(job.facts.sha256),
        f"{literal(loaded_at)}::TIMESTAMP_TZ",
    ]


def copy_into(job: FileJob, on_error: str) -> str:
    """``COPY INTO raw.<table>`` from the staged file through its named file format. Never ``FORCE``."""
    if on_error not in ("CONTINUE", "ABORT_STATEMENT"):
        raise ValueError(f"on_error must be CONTINUE or ABORT_STATEMENT, not {on_error!r}")
    return (
        f"COPY INTO {raw_table(job.source)} ({', '.join(target_columns(job))}) "
        f"FROM (SELECT {', '.join(select_list(job))} FROM {staged_file(job)}) "
        f"FILE_FORMAT = (FORMAT_NAME = {literal(file_format_name(job.source))}) ON_ERROR = {on_error}"
    )


def shape_table(job: FileJob) -> tuple[str, str]:
    """A temporary table shaped like the file (its columns in file order) for the dry run; (name, DDL)."""
    name = f"{RAW_SCHEMA}._validate_{job.source.name}"
    if job.source.format == "csv":
        columns = ", ".join(f"{ident(c.name)} {_read_type(c.type)}" for c in job.columns)
    else:
        columns = "record VARIANT"
    return name, f"CREATE OR REPLACE TEMPORARY TABLE {name} ({columns})"


def validate_copy(job: FileJob, table: str) -> str:
    """A dry run: ``VALIDATION_MODE = RETURN_ERRORS`` on a plain COPY (it does not allow a SELECT)."""
    return (
        f"COPY INTO {table} FROM {staged_file(job)} "
        f"FILE_FORMAT = (FORMAT_NAME = {literal(file_format_name(job.source))}) VALIDATION_MODE = RETURN_ERRORS"
    )


def remove(job: FileJob) -> str:
    """``REMOVE`` the attempt's folder from the stage once the batch has committed or rolled back."""
    return f"REMOVE @{STAGE}/{stage_path(job)}"


def _read_type(registry_type: str) -> str:
    return "TIMESTAMP_NTZ" if registry_type == "timestamp" else stored_type(registry_type)
