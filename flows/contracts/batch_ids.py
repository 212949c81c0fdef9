"""Batch ids: what a batch is called, parsed once into a ``BatchId`` (no Prefect import here, so a command can refuse
a bad id before Prefect creates its home folder).

A batch id is a plain folder name of the landing folder: 1-128 letters, digits, '.', '_' or '-', starting with a
letter or digit, never '..'. Three kinds: ``initial-YYYYMMDD-YYYYMMDD`` (the simulator's initial history, first and
last day), ``daily-YYYYMMDD`` (one day's batch) and any other name (a batch a source system delivered).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

BATCH_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_INITIAL = re.compile(r"^initial-(\d{8})-(\d{8})$")
_DAILY = re.compile(r"^daily-(\d{8})$")

BatchKind = Literal["initial", "daily", "delivered"]


class InvalidBatchId(ValueError):  # noqa: N818 - reads as what it is
    """A batch id that is not a plain folder name, or a simulator id holding an impossible date."""


def _day(text: str, batch_id: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise InvalidBatchId(
            f"batch id {batch_id!r} looks like a simulator id but holds an impossible date; use "
            "initial-YYYYMMDD-YYYYMMDD or daily-YYYYMMDD with real dates"
        ) from None


@dataclass(frozen=True, order=True)
class BatchId:
    """One batch id, parsed: its text, kind, and for simulator ids the days it covers."""

    text: str
    kind: BatchKind
    #: First day of an initial batch (None otherwise).
    start: dt.date | None = None
    #: Last day of an initial batch, or the day of a daily batch (None for a delivered batch).
    end: dt.date | None = None

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, text: str) -> BatchId:
        """Parse ``text``; raises ``InvalidBatchId`` naming what is wrong (before any file is touched)."""
        if not isinstance(text, str) or not BATCH_ID_RE.fullmatch(text) or ".." in text:
            raise InvalidBatchId(
                f"batch id {text!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (no path separators or '..')"
            )
        if match := _INITIAL.match(text):
            start, end = _day(match.group(1), text), _day(match.group(2), text)
            if end < start:
                raise InvalidBatchId(f"batch id {text!r} ends before it starts")
            return cls(text, "initial", start, end)
        if match := _DAILY.match(text):
            return cls(text, "daily", None, _day(match.group(1), text))
        return cls(text, "delivered")

    @classmethod
    def initial(cls, start: dt.date, end: dt.date) -> BatchId:
        """The initial history from ``start`` to ``end``."""
        return cls.parse(f"initial-{start:%Y%m%d}-{end:%Y%m%d}")

    @classmethod
    def daily(cls, day: dt.date) -> BatchId:
        """The daily batch of ``day``."""
        return cls.parse(f"daily-{day:%Y%m%d}")

    def run_date(self, today: dt.date) -> dt.date:
        """The date a run of this batch publishes under: its last day, or ``today`` for a delivered batch."""
        return self.end if self.end is not None else today

    def following(self) -> BatchId | None:
        """The next daily batch after a simulator batch (None for a delivered one)."""
        return BatchId.daily(self.end + dt.timedelta(days=1)) if self.end is not None else None


def validate_batch_id(text: str) -> str:
    """``text`` if it is a valid batch id (see ``BatchId.parse``); raises ``InvalidBatchId`` otherwise."""
    return BatchId.parse(text).text


def parse_batch_id(batch_id: str) -> tuple[str, dt.date | None, dt.date]:
    """``(kind, start, run date)``: ``("initial", start, end)``, ``("daily", None, day)``, or ``("delivered", None,
    today)`` for a batch a source system delivered."""
    parsed = BatchId.parse(batch_id)
    return parsed.kind, parsed.start, parsed.run_date(dt.datetime.now(dt.UTC).date())


def next_batch_id(published: set[str], *, start: dt.date, end: dt.date, today: dt.date) -> str | None:
    """The batch a scheduled run processes: the initial history until it is published, then the day after the
    newest published daily batch, up to yesterday (``today`` in the hospitals' time zone); None when up to date."""
    initial = BatchId.initial(start, end)
    if initial.text not in published:
        return initial.text
    days = [parsed.end for text in published if _DAILY.match(text) and (parsed := BatchId.parse(text)).end]
    following = max([end, *days]) + dt.timedelta(days=1)
    return BatchId.daily(following).text if following < today else None


def run_name(batch_id: str, *, full_refresh: bool = False, force: bool = False) -> str:
    """A flow run's name: its batch id, marked when the run rebuilds (``daily-20260101-full-refresh``)."""
    return batch_id + ("-full-refresh" if full_refresh else "-forced" if force else "")


def check_batch_id(batch_id: str, start: dt.date) -> BatchId:
    """Refuse a batch id that is path-like, a simulator id with an impossible date, or an initial batch of another
    network start (the simulated world depends on its start date); raises ``InvalidBatchId``."""
    parsed = BatchId.parse(batch_id)
    if parsed.kind == "initial" and parsed.start != start:
        raise InvalidBatchId(
            f"batch {batch_id} starts on {parsed.start}, but the network starts on {start} (HOSPITAL_START_DATE); "
            "the simulated world depends on its start date: use the same one"
        )
    return parsed
