"""Shared helpers of the dbt tests: a project copy, dbt commands in-process, and the warehouse they use."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunner, dbtRunnerResult

from flows.contracts.registry import load_registry
from flows.warehouse import load_batch, open_warehouse

PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"


def copy_project(destination: Path) -> Path:
    """A copy of dbt_project/ (without build output), so tests never write into the repository."""
    shutil.copytree(PROJECT, destination, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    return destination


@contextmanager
def duckdb_target(warehouse: Path) -> Iterator[None]:
    """dbt's ``duckdb`` target on ``warehouse`` for the block (the variables profiles.yml reads)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOSPITAL_WAREHOUSE_PATH", str(warehouse))
        patch.setenv("DBT_TARGET", "duckdb")
        yield


def invoke(project: Path, root: Path, *args: str, events: list[str] | None = None) -> dbtRunnerResult:
    """Run one dbt command against the temporary project copy; target and logs stay under ``root``. The names of
    the events dbt fired are appended to ``events`` when given (e.g. ``UnableToPartialParse``)."""
    common = ["--project-dir", str(project), "--profiles-dir", str(project), "--log-path", str(root / "logs")]
    command = [*args, *common]
    if "--target-path" not in args:
        command += ["--target-path", str(root / "target")]
    callbacks = [] if events is None else [lambda event: events.append(event.info.name)]
    try:
        return dbtRunner(callbacks=callbacks).invoke(command)
    finally:
        release_warehouse()


def release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process, so the test (or the loader) can open it."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
    DuckDBConnectionManager.close_all_connections()


def query(warehouse: Path, statement: str) -> list:
    """Rows of one statement, read-only."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(statement).fetchall()


def load(batch: Path, warehouse: Path) -> None:
    """Load one landed batch into the warehouse file with the platform's loader."""
    with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
        load_batch(batch, load_registry(), handle)


def raw_latest(warehouse: Path, table: str, key: str, version: str = "updated_at") -> list[dict]:
    """The latest version of each keyed record of one raw table, as plain dicts, computed in Python.

    The same rule staging documents (newest ``version``, ties to the later load, then the later row), applied
    independently of dbt so a test can recompute a KPI from what the loader wrote. Rows without a key are left out.
    """
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        cursor = connection.execute(f"select * from raw.{table}")
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    latest: dict[str, dict] = {}
    for row in rows:
        natural_key = (row[key] or "").strip()
        if not natural_key:
            continue
        order = (row[version], row["_loaded_at"], row["_row_number"])
        if natural_key not in latest or order >= latest[natural_key]["_order"]:
            latest[natural_key] = {**row, key: natural_key, "_order": order}
    return list(latest.values())
