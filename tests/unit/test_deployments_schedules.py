"""The schedules of deployments/prefect.yaml as the Prefect server's scheduler computes them: one run per local day
at 02:00 hospital time (a Sunday at 04:00 for the weekly refresh), the right UTC instant on both sides of a DST
change. The dates come from the server's own CronSchedule, the code its scheduler service runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo
from collections import Counter

import pytest

from flows.serve import read_deployments

pytestmark = pytest.mark.unit

YEAR_START = dt.date(2026, 12, 1)
YEAR_END = dt.date(2027, 12, 1)
SPRING_FORWARD = dt.date(2027, 3, 14)  # America/Chicago: 02:00 CST -> 03:00 CDT, 02:00 does not exist
FALL_BACK = dt.date(2027, 11, 7)  # 02:00 CDT -> 01:00 CST


def _schedule(deployment: str) -> dict:
    (schedule,) = {d["name"]: d for d in read_deployments()}[deployment]["schedules"]
    return schedule


def _server_dates(schedule: dict, start: dt.date, end: dt.date) -> list[dt.datetime]:
    from prefect.server.schemas.schedules import CronSchedule

    zone = zoneinfo.ZoneInfo(schedule["timezone"])
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    dates = cron.get_dates(n=500, start=dt.datetime(start.year, start.month, start.day, tzinfo=zone),
                           end=dt.datetime(end.year, end.month, end.day, tzinfo=zone))  # fmt: skip
    if asyncio.iscoroutine(dates):
        dates = asyncio.run(dates)
    return [d.astimezone(dt.UTC) for d in dates]


def _wall_clock_utc(day: dt.date, hour: int, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The UTC instant of ``hour``:00 local on ``day``; a wall time skipped by the spring-forward gap is taken at
    the offset after the change (fold=1), which is what Prefect's scheduler does: 02:00 -> 07:00 UTC = 01:00 CST."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=zone, fold=1).astimezone(dt.UTC)


def test_daily_deployment_runs_once_every_local_day_at_two_across_both_dst_changes():
    schedule = _schedule("daily-incremental")
    zone = zoneinfo.ZoneInfo(schedule["timezone"])
    runs = _server_dates(schedule, YEAR_START, YEAR_END)
    local_days = Counter(run.astimezone(zone).date() for run in runs)
    assert len(runs) == (YEAR_END - YEAR_START).days == 365
    assert set(local_days.values()) == {1}  # no day skipped, none doubled (also on the two change days)
    assert runs == [_wall_clock_utc(YEAR_START + dt.timedelta(days=i), 2, zone) for i in range(365)]
    by_day = {run.astimezone(zone).date(): run for run in runs}
    assert by_day[SPRING_FORWARD - dt.timedelta(days=1)].hour == 8  # 02:00 CST
    assert by_day[SPRING_FORWARD].hour == 7  # 02:00 does not exist: 01:00 CST, the instant 02:00 CDT would be
    assert by_day[SPRING_FORWARD + dt.timedelta(days=1)].hour == 7  # 02:00 CDT
    assert by_day[FALL_BACK].hour == 8  # 02:00 CST, once
    assert all(run.astimezone(zone).hour == 2 for day, run in by_day.items() if day != SPRING_FORWARD)


def test_weekly_deployment_runs_every_sunday_at_four_local():
    schedule = _schedule("weekly-full-refresh")
    zone = zoneinfo.ZoneInfo(schedule["timezone"])
    runs = _server_dates(schedule, YEAR_START, YEAR_END)
    local = [run.astimezone(zone) for run in runs]
    assert len(runs) == 52
    assert all(moment.weekday() == 6 and (moment.hour, moment.minute) == (4, 0) for moment in local)
    assert runs == [_wall_clock_utc(moment.date(), 4, zone) for moment in local]
    assert [moment.date() - local[0].date() for moment in local] == [dt.timedelta(weeks=i) for i in range(52)]
    utc_hours = {moment.date(): run.hour for moment, run in zip(local, runs, strict=True)}
    assert utc_hours[SPRING_FORWARD] == 9 and utc_hours[SPRING_FORWARD - dt.timedelta(weeks=1)] == 10
    assert utc_hours[FALL_BACK] == 10 and utc_hours[FALL_BACK - dt.timedelta(weeks=1)] == 9


def test_every_schedule_and_flow_use_the_one_hospital_time_zone():
    from prefect.client.schemas.schedules import is_valid_timezone

    for spec in read_deployments():
        for schedule in spec.get("schedules") or []:
            assert is_valid_timezone(schedule["timezone"])
            assert schedule["timezone"] == spec["parameters"]["timezone"]
