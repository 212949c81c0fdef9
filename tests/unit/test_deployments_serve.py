"""``hospital serve`` without a server: the served deployments' own names, and a bad --timezone refused before
anything is built or contacted (the real-server behaviour is in tests/integration/test_prefect_deployments.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows import serve as serve_module
from flows.cli import app
from flows.serve import TimezoneError, check_timezone, read_deployments, runner_deployments, served_name

pytestmark = pytest.mark.unit


def test_served_deployments_have_their_own_names_and_the_pool_ones_schedules():
    pool = {d["name"]: d for d in read_deployments()}
    served = {d.name: d for d in runner_deployments(timezone="Europe/Berlin")}
    assert set(served) == {served_name(name) for name in pool} == {
        "daily-incremental-served", "weekly-full-refresh-served", "manual-backfill-served"}  # fmt: skip
    assert not set(served) & set(pool)
    for name, spec in pool.items():
        twin = served[served_name(name)]
        assert twin.work_pool_name is None
        assert set(twin.tags) == {*spec["tags"], "served"}
        assert [s.schedule.cron for s in twin.schedules or []] == [s["cron"] for s in spec["schedules"]]
        assert all(s.schedule.timezone == "Europe/Berlin" for s in twin.schedules or [])
    assert served["daily-incremental-served"].parameters["timezone"] == "Europe/Berlin"


@pytest.mark.parametrize("name", ["America/Chicago", "Europe/Berlin", "UTC", "Etc/GMT-3"])
def test_check_timezone_accepts_iana_names(name):
    assert check_timezone(name) == name


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "america/chicago", "../../etc/passwd", "CST6CDT ", "+02:00"])
def test_check_timezone_refuses_what_the_flows_or_schedules_cannot_use(name):
    with pytest.raises(TimezoneError, match="is not an IANA time zone"):
        check_timezone(name)


def test_serve_with_a_bad_timezone_exits_2_with_one_line_before_building_or_contacting_anything(monkeypatch):
    touched = []
    monkeypatch.setattr(serve_module, "runner_deployments", lambda **kw: touched.append("built") or [])
    monkeypatch.setattr(serve_module, "server_notes", lambda *a, **kw: touched.append("server") or [])
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens: a request would fail loudly
    result = CliRunner().invoke(app, ["serve", "--timezone", "Mars/Olympus"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == ["error: --timezone: unknown time zone 'Mars/Olympus'; use an IANA name such as America/Chicago "
                     "or Europe/Berlin (got 'Mars/Olympus')"]  # fmt: skip
    assert touched == []
