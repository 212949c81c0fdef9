"""Parsing JSON (one array of objects) and JSON-lines files into text columns, with line-level rejects.

Python does the structural parsing so that every record keeps its line number and every unparseable line
becomes a reject with a reason; the warehouse then casts the text columns to the registry types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from flows.registry import Source
from flows.warehouse.errors import FileFormatError
from flows.warehouse.files import normalize_encoding, plan_columns
from flows.warehouse.model import ReadColumn, Reject

_DECODER = json.JSONDecoder()
#: (row number, line number, raw text, parsed object) of one record
_Record = tuple[int, int, str, dict[str, Any]]
_WHITESPACE = " \t\r\n"


@dataclass
class ParsedJson:
    """Text columns (plus ``_row``, ``_line`` and ``_raw``) of records that parsed; rejects for the others.

    ``_row`` is the record's position among the file's records (1-based; blank lines do not count),
    ``_line`` the line where it starts.
    """

    table: pa.Table
    columns: tuple[ReadColumn, ...]
    rejects: list[Reject]
    rows_in_file: int
    notes: list[str] = field(default_factory=list)


def parse_json_file(path: Path, source: Source) -> ParsedJson:
    """Parse a ``json`` or ``jsonl`` landing file of ``source``."""
    data = path.read_bytes()
    # A JSON-lines file with no line is a valid, empty delivery (a quiet day with no claims); a JSON file must at
    # least hold `[]`. What the sender meant to send is reconciled against the manifest by the raw gate.
    if not data.strip() and source.format != "jsonl":
        raise FileFormatError(
            f"{path.name}: the file is empty; a JSON {'array' if source.format == 'json' else 'line'} was "
            "expected. The extract probably failed: ask the sender to re-send the file",
            file=path.name,
        )
    encoding = normalize_encoding(source)
    if source.format == "jsonl":
        records, rejects = _parse_lines(data, encoding)
    else:
        records, rejects = _parse_array(path.name, data, encoding)
    keys: dict[str, None] = {}
    for *_, record in records:
        keys.update(dict.fromkeys(record))
    found = list(keys) if records else [column.name for column in source.columns]
    columns, notes = plan_columns(path.name, source, found, kind="JSON keys")
    table, more = _to_table(records, columns)
    return ParsedJson(table, columns, rejects + more, len(records) + len(rejects), notes)


def _parse_lines(data: bytes, encoding: str) -> tuple[list[_Record], list[Reject]]:
    records: list[_Record] = []
    rejects: list[Reject] = []
    row = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        row += 1
        try:
            text = raw.decode("utf-8-sig" if encoding == "utf-8" and number == 1 else encoding).rstrip("\r")
        except UnicodeDecodeError:
            text = raw.decode(encoding, errors="backslashreplace").rstrip("\r")
            rejects.append(Reject(number, text, f"bytes not valid {encoding}", row))
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append(Reject(number, text, f"not valid JSON ({exc.msg} at column {exc.colno})", row))
            continue
        if not isinstance(value, dict):
            rejects.append(Reject(number, text, "line is not a JSON object", row))
            continue
        records.append((row, number, text, value))
    return records, rejects


def _parse_array(name: str, data: bytes, encoding: str) -> tuple[list[_Record], list[Reject]]:
    try:
        text = data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileFormatError(
            f"{name} line {line}: bytes not valid {encoding}; a JSON array cannot be split into records "
            "around them, so the file fails as a whole. Ask the sender to re-send it",
            file=name,
        ) from exc
    position = _skip(text, 0)
    if not text.startswith("[", position):
        raise _array_error(name, text, position, "the file does not start with '['")
    position = _skip(text, position + 1)
    records: list[_Record] = []
    rejects: list[Reject] = []
    element, line, counted = 0, 1, 0
    while not text.startswith("]", position):
        try:
            value, end = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise _array_error(name, text, exc.pos, f"invalid JSON ({exc.msg})") from exc
        element += 1
        line += text.count("\n", counted, position)
        counted = position
        if isinstance(value, dict):
            records.append((element, line, text[position:end], value))
        else:
            reason = f"array element {element} is not a JSON object"
            rejects.append(Reject(line, text[position:end], reason, element))
        position = _skip(text, end)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
        elif not text.startswith("]", position):
            raise _array_error(name, text, position, "expected ',' or ']' after an element")
    if text[_skip(text, position + 1) :]:
        raise _array_error(name, text, position + 1, "content after the closing ']'")
    return records, rejects


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in _WHITESPACE:
        position += 1
    return position


def _array_error(name: str, text: str, position: int, what: str) -> FileFormatError:
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return FileFormatError(
        f"{name} line {line} column {column}: {what}; a file of format json must be one array of objects. "
        "Nothing of the batch was loaded: ask the sender to re-send the file",
        file=name,
    )


def _to_table(records: list[_Record], columns: tuple[ReadColumn, ...]) -> tuple[pa.Table, list[Reject]]:
    """Text columns for the records, built column by column; an object or array in a non-JSON column
    rejects its record."""
    texts: dict[str, list[str | None]] = {}
    bad: dict[int, list[str]] = {}
    for column in columns:
        key, is_json = column.header_name or column.name, column.type == "json"
        values = [record.get(key) for *_, record in records]
        if is_json:
            texts[column.name] = [None if v is None else _dump(v) for v in values]
        elif all(v is None or type(v) is str for v in values):  # the common case: nothing to convert
            texts[column.name] = values
        else:
            converted: list[str | None] = []
            for position, v in enumerate(values):
                if isinstance(v, dict | list):
                    bad.setdefault(position, []).append(column.name)
                    converted.append(None)
                else:
                    converted.append(_scalar(v))
            texts[column.name] = converted
    keep = [i for i in range(len(records)) if i not in bad] if bad else None
    arrays = {
        name: pa.array(values if keep is None else [values[i] for i in keep], type=pa.string())
        for name, values in texts.items()
    }
    kept = records if keep is None else [records[i] for i in keep]
    arrays["_row"] = pa.array([row for row, _, _, _ in kept], type=pa.int64())
    arrays["_line"] = pa.array([line for _, line, _, _ in kept], type=pa.int64())
    arrays["_raw"] = pa.array([raw for _, _, raw, _ in kept], type=pa.string())
    rejects = [
        Reject(
            records[i][1],
            records[i][2],
            "; ".join(f"column {c}: an object or array, not a value" for c in cols),
            records[i][0],
        )
        for i, cols in sorted(bad.items())
    ]
    return pa.table(arrays), rejects


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _scalar(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
