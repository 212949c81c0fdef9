"""Reading a landing file once in Python before it is staged: which rows Snowflake will reject, and why.

Snowflake's ``VALIDATE`` refuses a COPY that transforms (and the load must transform: it adds
``METADATA$FILE_ROW_NUMBER``, the audit columns and ``CONVERT_TIMEZONE``), and COPY's own result names only
the first error. So the backend finds the rejected rows here, with the loader's line numbers and reasons
(column and rule, never the value), checks the threshold before anything is written, and afterwards requires
COPY's counts to agree (rows loaded, errors seen) or fails the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field

from flows.warehouse.errors import FileFormatError
from flows.warehouse.files import csv_dialect, normalize_encoding
from flows.warehouse.jsonfiles import parse_json_file
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
    """Accepted rows (``row_number``, text values in file order) and the rejected rows."""

    rows: list[tuple[int, list[str | None]]]
    rejects: list[Reject]
    columns: tuple[ReadColumn, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def rows_in_file(self) -> int:
        """Rows read: accepted plus rejected."""
        return len(self.rows) + len(self.rejects)


def parse_file(job: FileJob) -> ParsedFile:
    """Parse one landing file of ``job`` by its registry entry (csv, json or jsonl)."""
    if job.source.format == "csv":
        return _parse_csv(job)
    parsed = parse_json_file(job.file.path, job.source)
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


def _parse_csv(job: FileJob) -> ParsedFile:
    source, columns = job.source, job.columns
    encoding = normalize_encoding(source)
    data = job.file.path.read_bytes()
    if encoding == "utf-8" and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # surrogateescape keeps undecodable bytes visible per row instead of failing the whole file
    text = data.decode(encoding, errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, **csv_dialect(source))
    expected = f"expected {len(columns)} fields separated by {source.delimiter!r}"
    rows: list[tuple[int, list[str | None]]] = []
    rejects: list[Reject] = []
    lines = text.split("\n")
    start, row_number = 1, 0
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if line == 1 and source.header:
                continue
            if not record or record == [""]:
                continue  # a blank line (SKIP_BLANK_LINES = TRUE)
            row_number += 1
            raw = "\n".join(lines[line - 1 : reader.line_num]).rstrip("\r")
            reason = _row_errors(record, columns, expected, encoding)
            if reason:
                shown = raw.encode(encoding, errors="surrogateescape").decode(encoding, errors="backslashreplace")
                rejects.append(Reject(line, shown, reason, row_number))
            else:
                rows.append((row_number, [value if value != "" else None for value in record]))
    except csv.Error as exc:
        raise FileFormatError(
            f"{job.file.name} line {start}: the row starting here cannot be parsed ({exc}); a quote left "
            "open would swallow the rest of the file, so nothing was loaded. Check the file's quoting",
            file=job.file.name,
        ) from exc
    return ParsedFile(rows, rejects, columns)


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
