"""GX on DuckDB: the stock SQL datasource fails, the pinned fix (expectations/duckdb_support.py) counts correctly.

If the first test starts failing after an upgrade, GX has fixed DuckDB upstream: drop the fix and its version pin.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pytest

from expectations.checkpoints import RESULT_FORMAT
from expectations.duckdb_support import DuckDBDatasource, duckdb_connection_string

pytestmark = pytest.mark.integration

ROWS = 1000


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """A table whose failing counts are known by construction: every 10th id null, every 7th code malformed."""
    path = tmp_path_factory.mktemp("gx_duckdb") / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            f"""create schema raw; create table raw.rows as select
                case when range % 10 = 0 then null else 'ID' || range end as id,
                case when range % 7 = 0 then 'X' || range else 'A' || lpad(cast(range % 100 as varchar), 2, '0') end
                    as code,
                timestamp '2024-01-01' + to_hours(range) as started_at,
                timestamp '2024-01-01' + to_hours(range + case when range % 20 = 0 then -1 else 1 end) as ended_at
                from range({ROWS})"""
        )
    return path


def _suite() -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="rows",
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
            gxe.ExpectColumnValuesToMatchRegex(column="code", regex="^A[0-9]{2}$"),
            gxe.ExpectColumnValuesToBeUnique(column="code"),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="ended_at", column_B="started_at", or_equal=True),
            gxe.UnexpectedRowsExpectation(unexpected_rows_query="select id from {batch} where id like 'ID9%'"),
        ],
    )


def _validate(datasource) -> list:
    asset = datasource.add_query_asset("rows", query="select * from raw.rows")
    batch = asset.add_batch_definition_whole_table("all").get_batch()
    return batch.validate(_suite(), result_format=RESULT_FORMAT).results


def test_stock_gx_sql_datasource_cannot_validate_duckdb(warehouse):
    context = gx.get_context(mode="ephemeral")
    context.enable_analytics(False)
    datasource = context.data_sources.add_sql(
        "stock", connection_string=duckdb_connection_string(str(warehouse)),
        kwargs={"connect_args": {"read_only": True}},
    )  # fmt: skip
    try:
        results = _validate(datasource)
    finally:
        datasource.get_execution_engine().engine.dispose()
        datasource.get_engine().dispose()
    assert not any(result.success for result in results)
    assert "list index out of range" in str([result.exception_info for result in results])


def test_duckdb_datasource_counts_what_sql_counts(warehouse):
    context = gx.get_context(mode="ephemeral")
    context.enable_analytics(False)
    datasource = context.data_sources.add_duckdb(
        "fixed", connection_string=duckdb_connection_string(str(warehouse)),
        kwargs={"connect_args": {"read_only": True}},
    )  # fmt: skip
    assert isinstance(datasource, DuckDBDatasource)
    try:
        results = _validate(datasource)
    finally:
        datasource.close()
    counts = [result.result.get("unexpected_count", result.result.get("observed_value")) for result in results]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        expected = connection.execute(
            r"""select count(*) filter (where id is null),
                       count(*) filter (where not regexp_full_match(code, 'A[0-9]{2}')),
                       count(*) filter (where code in (select code from raw.rows group by code having count(*) > 1)),
                       count(*) filter (where ended_at < started_at),
                       count(*) filter (where id like 'ID9%')
                from raw.rows"""
        ).fetchone()
    assert counts == list(expected)
    assert all(count > 0 for count in counts)
    assert all(not result.success for result in results)
    # The warehouse file is released: a writer can open it again.
    duckdb.connect(str(warehouse)).close()
