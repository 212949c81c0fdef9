"""`hospital load` with HOSPITAL_WAREHOUSE=snowflake goes through the Snowflake backend (fakesnow here)."""

from __future__ import annotations

import datetime as dt

import fakesnow
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.contracts.registry import load_registry
from generators.batch import NetworkSpec, generate_initial

pytestmark = pytest.mark.integration
runner = CliRunner()
SNOWFLAKE_ENV = {
    "HOSPITAL_WAREHOUSE": "snowflake",
    "SNOWFLAKE_ACCOUNT": "emulated",
    "SNOWFLAKE_USER": "loader",
    "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD": "canary-cli-Pa55word",
    "SNOWFLAKE_DATABASE": "HOSPITAL",
}


def test_load_command_uses_the_configured_snowflake_warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("HOSPITAL_HOME", str(tmp_path))
    for name, value in SNOWFLAKE_ENV.items():
        monkeypatch.setenv(name, value)
    network = NetworkSpec(seed=3, patients=400, start_date=dt.date(2024, 1, 1))
    batch = generate_initial(tmp_path / "landing", network, dt.date(2024, 1, 31), registry=load_registry())
    with fakesnow.patch():
        first = runner.invoke(app, ["load", batch.batch_id])
        again = runner.invoke(app, ["load", batch.batch_id])
    assert first.exit_code == 0, first.output
    assert "11 file(s) loaded" in first.output
    assert again.exit_code == 0 and "0 file(s) loaded, 11 skipped" in again.output
    assert "canary-cli-Pa55word" not in first.output + again.output
    assert not (tmp_path / "warehouse.duckdb").exists(), "nothing may fall back to the embedded warehouse"


def test_load_command_without_snowflake_credentials_exits_2_naming_the_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("HOSPITAL_HOME", str(tmp_path))
    monkeypatch.setenv("HOSPITAL_WAREHOUSE", "snowflake")
    for name in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD", "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    network = NetworkSpec(seed=3, patients=400, start_date=dt.date(2024, 1, 1))
    batch = generate_initial(tmp_path / "landing", network, dt.date(2024, 1, 10), registry=load_registry())
    result = runner.invoke(app, ["load", batch.batch_id])
    assert result.exit_code == 2, result.output
    assert "SNOWFLAKE_ACCOUNT" in result.output
