"""The DuckDB backend: the embedded default warehouse, one file in the data home."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from flows.warehouse.base import (
    AUDIT_COLUMNS,
    LEDGER_SCHEMA,
    LEDGER_TABLE,
    RAW_SCHEMA,
    REJECTS_TABLE,
    Warehouse,
)
from flows.warehouse.duckdb_csv import load_csv
from flows.warehouse.duckdb_json import load_json
from flows.warehouse.duckdb_sql import catalog_type, ident, stored_type
from flows.warehouse.errors import SchemaDriftError, WarehouseBusyError, WarehouseLoadError
from flows.warehouse.model import FileJob, FileLoad, FileOutcome, LoadedFile, Reject

LEDGER = f"{LEDGER_SCHEMA}.{LEDGER_TABLE}"
REJECTS = f"{RAW_SCHEMA}.{REJECTS_TABLE}"
_LEDGER_DDL = f"""
create table if not exists {LEDGER} (
    batch_id varchar not null,
    file varchar not null,
    source varchar,
    sha256 varchar,
    bytes bigint,
    rows_in_file bigint,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    outcome varchar not null,
    message varchar not null,
    loaded_at timestamptz not null
)"""
_REJECTS_DDL = f"""
create table if not exists {REJECTS} (
    batch_id varchar not null,
    source varchar not null,
    file varchar not null,
    file_sha256 varchar not null,
    line_number bigint not null,
    row_number bigint,
    raw_line varchar,
    reason varchar not null,
    loaded_at timestamptz not null
)"""


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file. One connection; the batch transaction covers raw tables, rejects and ledger."""

    kind = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise WarehouseBusyError(
                    f"warehouse {path} is in use by another process; re-run the load when it has finished"
                ) from exc
            raise
        self.con.execute("set TimeZone = 'UTC'")
        self._in_transaction = False

    def ensure_schemas(self) -> None:
        """Create the raw and ledger schemas, the ledger and the rejects table."""
        for statement in (
            f"create schema if not exists {RAW_SCHEMA}",
            f"create schema if not exists {LEDGER_SCHEMA}",
            _LEDGER_DDL,
            _REJECTS_DDL,
        ):
            self.con.execute(statement)

    def loaded_files(self, sha256s: Collection[str], names: Collection[tuple[str, str]]) -> list[LoadedFile]:
        """Ledger rows of loaded files matching a checksum or a (source, file) pair, oldest first."""
        keys = [f"{source}\x00{file}" for source, file in names]
        rows = self.con.execute(
            f"select batch_id, file, source, sha256, loaded_at from {LEDGER} "  # noqa: S608 (constant names)
            "where outcome = 'loaded' "
            "and (list_contains(?, sha256) or list_contains(?, source || chr(0) || file)) "
            "order by loaded_at, batch_id, file",
            [list(sha256s), keys],
        ).fetchall()
        return [LoadedFile(*row) for row in rows]

    @contextmanager
    def batch_transaction(self) -> Iterator[None]:
        """Begin; commit at the end of the block; roll back on any exception (also KeyboardInterrupt)."""
        self.con.execute("begin transaction")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self.con.execute("rollback")
            raise
        else:
            self.con.execute("commit")
        finally:
            self._in_transaction = False
            self.con.execute("set TimeZone = 'UTC'")

    def load_file(self, job: FileJob) -> FileLoad:
        """Load one csv, json or jsonl file into ``raw.<system>__<entity>``."""
        loader = load_csv if job.source.format == "csv" else load_json
        try:
            return loader(self.con, job, self)
        except duckdb.Error as exc:
            # DuckDB's messages can quote values from the file, so only the error class is passed on.
            raise WarehouseLoadError(
                f"{job.file.name}: DuckDB could not load it ({type(exc).__name__}); nothing was loaded. "
                "Check the file against its registry entry (delimiter, quoting, encoding) and re-run",
                file=job.file.name,
            ) from exc

    def record_ledger(self, batch_id: str, loaded_at: dt.datetime, outcomes: Sequence[FileOutcome]) -> None:
        """Append one ledger row per file outcome."""
        rows = [outcome.ledger_row(batch_id, loaded_at) for outcome in outcomes]
        if not rows:
            return
        statement = f"insert into {LEDGER} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 (constant name)
        if self._in_transaction:
            self.con.executemany(statement, rows)
            return
        self.con.execute("begin transaction")
        try:
            self.con.executemany(statement, rows)
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    # Helpers used by the csv and json loaders -------------------------------------------------------------

    def raw_table(self, job: FileJob) -> str:
        """Create or widen the raw table of the job's source; return its qualified name."""
        source = job.source
        table = f"{RAW_SCHEMA}.{ident(source.table)}"
        audit = "_batch_id varchar not null, _source_file varchar not null, _row_number bigint not null, "
        audit += "_file_sha256 varchar not null, _loaded_at timestamptz not null"
        columns = ", ".join(f"{ident(c.name)} {stored_type(c.type)}" for c in source.columns)
        self.con.execute(f"create table if not exists {table} ({columns}, {audit})")
        existing = dict(
            self.con.execute(
                "select column_name, data_type from duckdb_columns() where schema_name = ? and table_name = ?",
                [RAW_SCHEMA, source.table],
            ).fetchall()
        )
        wanted = [(c.name, c.type) for c in source.columns]
        wanted += [(c.name, c.type) for c in job.columns if not c.expected]
        for name, kind in wanted:
            if name not in existing:
                self.con.execute(f"alter table {table} add column {ident(name)} {stored_type(kind)}")
            elif existing[name] != catalog_type(kind) and name not in AUDIT_COLUMNS:
                raise SchemaDriftError(
                    f"{job.file.name}: column {name} of {RAW_SCHEMA}.{source.table} is {existing[name]} "
                    f"in the warehouse but {kind} in the registry; migrate the table or revert the registry",
                    file=job.file.name,
                )
        return table

    def insert_rejects(self, job: FileJob, rejects: Sequence[Reject]) -> None:
        """Append rejected rows to ``raw._rejects``."""
        if not rejects:
            return
        table = pa.table(
            {
                "line_number": pa.array([r.line_number for r in rejects], pa.int64()),
                "row_number": pa.array([r.row_number for r in rejects], pa.int64()),
                "raw_line": pa.array([r.raw_line for r in rejects], pa.string()),
                "reason": pa.array([r.reason for r in rejects], pa.string()),
            }
        )
        self.con.register("_rejects_in", table)
        try:
            self.con.execute(
                f"insert into {REJECTS} "  # noqa: S608 (constant name)
                "select ?, ?, ?, ?, line_number, row_number, raw_line, reason, ? from _rejects_in",
                [job.batch_id, job.source.name, job.file.name, job.facts.sha256, job.loaded_at],
            )
        finally:
            self.con.unregister("_rejects_in")
