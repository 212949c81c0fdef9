"""The warehouse resource (flows/warehouse/resource.py): one way to read and write DuckDB or Snowflake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from flows.warehouse.errors import WarehouseBusyError
from flows.warehouse.resource import DuckDBResource, SnowflakeResource, _pyformat, as_resource, warehouse_resource
from flows.warehouse.snowflake_connect import SnowflakeConfigError, params_from_env

ENV = {"SNOWFLAKE_ACCOUNT": "acme-xy12345", "SNOWFLAKE_USER": "loader", "SNOWFLAKE_PASSWORD": "s3cret-canary",
       "SNOWFLAKE_DATABASE": "HOSPITAL", "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": "8443",
       "SNOWFLAKE_PROTOCOL": "http"}  # fmt: skip


def test_placeholders_become_pyformat_outside_literals_and_percent_signs_are_escaped() -> None:
    sql = "select '?', a from t where b = ? and c like '10%' and d = ? and e % 2 = 0"
    assert _pyformat(sql) == "select '?', a from t where b = %s and c like '10%%' and d = %s and e %% 2 = 0"


def test_duckdb_sessions_write_read_and_describe_the_catalogue(tmp_path: Path) -> None:
    resource = DuckDBResource(tmp_path / "home" / "warehouse.duckdb")
    assert not resource.exists()
    with resource.session(write=True) as session:
        session.replace_table("marts", "m", pd.DataFrame({"Month_Date": [dt.date(2024, 1, 1)], "n": [3]}))
        session.execute("create schema if not exists ledger")
        session.execute("create table ledger.t (a varchar, b bigint)")
        session.execute("insert into ledger.t values (?, ?)", ["x", 2])
    assert resource.exists()
    with resource.session() as session:
        assert session.tables("marts") == {("marts", "m")}
        assert session.has_table("LEDGER", "T") and not session.has_table("ledger", "u")
        assert session.columns("ledger", "t") == {("ledger", "t"): {"a": "VARCHAR", "b": "BIGINT"}}
        assert session.rows("select a, b from ledger.t where b = ?", [2]) == [("x", 2)]
        assert list(session.frame("select * from marts.m").columns) == ["month_date", "n"]
        with pytest.raises(Exception, match="read-only"):
            session.execute("insert into ledger.t values ('y', 3)")


def test_a_file_another_process_writes_is_reported_busy_by_name(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "warehouse.duckdb"
    script = f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('open', flush=True); time.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(WarehouseBusyError, match=str(path)), DuckDBResource(path).session():
            pass
    finally:
        holder.kill()
        holder.wait()


def test_refs_carry_no_secret_and_come_back_as_the_same_warehouse(tmp_path: Path, monkeypatch) -> None:
    duck = DuckDBResource(tmp_path / "warehouse.duckdb")
    assert as_resource(duck.ref()).path == duck.path and as_resource(duck) is duck
    assert as_resource(str(duck.path)).path == duck.path
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    snow = warehouse_resource("snowflake", duckdb_path=tmp_path / "unused.duckdb", home=tmp_path)
    assert isinstance(snow, SnowflakeResource) and snow.kind == "snowflake" and snow.dbt_target == "snowflake"
    assert "s3cret" not in repr(snow) and "s3cret" not in str(snow.ref()) and "s3cret" not in snow.label
    again = as_resource(snow.ref())
    assert isinstance(again, SnowflakeResource) and again.account == "acme-xy12345" and again.database == "HOSPITAL"
    assert snow.lock_path.parent == tmp_path and snow.lock_path != duck.lock_path


def test_snowflake_endpoint_variables_reach_the_connector_and_dbt_and_a_bad_port_is_named() -> None:
    params = params_from_env(ENV)
    kwargs = params.connect_kwargs()
    assert (kwargs["host"], kwargs["port"], kwargs["protocol"]) == ("127.0.0.1", 8443, "http")
    env = params.dbt_env()
    assert env["DBT_ENV_SECRET_SNOWFLAKE_PASSWORD"] == "s3cret-canary" and "SNOWFLAKE_PASSWORD" not in env
    assert env["SNOWFLAKE_PORT"] == "8443" and env["SNOWFLAKE_DATABASE"] == "HOSPITAL"
    assert "s3cret" not in repr(params)
    with pytest.raises(SnowflakeConfigError, match="SNOWFLAKE_PORT") as error:
        params_from_env({**ENV, "SNOWFLAKE_PORT": "eighty"})
    assert "eighty" not in str(error.value)


def test_an_unknown_warehouse_kind_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="HOSPITAL_WAREHOUSE"):
        warehouse_resource("postgres", duckdb_path=tmp_path / "w.duckdb", home=tmp_path)
