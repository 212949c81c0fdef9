"""The gate releases the DuckDB file: engines that connected to it in this process are found and disposed."""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa

from expectations.duckdb_support import connected_engines, duckdb_connection_string
from flows.validate import release_engines

pytestmark = pytest.mark.integration


def test_release_engines_disposes_an_engine_left_open_on_the_warehouse(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    other = tmp_path / "other.duckdb"
    for path in (warehouse, other):
        duckdb.connect(str(path)).close()
    left_open = sa.create_engine(duckdb_connection_string(str(warehouse)), connect_args={"read_only": True})
    elsewhere = sa.create_engine(duckdb_connection_string(str(other)), connect_args={"read_only": True})
    never_connected = sa.create_engine(duckdb_connection_string(str(warehouse)))
    for engine in (left_open, elsewhere):
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))  # back in the pool, the DuckDB connection stays open
    with pytest.raises(duckdb.ConnectionException):
        duckdb.connect(str(warehouse))  # a read-write connection is refused while the read-only one is open

    assert connected_engines(str(warehouse)) == [left_open]  # not the other file's, not one that never connected
    assert release_engines(warehouse) == 1

    duckdb.connect(str(warehouse)).close()  # the file is free again
    with pytest.raises(duckdb.ConnectionException):
        duckdb.connect(str(other))  # the other file's engine was left alone
    elsewhere.dispose()
    never_connected.dispose()
