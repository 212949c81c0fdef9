"""Plain data passed between the backend-neutral batch logic and a warehouse backend."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from flows.contracts.registry import Source
from flows.warehouse.errors import LoadError

Outcome = Literal["loaded", "skipped", "failed"]

#: How many bad lines a threshold failure message names.
FIRST_BAD_LINES = 5
#: How many rejected lines (with their reasons) the summary of a loaded file names.
SUMMARY_REJECTS = 3


@dataclass(frozen=True)
class FileFacts:
    """What the loader learns from one pass over a file's bytes."""

    sha256: str
    size: int
    lines: int  # physical lines; a last line without a line break counts
    ends_with_newline: bool
    line_endings: str = "lf"  # lf, crlf, mixed (CRLF and LF), cr (CR alone), stray-cr, none (files.fingerprint)
    first_stray_cr_line: int | None = None  # stray-cr: the first line holding a CR that ends no line


@dataclass(frozen=True)
class PlannedFile:
    """A landing file the batch will consider, with what its manifest (if any) declares about it."""

    name: str
    path: Path
    source: Source
    declared_rows: int | None = None
    declared_size: int | None = None
    declared_sha256: str | None = None


@dataclass(frozen=True)
class ReadColumn:
    """One column of a file in file order, named as in the warehouse, with its registry type."""

    name: str
    type: str
    expected: bool = True
    header_name: str | None = None


@dataclass(frozen=True)
class FileJob:
    """Everything a backend needs to load one file inside the batch transaction."""

    batch_id: str
    file: PlannedFile
    facts: FileFacts
    columns: tuple[ReadColumn, ...]
    loaded_at: dt.datetime
    max_reject_rate: float
    read_path: Path | None = None  # where readers open the file: the descriptor the loader checked and holds

    @property
    def source(self) -> Source:
        """The registry source of the file."""
        return self.file.source

    @property
    def data_path(self) -> Path:
        """The path parsers read: the checked, open file (``/proc/self/fd/<n>``), else the batch file's path."""
        return self.read_path or self.file.path


@dataclass(frozen=True)
class Reject:
    """A row that could not be parsed: where it is, its raw text, and why (column and rule, no value)."""

    line_number: int  # physical line where the row starts (1 = first line of the file)
    raw_line: str
    reason: str
    row_number: int | None = None  # the row's position among the file's rows, as _row_number


@dataclass
class FileLoad:
    """What a backend did with one file. ``stored`` is False when it stopped at the reject threshold."""

    rows_loaded: int
    rows_rejected: int
    first_rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stored: bool = True

    @property
    def rows_read(self) -> int:
        """Rows the parser found: loaded plus rejected."""
        return self.rows_loaded + self.rows_rejected


@dataclass
class FileOutcome:
    """One line of the per-file summary and of the load ledger."""

    file: str
    source: str | None
    outcome: Outcome
    message: str
    sha256: str | None = None
    size: int | None = None
    rows_in_file: int | None = None
    rows_loaded: int = 0
    rows_rejected: int = 0

    def ledger_row(self, batch_id: str, loaded_at: dt.datetime) -> tuple:
        """The values of this outcome's row in ledger.load_ledger, in the table's column order."""
        return (
            batch_id,
            self.file,
            self.source,
            self.sha256,
            self.size,
            self.rows_in_file,
            self.rows_loaded,
            self.rows_rejected,
            self.outcome,
            self.message,
            loaded_at,
        )


@dataclass(frozen=True)
class LoadedFile:
    """A file the ledger records as loaded."""

    batch_id: str
    file: str
    source: str
    sha256: str
    loaded_at: dt.datetime


@dataclass
class BatchResult:
    """The result of loading one batch: its outcome and one ``FileOutcome`` per file."""

    batch_id: str
    folder: Path
    outcome: Outcome
    message: str
    files: list[FileOutcome]
    loaded_at: dt.datetime
    notes: list[str] = field(default_factory=list)
    error: LoadError | None = None

    @property
    def ok(self) -> bool:
        """True unless the batch failed."""
        return self.outcome != "failed"

    def raise_for_failure(self) -> None:
        """Re-raise the error that failed the batch (for flows that must stop on a failed load)."""
        if self.error is not None:
            raise self.error


def exceeds_reject_threshold(rejected: int, rows: int, max_rate: float) -> bool:
    """True when ``rejected`` rows out of ``rows`` is a larger share than ``max_rate``."""
    return rows > 0 and rejected > max_rate * rows


def reject_allowance(rows: int, max_rate: float) -> int:
    """The largest number of rejected rows a file of ``rows`` rows may have."""
    return int(max_rate * rows + 1e-9)
