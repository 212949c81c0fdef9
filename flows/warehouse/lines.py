"""Physical lines of a landing file: where they start, which are blank, their text, and a normalized copy.

A physical line ends with LF, CRLF, or (in a file with no LF at all) CR. Everything here reads the file in
fixed-size chunks, so memory does not grow with the file (no memory maps: their pages count as resident).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

CHUNK = 8 * 1024 * 1024


def _chunks(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        offset = 0
        while chunk := handle.read(CHUNK):
            yield offset, chunk
            offset += len(chunk)


def line_index(path: Path) -> np.ndarray:
    """Byte offsets of every ``\\n`` in a file (int64), read in chunks."""
    parts = [np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10) + offset for offset, chunk in _chunks(path)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def line_of(index: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """1-based line numbers of byte offsets, given the file's ``line_index``."""
    return np.searchsorted(index, offsets, side="left") + 1


def blank_lines(path: Path, index: np.ndarray) -> np.ndarray:
    """1-based numbers of the empty lines of a file (``\\r`` alone counts as empty)."""
    size = path.stat().st_size
    if not size:
        return np.zeros(0, np.int64)
    starts = np.concatenate([[0], index + 1])
    ends = np.concatenate([index, [size]])
    if starts[-1] == size:  # the file ends with a line break: no line after it
        starts, ends = starts[:-1], ends[:-1]
    lengths = ends - starts
    blank = lengths == 0
    one = np.flatnonzero(lengths == 1)
    if len(one):  # a line of one byte is blank when that byte is CR: look the bytes up chunk by chunk
        at = starts[one]
        for offset, chunk in _chunks(path):
            inside = (at >= offset) & (at < offset + len(chunk))
            if inside.any():
                data = np.frombuffer(chunk, np.uint8)
                blank[one[inside]] = data[at[inside] - offset] == 13
    return np.flatnonzero(blank).astype(np.int64) + 1


def read_lines(path: Path, index: np.ndarray, first: int, count: int, encoding: str) -> str:
    """The text of ``count`` lines from line ``first`` (1-based), undecodable bytes shown as escapes."""
    start = 0 if first == 1 else int(index[first - 2]) + 1
    last = first + count - 1
    end = int(index[last - 1]) if last - 1 < len(index) else path.stat().st_size
    with path.open("rb") as handle:
        handle.seek(start)
        raw = handle.read(max(end - start, 0))
    return raw.decode(encoding, errors="backslashreplace").rstrip("\r\n")


def normalized_chunks(handle: BinaryIO, endings: str, size: int = CHUNK) -> Iterator[bytes]:
    """The file's bytes with every line ending as LF: CRLF -> LF (``mixed``, ``crlf``) or CR -> LF (``cr``);
    any other ``endings`` passes the bytes through unchanged."""
    if endings not in ("mixed", "crlf", "cr"):
        while chunk := handle.read(size):
            yield chunk
        return
    pending = b""
    while chunk := handle.read(size):
        data = pending + chunk
        if endings == "cr":
            yield data.replace(b"\r", b"\n")
            pending = b""
            continue
        pending = b"\r" if data.endswith(b"\r") else b""
        yield (data[:-1] if pending else data).replace(b"\r\n", b"\n")
    if pending:
        yield pending


def write_copy(
    handle: BinaryIO, endings: str, target: Path, replace: Mapping[int, bytes] | None = None
) -> dict[int, bytes]:
    """Write the file with LF line endings to ``target``, lines numbered in ``replace`` swapped for its bytes.

    Returns the original bytes (without line break) of each replaced line. Used to parse a file with mixed or
    CR line endings, and to read the lines after an unterminated quote on their own.
    """
    replace = dict(replace or {})
    originals: dict[int, bytes] = {}
    line, carry = 1, b""
    with target.open("wb") as out:
        for chunk in normalized_chunks(handle, endings):
            if not replace:
                out.write(chunk)
                continue
            data = carry + chunk
            pieces = data.split(b"\n")
            carry = pieces.pop()  # the unfinished last line waits for the next chunk
            for piece in pieces:
                if line in replace:
                    originals[line] = piece.rstrip(b"\r")
                    piece = replace[line]
                out.write(piece + b"\n")
                line += 1
        if carry:
            if line in replace:
                originals[line] = carry.rstrip(b"\r")
                carry = replace[line]
            out.write(carry)
    return originals
