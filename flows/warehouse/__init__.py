"""The warehouse I/O layer: the only place that knows which warehouse the platform talks to.

``open_warehouse`` hands out a backend (DuckDB today; Snowflake plugs in beside it) and ``load_batch``
loads one landed batch through it, all or nothing. See docs/loading.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from flows.contracts.registry import Registry
from flows.warehouse.base import Warehouse
from flows.warehouse.batch import batch_folder, plan_batch, validate_batch_id
from flows.warehouse.errors import LoadError
from flows.warehouse.loader import load_batch
from flows.warehouse.model import BatchResult, FileOutcome
from flows.warehouse.summary import render_summary

__all__ = [
    "BatchResult",
    "FileOutcome",
    "LoadError",
    "Warehouse",
    "batch_folder",
    "load_batch",
    "open_warehouse",
    "plan_batch",
    "render_summary",
    "validate_batch_id",
]


def open_warehouse(
    kind: Literal["duckdb", "snowflake"],
    *,
    duckdb_path: Path | None = None,
    snowflake_block: str | None = None,
    registry: Registry | None = None,
) -> Warehouse:
    """Connect to the configured warehouse (callers pass what ``Settings`` says; nothing else picks one).

    Snowflake credentials come from the named prefect-snowflake block, else from environment variables
    (docs/snowflake.md); the registry lets it create every file format and raw table up front.
    """
    if kind == "duckdb":
        from flows.warehouse.duckdb_backend import DuckDBWarehouse

        if duckdb_path is None:
            raise ValueError("the duckdb warehouse needs duckdb_path (Settings().paths.warehouse)")
        return DuckDBWarehouse(duckdb_path)
    if kind == "snowflake":
        from flows.warehouse.snowflake_connect import open_snowflake

        return open_snowflake(block_name=snowflake_block, registry=registry)
    raise ValueError(f"unknown warehouse {kind!r}: set HOSPITAL_WAREHOUSE to duckdb or snowflake")
