"""The loader's reading of a delimited file's records, line by line, by its conservation rule.

A record may span lines only when it parses field for field (its quotes close, it has the source's number of
fields). A record that cannot be read (a quote opened and never closed, a quote in the wrong place) or that
runs over lines with the wrong number of fields is never trusted: its first line is one rejected row, and
reading starts again on the next line, so an unterminated quote never swallows the rows after it.

Python's ``csv`` module reads here; ``csv.field_size_limit`` bounds how far a runaway quote is followed, so the
lines held at once stay few whatever the file's size. The DuckDB backend asks this only when its own parser
reports a quoting fault (to know which lines to set aside); the Snowflake backend reads every file with it.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from flows.warehouse.lines import CHUNK


@dataclass(frozen=True)
class Scanned:
    """One record: its first and last line (1-based), its fields (None: it cannot be read), its lines' text.

    A record read alone (``alone``) is the first line of a record that could not be trusted; ``last`` is then
    the line where the parser stopped, so ``last > first`` says the quote ran over the following lines.
    """

    first: int
    last: int
    fields: list[str] | None
    lines: list[str]
    alone: bool = False

    @property
    def blank(self) -> bool:
        """A blank line, not a record."""
        return not self.alone and self.fields is not None and not self.fields


def chunks(handle: BinaryIO) -> Iterator[bytes]:
    """A binary file in chunks."""
    while chunk := handle.read(CHUNK):
        yield chunk


def text_lines(data: Iterable[bytes], encoding: str) -> Iterator[str]:
    """The lines of a file (given in chunks) split at LF only (a CR is a character like any other here), each
    ending in LF except maybe the last, decoded keeping undecodable bytes (``surrogateescape``); a UTF-8 BOM is
    dropped."""
    carry, first = b"", True
    for chunk in data:
        if first and encoding == "utf-8" and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        first = False
        pieces = (carry + chunk).split(b"\n")
        carry = pieces.pop()
        for piece in pieces:
            yield (piece + b"\n").decode(encoding, errors="surrogateescape")
    if carry:
        yield carry.decode(encoding, errors="surrogateescape")


def scan(lines: Iterator[str], dialect: dict[str, object], width: int) -> Iterator[Scanned]:
    """The records of ``lines`` (``text_lines``) by the conservation rule, for a file of ``width`` columns."""
    pending: deque[tuple[int, str]] = deque()  # lines to read again, after a record read alone
    current: list[tuple[int, str]] = []  # the lines the parser took since the last record
    numbered = enumerate(lines, start=1)

    def feed() -> Iterator[str]:
        while True:
            item = pending.popleft() if pending else next(numbered, None)
            if item is None:
                return
            current.append(item)
            yield item[1]

    while True:
        reader = csv.reader(feed(), strict=True, **dialect)
        try:
            for fields in reader:
                taken = current[:]
                current.clear()
                first, last = taken[0][0], taken[-1][0]
                if last > first and len(fields) != width:
                    break  # ran over lines with a wrong field count: read its first line alone
                yield Scanned(first, last, fields, [text for _, text in taken])
            else:
                return
        except csv.Error:
            taken = current[:]
            current.clear()
            if not taken:
                return
            fields = None
        pending.extendleft(reversed(taken[1:]))  # the lines after the first are read again, on their own
        yield Scanned(taken[0][0], taken[-1][0], fields, [taken[0][1]], alone=True)


def count_reason(found: int, width: int, delimiter: str) -> str | None:
    """Why a record of ``found`` fields does not fit a file of ``width`` columns (None if it does)."""
    expected = f"expected {width} fields separated by {delimiter!r}"
    if found < width:
        return f"too few fields ({expected})"
    if found > width:
        return f"too many fields ({expected}; an unquoted delimiter inside a value?)"
    return None


def alone_reason(record: Scanned, width: int, delimiter: str) -> str:
    """Why a record read alone was rejected: its quote, or its field count, and that it was read alone."""
    if record.fields is None:
        fault = "unterminated or misplaced quote"
    else:
        fault = count_reason(len(record.fields), width, delimiter) or "unterminated or misplaced quote"
    if record.last > record.first:
        fault += ": the quoted value opened on this line does not close on it; the line was read alone"
    return fault
