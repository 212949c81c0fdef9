"""Loading one landed batch into the warehouse, all or nothing. Backend-neutral: it talks to ``Warehouse``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from flows.registry import Registry
from flows.warehouse.base import Warehouse
from flows.warehouse.batch import BatchPlan, plan_batch, validate_batch_id, verify_against_manifest
from flows.warehouse.errors import (
    ContentConflictError,
    FileFormatError,
    LoadError,
    RejectThresholdError,
    RowCountMismatchError,
)
from flows.warehouse.files import fingerprint, plan_columns, read_header
from flows.warehouse.model import (
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
    try:
        plan = plan_batch(folder, registry, batch_id)
        outcomes = {planned.name: _pending(planned) for planned in plan.files}
        seen: dict[str, str] = {}
        with warehouse.batch_transaction(), _Fingerprints(plan.files) as fingerprints:
            for position, planned in enumerate(plan.files):
                outcome = outcomes[planned.name]
                facts = fingerprints.get(position)
                outcome.sha256, outcome.size = facts.sha256, facts.size
                verify_against_manifest(planned, facts)
                skip = _skip_reason(planned, facts, warehouse, seen)
                if skip is not None:
                    outcome.outcome, outcome.message = "skipped", skip
                    continue
                seen[facts.sha256] = planned.name
                job, notes = _job(planned, facts, loaded_at, max_reject_rate, batch_id)
                _apply(job, warehouse.load_file(job), outcome, notes)
                if on_file_loaded is not None:
                    on_file_loaded(outcome)
            warehouse.record_ledger(batch_id, loaded_at, list(outcomes.values()))
    except LoadError as error:
        return _failed(batch_id, folder, plan, outcomes, error, warehouse, loaded_at)
    files = list(outcomes.values())
    outcome = "loaded" if any(o.outcome == "loaded" for o in files) else "skipped"
    loaded = sum(o.outcome == "loaded" for o in files)
    message = f"batch {batch_id}: {loaded} file(s) loaded, {len(files) - loaded} skipped"
    return BatchResult(batch_id, folder, outcome, message, files, loaded_at, plan.notes if plan else [])


class _Fingerprints:
    """Fingerprints the batch's files in a background thread, one file ahead of the load.

    Hashing releases the GIL, and so does DuckDB, so the next file is hashed while this one loads, and each
    file is read twice in quick succession (hash, then parse): the second read comes from the page cache.
    """

    def __init__(self, files: list[PlannedFile]) -> None:
        self._files = files
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
        self._futures: dict[int, Future[FileFacts]] = {}

    def get(self, position: int) -> FileFacts:
        """The facts of file ``position`` (waiting for them), starting on the next file."""
        for ahead in (position, position + 1):
            if ahead < len(self._files) and ahead not in self._futures:
                self._futures[ahead] = self._pool.submit(_fingerprint, self._files[ahead])
        return self._futures[position].result()

    def __enter__(self) -> _Fingerprints:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _fingerprint(planned: PlannedFile) -> FileFacts:
    try:
        return fingerprint(planned.path)
    except OSError as exc:
        raise FileFormatError(
            f"{planned.name}: cannot be read ({exc.strerror}); check the file's permissions and re-run",
            file=planned.name,
        ) from exc


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
    loaded_at: dt.datetime,
    max_reject_rate: float | None,
    batch_id: str,
) -> tuple[FileJob, list[str]]:
    """The file's load job, its columns matched to the registry (schema drift raises here), and notes."""
    source = planned.source
    notes: list[str] = []
    if source.format == "csv" and source.header:
        columns, notes = plan_columns(planned.name, source, read_header(planned.path, source))
    else:
        columns = tuple(ReadColumn(c.name, c.type) for c in source.columns)
    rate = source.max_reject_rate if max_reject_rate is None else max_reject_rate
    return FileJob(batch_id, planned, facts, columns, loaded_at, rate), notes


def _apply(job: FileJob, load: FileLoad, outcome: FileOutcome, notes: list[str]) -> None:
    """Check one file's counts and threshold, then fill in its outcome; raises to fail the batch."""
    name, declared = job.file.name, job.file.declared_rows
    if not load.stored:
        lines = "; ".join(f"line {r.line_number}: {r.reason}" for r in load.first_rejects)
        raise RejectThresholdError(
            f"{name}: {load.rows_rejected} of {load.rows_read} rows could not be parsed "
            f"({load.rows_rejected / load.rows_read:.1%}), more than the limit of {job.max_reject_rate:.1%} "
            f"for source {job.source.name}. First bad lines: {lines}. Fix and re-send the file, or raise "
            "max_reject_rate for the source in the registry",
            file=name,
        )
    if declared is not None and declared != load.rows_read:
        raise RowCountMismatchError(
            f"{name}: the manifest declares {declared} rows but the file holds {load.rows_read} "
            f"({load.rows_loaded} parsed, {load.rows_rejected} rejected); rows were lost or added in "
            "transit; ask the sender to re-send the file",
            file=name,
        )
    outcome.rows_in_file = load.rows_read
    outcome.rows_loaded, outcome.rows_rejected = load.rows_loaded, load.rows_rejected
    outcome.outcome = "loaded"
    parts = [f"{load.rows_loaded} rows loaded"]
    if load.rows_rejected:
        first = ", ".join(str(r.line_number) for r in load.first_rejects)
        parts.append(f"{load.rows_rejected} rejected to raw._rejects (first lines {first})")
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
    culprit = error.file or "manifest.json"
    for outcome in outcomes.values():
        outcome.rows_loaded = outcome.rows_rejected = 0
        if outcome.file == culprit:
            outcome.outcome, outcome.message = "failed", str(error)
        else:
            outcome.outcome = "failed"
            outcome.message = f"not loaded: the batch failed on {culprit}"
    if culprit not in outcomes:
        outcomes[culprit] = FileOutcome(file=culprit, source=None, outcome="failed", message=str(error))
    files = list(outcomes.values())
    warehouse.record_ledger(batch_id, loaded_at, files)
    message = f"batch {batch_id} failed, nothing was loaded: {error}"
    return BatchResult(batch_id, folder, "failed", message, files, loaded_at, plan.notes if plan else [], error)
