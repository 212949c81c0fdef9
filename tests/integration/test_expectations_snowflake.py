"""The raw checkpoint pushed down to Snowflake (fakesnow), on a batch loaded by the project's Snowflake loader.

One fakesnow account per module: a small generated batch is loaded with ``flows.warehouse`` exactly as the
Snowflake loader tests do, then validated in place through GX's SQL engine on the Snowflake dialect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fakesnow
import pytest
import snowflake.connector

from expectations import QualityGateFailed, run_checkpoint
from flows.contracts.registry import load_registry
from flows.warehouse import load_batch
from flows.warehouse.snowflake_connect import open_snowflake
from generators.batch import NetworkSpec, generate_initial

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=5, patients=400, start_date=dt.date(2024, 1, 1))


def connect() -> snowflake.connector.SnowflakeConnection:
    return snowflake.connector.connect(database="HOSPITAL", schema="RAW")


@dataclass
class Loaded:
    landing: Path
    batch_id: str


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Iterator[Loaded]:
    """A clean initial batch (400 patients, January 2024) loaded into a fakesnow account kept for the module."""
    registry = load_registry()
    batch = generate_initial(tmp_path_factory.mktemp("sf_gx"), NETWORK, dt.date(2024, 1, 31), registry=registry)
    with fakesnow.patch():
        with open_snowflake(connection=connect(), registry=registry) as warehouse:
            result = load_batch(batch.path, registry, warehouse)
        assert result.outcome == "loaded"
        yield Loaded(batch.path, batch.batch_id)


def _check(loaded: Loaded, root: Path):
    return run_checkpoint(
        "raw", warehouse="snowflake", snowflake_connect=connect, data_docs_dir=root / "data_docs",
        batch_id=loaded.batch_id, landing_dir=loaded.landing,
    )  # fmt: skip


def test_snowflake_raw_checkpoint_passes_a_clean_batch_loaded_by_the_snowflake_loader(loaded, tmp_path):
    outcome = _check(loaded, tmp_path)
    assert outcome.success, [failure.describe() for failure in outcome.failures]
    rules = {(o.note or "").split(";")[0].removeprefix("rule ") for o in outcome.outcomes}
    # The registry-derived rules of every source ran in Snowflake (columns, types, not null, unique, row counts).
    for name in load_registry().sources:
        assert {f"{name}.columns", f"{name}.types", f"{name}.row_counts"} <= rules
    assert any(".not_null." in rule for rule in rules) and any(".unique." in rule for rule in rules)
    assert outcome.data_docs_index is not None and outcome.data_docs_index.exists()


def test_snowflake_raw_checkpoint_fails_a_duplicated_key_naming_rule_and_count(loaded, tmp_path):
    connection = connect()
    try:
        cursor = connection.cursor()
        cursor.execute("create table raw.payers_backup as select * from raw.payers__payers")
        cursor.execute("insert into raw.payers__payers select * from raw.payers__payers limit 1")
        with pytest.raises(QualityGateFailed) as caught:
            _check(loaded, tmp_path)
    finally:
        cursor.execute("delete from raw.payers__payers")
        cursor.execute("insert into raw.payers__payers select * from raw.payers_backup")
        cursor.execute("drop table raw.payers_backup")
        connection.close()
    failed = {
        (f.note or "").split(";")[0].removeprefix("rule "): f.unexpected_count for f in caught.value.outcome.failures
    }
    # One duplicated row: both copies break uniqueness, and raw rows exceed the ledger's rows loaded by one.
    assert failed == {"payers__payers.unique.payer_id+updated_at": 2, "payers__payers.row_counts": 1}
    assert "suite raw.payers__payers" in str(caught.value)
