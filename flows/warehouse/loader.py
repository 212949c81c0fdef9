"""Loading one landed batch into the warehouse, all or nothing. Backend-neutral: it talks to ``Warehouse``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from flows.contracts.registry import Registry
from flows.warehouse.base import Warehouse
from flows.warehouse.batch import MANIFEST, BatchPlan, plan_batch, validate_batch_id, verify_against_manifest
from flows.warehouse.batchdir import BatchDir, OpenedFile
from flows.warehouse.errors import (
    ContentConflictError,
    FileFormatError,
    LoadError,
    RejectThresholdError,
    RowCountMismatchError,
    StorageFullError,
)
from flows.warehouse.files import fingerprint, plan_columns, read_header
from flows.warehouse.model import (
    FIRST_BAD_LINES,
    SUMMARY_REJECTS,
    BatchResult,
    FileFacts,
    FileJob,
    FileLoad,
    FileOutcome,
    PlannedFile,
    ReadColumn,
)

FileHook = Callable[[FileOutcome], None]


def load_batch(
    folder: Path,
    registry: Registry,
    warehouse: Warehouse,
    *,
    batch_id: str | None = None,
    max_reject_rate: float | None = None,
    on_file_loaded: FileHook | None = None,
    now: dt.datetime | None = None,
) -> BatchResult:
    """Load the files of ``folder`` (one batch) into ``warehouse``; never raises for faults in the data.

    The batch is planned first (manifest, missing and undeclared files). Then, in one transaction, each file
    is fingerprinted and checked (checksum, duplicate, content conflict, columns) right before it loads, so
    the parser reads it from the page cache; the ledger rows commit with the data. Any fault rolls the whole
    batch back and records it in the ledger as failed. ``max_reject_rate`` overrides the registry's
    per-source limit; ``on_file_loaded`` is called after each file inside the transaction (progress, tests).
    Raises ``BatchIdError`` for an invalid batch id, before touching the filesystem.
    """
    batch_id = validate_batch_id(batch_id if batch_id is not None else folder.name)
    loaded_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    warehouse.ensure_schemas()
    outcomes: dict[str, FileOutcome] = {}
    plan: BatchPlan | None = None
    directory: BatchDir | None = None
    try:
        directory = BatchDir(folder)
        plan = plan_batch(folder, registry, batch_id, directory)
        outcomes = {planned.name: _pending(planned) for planned in plan.files}
        seen: dict[str, str] = {}
        with warehouse.batch_transaction(), _Fingerprints(plan.files, directory) as fingerprints:
            for position, planned in enumerate(plan.files):
                outcome = outcomes[planned.name]
                opened, facts = fingerprints.get(position)
                outcome.sha256, outcome.size = facts.sha256, facts.size
                verify_against_manifest(planned, facts)
                skip = _skip_reason(planned, facts, warehouse, seen)
                if skip is not None:
                    outcome.outcome, outcome.message = "skipped", skip
                    fingerprints.release(position)
                    continue
                seen[facts.sha256] = planned.name
                job, notes = _job(planned, facts, opened, loaded_at, max_reject_rate, batch_id)
                load = warehouse.load_file(job)
                opened.verify_unchanged()
                _apply(job, load, outcome, notes)
                fingerprints.release(position)
                if on_file_loaded is not None:
                    on_file_loaded(outcome)
            warehouse.record_ledger(batch_id, loaded_at, list(outcomes.values()))
    except LoadError as error:
        return _failed(batch_id, folder, plan, outcomes, error, warehouse, loaded_at)
    finally:
        if directory is not None:
            directory.close()
    files = list(outcomes.values())
    outcome = "loaded" if any(o.outcome == "loaded" for o in files) else "skipped"
    loaded = sum(o.outcome == "loaded" for o in files)
    message = f"batch {batch_id}: {loaded} file(s) loaded, {len(files) - loaded} skipped"
    notes = (plan.notes if plan else []) + warehouse.take_notes()
    return BatchResult(batch_id, folder, outcome, message, files, loaded_at, notes)


class _Fingerprints:
    """Opens and fingerprints the batch's files in a background thread, one file ahead of the load.

    Hashing releases the GIL, and so does DuckDB, so the next file is hashed while this one loads, and each
    file is read twice in quick succession (hash, then parse): the second read comes from the page cache.
    Each file is opened once, without following links (``BatchDir.open``); the descriptor is what the
    parser reads, and it is closed once the file is done (``release``) or when the batch ends.
    """

    def __init__(self, files: list[PlannedFile], directory: BatchDir) -> None:
        self._files = files
        self._directory = directory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
        self._futures: dict[int, Future[tuple[OpenedFile, FileFacts]]] = {}

    def get(self, position: int) -> tuple[OpenedFile, FileFacts]:
        """The open file ``position`` and its facts (waiting for them), starting on the next file."""
        for ahead in (position, position + 1):
            if ahead < len(self._files) and ahead not in self._futures:
                self._futures[ahead] = self._pool.submit(self._open_and_fingerprint, self._files[ahead])
        return self._futures[position].result()

    def _open_and_fingerprint(self, planned: PlannedFile) -> tuple[OpenedFile, FileFacts]:
        opened = self._directory.open(planned.name)
        try:
            return opened, fingerprint(opened)
        except OSError as exc:
            opened.close()
            raise FileFormatError(
                f"{planned.name}: cannot be read ({exc.strerror}); check the file and re-run", file=planned.name
            ) from exc

    def release(self, position: int) -> None:
        """Close file ``position``: it is loaded or skipped."""
        future = self._futures.get(position)
        if future is not None and future.done() and future.exception() is None:
            future.result()[0].close()

    def __enter__(self) -> _Fingerprints:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for future in self._futures.values():
            if not future.cancelled() and future.exception() is None:
                future.result()[0].close()


def _pending(planned: PlannedFile) -> FileOutcome:
    return FileOutcome(
        file=planned.name,
        source=planned.source.name,
        outcome="failed",
        message="not loaded",
        rows_in_file=planned.declared_rows,
    )


def _skip_reason(planned: PlannedFile, facts: FileFacts, warehouse: Warehouse, seen: dict[str, str]) -> str | None:
    """Why the file is skipped (its content is loaded already), or None; raises on a content conflict."""
    sha = facts.sha256
    previous = warehouse.loaded_files({sha}, {(planned.source.name, planned.name)})
    earlier = next((e for e in previous if (e.source, e.file) == (planned.source.name, planned.name)), None)
    if earlier is not None and earlier.sha256 != sha:
        raise ContentConflictError(
            f"{planned.name}: content conflict: a file of this name was loaded in batch "
            f"{earlier.batch_id} ({earlier.loaded_at:%Y-%m-%d %H:%M} UTC) with different content "
            f"(sha256 {earlier.sha256[:12]}… now {sha[:12]}…). Corrections must arrive under a new "
            "file name; nothing was loaded",
            file=planned.name,
        )
    first = next((e for e in previous if e.sha256 == sha), None)
    if first is not None:
        return (
            f"already loaded: same content (sha256) as {first.file} in batch {first.batch_id} "
            f"({first.loaded_at:%Y-%m-%d %H:%M} UTC); skipped"
        )
    if sha in seen:
        return f"same content (sha256) as {seen[sha]} in this batch; skipped"
    return None


def _job(
    planned: PlannedFile,
    facts: FileFacts,
    opened: OpenedFile,
    loaded_at: dt.datetime,
    max_reject_rate: float | None,
    batch_id: str,
) -> tuple[FileJob, list[str]]:
    """The file's load job, its columns matched to the registry (schema drift raises here), and notes."""
    source = planned.source
    notes = _line_ending_notes(planned, facts)
    if source.format == "csv" and source.header:
        header = read_header(opened.read_path, source, name=planned.name, endings=facts.line_endings)
        columns, drift = plan_columns(planned.name, source, header)
        notes += drift
    else:
        columns = tuple(ReadColumn(c.name, c.type) for c in source.columns)
    rate = source.max_reject_rate if max_reject_rate is None else max_reject_rate
    return FileJob(batch_id, planned, facts, columns, loaded_at, rate, opened.read_path), notes


def _line_ending_notes(planned: PlannedFile, facts: FileFacts) -> list[str]:
    """Notes on unusual line endings; a JSON-lines file with a stray CR is refused (a line break, or not?)."""
    if facts.line_endings == "stray-cr" and planned.source.format == "jsonl":
        raise FileFormatError(
            f"{planned.name} line {facts.first_stray_cr_line}: a carriage return (\\r) that ends no line (it is "
            "not followed by a line feed) in a file of LF or CRLF lines: is it a line break or not? The file is "
            "ambiguous, so nothing was loaded. Convert it to LF or CRLF line endings and re-send it",
            file=planned.name,
        )
    if facts.line_endings == "mixed":
        return ["mixed line endings (CRLF and LF) read as line breaks"]
    if facts.line_endings == "cr":
        return ["line endings are CR alone (classic Mac OS), read as line breaks"]
    return []


def _first(load: FileLoad, count: int) -> str:
    return "; ".join(f"line {r.line_number}: {r.reason}" for r in load.first_rejects[:count])


def _apply(job: FileJob, load: FileLoad, outcome: FileOutcome, notes: list[str]) -> None:
    """Check one file's counts and threshold, then fill in its outcome; raises to fail the batch."""
    name, declared = job.file.name, job.file.declared_rows
    if not load.stored:
        raise RejectThresholdError(
            f"{name}: {load.rows_rejected} of {load.rows_read} rows could not be parsed "
            f"({load.rows_rejected / load.rows_read:.1%}), more than the limit of {job.max_reject_rate:.1%} "
            f"for source {job.source.name}. First bad lines: {_first(load, FIRST_BAD_LINES)}. Fix and re-send "
            "the file, or raise max_reject_rate for the source in the registry",
            file=name,
        )
    if declared is not None and declared != load.rows_read:
        if load.rows_rejected:
            raise RowCountMismatchError(
                f"{name}: the manifest declares {declared} rows but the loader reads {load.rows_read} "
                f"({load.rows_loaded} loaded, {load.rows_rejected} rejected; {_first(load, FIRST_BAD_LINES)}). "
                "A rejected line may hold a row the sender wrote across lines, or two rows run together: fix "
                "those lines (or the manifest) and re-send the file",
                file=name,
            )
        raise RowCountMismatchError(
            f"{name}: the manifest declares {declared} rows but the file holds {load.rows_read} "
            f"({load.rows_loaded} loaded, none rejected); rows were lost or added in transit; ask the sender "
            "to re-send the file",
            file=name,
        )
    outcome.rows_in_file = load.rows_read
    outcome.rows_loaded, outcome.rows_rejected = load.rows_loaded, load.rows_rejected
    outcome.outcome = "loaded"
    parts = [f"{load.rows_loaded} rows loaded"]
    if load.rows_rejected:
        more = ", …" if load.rows_rejected > SUMMARY_REJECTS else ""
        parts.append(f"{load.rows_rejected} rejected to raw._rejects (first: {_first(load, SUMMARY_REJECTS)}{more})")
    if load.rows_read == 0:
        parts.append("no data rows (header only)" if job.source.format == "csv" else "no records")
    outcome.message = "; ".join(parts + notes + load.notes)


def _failed(
    batch_id: str,
    folder: Path,
    plan: BatchPlan | None,
    outcomes: dict[str, FileOutcome],
    error: LoadError,
    warehouse: Warehouse,
    loaded_at: dt.datetime,
) -> BatchResult:
    """Record a failed batch in the ledger (its own transaction, after the rollback) and describe it."""
    culprit = error.file or (None if outcomes else MANIFEST)  # no file: the warehouse (e.g. a full disk)
    for outcome in outcomes.values():
        outcome.rows_loaded = outcome.rows_rejected = 0
        outcome.outcome = "failed"
        if outcome.file == culprit:
            outcome.message = str(error)
        elif culprit is None:
            outcome.message = "not loaded: the batch failed (see the batch's message)"
        else:
            outcome.message = f"not loaded: the batch failed on {culprit}"
    if culprit is not None and culprit not in outcomes:
        outcomes[culprit] = FileOutcome(file=culprit, source=None, outcome="failed", message=str(error))
    files = list(outcomes.values())
    message = f"batch {batch_id} failed, nothing was loaded: {error}"
    try:
        warehouse.record_ledger(batch_id, loaded_at, files)
    except StorageFullError:  # the disk is still full: say so in few words, do not hide the first error
        message += " (this failure could not be recorded in the load ledger either: the disk is still full)"
    except LoadError as ledger_error:
        message += f" (this failure could not be recorded in the load ledger: {ledger_error})"
    notes = (plan.notes if plan else []) + warehouse.take_notes()
    return BatchResult(batch_id, folder, "failed", message, files, loaded_at, notes, error)
