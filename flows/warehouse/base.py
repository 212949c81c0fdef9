"""The backend interface of the warehouse I/O layer. Callers use only this; a backend implements it.

A backend owns the warehouse's SQL dialect and how files get in: DuckDB reads the landing files in place
with ``read_csv``; a Snowflake backend would PUT them to an internal stage and ``COPY INTO`` the raw table
with a named file format per source, ``ON_ERROR = CONTINUE`` and the rejects from ``VALIDATE``. Everything
else (manifest, checksums, duplicates, conflicts, drift, thresholds, the summary) is shared in ``loader``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager

from flows.warehouse.model import FileJob, FileLoad, FileOutcome, LoadedFile

RAW_SCHEMA = "raw"
LEDGER_SCHEMA = "ledger"
LEDGER_TABLE = "load_ledger"
REJECTS_TABLE = "_rejects"
AUDIT_COLUMNS = ("_batch_id", "_source_file", "_row_number", "_file_sha256", "_loaded_at")


class Warehouse(ABC):
    """A warehouse the loader can write raw tables, rejects and the load ledger to.

    Tables: ``raw.<system>__<entity>`` (registry columns plus ``AUDIT_COLUMNS``), ``raw._rejects``
    (batch_id, source, file, file_sha256, line_number, row_number, raw_line, reason, loaded_at) and
    ``ledger.load_ledger`` (batch_id, file, source, sha256, bytes, rows_in_file, rows_loaded, rows_rejected,
    outcome, message, loaded_at). Timestamps are stored as UTC instants.
    """

    #: Short name shown in summaries ("duckdb", "snowflake").
    kind: str = "abstract"

    def __init__(self) -> None:
        #: Things a caller should know that did not fail the batch (e.g. a checkpoint postponed by a full disk).
        self.notes: list[str] = []

    def take_notes(self) -> list[str]:
        """The notes gathered so far, emptied."""
        notes, self.notes = self.notes, []
        return notes

    @abstractmethod
    def ensure_schemas(self) -> None:
        """Create the raw and ledger schemas, the ledger table and the rejects table if they do not exist."""

    @abstractmethod
    def loaded_files(self, sha256s: Collection[str], names: Collection[tuple[str, str]]) -> list[LoadedFile]:
        """Ledger rows with outcome ``loaded`` whose sha256 or (source, file) pair was asked for."""

    @abstractmethod
    def batch_transaction(self) -> AbstractContextManager[None]:
        """One transaction for a whole batch: commit when the block ends, roll back on any exception."""

    @abstractmethod
    def load_file(self, job: FileJob) -> FileLoad:
        """Parse one file into its raw table and its unparseable rows into the rejects table.

        Runs inside ``batch_transaction``; creates or widens the raw table as needed. When the rejected rows
        exceed ``job.max_reject_rate`` it may stop before writing and return ``stored=False`` with the
        counts and the first rejects (the caller then fails the batch).
        """

    @abstractmethod
    def record_ledger(self, batch_id: str, loaded_at: dt.datetime, outcomes: Sequence[FileOutcome]) -> None:
        """Append ledger rows: inside ``batch_transaction`` they commit with the data, else alone."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
