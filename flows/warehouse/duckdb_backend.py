"""The DuckDB backend: the embedded default warehouse, one file in the data home."""

from __future__ import annotations

import contextlib
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
from flows.warehouse.duckdb_sql import catalog_type, describe_duckdb_error, ident, literal, stored_type
from flows.warehouse.duckdb_temp import quietly, unregister
from flows.warehouse.errors import FileFormatError, SchemaDriftError, WarehouseBusyError, WarehouseLoadError
from flows.warehouse.model import FileJob, FileLoad, FileOutcome, LoadedFile, Reject
from flows.warehouse.resources import describe_storage, is_storage_full, memory_exhausted, storage_full

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


#: What the loader's DuckDB connection may hold in memory; beyond it DuckDB spills to ``<warehouse>.tmp``.
MEMORY_LIMIT = "1GB"
#: Rows per Arrow batch streamed from the staging connection into a raw table (one DuckDB row group).
_STREAM_ROWS = 122_880


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file. One connection; the batch transaction covers raw tables, rejects and ledger.

    Memory is bounded by ``memory_limit`` (temporary tables and sorts spill to ``<warehouse>.tmp``); the
    write-ahead log is not checkpointed inside a commit (``checkpoint_threshold`` is raised) but right after
    it, so a full disk fails the commit itself (nothing loaded) or only the checkpoint (loaded, and replayed
    from the log on the next open), never somewhere in between. Scratch copies of landing files (mixed line
    endings, lines read alone after an unterminated quote) go to ``<warehouse>.scratch`` and are removed.
    """

    kind = "duckdb"

    def __init__(self, path: Path, *, memory_limit: str = MEMORY_LIMIT) -> None:
        super().__init__()
        self.path = path
        self.memory_limit = memory_limit
        self.temp_directory = path.with_name(path.name + ".tmp")
        self.scratch_directory = path.with_name(path.name + ".scratch")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise WarehouseBusyError(
                    f"warehouse {path} is in use by another process; re-run the load when it has finished"
                ) from exc
            if is_storage_full(exc):
                raise storage_full(exc, path, "opening the warehouse") from None
            raise
        except OSError as exc:
            if is_storage_full(exc):
                raise storage_full(exc, path, "creating the data home") from None
            raise
        for setting in (
            "set TimeZone = 'UTC'",
            f"set memory_limit = {literal(memory_limit)}",
            f"set temp_directory = {literal(str(self.temp_directory))}",
            "set checkpoint_threshold = '1TB'",  # checkpoint after the commit, not inside it (see above)
        ):
            self.con.execute(setting)
        # Files are parsed into temporary tables on a second connection of the same database, outside the batch
        # transaction: a table dropped inside a transaction keeps its memory until the commit, so a batch of
        # many large files would hold them all. The rows reach the raw tables as a stream of Arrow batches.
        self.side = self.con.cursor()
        self.side.execute("set TimeZone = 'UTC'")
        self._in_transaction = False
        #: True after DuckDB failed a checkpoint (a full disk): the connection can run nothing more.
        self.invalidated = False

    @contextmanager
    def _translated(self, what: str, file: str | None = None) -> Iterator[None]:
        """Turn DuckDB's resource errors into the loader's: a full disk, memory it may not use."""
        try:
            yield
        except duckdb.Error as exc:
            if is_storage_full(exc):
                raise storage_full(exc, self.path, what) from None
            if isinstance(exc, duckdb.OutOfMemoryException):
                raise memory_exhausted(self.memory_limit, self.temp_directory, what) from None
            raise
        except OSError as exc:
            if is_storage_full(exc):
                raise storage_full(exc, self.scratch_directory, what) from None
            raise

    def ensure_schemas(self) -> None:
        """Create the raw and ledger schemas, the ledger and the rejects table."""
        with self._translated("creating the raw and ledger schemas"):
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
        """Begin; commit at the end of the block, then checkpoint; roll back on any exception."""
        self.con.execute("begin transaction")
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        else:
            with self._translated("committing the batch to the write-ahead log"):
                try:
                    self.con.execute("commit")
                except BaseException:
                    self._rollback()
                    raise
            self._checkpoint()
        finally:
            self._in_transaction = False
            if not self.invalidated:
                quietly(self.con, "set TimeZone = 'UTC'")

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.TransactionException):  # a failed commit ended the transaction already
            self.con.execute("rollback")

    def _checkpoint(self) -> None:
        """Write the committed batch from the log into the database file; a full disk only delays it.

        DuckDB treats a failed checkpoint as fatal: this connection can do nothing more (``invalidated``), but the
        batch is committed in the log and replayed when the warehouse is next opened."""
        try:
            self.con.execute("checkpoint")
        except duckdb.Error as exc:
            if not is_storage_full(exc):
                raise
            self.invalidated = True
            self.notes.append(
                f"the batch is committed in the write-ahead log {self.path.name}.wal, but moving it into "
                f"{self.path.name} failed: no space left on {describe_storage(self.path)}. DuckDB replays the "
                "log when the warehouse is next opened; free space there"
            )

    def load_file(self, job: FileJob) -> FileLoad:
        """Load one csv, json or jsonl file into ``raw.<system>__<entity>``."""
        loader = load_csv if job.source.format == "csv" else load_json
        try:
            with self._translated(f"loading {job.file.name}"):
                return loader(self.side, job, self)
        except duckdb.Error as exc:
            raise WarehouseLoadError(
                f"{job.file.name}: DuckDB could not load it ({describe_duckdb_error(exc)}); nothing was loaded. "
                "Check the file against its registry entry (delimiter, quoting, encoding) and re-run",
                file=job.file.name,
            ) from exc
        except OSError as exc:  # reading the landing file, or writing a scratch copy of it (a full disk is above)
            raise FileFormatError(
                f"{job.file.name}: cannot be read ({exc.strerror}); nothing was loaded. Check the file and re-run",
                file=job.file.name,
            ) from exc

    def record_ledger(self, batch_id: str, loaded_at: dt.datetime, outcomes: Sequence[FileOutcome]) -> None:
        """Append one ledger row per file outcome."""
        rows = [outcome.ledger_row(batch_id, loaded_at) for outcome in outcomes]
        if not rows:
            return
        statement = f"insert into {LEDGER} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 (constant name)
        with self._translated("writing the load ledger"):
            if self._in_transaction:
                self.con.executemany(statement, rows)
                return
            self.con.execute("begin transaction")
            try:
                self.con.executemany(statement, rows)
                self.con.execute("commit")
            except BaseException:
                self._rollback()
                raise

    def close(self) -> None:
        """Close the connection (DuckDB checkpoints; a full disk leaves the log to replay, and a note)."""
        with contextlib.suppress(OSError):  # scratch copies are removed as they are used; the folder goes too
            self.scratch_directory.rmdir()
        try:
            self.side.close()
            self.con.close()
        except duckdb.Error as exc:
            if not is_storage_full(exc):
                raise
            if not self.invalidated:  # else the failed checkpoint is noted already
                self.notes.append(
                    f"closing the warehouse could not checkpoint it (no space left on "
                    f"{describe_storage(self.path)}); committed batches are kept in its write-ahead log and "
                    "replayed on the next open"
                )

    def append(self, table: str, columns: list[str], query: str, job: FileJob) -> None:
        """Insert the rows of ``query`` (run on the staging connection; its columns are ``columns``) into
        ``table`` inside the batch transaction, with the file's audit values, in Arrow batches."""
        reader = self.side.sql(query).to_arrow_reader(_STREAM_ROWS)
        self.con.register("_stream", reader)
        # File order is already captured in _row_number; letting DuckDB insert out of order is much faster.
        self.con.execute("set preserve_insertion_order = false")
        try:
            self.con.execute(
                f"insert into {table} ({', '.join(columns)}, _batch_id, _source_file, _file_sha256, _loaded_at) "  # noqa: S608
                "select *, ?, ?, ?, ? from _stream",
                [job.batch_id, job.file.name, job.facts.sha256, job.loaded_at],
            )
        finally:
            unregister(self.con, "_stream")
            quietly(self.con, "set preserve_insertion_order = true")

    def scratch_file(self, name: str) -> Path:
        """A path for a scratch copy of a landing file (the caller removes it)."""
        self.scratch_directory.mkdir(parents=True, exist_ok=True)
        return self.scratch_directory / name

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
            unregister(self.con, "_rejects_in")
