"""Temporary-table helpers of the DuckDB backend: gap tables for row numbers, clean-up that cannot mask."""

from __future__ import annotations

import contextlib

import duckdb
import numpy as np
import pyarrow as pa


def quietly(con: duckdb.DuckDBPyConnection, statement: str) -> None:
    """Run a clean-up statement; on a transaction DuckDB has aborted it would fail and hide the first error,
    and the rollback that follows undoes what it would have done anyway."""
    with contextlib.suppress(duckdb.TransactionException):
        con.execute(statement)


def unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Unregister a Python object (DuckDB drops a view: on an aborted transaction that would hide the error)."""
    with contextlib.suppress(duckdb.TransactionException):
        con.unregister(name)


def gap_table(con: duckdb.DuckDBPyConnection, name: str, gap: np.ndarray, position: np.ndarray) -> None:
    """A temp table (``_gap``, ``_skipped``): for each distinct gap, how many skipped items come up to it."""
    last = np.append(gap[1:] != gap[:-1], True) if len(gap) else np.zeros(0, dtype=bool)
    gaps = pa.table({"_gap": pa.array(gap[last], pa.int64()), "_skipped": pa.array(position[last], pa.int64())})
    con.register("_gaps_in", gaps)
    try:
        con.execute(f"create temp table {name} as select * from _gaps_in")  # noqa: S608 (a constant name)
    finally:
        unregister(con, "_gaps_in")
