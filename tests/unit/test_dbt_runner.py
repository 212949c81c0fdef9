"""How the flow hands dbt its commands' vars and environment (flows/transform.py, flows/dbt_runner.py)."""

from __future__ import annotations

import os
from types import SimpleNamespace

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


def test_prefect_dbt_still_makes_its_callback_where_the_node_task_reporter_replaces_it():
    """flows.dbt_runner replaces prefect-dbt's per-node task callback by overriding the one method that makes it
    (a private method of the pinned prefect-dbt): fail loudly here, not silently in the UI, if that changes."""
    import inspect

    from prefect_dbt import PrefectDbtRunner

    from flows.dbt_runner import _runner_class

    assert "self._create_unified_callback(" in inspect.getsource(PrefectDbtRunner.invoke)
    runner_class = _runner_class()
    assert issubclass(runner_class, PrefectDbtRunner)
    reporter = SimpleNamespace(callback=lambda event: None)
    runner = SimpleNamespace(node_reporter=reporter)  # constructing the runner would start a Prefect server
    assert runner_class._create_unified_callback(runner, None, None, {}) is reporter.callback


def test_a_models_task_run_summarises_its_tests_by_name_and_count_only():
    from flows.dbt_runner import _NodeRun, _summary

    run = _NodeRun("model fct_charges", status="success")
    run.tests = {
        "unique_fct_charges_charge_id": ("pass", 0),
        "not_null_fct_charges_mrn": ("warn", 3),
        "accepted_range_fct_charges_amount": ("fail", 2),
        "relationships_fct_charges_x": ("error", 0),
    }
    message, failed = _summary(run, not_run=0)
    assert failed
    assert message == (
        "model fct_charges: success; 4 tests: 1 passed; 1 warned: not_null_fct_charges_mrn (3 rows); "
        "2 failed: accepted_range_fct_charges_amount (2 rows), relationships_fct_charges_x (error)"
    )
    # A `checks` test names its failing rules with their counts (the line its materialization logs).
    run.rules = {"accepted_range_fct_charges_amount": "accepted_range(amount) 2 rows"}
    assert "2 failed: accepted_range_fct_charges_amount (2 rows: accepted_range(amount) 2 rows)," in _summary(run, 0)[0]
    passed = _NodeRun("seed specialties", status="success", tests={"unique_specialties_code": ("pass", 0)})
    assert _summary(passed, not_run=0) == ("seed specialties: success; 1 tests: 1 passed", False)
    errored = _NodeRun("model dim_dates", status="error")
    assert _summary(errored, not_run=4) == ("model dim_dates: error; 4 tests not run", True)
    unfinished = _NodeRun("model dim_dates")  # started, never finished (the command stopped)
    assert _summary(unfinished, not_run=0)[1]
