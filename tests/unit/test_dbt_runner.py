"""How the flow hands dbt its commands' vars and environment (flows/transform.py, flows/dbt_runner.py)."""

from __future__ import annotations

import os

import pytest

from flows.dbt_runner import _command_env
from flows.transform import SCOPE_ENV, dbt_vars_mapping, scope_environment, transform_vars


@pytest.mark.parametrize(
    ("given", "expected_vars", "expected_scope"),
    [
        ("{tests_loaded_after: '2026-11-24 02:00:00'}", None, "2026-11-24 02:00:00"),
        ("{salt: 7, tests_loaded_after: '2026-11-24 02:00:00'}", {"salt": 7}, "2026-11-24 02:00:00"),
        ("{tests_loaded_after: null}", None, ""),  # the caller asks for every row
        ("{salt: 7}", {"salt": 7}, ""),
        (None, None, ""),
    ],
)
def test_the_daily_scope_travels_in_the_environment_and_the_other_vars_stay(given, expected_vars, expected_scope):
    dbt_vars, environment = scope_environment(given)
    assert environment == {SCOPE_ENV: expected_scope}  # always set: a variable left in the shell never leaks in
    assert (dbt_vars_mapping(dbt_vars) or None) == expected_vars
    if given and "tests_loaded_after" not in given:
        assert dbt_vars == given  # no scope: the caller's vars pass through untouched


def test_two_daily_runs_give_dbt_the_same_vars():
    """dbt re-parses the whole project when --vars change: the daily instant must not be in them."""
    import datetime as dt

    days = [dt.datetime(2026, 11, 24, 2, tzinfo=dt.UTC), dt.datetime(2026, 11, 25, 2, 0, 5, tzinfo=dt.UTC)]
    split = [scope_environment(transform_vars("daily", full_refresh=False, loaded_after=day, vars_yaml="{salt: 7}"))
             for day in days]  # fmt: skip
    assert split[0][0] == split[1][0] == "{salt: 7}"
    assert [environment[SCOPE_ENV] for _, environment in split] == ["2026-11-24 01:59:59", "2026-11-25 02:00:04"]


def test_a_commands_environment_is_restored_afterwards(monkeypatch):
    monkeypatch.setenv(SCOPE_ENV, "left in the shell")
    monkeypatch.delenv("HOSPITAL_WAREHOUSE_PATH", raising=False)
    with _command_env({SCOPE_ENV: "", "HOSPITAL_WAREHOUSE_PATH": "/tmp/w.duckdb"}):
        assert os.environ[SCOPE_ENV] == ""
        assert os.environ["HOSPITAL_WAREHOUSE_PATH"] == "/tmp/w.duckdb"
    assert os.environ[SCOPE_ENV] == "left in the shell"
    assert "HOSPITAL_WAREHOUSE_PATH" not in os.environ
