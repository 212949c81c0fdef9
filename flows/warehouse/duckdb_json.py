"""Loading a json or jsonl file with DuckDB, streamed: memory does not grow with the file.

JSON lines are read by DuckDB itself, each line as one text field (``read_csv`` with no quote and a
delimiter that valid JSON cannot contain), so every line keeps its position; a JSON array is split into its
elements by ``jsonfiles.iter_json_array`` and appended in chunks. Both end in one temporary table of records
(``_row``, ``_line``, ``j``) that DuckDB checks and casts: a record that is not a JSON object, a value that is
an object or array where the column wants a value, or a value that does not cast to the registry type is
rejected with its line and reason (the column and rule, never the value); keys not in the registry follow
the source's unexpected-column policy.
"""

# SQL here is assembled from ident()/literal()-quoted registry names; values travel as bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from flows.warehouse.duckdb_sql import ident, literal, read_type
from flows.warehouse.duckdb_temp import gap_table, quietly, unregister
from flows.warehouse.errors import FileFormatError, RowCountMismatchError
from flows.warehouse.files import normalize_encoding, plan_columns
from flows.warehouse.jsonfiles import iter_json_array, json_error_reason
from flows.warehouse.lines import line_index, line_of, read_lines, write_copy
from flows.warehouse.model import FIRST_BAD_LINES, FileJob, FileLoad, ReadColumn, Reject, exceeds_reject_threshold

if TYPE_CHECKING:
    from flows.warehouse.duckdb_backend import DuckDBWarehouse

_TABLES = ("_jlines", "_jrec_t", "_jx", "_jbad", "_jreader", "_rej", "_scan", "_jgaps")
#: A delimiter no valid JSON line contains (control characters must be escaped inside JSON strings).
_NO_DELIMITER = chr(31)
#: Records per chunk appended from Python (array elements) or moved into raw._rejects.
_BATCH = 50_000
_READER_REASONS = {
    "INVALID ENCODING": "bytes not valid {encoding}",
    "INVALID UNICODE": "bytes not valid {encoding}",
    "LINE SIZE OVER MAXIMUM": "line longer than the parser's maximum line size",
    "TOO MANY COLUMNS": "not valid JSON (a raw control character)",
}


def load_json(con: duckdb.DuckDBPyConnection, job: FileJob, warehouse: DuckDBWarehouse) -> FileLoad:
    """Stage, check, cast and insert one json/jsonl file; return counts and the first rejects."""
    path, copy = job.data_path, False
    try:
        if job.source.format == "json" and not job.facts.size:
            raise FileFormatError(
                f"{job.file.name}: the file is empty; a JSON array was expected. The extract probably failed: "
                "ask the sender to re-send the file",
                file=job.file.name,
            )
        if job.facts.line_endings in ("mixed", "cr"):
            path, copy = warehouse.scratch_file(f"{job.batch_id}.{job.file.name}"), True
            with job.data_path.open("rb") as handle:
                write_copy(handle, job.facts.line_endings, path)
        _drop(con)
        con.execute("create temp table _jreader (_line bigint, _row bigint, reason varchar)")
        stage = _stage_lines if job.source.format == "jsonl" else _stage_array
        read_rejects = stage(con, job, path)
        columns, notes = _plan(con, job)
        job = replace(job, columns=columns)
        record_count = con.execute("select count(*) from _jrec").fetchall()[0][0]
        _extract(con, job)
        _find_bad(con, job)
        bad = con.execute("select count(*) from _jbad").fetchall()[0][0]
        rows, rejected = record_count + read_rejects, bad + read_rejects
        loaded = record_count - bad
        texts = _Texts(path, normalize_encoding(job.source))
        if exceeds_reject_threshold(rejected, rows, job.max_reject_rate):
            first = [_reject(texts, *row) for row in _bad_records(con, (0, 0), FIRST_BAD_LINES)]
            return FileLoad(loaded, rejected, first, notes, stored=False)
        table = warehouse.raw_table(job)
        _insert(con, job, warehouse, table)
        first = _store_rejects(con, job, warehouse, texts)
        return FileLoad(loaded, rejected, first, notes)
    finally:
        _drop(con)
        quietly(con, "set TimeZone = 'UTC'")
        if copy:
            path.unlink(missing_ok=True)


def _drop(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary view and tables of the staging connection (quietly: never over an earlier error)."""
    quietly(con, "drop view if exists temp._jrec")
    for name in _TABLES:
        quietly(con, f"drop table if exists temp.{name}")


def _stage_lines(con: duckdb.DuckDBPyConnection, job: FileJob, path: Path) -> int:
    """Read a JSON-lines file with DuckDB, one line a row; make ``_jrec`` (its non-blank lines, numbered).

    The lines the reader itself rejected (bytes not valid in the encoding, a line too long) go to ``_jreader``
    (line, row, reason); returns how many.
    """
    encoding = normalize_encoding(job.source)
    options = [
        "columns = {'j': 'VARCHAR'}",
        "header = false",
        f"delim = {literal(_NO_DELIMITER)}",
        "quote = ''",
        "escape = ''",
        f"encoding = {literal(encoding)}",
        "auto_detect = false",
        "compression = 'none'",
        "strict_mode = true",
        "null_padding = false",
        "store_rejects = true",
        "rejects_table = '_rej'",
        "rejects_scan = '_scan'",
    ]
    con.execute(f"create temp table _jlines as select j from read_csv({literal(str(path))}, {', '.join(options)})")
    count, low, high = con.execute("select count(*), min(rowid), max(rowid) from _jlines").fetchall()[0]
    if count and high - low + 1 != count:
        raise RowCountMismatchError(f"{job.file.name}: lines not numbered contiguously; report this as a loader bug")
    base = low or 0
    failed = [
        (_record_start(int(at), line or ""), kind)
        for at, kind, line in con.execute(
            "select line_byte_position, any_value(error_type::varchar), any_value(csv_line) from _rej "
            "group by 1 order by 1"
        ).fetchall()
    ]
    blank = "(j is null or trim(j, ' \t\r') = '')"
    blanks = con.execute(f"select count(*) from _jlines where {blank}").fetchall()[0][0]
    if not failed and not blanks:  # every line is one record: row = line = position in the file
        if count != job.facts.lines:
            raise _unaccounted(job, count)
        con.execute(
            f"create temp view _jrec as select rowid - {base} + 1 as _row, rowid - {base} + 1 as _line, j from _jlines"
        )
        return 0
    index = line_index(path)
    # Each reader reject is one line; the k-th row read sits on line k + (reader rejects before it).
    lines = line_of(index, np.array([start for start, _ in failed], dtype=np.int64))
    if count + len(failed) != job.facts.lines or len(set(lines.tolist())) != len(failed):
        raise _unaccounted(job, count + len(failed))
    position = np.arange(1, len(failed) + 1, dtype=np.int64)
    gap_table(con, "_jgaps", lines - position, position)
    con.execute(
        f"""
        create temp table _jrec_t as
        with numbered as (
            select rowid - {base} + 1 as _k, j, {blank} as _blank from _jlines
        ),
        placed as (
            select n._k + coalesce(g._skipped, 0) as _line, n.j, n._blank
            from numbered as n asof left join _jgaps as g on n._k > g._gap
        )
        -- a record's row is its line less the blank lines up to it (the window runs before blanks are dropped)
        select _line - sum(_blank::int) over (order by _line rows between unbounded preceding and current row)
               as _row, _line, j, _blank
        from placed
        """
    )
    con.execute("create temp view _jrec as select _row, _line, j from _jrec_t where not _blank")
    # The reader's rejects are rows too: row = line - blank lines before it.
    reasons = [_READER_REASONS.get(kind, kind.lower()).format(encoding=encoding) for _, kind in failed]
    con.register("_jreader_in", pa.table({"_line": pa.array(lines, pa.int64()), "reason": pa.array(reasons)}))
    try:
        con.execute(
            "insert into _jreader select r._line, r._line - (select count(*) from _jrec_t as b "
            "where b._blank and b._line < r._line), r.reason from _jreader_in as r"
        )
    finally:
        unregister(con, "_jreader_in")
    return len(failed)


def _unaccounted(job: FileJob, read: int) -> RowCountMismatchError:
    return RowCountMismatchError(
        f"{job.file.name}: {job.facts.lines} lines in the file but the reader accounts for {read}; nothing was "
        "loaded. Check the file's line endings",
        file=job.file.name,
    )


def _stage_array(con: duckdb.DuckDBPyConnection, job: FileJob, path: Path) -> int:
    """Split a JSON array into its elements (streamed, in chunks) into ``_jrec``; it has no reader rejects."""
    con.execute("create temp table _jrec_t (_row bigint, _line bigint, j varchar)")
    con.execute("create temp view _jrec as select * from _jrec_t")
    endings = "lf" if job.facts.line_endings in ("mixed", "cr") else job.facts.line_endings
    encoding = normalize_encoding(job.source)
    with path.open("rb") as handle:
        chunk: list[tuple[int, int, str]] = []
        for element in iter_json_array(handle, job.file.name, encoding, endings):
            chunk.append((element.number, element.line, element.text))
            if len(chunk) == _BATCH:
                _append(con, chunk)
                chunk = []
        _append(con, chunk)
    return 0


def _append(con: duckdb.DuckDBPyConnection, chunk: list[tuple[int, int, str]]) -> None:
    if not chunk:
        return
    rows, lines, texts = zip(*chunk, strict=True)
    con.register("_jin", pa.table({"_row": pa.array(rows, pa.int64()), "_line": pa.array(lines, pa.int64()),
                                   "j": pa.array(texts, pa.string())}))  # fmt: skip
    try:
        con.execute("insert into _jrec_t select _row, _line, j from _jin")
    finally:
        unregister(con, "_jin")


def _kind() -> str:
    return "case when json_valid(j) then json_type(j) else 'INVALID' end"


def _plan(con: duckdb.DuckDBPyConnection, job: FileJob) -> tuple[tuple[ReadColumn, ...], list[str]]:
    """The columns of the file: the keys of its objects in order of first appearance, matched to the registry."""
    keys = con.execute(
        f"""
        with objects as (
            select _row, case when json_valid(j) then json_keys(j) end as keys from _jrec where {_kind()} = 'OBJECT'
        ),
        found as (
            select unnest(keys) as key, _row, generate_subscripts(keys, 1) as position from objects
        )
        select key from found group by key order by min(_row * 65536 + position), key
        """
    ).fetchall()
    found = [key for (key,) in keys] or [column.name for column in job.source.columns]
    return plan_columns(job.file.name, job.source, found, kind="JSON keys")


def _path(column: ReadColumn) -> str:
    key = (column.header_name or column.name).replace("\\", "\\\\").replace('"', '\\"')
    return literal(f'$."{key}"')


def _extract(con: duckdb.DuckDBPyConnection, job: FileJob) -> None:
    """``_jx``: the objects of ``_jrec`` with their values as JSON (``e``) and as text (``t``) lists.

    Materialized once: every check and the insert refer to ``e[i]`` and ``t[i]`` many times, and DuckDB,
    inlining a subquery into those references, would parse each line dozens of times (and run out of memory).
    The table spills to the temporary folder when it is large, and goes when the file is done.
    """
    paths = "[" + ", ".join(_path(c) for c in job.columns) + "]"
    con.execute(
        # The CASE keeps DuckDB from parsing a line that is not JSON (filters may be evaluated in any order).
        f"create temp table _jx as select _row, _line, case when json_valid(j) then json_extract(j, {paths}) end as e, "
        f"case when json_valid(j) then json_extract_string(j, {paths}) end as t "
        f"from _jrec where {_kind()} = 'OBJECT'"
    )


def _failures(job: FileJob) -> list[tuple[str, str]]:
    """(SQL condition, reason) for each way a value of an object can be rejected."""
    out = []
    for i, column in enumerate(job.columns, start=1):
        if column.type == "json":
            continue
        out.append(
            (f"json_type(e[{i}]) in ('OBJECT', 'ARRAY')", f"column {column.name}: an object or array, not a value")
        )
        if column.type != "varchar":
            condition = f"t[{i}] is not null and try_cast(t[{i}] as {read_type(column.type)}) is null"
            out.append((condition, f"column {column.name}: not a valid {column.type}"))
    return out


def _find_bad(con: duckdb.DuckDBPyConnection, job: FileJob) -> None:
    """``_jbad`` (_row, _line, reason): every record that is rejected, with why."""
    what = "line" if job.source.format == "jsonl" else "array element"
    failures = _failures(job)
    reasons = ", ".join(f"case when {condition} then {literal(reason)} end" for condition, reason in failures)
    any_failure = " or ".join(f"({condition})" for condition, _ in failures) or "false"
    con.execute(
        f"""
        create temp table _jbad as
        select _row, _line, case when _kind = 'INVALID' then 'not valid JSON'
                                 else {literal(f"{what} is not a JSON object")} end as reason
        from (select _row, _line, {_kind()} as _kind from _jrec) where _kind <> 'OBJECT'
        union all
        select _row, _line, concat_ws('; ', {reasons or "null"}) as reason
        from _jx where {any_failure}
        """
    )


def _value(column: ReadColumn, i: int, zone: str) -> str:
    if column.type == "varchar":
        return f"t[{i}]"
    if column.type == "json":
        return f"case when e[{i}]::varchar = 'null' then null else e[{i}] end"
    value = f"try_cast(t[{i}] as {read_type(column.type)})"
    return f"timezone({literal(zone)}, {value})" if column.type == "timestamp" else value


def _insert(con: duckdb.DuckDBPyConnection, job: FileJob, warehouse: DuckDBWarehouse, table: str) -> None:
    """Stream the accepted records, cast to the registry types, from the staging connection into the raw table."""
    names = [ident(c.name) for c in job.columns] + ["_row_number"]
    values = [_value(c, i, job.source.timezone) for i, c in enumerate(job.columns, start=1)] + ["x._row"]
    query = f"select {', '.join(values)} from _jx as x anti join _jbad as b on x._row = b._row"
    con.execute(f"set TimeZone = {literal(job.source.timezone)}")  # timestamptz values without an offset
    try:
        warehouse.append(table, names, query, job)
    finally:
        quietly(con, "set TimeZone = 'UTC'")


class _Texts:
    """The text of single lines of the file, for the lines its reader rejected (they are not in ``_jrec``)."""

    def __init__(self, path: Path, encoding: str) -> None:
        self.path, self.encoding = path, encoding
        self._index: np.ndarray | None = None

    def line(self, number: int) -> str:
        if self._index is None:
            self._index = line_index(self.path)
        return read_lines(self.path, self._index, number, 1, self.encoding)


def _bad_records(con: duckdb.DuckDBPyConnection, after: tuple[int, int], limit: int) -> list[tuple]:
    """The rejected records after (line, row) ``after``, in that order: (line, row, text or None, reason)."""
    return con.execute(
        "select * from (select b._line, b._row, r.j, b.reason from _jbad as b join _jrec as r using (_row) "
        "union all select _line, _row, null, reason from _jreader) "
        f"where _line > ? or (_line = ? and _row > ?) order by _line, _row limit {int(limit)}",
        [after[0], after[0], after[1]],
    ).fetchall()


def _reject(texts: _Texts, line: int, row: int, text: str | None, reason: str) -> Reject:
    if text is None:  # a line the reader rejected: read it back from the file
        return Reject(int(line), texts.line(int(line)), reason, int(row))
    if reason == "not valid JSON":  # say where Python's parser stops (the rule and column, not the text)
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            reason = json_error_reason(exc)
    return Reject(int(line), text, reason, int(row))


def _store_rejects(
    con: duckdb.DuckDBPyConnection, job: FileJob, warehouse: DuckDBWarehouse, texts: _Texts
) -> list[Reject]:
    """Move every rejected record into raw._rejects, a page at a time; return the first few (by line)."""
    first: list[Reject] = []
    after = (0, 0)
    while rows := _bad_records(con, after, _BATCH):
        rejects = [_reject(texts, *row) for row in rows]
        first += rejects[: FIRST_BAD_LINES - len(first)]
        warehouse.insert_rejects(job, rejects)
        after = (rows[-1][0], rows[-1][1])
    return first


def _record_start(position: int, csv_line: str) -> int:
    """The byte where a line the reader rejected starts (its ``line_byte_position`` is one past it, and its
    ``csv_line`` may begin with the line breaks of blank lines before it)."""
    leading = len(csv_line) - len(csv_line.lstrip("\r\n"))
    return max(position - 1 + leading, 0)
