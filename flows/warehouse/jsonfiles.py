"""Reading JSON (one array of objects) and JSON-lines files record by record, with line numbers.

The readers stream: a file is read in chunks and never held whole, so memory does not grow with the file.
``iter_json_array`` yields each element's text and line; ``iter_json_lines`` each line's record or why it is
rejected. The DuckDB backend parses JSON lines itself (``duckdb_json``) and takes array elements from here;
the Snowflake backend checks both formats with ``parse_json_file`` before it stages a file.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from flows.contracts.registry import Source
from flows.warehouse.errors import FileFormatError
from flows.warehouse.files import normalize_encoding, plan_columns
from flows.warehouse.lines import CHUNK, normalized_chunks
from flows.warehouse.model import ReadColumn, Reject

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"
#: The largest single array element the streaming reader holds before it gives up on the file.
MAX_ELEMENT = 256 * 1024 * 1024
#: (row number, line number, raw text, parsed object) of one record
_Record = tuple[int, int, str, dict[str, Any]]


@dataclass(frozen=True)
class Element:
    """One element of a JSON array: its position (1-based), the line it starts on, and its text."""

    number: int
    line: int
    text: str


class _Text:
    """Decoded text of a byte stream, read on demand; positions are counted in the whole text."""

    def __init__(self, chunks: Iterator[bytes], name: str, encoding: str, chunk_size: int = CHUNK) -> None:
        self._chunks = chunks
        self._chunk_size = chunk_size
        self._name = name
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder("utf-8-sig" if encoding == "utf-8" else encoding)()
        self.buffer = ""
        self.base = 0  # position of buffer[0] in the whole text
        self.line = 1  # line of buffer[0]
        self.column = 0  # 0-based column of buffer[0]
        self.done = False
        self._cursor, self._cursor_line, self._cursor_column = 0, 1, 0
        self._lines_read = 0  # line breaks in the bytes read so far (for encoding errors)

    def more(self) -> bool:
        """Read the next chunk into the buffer; False at the end of the stream."""
        if self.done:
            return False
        chunk = next(self._chunks, b"")
        try:
            text = self._decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            line = self._lines_read + chunk[: max(exc.start, 0)].count(b"\n") + 1
            raise FileFormatError(
                f"{self._name} line {line}: bytes not valid {self._encoding}; a JSON array cannot be split into "
                "records around them, so the file fails as a whole. Ask the sender to re-send it",
                file=self._name,
            ) from exc
        self._lines_read += chunk.count(b"\n")
        self.buffer += text
        self.done = not chunk
        return bool(chunk) or bool(text)

    def ensure(self, position: int) -> bool:
        """True when the character at ``position`` (buffer-relative) is available, reading more if needed."""
        while position >= len(self.buffer):
            if not self.more():
                return False
        return True

    def skip_space(self, position: int) -> int:
        while self.ensure(position) and self.buffer[position] in _WHITESPACE:
            position += 1
        return position

    def drop(self, position: int) -> int:
        """Forget the buffer before ``position`` once it is long (slicing per element would be quadratic);
        return where ``position`` is now."""
        if position < self._chunk_size:
            return position
        self._advance(position)
        consumed = self.buffer[:position]
        self.column = self._cursor_column
        self.line = self._cursor_line
        self.buffer = self.buffer[position:]
        self.base += len(consumed)
        self._cursor = 0
        return 0

    def _advance(self, position: int) -> None:
        """Move the line counter forward to ``position`` (positions only grow between drops)."""
        if position < self._cursor:
            raise ValueError("line counting went backwards")
        breaks = self.buffer.count("\n", self._cursor, position)
        if breaks:
            self._cursor_line += breaks
            self._cursor_column = position - self.buffer.rfind("\n", self._cursor, position) - 1
        else:
            self._cursor_column += position - self._cursor
        self._cursor = position

    def where(self, position: int) -> tuple[int, int]:
        """1-based line and column of a buffer position (at or after the last one asked for)."""
        if position < self._cursor:  # an error message only: count from the buffer's start
            before = self.buffer[:position]
            breaks = before.count("\n")
            if breaks:
                return self.line + breaks, len(before) - before.rfind("\n")
            return self.line, self.column + len(before) + 1
        self._advance(position)
        return self._cursor_line, self._cursor_column + 1


def iter_json_array(
    handle: BinaryIO, name: str, encoding: str, endings: str = "lf", chunk_size: int = CHUNK
) -> Iterator[Element]:
    """The elements of a file holding one JSON array, streamed; a syntax error fails the file (line, column)."""
    text = _Text(_chunks(handle, endings, chunk_size), name, encoding, chunk_size)
    position = text.skip_space(0)
    if not text.ensure(position) or text.buffer[position] != "[":
        raise _array_error(name, text, position, "the file does not start with '['")
    position = text.skip_space(position + 1)
    number = 0
    while True:
        if not text.ensure(position):
            raise _array_error(name, text, position, "the array is not closed (no ']')")
        if text.buffer[position] == "]":
            break
        end = _decode_element(name, text, position)
        number += 1
        line, _ = text.where(position)
        yield Element(number, line, text.buffer[position:end])
        position = text.skip_space(end)
        if text.ensure(position) and text.buffer[position] == ",":
            position = text.skip_space(position + 1)
            if text.ensure(position) and text.buffer[position] == "]":
                raise _array_error(name, text, position, "expected an element after ','")
        elif not text.ensure(position) or text.buffer[position] != "]":
            raise _array_error(name, text, position, "expected ',' or ']' after an element")
        position = text.drop(position)
    after = text.skip_space(position + 1)
    if text.ensure(after):
        raise _array_error(name, text, after, "content after the closing ']'")


def _decode_element(name: str, text: _Text, position: int) -> int:
    """The end of the JSON value starting at ``position``, reading more of the file until it is complete."""
    while True:
        try:
            _, end = _DECODER.raw_decode(text.buffer, position)
        except json.JSONDecodeError as exc:
            if text.done:
                raise _array_error(name, text, exc.pos, f"invalid JSON ({exc.msg})") from exc
            if len(text.buffer) - position > MAX_ELEMENT:
                raise _array_error(name, text, position, f"an element larger than {MAX_ELEMENT} characters") from exc
            text.more()
            continue
        # A number or literal at the very end of the buffer may continue in the next chunk.
        if end >= len(text.buffer) and not text.done:
            text.more()
            continue
        return end


def _array_error(name: str, text: _Text, position: int, what: str) -> FileFormatError:
    line, column = text.where(min(position, len(text.buffer)))
    return FileFormatError(
        f"{name} line {line} column {column}: {what}; a file of format json must be one array of objects. "
        "Nothing of the batch was loaded: ask the sender to re-send the file",
        file=name,
    )


def _chunks(handle: BinaryIO, endings: str, size: int = CHUNK) -> Iterator[bytes]:
    if endings in ("mixed", "cr"):
        yield from normalized_chunks(handle, endings, size)
        return
    while chunk := handle.read(size):
        yield chunk


def iter_json_lines(
    handle: BinaryIO, encoding: str, endings: str = "lf"
) -> Iterator[tuple[int, int, str, dict[str, Any] | None, str | None]]:
    """Each non-blank line of a JSON-lines file: (row, line, text, object or None, reject reason or None)."""
    row, number, carry = 0, 0, b""
    for chunk in _chunks(handle, endings):
        pieces = (carry + chunk).split(b"\n")
        carry = pieces.pop()
        for raw in pieces:
            number += 1
            if raw.strip():
                row += 1
                yield _json_line(raw, number, row, encoding)
    if carry.strip():
        yield _json_line(carry, number + 1, row + 1, encoding)


def _json_line(raw: bytes, number: int, row: int, encoding: str) -> tuple[int, int, str, Any, str | None]:
    try:
        text = raw.decode("utf-8-sig" if encoding == "utf-8" and number == 1 else encoding).rstrip("\r")
    except UnicodeDecodeError:
        return (
            row,
            number,
            raw.decode(encoding, errors="backslashreplace").rstrip("\r"),
            None,
            f"bytes not valid {encoding}",
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return row, number, text, None, json_error_reason(exc)
    if not isinstance(value, dict):
        return row, number, text, None, "line is not a JSON object"
    return row, number, text, value, None


def json_error_reason(exc: json.JSONDecodeError) -> str:
    """A reject reason for a line that is not JSON: the rule and column, never the text."""
    return f"not valid JSON ({exc.msg} at column {exc.colno})"


@dataclass
class ParsedJson:
    """Text columns (plus ``_row``, ``_line`` and ``_raw``) of records that parsed; rejects for the others.

    ``_row`` is the record's position among the file's records (1-based; blank lines do not count),
    ``_line`` the line where it starts. Holds the whole file: for the Snowflake backend's check before PUT.
    """

    table: pa.Table
    columns: tuple[ReadColumn, ...]
    rejects: list[Reject]
    rows_in_file: int
    notes: list[str] = field(default_factory=list)


def parse_json_file(path: Path, source: Source, *, name: str | None = None, endings: str = "lf") -> ParsedJson:
    """Parse a ``json`` or ``jsonl`` landing file of ``source`` (``name`` for messages, if ``path`` is not it)."""
    name = name or path.name
    encoding = normalize_encoding(source)
    records: list[_Record] = []
    rejects: list[Reject] = []
    with path.open("rb") as handle:
        if not handle.read(1) and source.format != "jsonl":
            # A JSON-lines file with no line is a valid, empty delivery (a quiet day with no claims); a JSON file
            # must at least hold `[]`. What the sender meant to send is reconciled by the raw gate.
            raise FileFormatError(
                f"{name}: the file is empty; a JSON array was expected. The extract probably failed: ask the "
                "sender to re-send the file",
                file=name,
            )
        handle.seek(0)
        if source.format == "jsonl":
            for row, line, text, value, reason in iter_json_lines(handle, encoding, endings):
                if value is None:
                    rejects.append(Reject(line, text, reason or "not a JSON object", row))
                else:
                    records.append((row, line, text, value))
        else:
            for element in iter_json_array(handle, name, encoding, endings):
                value = json.loads(element.text)
                if isinstance(value, dict):
                    records.append((element.number, element.line, element.text, value))
                else:
                    reason = f"array element {element.number} is not a JSON object"
                    rejects.append(Reject(element.line, element.text, reason, element.number))
    keys: dict[str, None] = {}
    for *_, record in records:
        keys.update(dict.fromkeys(record))
    found = list(keys) if records else [column.name for column in source.columns]
    columns, notes = plan_columns(name, source, found, kind="JSON keys")
    table, more = _to_table(records, columns)
    return ParsedJson(table, columns, rejects + more, len(records) + len(rejects), notes)


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
