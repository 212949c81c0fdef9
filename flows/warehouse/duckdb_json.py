"""Loading a json or jsonl file with DuckDB: Python splits records (``jsonfiles``), DuckDB casts the types."""

# SQL here is assembled from ident()/literal()-quoted registry names; values travel as bound parameters.
# ruff: noqa: S608

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.warehouse.duckdb_sql import ident, literal, read_type
from flows.warehouse.jsonfiles import parse_json_file
from flows.warehouse.model import (
    FIRST_BAD_LINES,
    FileJob,
    FileLoad,
    ReadColumn,
    Reject,
    exceeds_reject_threshold,
)

if TYPE_CHECKING:
    import duckdb

    from flows.warehouse.duckdb_backend import DuckDBWarehouse


def load_json(con: duckdb.DuckDBPyConnection, job: FileJob, warehouse: DuckDBWarehouse) -> FileLoad:
    """Parse, cast and insert one json/jsonl file; return counts and the first rejects."""
    parsed = parse_json_file(job.file.path, job.source)
    job = FileJob(job.batch_id, job.file, job.facts, parsed.columns, job.loaded_at, job.max_reject_rate)
    con.execute("drop table if exists temp._jstage")
    con.register("_json_in", parsed.table)
    con.execute(f"set TimeZone = {literal(job.source.timezone)}")
    try:
        con.execute("create temp table _jstage as select * from _json_in")
        con.unregister("_json_in")
        failures = [(c, _fails(c)) for c in job.columns if _fails(c) != "false"]
        any_failure = " or ".join(f"({expr})" for _, expr in failures) or "false"
        reasons = ", ".join(
            f"case when {expr} then {literal(f'column {c.name}: not a valid {c.type}')} end" for c, expr in failures
        )
        typed = (
            con.execute(
                f"select _line, _raw, concat_ws('; ', {reasons}), _row from _jstage where {any_failure} order by _row"
            ).fetchall()
            if failures
            else []
        )
        rejects = sorted(parsed.rejects + [Reject(*row) for row in typed], key=lambda r: r.line_number)
        loaded = len(parsed.table) - len(typed)
        if exceeds_reject_threshold(len(rejects), parsed.rows_in_file, job.max_reject_rate):
            return FileLoad(loaded, len(rejects), rejects[:FIRST_BAD_LINES], parsed.notes, stored=False)
        table = warehouse.raw_table(job)
        names = [ident(c.name) for c in job.columns]
        values = [_convert(c, job.source.timezone) for c in job.columns]
        names += ["_batch_id", "_source_file", "_row_number", "_file_sha256", "_loaded_at"]
        values += ["?", "?", "_row", "?", "?"]
        con.execute("set preserve_insertion_order = false")  # order is kept in _row_number
        con.execute(
            f"insert into {table} ({', '.join(names)}) select {', '.join(values)} from _jstage "
            f"where not ({any_failure})",
            [job.batch_id, job.file.name, job.facts.sha256, job.loaded_at],
        )
        warehouse.insert_rejects(job, rejects)
        return FileLoad(loaded, len(rejects), rejects[:FIRST_BAD_LINES], parsed.notes)
    finally:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set preserve_insertion_order = true")
        con.execute("drop table if exists temp._jstage")


def _fails(column: ReadColumn) -> str:
    """SQL that is true when a present value of the column does not parse as its registry type."""
    name = ident(column.name)
    if column.type == "varchar":
        return "false"
    if column.type == "json":
        return f"{name} is not null and not coalesce(json_valid({name}), false)"
    return f"{name} is not null and try_cast({name} as {read_type(column.type)}) is null"


def _convert(column: ReadColumn, zone: str) -> str:
    name = ident(column.name)
    if column.type == "varchar":
        return name
    if column.type == "json":
        return f"{name}::json"
    value = f"try_cast({name} as {read_type(column.type)})"
    return f"timezone({literal(zone)}, {value})" if column.type == "timestamp" else value
