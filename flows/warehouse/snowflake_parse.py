"""Reading a landing file once in Python before it is staged: which rows Snowflake will reject, and why.

Snowflake's ``VALIDATE`` refuses a COPY that transforms (and the load must transform: it adds
``METADATA$FILE_ROW_NUMBER``, the audit columns and ``CONVERT_TIMEZONE``), and COPY's own result names only
the first error. So the backend finds the rejected rows here, with the loader's line numbers and reasons
(column and rule, never the value), checks the threshold before anything is written, and afterwards requires
COPY's counts to agree (rows loaded, errors seen) or fails the file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from flows.warehouse.csvscan import alone_reason, chunks, scan, text_lines
from flows.warehouse.errors import FileFormatError
from flows.warehouse.files import csv_dialect, normalize_encoding
from flows.warehouse.jsonfiles import parse_json_file
from flows.warehouse.lines import normalized_chunks, write_copy
from flows.warehouse.model import FileJob, ReadColumn, Reject

_INT = re.compile(r"^[+-]?\d+$")
_DEC = re.compile(r"^[+-]?(\d+)(?:\.(\d+))?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$")
_TSTZ = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s?(Z|[+-]\d{2}:?\d{2})?$")
_BOOL = {"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0", "on", "off"}
_INT_LIMITS = {"integer": 2**31, "bigint": 2**63}


@dataclass
class ParsedFile:
    """Accepted rows (``row_number``, text values in file order), the rejected rows, and the lines set aside.

    ``set_aside`` holds the lines rejected alone after an unterminated quote: the file is staged with each
    of them replaced by a line Snowflake rejects on its own, so COPY reads the lines after it one by one,
    as the loader did (``staged_copy``).
    """

    rows: list[tuple[int, list[str | None]]]
    rejects: list[Reject]
    columns: tuple[ReadColumn, ...]
    notes: list[str] = field(default_factory=list)
    set_aside: set[int] = field(default_factory=set)

    @property
    def rows_in_file(self) -> int:
        """Rows read: accepted plus rejected."""
        return len(self.rows) + len(self.rejects)


def parse_file(job: FileJob) -> ParsedFile:
    """Parse one landing file of ``job`` by its registry entry (csv, json or jsonl)."""
    if job.source.format == "csv":
        return _parse_csv(job)
    endings = job.facts.line_endings
    parsed = parse_json_file(job.data_path, job.source, name=job.file.name, endings=endings)
    texts = {name: parsed.table.column(name).to_pylist() for name in parsed.table.column_names}
    rows, rejects = [], list(parsed.rejects)
    for i, row_number in enumerate(texts["_row"]):
        values = [texts[c.name][i] for c in parsed.columns]
        reason = _type_errors(parsed.columns, values)
        if reason:
            rejects.append(Reject(texts["_line"][i], texts["_raw"][i], reason, row_number))
        else:
            rows.append((row_number, values))
    rejects.sort(key=lambda r: r.line_number)
    return ParsedFile(rows, rejects, parsed.columns, parsed.notes)


def staged_copy(job: FileJob, parsed: ParsedFile, target: Path) -> None:
    """Write what is PUT: the checked file (read through its open descriptor, never its name again), with LF
    endings if they were mixed or CR, and each set-aside line replaced by one Snowflake rejects alone."""
    placeholder = ("x" + job.source.delimiter * len(job.columns) + "x").encode()
    endings = job.facts.line_endings if job.facts.line_endings in ("mixed", "cr") else "lf"
    if job.facts.line_endings == "crlf":
        placeholder += b"\r"
    with job.data_path.open("rb") as handle:
        write_copy(handle, endings, target, dict.fromkeys(parsed.set_aside, placeholder))


def _parse_csv(job: FileJob) -> ParsedFile:
    """Every record by the loader's conservation rule (``csvscan``): the first line of a record that cannot be
    trusted is one rejected row, set aside for the staged copy, and the lines after it are read on their own."""
    source, columns = job.source, job.columns
    encoding, width = normalize_encoding(source), len(columns)
    expected = f"expected {width} fields separated by {source.delimiter!r}"
    endings = job.facts.line_endings if job.facts.line_endings in ("mixed", "cr") else "lf"
    rows: list[tuple[int, list[str | None]]] = []
    rejects: list[Reject] = []
    set_aside: set[int] = set()
    row_number = 0
    with job.data_path.open("rb") as handle:
        lines = text_lines(normalized_chunks(handle, endings) if endings != "lf" else chunks(handle), encoding)
        for record in scan(lines, csv_dialect(source), width):
            if (record.first == 1 and source.header) or record.blank:
                continue  # the header, or a blank line (SKIP_BLANK_LINES = TRUE)
            row_number += 1
            raw = _shown("".join(record.lines).rstrip("\n"), encoding)
            if record.alone:
                if job.facts.line_endings == "stray-cr" and "\r" in record.lines[0].rstrip("\r\n"):
                    raise _stray_cr(job)
                rejects.append(Reject(record.first, raw, alone_reason(record, width, source.delimiter), row_number))
                set_aside.add(record.first)
                continue
            reason = _row_errors(record.fields or [], columns, expected, encoding)
            if reason:
                rejects.append(Reject(record.first, raw, reason, row_number))
            else:
                rows.append((row_number, [value if value != "" else None for value in record.fields or []]))
    return ParsedFile(rows, rejects, columns, set_aside=set_aside)


def _shown(raw: str, encoding: str) -> str:
    """A raw line as text, undecodable bytes shown as escapes."""
    raw = raw.rstrip("\r")
    return raw.encode(encoding, errors="surrogateescape").decode(encoding, errors="backslashreplace")


def _stray_cr(job: FileJob) -> FileFormatError:
    return FileFormatError(
        f"{job.file.name} line {job.facts.first_stray_cr_line}: a carriage return (\\r) that ends no line (it is "
        "not followed by a line feed, and is not inside a quoted value) in a file of LF or CRLF lines: is it a "
        "line break or not? The file is ambiguous, so nothing was loaded. Remove the character, quote the "
        "value, or convert the file to one line ending, and re-send it",
        file=job.file.name,
    )


def _row_errors(record: list[str], columns: tuple[ReadColumn, ...], expected: str, encoding: str) -> str:
    if any(_undecodable(value) for value in record):
        return f"bytes not valid {encoding}"
    if len(record) < len(columns):
        return f"too few fields ({expected})"
    if len(record) > len(columns):
        return f"too many fields ({expected}; an unquoted delimiter inside a value?)"
    return _type_errors(columns, record)


def _undecodable(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


def _type_errors(columns: tuple[ReadColumn, ...], values: list[str | None]) -> str:
    reasons = [
        f"column {column.name}: not a valid {column.type}"
        for column, value in zip(columns, values, strict=True)
        if value not in (None, "") and not is_valid(column.type, value)
    ]
    return "; ".join(reasons)


def is_valid(kind: str, value: str) -> bool:
    """True when ``value`` parses as the registry type ``kind`` (the rules the COPY casts apply)."""
    value = value.strip() if kind != "varchar" else value
    if kind in ("varchar",):
        return True
    if kind in _INT_LIMITS:
        return bool(_INT.match(value)) and -_INT_LIMITS[kind] <= int(value) < _INT_LIMITS[kind]
    if kind.startswith("decimal"):
        precision, scale = (int(x) for x in re.findall(r"\d+", kind))
        match = _DEC.match(value)
        return (
            bool(match) and len(match.group(1).lstrip("0")) <= precision - scale and len(match.group(2) or "") <= scale
        )
    if kind == "double":
        try:
            float(value)
        except ValueError:
            return False
        return True
    if kind == "boolean":
        return value.lower() in _BOOL
    if kind == "json":
        try:
            json.loads(value)
        except ValueError:
            return False
        return True
    pattern = {"date": _DATE, "timestamp": _TS, "timestamptz": _TSTZ}[kind]
    if not pattern.match(value):
        return False
    try:
        if kind == "date":
            dt.date.fromisoformat(value)
        else:
            dt.datetime.fromisoformat(re.sub(r"\.(\d{6})\d+", r".\1", value).replace(" Z", "Z"))
    except ValueError:
        return False
    return True
