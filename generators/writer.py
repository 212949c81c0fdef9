"""Landing files written the way each source system delivers them, streamed with a running sha256."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

SCHEMA_VERSION = 1


class SourceSpec(Protocol):
    """What the writer needs of a registry source (see flows/sources.yml)."""

    name: str
    system: str
    entity: str
    pattern: str
    format: str
    delimiter: str
    encoding: str
    header: bool

    @property
    def column_names(self) -> list[str]: ...

    @property
    def newline(self) -> str: ...


def file_name(source: SourceSpec, day: dt.date) -> str:
    """The landing file name: the registry pattern with the batch date in place of ``*``."""
    return source.pattern.replace("*", f"{day:%Y%m%d}")


def _json_value(array: pa.Array, raw: bool) -> tuple[str, pa.Array, str]:
    """Each value as a JSON literal: (text before, values, text after).

    Quotes of a column without nulls go into the literal pieces around it, saving a pass per column;
    a column with nulls is quoted value by value so that a null becomes a bare ``null``.
    """
    kind = array.type
    quoted = False
    if raw:
        text = array.cast(pa.string())
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        # Escape only when needed (a scan is cheaper than two replacements); generated text has no control characters.
        if pc.any(pc.match_substring(array, '"')).as_py() or pc.any(pc.match_substring(array, "\\")).as_py():
            array = pc.replace_substring(pc.replace_substring(array, "\\", "\\\\"), '"', '\\"')
        text, quoted = array, True
    elif pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        text, quoted = array.cast(pa.string()), True
    elif pa.types.is_boolean(kind):
        text = pc.if_else(array, "true", "false")
    else:
        text = array.cast(pa.string())
    if quoted and text.null_count == 0:
        return '"', text, '"'
    if quoted:
        text = pc.binary_join_element_wise('"', text, '"', "")
    return "", pc.fill_null(text, "null") if text.null_count else text, ""


def encode_jsonl(table: pa.Table, raw_columns: frozenset[str] = frozenset()) -> bytes:
    """JSON lines, built column-wise with Arrow kernels (no Python object per row)."""
    if table.num_rows == 0:
        return b""
    parts: list[pa.Array | str] = []
    pending = "{"
    for index, name in enumerate(table.column_names):
        before, values, after = _json_value(table.column(name).combine_chunks(), name in raw_columns)
        parts += [pending + ("," if index else "") + json.dumps(name) + ":" + before, values]
        pending = after
    parts.append(pending + "}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    return "".join(lines.to_pylist()).encode() if lines.null_count else _concat(lines)


def _concat(lines: pa.Array) -> bytes:
    # The string data buffer of an Arrow string array is every value back to back.
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return lines.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]


def encode_rows(table: pa.Table, source: SourceSpec, raw_columns: frozenset[str] = frozenset()) -> bytes:
    """Rows of a delimited or JSON-lines source as bytes, without header (columns in registry order)."""
    table = table.select(source.column_names)
    if source.format == "jsonl":
        data = encode_jsonl(table, raw_columns)
    else:
        sink = pa.BufferOutputStream()
        options = pacsv.WriteOptions(
            include_header=False, delimiter=source.delimiter, quoting_style="needed", eol=source.newline
        )
        pacsv.write_csv(table, sink, options)
        data = sink.getvalue().to_pybytes()
    if source.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        data = data.decode("utf-8").encode(source.encoding)
    return data


class LandingFile:
    """One landing file, written chunk by chunk; rows, bytes and sha256 are counted as it goes."""

    def __init__(self, directory: Path, source: SourceSpec, day: dt.date) -> None:
        self.source = source
        self.name = file_name(source, day)
        self.path = directory / self.name
        self.rows = 0
        self.bytes = 0
        self._sha = hashlib.sha256()
        self._json_rows: list[dict] = []
        self._handle = self.path.open("wb")
        if source.format == "csv" and source.header:
            self._write((source.delimiter.join(source.column_names) + source.newline).encode(source.encoding))

    def append_json(self, table: pa.Table) -> int:
        """Buffer rows of a JSON-array source (small master extracts); returns the first row number."""
        first = self.rows + 1
        self._json_rows.extend(table.select(self.source.column_names).to_pylist())
        self.rows += table.num_rows
        return first

    def append_encoded(self, data: bytes, rows: int) -> int:
        """Append encoded rows; returns the 1-based row number of the first one."""
        first = self.rows + 1
        self._write(data)
        self.rows += rows
        return first

    def _write(self, data: bytes) -> None:
        self._handle.write(data)
        self._sha.update(data)
        self.bytes += len(data)

    def close(self) -> dict:
        """Finish the file and return its manifest entry."""
        if self.source.format == "json":
            self._write(json.dumps(self._json_rows, indent=1, default=str).encode() + b"\n")
        self._handle.close()
        return {
            "file": self.name,
            "source": self.source.name,
            "system": self.source.system,
            "entity": self.source.entity,
            "format": self.source.format,
            "delimiter": self.source.delimiter if self.source.format == "csv" else None,
            "encoding": self.source.encoding,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self._sha.hexdigest(),
            "schema_version": SCHEMA_VERSION,
        }
