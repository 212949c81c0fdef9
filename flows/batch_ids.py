"""Batch ids: what a pipeline run processes, checked before anything runs (no Prefect import here, so a command can
refuse a bad id before Prefect creates its home folder).

``initial-YYYYMMDD-YYYYMMDD`` (the simulator's initial history), ``daily-YYYYMMDD`` (one day's batch) or any other
plain folder name (a batch a source system delivered into the landing folder).
"""

from __future__ import annotations

import datetime as dt
import re

_INITIAL = re.compile(r"^initial-(\d{8})-(\d{8})$")
_DAILY = re.compile(r"^daily-(\d{8})$")


class PipelineConfigError(ValueError):
    """The run cannot start with these parameters; the message says what to change."""


class PipelineStageError(RuntimeError):
    """A stage failed with an error that is not the platform's own: raised in its place, from it, with a message
    that names the error's type, the stage and what to do, so the run's state (the UI, notifications, Prefect
    Cloud) never carries a library's message, which could quote a value from the data."""


def _day(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def parse_batch_id(batch_id: str) -> tuple[str, dt.date | None, dt.date]:
    """``("initial", start, end)`` or ``("daily", None, day)`` for a simulator batch id; ``("delivered", None,
    today)`` for any other (a batch delivered by a source system)."""
    if match := _INITIAL.match(batch_id):
        return "initial", _day(match.group(1)), _day(match.group(2))
    if match := _DAILY.match(batch_id):
        return "daily", None, _day(match.group(1))
    return "delivered", None, dt.datetime.now(dt.UTC).date()


def next_batch_id(published: set[str], *, start: dt.date, end: dt.date, today: dt.date) -> str | None:
    """The batch a scheduled run processes: the initial history until it is published, then the day after the
    newest published daily batch, up to yesterday (``today`` in the hospitals' time zone); None when up to date."""
    initial = f"initial-{start:%Y%m%d}-{end:%Y%m%d}"
    if initial not in published:
        return initial
    days = [_day(m.group(1)) for b in published if (m := _DAILY.match(b))]
    following = max([end, *days]) + dt.timedelta(days=1)
    return f"daily-{following:%Y%m%d}" if following < today else None


def run_name(batch_id: str, *, full_refresh: bool = False, force: bool = False) -> str:
    """A flow run's name: its batch id, marked when the run rebuilds (``daily-20260101-full-refresh``)."""
    return batch_id + ("-full-refresh" if full_refresh else "-forced" if force else "")


def check_batch_id(batch_id: str, start: dt.date) -> None:
    """Refuse a batch id that is path-like, a simulator id with an impossible date, or an initial batch of another
    network start (the simulated world depends on its start date); raises ``PipelineConfigError``."""
    from flows.warehouse.batch import validate_batch_id
    from flows.warehouse.errors import BatchIdError

    try:
        validate_batch_id(batch_id)
    except BatchIdError as exc:
        raise PipelineConfigError(str(exc)) from None
    try:
        kind, id_start, _ = parse_batch_id(batch_id)
    except ValueError:
        raise PipelineConfigError(
            f"batch id {batch_id!r} looks like a simulator id but holds an impossible date; use "
            "initial-YYYYMMDD-YYYYMMDD or daily-YYYYMMDD with real dates"
        ) from None
    if kind == "initial" and id_start != start:
        raise PipelineConfigError(
            f"batch {batch_id} starts on {id_start}, but the network starts on {start} (HOSPITAL_START_DATE); "
            "the simulated world depends on its start date: use the same one"
        )
