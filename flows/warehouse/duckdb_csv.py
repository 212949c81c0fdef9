"""Loading a delimited file with DuckDB's ``read_csv``: typed parse, rejects, exact line numbers, insert.

The file is parsed into a temporary table on the staging connection (its ``rowid`` keeps file order), outside
the batch transaction, and the numbered rows stream into the raw table (``DuckDBWarehouse.append``);
unparseable rows land in DuckDB's rejects tables. Line numbers come from the rejects' byte offsets, never
from the parser's line counter, and every physical line of the file must be accounted for (header, loaded
row, rejected row, blank line, or a line break inside a quoted value) or the file fails.

A quote left open makes a parser read the following lines into one bad record, and DuckDB's recovery after
a quoting fault is not reliable (it may resume in the middle of a line, or report the wrong line). So when
DuckDB reports a quoting fault, the loader reads the records itself by its conservation rule (``csvscan``:
a record that cannot be read, or runs over lines with a wrong field count, is its first line alone), and
DuckDB parses a copy in which each such line is replaced by one it rejects on its own: the lines after an
unterminated quote are read on their own (loaded, or rejected for their own reasons). Files with mixed
(CRLF and LF) or CR line endings are parsed from a copy with LF endings; a CR that ends no line fails the
file, naming its line.
"""

# SQL here is assembled from ident()/literal()-quoted registry names; values travel as bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from flows.warehouse.csvscan import alone_reason, chunks, scan, text_lines
from flows.warehouse.duckdb_sql import ident, literal, read_type
from flows.warehouse.duckdb_temp import gap_table, quietly, unregister
from flows.warehouse.errors import FileFormatError, RowCountMismatchError
from flows.warehouse.files import csv_dialect, normalize_encoding
from flows.warehouse.lines import blank_lines, line_index, line_of, read_lines, write_copy
from flows.warehouse.model import (
    FIRST_BAD_LINES,
    FileJob,
    FileLoad,
    Reject,
    exceeds_reject_threshold,
)

if TYPE_CHECKING:
    from flows.warehouse.duckdb_backend import DuckDBWarehouse

_TEXT_TYPES = ("varchar", "json")


_STAGE_TABLES = ("_stage", "_rej", "_scan", "_gaps")
_STRUCTURAL = {"UNQUOTED VALUE", "MISSING COLUMNS", "TOO MANY COLUMNS"}


@dataclass
class _Rejected:
    start: int  # byte offset of the record
    errors: list[tuple[str, str | None]]  # (error type, column)
    csv_line: str


@dataclass
class _View:
    """What DuckDB parses: the landing file itself, or a copy with LF endings and some lines set aside."""

    path: Path
    copy: bool = False
    set_aside: dict[int, str] = field(default_factory=dict)  # line -> reason, for lines read alone
    originals: dict[int, bytes] = field(default_factory=dict)  # line -> its bytes in the landing file


def load_csv(con: duckdb.DuckDBPyConnection, job: FileJob, warehouse: DuckDBWarehouse) -> FileLoad:
    """Parse, check and insert one delimited file; return counts and the first rejects."""
    view = _View(job.data_path)
    try:
        if job.facts.line_endings in ("mixed", "cr"):
            view = _copy(job, warehouse, view)
        view, loaded, base, rejected = _parse(con, job, warehouse, view)
        header_lines = 1 if job.source.header else 0
        # Every line is the header or one loaded row, so row k is the k-th parsed. (Blank lines, rejects and
        # line breaks inside values make the file longer than that, and take the checked path.)
        simple = not rejected and job.facts.lines == header_lines + loaded
        numbered = None
        if not simple and job.facts.line_endings == "stray-cr":  # a CR outside quotes split a line: say so
            try:
                numbered = _number_rows(con, job, view, rejected, loaded, base, header_lines)
            except RowCountMismatchError as exc:
                raise _stray_cr_error(job) from exc
        if exceeds_reject_threshold(len(rejected), loaded + len(rejected), job.max_reject_rate):
            return FileLoad(loaded, len(rejected), _describe(job, view, rejected[:FIRST_BAD_LINES]), stored=False)
        if simple:
            row_number, source_sql = f"rowid - {base} + 1", "_stage"
            rejects: list[Reject] = []
        else:
            numbered = numbered or _number_rows(con, job, view, rejected, loaded, base, header_lines)
            rejects, row_number, source_sql = numbered
        table = warehouse.raw_table(job)
        _insert(con, job, warehouse, table, row_number, source_sql)
        warehouse.insert_rejects(job, rejects)
        notes = [] if job.facts.ends_with_newline or not job.facts.size else ["last line has no line break"]
        return FileLoad(loaded, len(rejected), sorted(rejects, key=lambda r: r.line_number)[:FIRST_BAD_LINES], notes)
    finally:
        _drop_stage(con)
        if view.copy:
            view.path.unlink(missing_ok=True)


def _drop_stage(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the staging tables (quietly: a failing clean-up must never replace the error that ended the load)."""
    for name in _STAGE_TABLES:
        quietly(con, f"drop table if exists temp.{name}")


def _parse(
    con: duckdb.DuckDBPyConnection, job: FileJob, warehouse: DuckDBWarehouse, view: _View
) -> tuple[_View, int, int, list[_Rejected]]:
    """Stage the file. When DuckDB reports a quoting fault, the loader reads the records itself (``csvscan``),
    sets aside the first line of each record it cannot trust, and DuckDB parses the file again with those
    lines replaced. Returns what was parsed last, the loaded count, the first rowid and the rejected records."""
    _stage(con, job, view.path)
    loaded, base = _stage_shape(con, job)
    rejected = _rejected_records(con)
    if not any(_quoting_fault(record) for record in rejected):
        return view, loaded, base, rejected
    source, width = job.source, len(job.columns)
    set_aside: dict[int, str] = {}
    with view.path.open("rb") as handle:
        for record in scan(text_lines(chunks(handle), normalize_encoding(source)), csv_dialect(source), width):
            if record.alone:
                if job.facts.line_endings == "stray-cr" and "\r" in record.lines[0].rstrip("\r\n"):
                    raise _stray_cr_error(job)
                set_aside[record.first] = alone_reason(record, width, source.delimiter)
    view = _copy(job, warehouse, view, set_aside)
    _stage(con, job, view.path)
    loaded, base = _stage_shape(con, job)
    rejected = _rejected_records(con)
    odd = [record for record in rejected if _quoting_fault(record)]
    if odd:
        line = int(line_of(line_index(view.path), np.array([odd[0].start]))[0])
        raise RowCountMismatchError(
            f"{job.file.name} line {line}: the quoting of this line is read differently by DuckDB and by the "
            "loader's own check, so its rows cannot be counted for sure; nothing was loaded. Check the quotes "
            "on this line and re-send the file",
            file=job.file.name,
        )
    return view, loaded, base, rejected


def _quoting_fault(record: _Rejected) -> bool:
    """A reject whose quotes DuckDB could not read, or that ran over lines with a wrong field count: DuckDB
    may then have read the following lines into it, or resumed in the middle of one."""
    kinds = {kind for kind, _ in record.errors}
    return "UNQUOTED VALUE" in kinds or (_span(record) > 1 and bool(kinds & _STRUCTURAL))


def _copy(job: FileJob, warehouse: DuckDBWarehouse, view: _View, set_aside: dict[int, str] | None = None) -> _View:
    """A scratch copy of the landing file with LF endings, each line in ``set_aside`` replaced by a line the
    parser rejects on its own (one field more than the columns)."""
    endings = job.facts.line_endings if job.facts.line_endings in ("mixed", "cr") else "lf"
    placeholder = "x" + job.source.delimiter * len(job.columns) + "x"
    placeholder += "\r" if job.facts.line_endings == "crlf" else ""  # a CRLF file keeps its endings
    target = warehouse.scratch_file(f"{job.batch_id}.{job.file.name}.{len(set_aside or {})}")
    with job.data_path.open("rb") as handle:
        originals = write_copy(handle, endings, target, dict.fromkeys(set_aside or {}, placeholder.encode()))
    if view.copy:
        view.path.unlink(missing_ok=True)
    return _View(target, True, dict(set_aside or {}), originals)


def _stage(con: duckdb.DuckDBPyConnection, job: FileJob, path: Path) -> None:
    source = job.source
    columns = ", ".join(f"{literal(c.name)}: {literal(read_type(c.type))}" for c in job.columns)
    options = [
        f"columns = {{{columns}}}",
        f"header = {'true' if source.header else 'false'}",
        f"delim = {literal(source.delimiter)}",
        f"quote = {literal(source.quote)}",
        f"escape = {literal(source.escape)}",
        f"encoding = {literal(normalize_encoding(source))}",
        "auto_detect = false",
        "compression = 'none'",
        "strict_mode = true",
        "null_padding = false",
        "store_rejects = true",
        "rejects_table = '_rej'",
        "rejects_scan = '_scan'",
    ]
    # Offset-less values of timestamptz columns are read in the source's zone; plain timestamps are
    # converted with timezone() at insert, which is cheaper than parsing in a non-UTC session.
    zone = source.timezone if any(c.type == "timestamptz" for c in job.columns) else "UTC"
    _drop_stage(con)
    con.execute(f"set TimeZone = {literal(zone)}")
    try:
        con.execute(f"create temp table _stage as select * from read_csv({literal(str(path))}, {', '.join(options)})")
    except duckdb.InvalidInputException as exc:
        if job.facts.line_endings == "stray-cr":
            raise _stray_cr_error(job) from exc
        raise
    finally:
        quietly(con, "set TimeZone = 'UTC'")


def _stray_cr_error(job: FileJob) -> FileFormatError:
    return FileFormatError(
        f"{job.file.name} line {job.facts.first_stray_cr_line}: a carriage return (\\r) that ends no line (it is "
        "not followed by a line feed, and is not inside a quoted value) in a file of LF or CRLF lines: is it a "
        "line break or not? The file is ambiguous, so nothing was loaded. Remove the character, quote the "
        "value, or convert the file to one line ending, and re-send it",
        file=job.file.name,
    )


def _stage_shape(con: duckdb.DuckDBPyConnection, job: FileJob) -> tuple[int, int]:
    count, low, high = con.execute("select count(*), min(rowid), max(rowid) from _stage").fetchall()[0]
    if count and high - low + 1 != count:  # file order is rowid order; a gap would break line numbers
        raise RowCountMismatchError(
            f"{job.file.name}: the parsed rows are not numbered contiguously; cannot assign line numbers. "
            "Report this as a loader bug",
            file=job.file.name,
        )
    return count, low or 0


def _rejected_records(con: duckdb.DuckDBPyConnection) -> list[_Rejected]:
    rows = con.execute(
        "select line_byte_position, list(distinct struct_pack(t := error_type::varchar, c := column_name)), "
        "any_value(csv_line) from _rej group by line_byte_position order by line_byte_position"
    ).fetchall()
    return [
        _Rejected(_record_start(int(at), line or ""), [(e["t"], e["c"]) for e in errors], line or "")
        for at, errors, line in rows
    ]


def _record_start(position: int, csv_line: str) -> int:
    """The byte where a rejected record starts.

    DuckDB's ``csv_line`` begins one byte before ``line_byte_position`` and may carry the line breaks of
    blank lines before the record; its line counter is not reliable after blank lines, so offsets are used.
    """
    leading = len(csv_line) - len(csv_line.lstrip("\r\n"))
    return max(position - 1 + leading, 0)


def _describe(job: FileJob, view: _View, rejected: list[_Rejected], index: np.ndarray | None = None) -> list[Reject]:
    """Rejects with exact line numbers and raw text (read back from the file by byte offset)."""
    if not rejected:
        return []
    index = line_index(view.path) if index is None else index
    encoding = normalize_encoding(job.source)
    lines = line_of(index, np.array([r.start for r in rejected], dtype=np.int64))
    out = []
    for record, line in zip(rejected, lines, strict=True):
        line = int(line)
        if line in view.set_aside:  # read alone after an unterminated quote: its own text and reason
            raw = view.originals[line].decode(encoding, errors="backslashreplace")
            out.append(Reject(line, raw, view.set_aside[line]))
            continue
        raw = read_lines(view.path, index, line, _span(record), encoding)
        out.append(Reject(line, raw, _reason(job, record.errors)))
    return out


def _span(record: _Rejected) -> int:
    return 1 + record.csv_line.strip("\r\n").count("\n")


def _reason(job: FileJob, errors: list[tuple[str, str | None]]) -> str:
    source = job.source
    types = {c.name: c.type for c in job.columns}
    expected = f"expected {len(job.columns)} fields separated by {source.delimiter!r}"
    reasons = []
    if {kind for kind, _ in errors} & {"MISSING COLUMNS", "TOO MANY COLUMNS"}:
        # With fields missing or extra, the values after them sit in the wrong columns: their cast errors
        # are consequences, not findings.
        errors = [(kind, column) for kind, column in errors if kind != "CAST"]
    for kind, column in sorted(errors, key=lambda e: (e[0], e[1] or "")):
        if kind == "CAST":
            reasons.append(f"column {column}: not a valid {types.get(column or '', 'value')}")
        elif kind == "MISSING COLUMNS":
            reasons.append(f"too few fields ({expected})")
        elif kind == "TOO MANY COLUMNS":
            reasons.append(f"too many fields ({expected}; an unquoted delimiter inside a value?)")
        elif kind == "UNQUOTED VALUE":
            reasons.append("unterminated or misplaced quote")
        elif kind in ("INVALID ENCODING", "INVALID UNICODE"):
            reasons.append(f"bytes not valid {normalize_encoding(source)}")
        elif kind == "LINE SIZE OVER MAXIMUM":
            reasons.append("line longer than the parser's maximum line size")
        else:
            reasons.append(kind.lower())
    return "; ".join(dict.fromkeys(reasons))


def _number_rows(
    con: duckdb.DuckDBPyConnection,
    job: FileJob,
    view: _View,
    rejected: list[_Rejected],
    loaded: int,
    base: int,
    header_lines: int,
) -> tuple[list[Reject], str, str]:
    """Row numbers when the file has rejects, blank lines or line breaks inside values.

    Checks first that every line is accounted for. A row's number is its position among the file's rows
    (rejected rows count, blank lines do not): the k-th loaded row is row ``k + #{rejects with fewer than
    k loaded rows before them}``. Returns the rejects, the row-number expression and the FROM clause.
    """
    index = line_index(view.path)
    rejects = _describe(job, view, rejected, index)
    skipped = set(blank_lines(view.path, index).tolist())
    for record, reject in zip(rejected, rejects, strict=True):
        skipped.update(range(reject.line_number, reject.line_number + _span(record)))
    skipped = {line for line in skipped if line > header_lines}
    lines = [reject.line_number for reject in rejects]
    if len(set(lines)) != len(lines):  # a record starts on each line, never two on one (a stray CR splits one)
        twice = min(line for line in lines if lines.count(line) > 1)
        raise RowCountMismatchError(
            f"{job.file.name} line {twice}: the parser read two records on this line; nothing was loaded. "
            "Check the line for a stray line break character",
            file=job.file.name,
        )
    extra = job.facts.lines - (header_lines + loaded + len(skipped))
    embedded = _embedded_line_breaks(con, job) if extra > 0 else 0
    # An empty line inside a quoted value looks blank and is also a line break inside a value.
    inner_blanks = embedded - extra if 0 < embedded - extra <= len(skipped) - sum(map(_span, rejected)) else 0
    if extra + inner_blanks != embedded:
        rejected_lines = sum(_span(record) for record in rejected)
        where = f" The first rejected row starts on line {rejects[0].line_number}." if rejects else ""
        raise RowCountMismatchError(
            f"{job.file.name}: {job.facts.lines} lines in the file but the parser accounts for "
            f"{job.facts.lines - extra + embedded} ({header_lines} header, {loaded} loaded rows, "
            f"{len(rejected)} rejected rows on {rejected_lines} lines, {embedded} line breaks inside values, "
            f"{len(skipped) - rejected_lines} blank lines); rows may have been lost, so nothing was loaded."
            f"{where} Check the file's quoting and line endings",
            file=job.file.name,
        )
    if not rejects:
        return rejects, f"rowid - {base} + 1", "_stage"
    starts = np.array([r.line_number for r in rejects], dtype=np.int64)
    if inner_blanks:  # which blank lines are inside values is unknown here: count rows with Python's csv
        before = _loaded_before_by_csv(job, view.path, starts, loaded + len(rejects))
    elif embedded:
        before = _loaded_before(con, job, base, header_lines, np.array(sorted(skipped), dtype=np.int64), starts)
    else:  # each line not skipped starts one loaded row
        before = starts - 1 - header_lines - np.searchsorted(np.array(sorted(skipped), dtype=np.int64), starts)
    position = np.arange(1, len(rejects) + 1, dtype=np.int64)
    rejects = [replace(r, row_number=int(b + p)) for r, b, p in zip(rejects, before, position, strict=True)]
    gap_table(con, "_gaps", before, position)
    source_sql = f"(select *, rowid - {base} + 1 as _k from _stage) as s asof left join _gaps as g on s._k > g._gap"
    return rejects, "s._k + coalesce(g._skipped, 0)", source_sql


def _loaded_before_by_csv(job: FileJob, path: Path, starts: np.ndarray, rows: int) -> np.ndarray:
    """Loaded rows before each rejected row, from the start lines of the records Python's csv module reads.

    Used only when empty lines sit inside quoted values; fails rather than guess if it disagrees with DuckDB.
    """
    encoding = normalize_encoding(job.source)
    record_lines: list[int] = []
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        reader = csv.reader(handle, **csv_dialect(job.source))
        if job.source.header:
            next(reader, None)
        line = 1 + (1 if job.source.header else 0)
        for record in reader:
            if record:
                record_lines.append(line)
            line = reader.line_num + 1
    positions = {start: i for i, start in enumerate(record_lines)}
    if len(record_lines) != rows or any(int(start) not in positions for start in starts):
        raise RowCountMismatchError(
            f"{job.file.name}: rows cannot be numbered unambiguously (empty lines inside quoted values and "
            "rejected rows); nothing was loaded. Check the file's quoting",
            file=job.file.name,
        )
    return np.array([positions[int(start)] - i for i, start in enumerate(starts)], dtype=np.int64)


def _loaded_before(
    con: duckdb.DuckDBPyConnection,
    job: FileJob,
    base: int,
    header_lines: int,
    skipped: np.ndarray,
    starts: np.ndarray,
) -> np.ndarray:
    """Loaded rows that start before each rejected row's line, when loaded rows may span several lines.

    Loaded row k starts on line ``header + j + #{skipped lines before it}``, where ``j`` counts the lines
    of the loaded rows so far (rows before it plus their inner line breaks).
    """
    position = np.arange(1, len(skipped) + 1, dtype=np.int64)
    gap_table(con, "_line_gaps", skipped - header_lines - position, position)
    con.register("_starts_in", pa.table({"_start": pa.array(starts)}))
    window = "over (order by rowid rows between unbounded preceding and 1 preceding)"
    try:
        rows = con.execute(
            f"""
            with numbered as (
                select rowid - {base} + 1 + coalesce(sum({_line_break_sum(job)}) {window}, 0) as _j from _stage
            ),
            lines as (
                select {header_lines} + n._j + coalesce(g._skipped, 0) as _line
                from numbered as n asof left join _line_gaps as g on n._j > g._gap
            )
            select count(l._line) from _starts_in as r left join lines as l on l._line < r._start
            group by r._start order by r._start
            """
        ).fetchall()
    finally:
        unregister(con, "_starts_in")
        quietly(con, "drop table if exists temp._line_gaps")
    return np.array([count for (count,) in rows], dtype=np.int64)


def _line_break_sum(job: FileJob) -> str:
    texts = [ident(c.name) for c in job.columns if c.type in _TEXT_TYPES]
    if not texts:
        return "0"
    parts = [f"coalesce(length({t}::varchar) - length(replace({t}::varchar, chr(10), '')), 0)" for t in texts]
    return " + ".join(parts)


def _embedded_line_breaks(con: duckdb.DuckDBPyConnection, job: FileJob) -> int:
    return int(con.execute(f"select coalesce(sum({_line_break_sum(job)}), 0) from _stage").fetchall()[0][0])


def _insert(
    con: duckdb.DuckDBPyConnection, job: FileJob, warehouse: DuckDBWarehouse, table: str, row_number: str, source: str
) -> None:
    """Stream the parsed rows (converted to UTC, numbered) from the staging connection into the raw table."""
    prefix = "s." if source.startswith("(") else ""
    names, values = [], []
    for column in job.columns:
        names.append(ident(column.name))
        value = f"{prefix}{ident(column.name)}"
        if column.type == "timestamp":
            value = f"timezone({literal(job.source.timezone)}, {value})"
        values.append(value)
    names.append("_row_number")
    values.append(row_number)
    warehouse.append(table, names, f"select {', '.join(values)} from {source}", job)
