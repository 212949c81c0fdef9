"""The Snowflake backend: PUT each landing file to an internal stage, COPY INTO its raw table. See docs/snowflake.md.

Same tables and semantics as the DuckDB backend. Rejected rows are found by ``snowflake_parse`` before the
file is staged (``VALIDATE`` refuses a transforming COPY), the COPY runs with ``ON_ERROR = CONTINUE`` only
when there are rows to skip (else ``ABORT_STATEMENT``) and its counts must agree; ``FORCE`` is never used.

EMULATOR WORKAROUNDS (fakesnow, used by the tests; each is marked ``# EMULATOR:`` below and listed in
docs/snowflake.md): fakesnow cannot run a COPY with a SELECT (``$n``, ``METADATA$FILE_ROW_NUMBER``), nor
``ON_ERROR = CONTINUE``, ``VALIDATION_MODE``, ``REMOVE``, or most CSV file format options. On the emulator the
file is still PUT and the COPY still compiled, but the accepted rows are inserted into a temporary text
table and moved into the raw table with the very same SELECT list (``$n`` -> text column, the file row
number -> the parsed row number).
"""

# SQL here is assembled from registry names checked or quoted by snowflake_sql; values are bound.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from flows.contracts.registry import Registry
from flows.warehouse import snowflake_sql as sql
from flows.warehouse.base import AUDIT_COLUMNS, LEDGER_SCHEMA, LEDGER_TABLE, RAW_SCHEMA, Warehouse
from flows.warehouse.errors import FileFormatError, SchemaDriftError, WarehouseLoadError
from flows.warehouse.model import (
    FIRST_BAD_LINES,
    FileJob,
    FileLoad,
    FileOutcome,
    LoadedFile,
    Reject,
    exceeds_reject_threshold,
)
from flows.warehouse.resources import is_storage_full, storage_full
from flows.warehouse.snowflake_parse import ParsedFile, parse_file, staged_copy

_CHUNK = 500  # rows per multi-row INSERT
_EMULATED_WIDTH = 200  # text columns of the emulator's scratch table (a file with more fails, naming this)


def is_emulator(connection: Any) -> bool:
    """True for a fakesnow connection (the tests' emulator), False for the real connector."""
    return type(connection).__module__.startswith("fakesnow")


class SnowflakeWarehouse(Warehouse):
    """A Snowflake database reached through one connection. Loads in one explicit transaction per batch.

    ``dry_run`` stages and validates every file (``VALIDATION_MODE = RETURN_ERRORS``) and writes no rows to
    raw tables, rejects or the ledger. ``on_error="abort"`` makes any rejected row fail its file.
    ``statements`` keeps every statement run or compiled, for tests and audits (no values: they are bound).
    With ``registry``, ``ensure_schemas`` also creates every source's file format and raw table, so a batch
    transaction holds no DDL (Snowflake commits before DDL; see ``_ddl``).
    """

    kind = "snowflake"

    def __init__(
        self,
        connection: Any,
        *,
        dry_run: bool = False,
        on_error: Literal["continue", "abort"] = "continue",
        emulator: bool | None = None,
        registry: Registry | None = None,
    ) -> None:
        super().__init__()
        self.con = connection
        self.registry = registry
        self.dry_run = dry_run
        self.on_error = on_error
        self.emulator = is_emulator(connection) if emulator is None else emulator
        self.statements: list[str] = []
        self._in_transaction = False
        self._ddl_in_transaction = False
        self._formats: set[str] = set()
        self._tables: dict[str, dict[str, str]] = {}
        self._staged: list[FileJob] = []
        self._written: set[str] = set()

    # Warehouse interface -----------------------------------------------------------------------------------

    def ensure_schemas(self) -> None:
        """Create the raw and ledger schemas, the ledger, the rejects table and the internal stage."""
        for statement in (
            f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}",
            f"CREATE SCHEMA IF NOT EXISTS {LEDGER_SCHEMA}",
            sql.LEDGER_DDL,
            sql.REJECTS_DDL,
            f"CREATE STAGE IF NOT EXISTS {sql.STAGE} COMMENT = 'landing files of the hospital loader, per batch'",
        ):
            self.run(statement)
        for source in self.registry.sources.values() if self.registry and not self.dry_run else ():
            self._ddl(sql.create_file_format(source))
            self._formats.add(sql.file_format_name(source))
            self._ddl(sql.create_raw_table(source))
        if self.emulator:  # EMULATOR: fakesnow cannot create a table inside a transaction; make it now
            columns = ", ".join(f"c{i} VARCHAR" for i in range(1, _EMULATED_WIDTH + 1))
            self.run(f"CREATE OR REPLACE TEMPORARY TABLE _emulated_copy (_row BIGINT, {columns})")

    def loaded_files(self, sha256s: Collection[str], names: Collection[tuple[str, str]]) -> list[LoadedFile]:
        """Ledger rows of loaded files matching a checksum or a (source, file) pair, oldest first."""
        conditions, params = [], []
        if sha256s:
            conditions.append(f"sha256 IN ({', '.join(['%s'] * len(sha256s))})")
            params += list(sha256s)
        for source, file in names:
            conditions.append("(source = %s AND file = %s)")
            params += [source, file]
        if not conditions:
            return []
        rows = self.run(
            f"SELECT batch_id, file, source, sha256, loaded_at FROM {sql.LEDGER} "
            f"WHERE outcome = 'loaded' AND ({' OR '.join(conditions)}) ORDER BY loaded_at, batch_id, file",
            params,
        )
        return [LoadedFile(*row) for row in rows]

    @contextmanager
    def batch_transaction(self) -> Iterator[None]:
        """BEGIN; COMMIT at the end of the block; ROLLBACK on any exception. A dry run opens none."""
        try:
            if self.dry_run:
                yield
                return
            self.run("BEGIN")
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            self.run("COMMIT")
        finally:
            self._in_transaction = self._ddl_in_transaction = False
            self._written.clear()
            self._unstage()

    def load_file(self, job: FileJob) -> FileLoad:
        """Check, PUT and COPY one file into ``raw.<system>__<entity>``; its rejects into ``raw._rejects``."""
        parsed = parse_file(job)
        job = replace(job, columns=parsed.columns)
        rejects = parsed.rejects
        first = rejects[:FIRST_BAD_LINES]
        limit = 0.0 if self.on_error == "abort" else job.max_reject_rate
        if exceeds_reject_threshold(len(rejects), parsed.rows_in_file, limit):
            return FileLoad(len(parsed.rows), len(rejects), first, parsed.notes, stored=False)
        notes = list(parsed.notes)
        if job.source.format == "csv" and job.facts.size and not job.facts.ends_with_newline:
            notes.append("last line has no line break")
        try:
            self._ensure_format(job)
            self._stage(job, parsed)
            if self.dry_run:
                return FileLoad(len(parsed.rows), len(rejects), first, notes + self._validate(job, parsed))
            table = self._ensure_table(job)
            if self.emulator:
                self._emulated_copy(job, parsed, table)
            else:
                self._copy(job, parsed)
            self._insert_rejects(job, rejects)
            self._written.add(table)
        except self._driver_errors() as exc:
            raise self._load_error(job, exc) from None
        return FileLoad(len(parsed.rows), len(rejects), first, notes)

    def record_ledger(self, batch_id: str, loaded_at: dt.datetime, outcomes: Sequence[FileOutcome]) -> None:
        """Append one ledger row per outcome (a dry run records nothing)."""
        rows = [outcome.ledger_row(batch_id, loaded_at) for outcome in outcomes]
        if self.dry_run or not rows:
            return
        if self._in_transaction:
            self._insert_rows(sql.LEDGER, 11, rows)
            return
        self.run("BEGIN")
        try:
            self._insert_rows(sql.LEDGER, 11, rows)
        except BaseException:
            self.run("ROLLBACK")
            raise
        self.run("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    # Statements --------------------------------------------------------------------------------------------

    def run(self, statement: str, params: Sequence[Any] | None = None) -> list[tuple]:
        """Run one statement (recorded in ``statements``) and return its rows."""
        self.statements.append(statement)
        cursor = self.con.cursor()
        try:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()

    def _ensure_format(self, job: FileJob) -> None:
        name = sql.file_format_name(job.source)
        if name not in self._formats:
            self._ddl(sql.create_file_format(job.source))
            self._formats.add(name)

    def _stage(self, job: FileJob, parsed: ParsedFile) -> None:
        """PUT a private copy of the checked file, written through its open descriptor (``staged_copy``): what
        Snowflake loads is what the loader hashed and parsed, whatever the name in the folder points at now."""
        folder = Path(tempfile.mkdtemp(prefix="hospital-put-"))
        try:
            local = folder / job.file.name
            try:
                staged_copy(job, parsed, local)
            except OSError as exc:
                if is_storage_full(exc):
                    raise storage_full(exc, folder, f"copying {job.file.name} to PUT it") from None
                raise FileFormatError(f"{job.file.name}: cannot be read ({exc.strerror})", file=job.file.name) from exc
            self.run(sql.put(job, local))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self._staged.append(job)

    def _unstage(self) -> None:
        for job in self._staged:
            if not self.emulator:  # EMULATOR: fakesnow has no REMOVE; its stage is a temporary folder
                self.run(sql.remove(job))
        self._staged.clear()

    def _ensure_table(self, job: FileJob) -> str:
        """Create or widen the raw table (DDL only when something is missing); return its name."""
        source = job.source
        table = sql.raw_table(source)
        existing = self._tables.get(table)
        if existing is None:
            existing = self._columns(source.table)
            if not existing:
                self._ddl(sql.create_raw_table(source))
                existing = self._columns(source.table)
            self._tables[table] = existing
        wanted = [(c.name, c.type) for c in source.columns] + [(c.name, c.type) for c in job.columns if not c.expected]
        for name, kind in wanted:
            found = existing.get(name.upper())
            if found is None:
                self._ddl(f"ALTER TABLE {table} ADD COLUMN {sql.ident(name)} {sql.stored_type(kind)}")
                existing[name.upper()] = sql.catalog_type(kind)
            elif found != sql.catalog_type(kind) and name not in AUDIT_COLUMNS:
                raise SchemaDriftError(
                    f"{job.file.name}: column {name} of {RAW_SCHEMA}.{source.table} is {found} in Snowflake "
                    f"but {kind} in the registry; migrate the table or revert the registry",
                    file=job.file.name,
                )
        return table

    def _columns(self, table: str) -> dict[str, str]:
        rows = self.run(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            [RAW_SCHEMA.upper(), table.upper()],
        )
        return {name.upper(): kind.upper() for name, kind in rows}

    def _ddl(self, statement: str) -> None:
        """Run DDL. Snowflake commits the open transaction before a DDL statement; this does so explicitly
        (the emulator could not run DDL inside it), opens a new one after, and ``_rollback`` then deletes what
        the batch wrote before. See "Transactions" in docs/snowflake.md."""
        if not self._in_transaction:
            self.run(statement)
            return
        self._ddl_in_transaction = True
        self.run("COMMIT")
        try:
            self.run(statement)
        finally:
            self.run("BEGIN")

    def _copy(self, job: FileJob, parsed: ParsedFile) -> None:
        """COPY INTO with ON_ERROR = CONTINUE (rows to skip) or ABORT_STATEMENT; counts must agree."""
        on_error = "CONTINUE" if parsed.rejects else "ABORT_STATEMENT"
        result = self.run(sql.copy_into(job, on_error))
        loaded = sum(int(row[3] or 0) for row in result)
        errors = sum(int(row[5] or 0) for row in result)
        statuses = sorted({str(row[1]) for row in result})
        if loaded != len(parsed.rows) or errors != len(parsed.rejects) or "LOAD_SKIPPED" in statuses:
            raise WarehouseLoadError(
                f"{job.file.name}: Snowflake's COPY ({', '.join(statuses) or 'no result'}) loaded {loaded} rows "
                f"and saw {errors} errors, the loader's parse expected {len(parsed.rows)} and "
                f"{len(parsed.rejects)}; the batch was rolled back. Compare the file with its registry entry",
                file=job.file.name,
            )

    def _emulated_copy(self, job: FileJob, parsed: ParsedFile, table: str) -> None:
        """EMULATOR: the COPY's SELECT list run over a temporary text table holding the accepted rows."""
        self.statements.append(sql.copy_into(job, "CONTINUE" if parsed.rejects else "ABORT_STATEMENT"))
        width = len(job.columns)
        if width > _EMULATED_WIDTH:
            raise WarehouseLoadError(f"{job.file.name}: more than {_EMULATED_WIDTH} columns (emulator limit)")
        names = ", ".join(["_row", *(f"c{i}" for i in range(1, width + 1))])
        self.run("DELETE FROM _emulated_copy")
        self._insert_rows(f"_emulated_copy ({names})", width + 1, [[row, *values] for row, values in parsed.rows])
        select = ", ".join(sql.select_list(job, prefix="c", row_number="_row"))
        self.run(f"INSERT INTO {table} ({', '.join(sql.target_columns(job))}) SELECT {select} FROM _emulated_copy")

    def _validate(self, job: FileJob, parsed: ParsedFile) -> list[str]:
        """Dry run: VALIDATION_MODE on a plain COPY into a temporary table shaped like the file."""
        name, ddl = sql.shape_table(job)
        statement = sql.validate_copy(job, name)
        if self.emulator:  # EMULATOR: fakesnow refuses VALIDATION_MODE; the loader's parse is the answer
            self.statements += [ddl, statement]
            return ["dry run: nothing written (emulator: VALIDATION_MODE compiled, not run)"]
        self.run(ddl)
        errors = self.run(statement)
        note = f"dry run: nothing written; VALIDATION_MODE reported {len(errors)} error(s)"
        if len(errors) != len(parsed.rejects):
            note += f", the loader's parse {len(parsed.rejects)}: check the file format before loading"
        return [note]

    def _insert_rejects(self, job: FileJob, rejects: Sequence[Reject]) -> None:
        head = (job.batch_id, job.source.name, job.file.name, job.facts.sha256)
        rows = [(*head, r.line_number, r.row_number, r.raw_line, r.reason, job.loaded_at) for r in rejects]
        self._insert_rows(sql.REJECTS, 9, rows)

    def _insert_rows(self, table: str, width: int, rows: Sequence[Sequence[Any]]) -> None:
        one = "(" + ", ".join(["%s"] * width) + ")"
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            self.run(f"INSERT INTO {table} VALUES {', '.join([one] * len(chunk))}", [v for r in chunk for v in r])

    def _rollback(self) -> None:
        self.run("ROLLBACK")
        if not self._ddl_in_transaction or not self._staged:
            return
        # A DDL statement committed part of this batch: delete what the batch wrote (compensation).
        # The ledger rows of the batch are written last, so none were committed.
        job = self._staged[0]
        params = [job.batch_id, job.loaded_at]
        for table in sorted(self._written):
            self.run(f"DELETE FROM {table} WHERE _batch_id = %s AND _loaded_at = %s", params)
        self.run(f"DELETE FROM {sql.REJECTS} WHERE batch_id = %s AND loaded_at = %s", params)
        self.run("COMMIT")

    @staticmethod
    def _driver_errors() -> tuple[type[BaseException], ...]:
        import snowflake.connector.errors

        return (snowflake.connector.errors.Error, NotImplementedError)

    @staticmethod
    def _load_error(job: FileJob, exc: BaseException) -> WarehouseLoadError:
        # Snowflake's messages can quote values from the file, so only the class and error code go on.
        code = getattr(exc, "errno", None)
        return WarehouseLoadError(
            f"{job.file.name}: Snowflake could not load it ({type(exc).__name__}{f' {code}' if code else ''}); "
            "the batch was rolled back. Check the file against its registry entry and the file format",
            file=job.file.name,
        )


__all__ = ["LEDGER_SCHEMA", "LEDGER_TABLE", "SnowflakeWarehouse", "is_emulator"]
