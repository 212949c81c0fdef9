"""Value encoders that build Arrow arrays straight from numpy buffers or small vocabularies.

Converting values one by one is where a vectorised generator still spends its time: Arrow's cast from floats
to decimals costs ~25 ns a value, formatting a timestamp as ISO text ~70, converting numpy text to Arrow ~50.
Here decimals are written as their 128-bit words (~2 ns), ISO timestamps gathered from date and time-of-day
tables (~11 ns) and vocabulary text taken from an Arrow array (~4 ns). Each is tested value for value against
Arrow's own conversion in ``tests/unit/test_generator_units.py``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def decimal_from_cents(cents: np.ndarray, precision: int = 12) -> pa.Array:
    """Integer cents -> decimal(precision, 2) dollars, exactly, without going through floats.

    A decimal128 value is a little-endian 128-bit integer of the unscaled number: the cents themselves as the
    low word and their sign as the high word."""
    cents = np.asarray(cents, dtype=np.int64)
    if cents.size and int(np.abs(cents).max()) >= 10**precision:
        raise ValueError(f"{int(np.abs(cents).max())} cents do not fit decimal({precision},2)")
    words = np.empty((cents.size, 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63
    return pa.Array.from_buffers(pa.decimal128(precision, 2), cents.size, [None, pa.py_buffer(words)])


_EPOCH_DAY = np.datetime64("1900-01-01", "D")
_LAST_DAY = np.datetime64("2100-12-31", "D")
_tables: tuple[np.ndarray, np.ndarray] | None = None


def _date_time_tables() -> tuple[np.ndarray, np.ndarray]:
    """ "YYYY-MM-DD" for every day of 1900-2100 as 10-byte items and "HH:MM:SS" for every second of a day as
    8-byte ones (built once per process, ~20 ms; the batch builds them before forking its workers)."""
    global _tables
    if _tables is None:
        days = np.arange(_EPOCH_DAY, _LAST_DAY + 1)
        dates = np.frombuffer(np.datetime_as_string(days).astype("S10").tobytes(), dtype="V10")
        second = np.arange(86_400)
        fields = (second // 3600, second // 60 % 60, second % 60)
        times = np.full((86_400, 8), ord(":"), dtype=np.uint8)
        for position, value in zip((0, 3, 6), fields, strict=True):
            times[:, position] = 48 + value // 10
            times[:, position + 1] = 48 + value % 10
        _tables = dates, times.view("V8").ravel()
    return _tables


def iso_text(moments: np.ndarray, separator: str = "T", suffix: str = "Z") -> pa.Array | None:
    """datetime64[s] -> "2024-03-04T19:45:00Z" strings (NaT -> null), built from lookup tables as one
    fixed-width buffer: ~30 ns a value against ~70 for Arrow's cast and two slice replacements.

    Returns None when a moment lies outside 1900-2100 (the caller then formats it the slow way)."""
    missing = np.isnat(moments)
    days, second = np.divmod(moments.astype("datetime64[s]").astype(np.int64), 86_400)
    index = days - (_EPOCH_DAY - np.datetime64("1970-01-01", "D")).astype(np.int64)
    dates, times = _date_time_tables()
    index[missing], second[missing] = 0, 0
    if index.size and (index.min() < 0 or index.max() >= dates.size):
        return None
    fields = {"date": dates[index], "separator": separator.encode(), "time": times[second], "suffix": suffix.encode()}
    layout = [(name, "V10" if name == "date" else "V8" if name == "time" else f"S{len(value)}")
              for name, value in fields.items() if len(value)]  # fmt: skip
    text = np.empty(moments.size, dtype=np.dtype(layout))
    for name, _ in layout:
        text[name] = fields[name]
    width = text.dtype.itemsize
    offsets = np.arange(0, (moments.size + 1) * width, width, dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    if not missing.any():
        return pa.Array.from_buffers(pa.string(), moments.size, buffers)
    buffers[0] = pa.array(~missing).buffers()[1]
    return pa.Array.from_buffers(pa.string(), moments.size, buffers, int(missing.sum()))


def pick(vocabulary: np.ndarray | list[str] | pa.Array, index: np.ndarray) -> pa.Array:
    """``vocabulary[index]`` as a string array: Arrow's take from the small vocabulary (~4 ns a value) instead of
    a numpy text array converted to Arrow (~50 ns a value, ~30 from Python objects)."""
    words = vocabulary if isinstance(vocabulary, pa.Array) else pa.array(list(vocabulary), pa.string())
    return words.take(pa.array(np.asarray(index, dtype=np.int64)))


def repeated(value: str, count: int) -> pa.Array:
    """``count`` copies of one string (a constant column)."""
    return pa.repeat(pa.scalar(value, pa.string()), count)


_FOUR_DIGITS = np.frombuffer("".join(f"{number:04d}" for number in range(10_000)).encode(), np.uint32)


def fixed_text(*parts: str | pa.Array | tuple[np.ndarray, int]) -> pa.Array | None:
    """Row by row, the concatenation of literal text, zero-padded numbers ``(values, digits)`` and string arrays
    whose values all have one width, e.g. ``fixed_text("A001202401", (number, 6))`` or
    ``fixed_text(encounter_id, "-", (line, 2))``. Every value then has the same width, so the result is built as
    one (rows, width) byte matrix: ~5 ns a value against ~60 for a cast, a pad and a join.

    Returns None when a number is negative or wider than its digits, or a string array has nulls or values of
    different widths (the caller then formats it the slow way)."""
    columns = [part for part in parts if not isinstance(part, str)]
    rows = len(columns[0]) if isinstance(columns[0], pa.Array) else columns[0][0].size
    pieces: list[bytes | np.ndarray] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part.encode())
        elif isinstance(part, pa.Array):
            if len(part) != rows or part.null_count or not pa.types.is_string(part.type):
                return None
            offsets = np.frombuffer(part.buffers()[1], np.int32, count=rows + 1, offset=part.offset * 4)
            width = int(offsets[1] - offsets[0]) if rows else 0
            if (np.diff(offsets) != width).any():
                return None
            data = np.frombuffer(part.buffers()[2], np.uint8, count=width * rows, offset=int(offsets[0]))
            pieces.append(data.reshape(rows, width))
        else:
            values, digits = np.asarray(part[0], dtype=np.int64), part[1]
            if values.size != rows or (rows and (values.min() < 0 or values.max() >= 10**digits)):
                return None
            # Four digits at a time from a table of "0000".."9999" as 32-bit words, then the last ``digits`` bytes.
            groups = -(-digits // 4)
            text = np.empty((rows, groups), dtype=np.uint32)
            for group in range(groups - 1, -1, -1):
                values, text[:, group] = np.divmod(values, 10_000)
                text[:, group] = _FOUR_DIGITS[text[:, group]]
            pieces.append(text.view(np.uint8)[:, groups * 4 - digits :])
    width = sum(len(piece) if isinstance(piece, bytes) else piece.shape[1] for piece in pieces)
    if rows * width >= 2**31:
        return None
    text = np.empty((rows, width), dtype=np.uint8)
    at = 0
    for piece in pieces:
        size = len(piece) if isinstance(piece, bytes) else piece.shape[1]
        text[:, at : at + size] = np.frombuffer(piece, np.uint8) if isinstance(piece, bytes) else piece
        at += size
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def joined_text(*parts: str | pa.Array | tuple[np.ndarray, int]) -> pa.Array:
    """The parts of ``fixed_text`` joined row by row: built by ``fixed_text`` when every value has one width, else
    with Arrow's cast, pad and join (a number wider than its digits keeps them all). The same text either way."""
    fixed = fixed_text(*parts)
    if fixed is not None:
        return fixed
    pieces = [
        pc.utf8_lpad(pa.array(np.asarray(part[0], dtype=np.int64)).cast(pa.string()), part[1], "0")
        if isinstance(part, tuple) else part
        for part in parts
    ]  # fmt: skip
    return pc.binary_join_element_wise(*pieces, "")
