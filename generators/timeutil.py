"""Time helpers on numpy datetime64 arrays (seconds), months as partitions, and local-time fixes."""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generators.fastcodec import iso_text

SECONDS_PER_DAY = 86_400


def day_start(day: dt.date) -> np.datetime64:
    """Midnight at the start of ``day`` as datetime64[s]."""
    return np.datetime64(day, "s")


def day_end(day: dt.date) -> np.datetime64:
    """The last second of ``day``."""
    return np.datetime64(day + dt.timedelta(days=1), "s") - np.timedelta64(1, "s")


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """First days of every month from ``first``'s month to ``last``'s month, inclusive."""
    months, cursor = [], first.replace(day=1)
    while cursor <= last:
        months.append(cursor)
        cursor = add_months(cursor, 1)
    return months


def add_months(month: dt.date, count: int) -> dt.date:
    """The first day of the month ``count`` months after ``month``."""
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def month_days(month: dt.date) -> np.ndarray:
    """Every day of a month as datetime64[D]."""
    start = np.datetime64(month, "D")
    return np.arange(start, np.datetime64(add_months(month, 1), "D"))


def weekday(days: np.ndarray) -> np.ndarray:
    """Weekday of datetime64 values, Monday = 0."""
    return (days.astype("datetime64[D]").astype(np.int64) + 3) % 7


_CELL = np.timedelta64(15, "m")  # time-zone transitions fall on quarter hours of local time


@cache
def _year_offsets(timezone: str, year: int) -> tuple[np.ndarray, np.ndarray]:
    """Per quarter hour of a local year: seconds to add to get UTC, and whether it is in a spring-forward gap.

    Offsets only change at transitions, which fall on quarter hours, so the offset of a quarter hour's first
    second holds for all of it; gap quarters (nonexistent local times) are resolved value by value.
    """
    cells = np.arange(np.datetime64(f"{year:04d}-01-01T00:00:00"), np.datetime64(f"{year + 1:04d}-01-01T00:00:00"),
                      _CELL)  # fmt: skip
    arrow = pa.array(cells)
    early = pc.assume_timezone(arrow, timezone, ambiguous="earliest", nonexistent="earliest").cast(pa.int64())
    late = pc.assume_timezone(arrow, timezone, ambiguous="earliest", nonexistent="latest").cast(pa.int64())
    offset = np.asarray(late) - cells.astype(np.int64)
    return offset, np.asarray(pc.not_equal(early, late))


def _offsets(local: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC offset in seconds of each local time (ambiguous: the earlier instant) and whether it is in a gap."""
    valid = ~np.isnat(local)
    seconds = local.astype("datetime64[s]").view(np.int64)
    if not valid.all():
        seconds = seconds[valid]
    if seconds.size == 0:
        return np.zeros(local.size, dtype=np.int64), np.zeros(local.size, dtype=bool)
    first = int(np.datetime64(int(seconds.min()), "s").astype("datetime64[Y]").astype(np.int64)) + 1970
    last = int(np.datetime64(int(seconds.max()), "s").astype("datetime64[Y]").astype(np.int64)) + 1970
    tables = [_year_offsets(timezone, year) for year in range(first, last + 1)]
    offset = np.concatenate([table[0] for table in tables]) if len(tables) > 1 else tables[0][0]
    gap = np.concatenate([table[1] for table in tables]) if len(tables) > 1 else tables[0][1]
    cell = (seconds - np.datetime64(f"{first:04d}-01-01T00:00:00", "s").astype(np.int64)) // 900
    if seconds.size == local.size:
        return offset[cell], gap[cell]
    all_offsets, all_gaps = np.zeros(local.size, dtype=np.int64), np.zeros(local.size, dtype=bool)
    all_offsets[valid], all_gaps[valid] = offset[cell], gap[cell]
    return all_offsets, all_gaps


def skip_dst_gap(local: np.ndarray, timezone: str) -> np.ndarray:
    """Move local wall-clock times that do not exist (the spring-forward hour) one hour later."""
    if timezone == "UTC" or local.size == 0:
        return local
    _, gap = _offsets(local, timezone)
    return np.where(gap, local + np.timedelta64(1, "h"), local)


def utc_seconds(local: np.ndarray, timezone: str) -> np.ndarray:
    """Local wall-clock datetime64[s] -> UTC datetime64[s], as ``pc.assume_timezone`` with ambiguous times
    taken as the earlier instant and nonexistent ones as the end of the gap; NaT stays NaT."""
    local = local.astype("datetime64[s]")
    if timezone == "UTC" or local.size == 0:
        return local
    offset, gap = _offsets(local, timezone)
    utc = local + offset.astype("timedelta64[s]")
    if gap.any():
        exact = pc.assume_timezone(pa.array(local[gap]), timezone, ambiguous="earliest", nonexistent="latest")
        utc[gap] = np.asarray(exact.cast(pa.int64())).astype("datetime64[s]")
    return utc


def iso_utc(local: np.ndarray, timezone: str) -> pa.Array:
    """Local wall-clock datetime64[s] -> ISO 8601 UTC strings ("2024-03-04T19:45:00Z"); NaT -> null.

    Formatting goes through lookup tables (``fastcodec.iso_text``); outside 1900-2100 through a plain cast:
    pyarrow's strftime and tz-aware casts cost ~1 us per value.
    """
    utc = utc_seconds(local, timezone)
    fast = iso_text(utc)
    if fast is not None:
        return fast
    text = pa.array(utc).cast(pa.string())  # "2024-03-04 19:45:00"
    # Byte-slice kernels: the text is ASCII, and they cost a fifth of their UTF-8 and join counterparts.
    text = pc.binary_replace_slice(pc.binary_replace_slice(text, 10, 11, "T"), 19, 19, "Z")
    return text if text.type == pa.string() else text.cast(pa.string())
