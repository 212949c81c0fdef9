"""Time helpers on numpy datetime64 arrays (seconds), months as partitions, and local-time fixes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def skip_dst_gap(local: np.ndarray, timezone: str) -> np.ndarray:
    """Move local wall-clock times that do not exist (the spring-forward hour) one hour later."""
    if timezone == "UTC" or local.size == 0:
        return local
    arrow = pa.array(local)
    early = pc.assume_timezone(arrow, timezone, ambiguous="earliest", nonexistent="earliest").cast(pa.int64())
    late = pc.assume_timezone(arrow, timezone, ambiguous="earliest", nonexistent="latest").cast(pa.int64())
    gap = np.asarray(pc.not_equal(early, late))
    return np.where(gap, local + np.timedelta64(1, "h"), local)


def iso_utc(local: np.ndarray, timezone: str) -> pa.Array:
    """Local wall-clock datetime64[s] -> ISO 8601 UTC strings ("2024-03-04T19:45:00Z"); NaT -> null.

    Formatting goes through a plain cast: pyarrow's strftime and tz-aware casts cost ~1 us per value.
    """
    arrow = pa.array(local.astype("datetime64[s]"))
    aware = pc.assume_timezone(arrow, timezone, ambiguous="earliest", nonexistent="latest")
    text = aware.cast(pa.int64()).cast(pa.timestamp("s")).cast(pa.string())
    return pc.binary_join_element_wise(pc.replace_substring(text, " ", "T"), "Z", "")
