"""The pipeline-runs ledger, ``ledger.pipeline_runs`` in the warehouse: one row per run of a batch.

A run starts as ``running`` and ends ``published``, ``failed`` (with the stage and the gate's message) or
``interrupted`` (stopped by Ctrl-C or SIGTERM, or found still ``running`` by the next run after its process was
killed: only one run holds the warehouse's lock, so a ``running`` row the next run finds is a dead run's). A batch
whose latest run is ``published`` is done: running it again changes nothing. Connections are opened per call and
closed at once, so dbt and the quality gates can open the file between two calls. Every function takes the
warehouse resource (``flows.warehouse.resource``; a DuckDB file's path is accepted as the embedded default), so
the ledger lives in Snowflake when the warehouse does.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from flows.warehouse.resource import Session, WarehouseResource, as_resource

Where = WarehouseResource | Path

TABLE = "ledger.pipeline_runs"
_DDL = f"""
create table if not exists {TABLE} (
    run_id varchar not null,
    batch_id varchar not null,
    run_date date not null,
    flow_run_id varchar,
    status varchar not null,
    stage varchar,
    message varchar,
    rows_loaded bigint,
    report_dir varchar,
    started_at timestamptz not null,
    finished_at timestamptz,
    checkpoint_runs varchar
)"""
# Added after the first release: the (run name, run time) of the GX runs a published run's report was validated by.
_MIGRATIONS = (f"alter table {TABLE} add column if not exists checkpoint_runs varchar",)
#: How a run can end.
ENDINGS = frozenset({"published", "failed", "interrupted"})
#: The message of a run whose process died without closing its row.
DIED_MESSAGE = (
    "the run's process ended before the run did (killed, out of memory, or the machine stopped); nothing was "
    "published by it. A later run resumes the batch: every stage is safe to repeat"
)
_COLUMNS = (
    "run_id, batch_id, run_date, flow_run_id, status, stage, message, rows_loaded, report_dir, started_at, finished_at,"
    " checkpoint_runs"
)


@dataclass(frozen=True)
class PipelineRun:
    """One row of ``ledger.pipeline_runs``. Messages name stages, checkpoints and expectations, never values."""

    run_id: str
    batch_id: str
    run_date: dt.date
    flow_run_id: str | None
    status: str
    stage: str | None
    message: str | None
    rows_loaded: int | None
    report_dir: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    #: JSON list of [run name, run time] of the checkpoints a published run passed (their Data Docs are kept).
    checkpoint_runs: str | None = None

    def checkpoint_keys(self) -> list[tuple[str, str | None]]:
        """The (run name, run time) of the checkpoints this run passed; empty for other runs."""
        return [(name, time) for name, time in json.loads(self.checkpoint_runs)] if self.checkpoint_runs else []


def _prepare(session: Session) -> Session:
    session.execute("create schema if not exists ledger")
    session.execute(_DDL)
    for migration in _MIGRATIONS:
        session.execute(migration)
    return session


def start_run(warehouse: Where, *, run_id: str, batch_id: str, run_date: dt.date, flow_run_id: str | None) -> None:
    """Record that a run of ``batch_id`` started (status ``running``)."""
    with as_resource(warehouse).session(write=True) as session:
        _prepare(session).execute(
            f"insert into {TABLE} ({_COLUMNS}) values (?, ?, ?, ?, 'running', null, null, null, null, ?, null, null)",  # noqa: S608
            [run_id, batch_id, run_date, flow_run_id, dt.datetime.now(dt.UTC)],
        )


def finish_run(
    warehouse: Where,
    *,
    run_id: str,
    status: str,
    stage: str | None,
    message: str | None = None,
    rows_loaded: int | None = None,
    report_dir: str | None = None,
    checkpoint_runs: list[tuple[str, str | None]] | None = None,
) -> None:
    """Close a run: ``published``, ``failed`` or ``interrupted`` at ``stage`` with ``message``."""
    if status not in ENDINGS:
        raise ValueError(f"a run ends {' or '.join(repr(e) for e in sorted(ENDINGS))}, not {status!r}")
    with as_resource(warehouse).session(write=True) as session:
        _prepare(session).execute(
            f"update {TABLE} set status = ?, stage = ?, message = ?, rows_loaded = coalesce(?, rows_loaded), "  # noqa: S608
            "report_dir = ?, finished_at = ?, checkpoint_runs = ? where run_id = ?",
            [
                status,
                stage,
                message,
                rows_loaded,
                report_dir,
                dt.datetime.now(dt.UTC),
                json.dumps(checkpoint_runs) if checkpoint_runs else None,
                run_id,
            ],
        )


def close_abandoned(warehouse: Where) -> list[PipelineRun]:
    """Mark every ``running`` row ``interrupted`` (call while holding the warehouse's lock: then no other run is
    alive, so such a row belongs to a run whose process died); returns the rows as they were."""
    abandoned = _read(warehouse, "where status = 'running'", [], 1_000)
    if abandoned:
        with as_resource(warehouse).session(write=True) as session:
            _prepare(session).execute(
                f"update {TABLE} set status = 'interrupted', message = ?, finished_at = ? where status = 'running'",  # noqa: S608
                [DIED_MESSAGE, dt.datetime.now(dt.UTC)],
            )
    return abandoned


def _read(warehouse: Where, where: str, params: list, limit: int) -> list[PipelineRun]:
    resource = as_resource(warehouse)
    if not resource.exists():
        return []
    with resource.session() as session:
        present = session.columns("ledger", "pipeline_runs").get(("ledger", "pipeline_runs"))
        if not present:
            return []
        # A ledger written before a column was added reads that column as null (read-only: no migration here).
        columns = ", ".join(c if c in present else f"null as {c}" for c in _COLUMNS.replace(" ", "").split(","))
        rows = session.rows(
            f"select {columns} from {TABLE} {where} order by started_at desc, run_id desc limit {int(limit)}",  # noqa: S608
            params,
        )
    return [PipelineRun(*row) for row in rows]


def latest_run(warehouse: Where, batch_id: str) -> PipelineRun | None:
    """The most recent run of ``batch_id``, or None if it never ran."""
    runs = _read(warehouse, "where batch_id = ?", [batch_id], 1)
    return runs[0] if runs else None


def last_runs(warehouse: Where, limit: int = 10) -> list[PipelineRun]:
    """The most recent runs, newest first (an empty list when the warehouse or the ledger does not exist)."""
    return _read(warehouse, "", [], limit)


def last_published(warehouse: Where) -> PipelineRun | None:
    """The most recent published run (its report is the latest one)."""
    runs = _read(warehouse, "where status = 'published'", [], 1)
    return runs[0] if runs else None


def published_batches(warehouse: Where) -> set[str]:
    """Batch ids that have a published run."""
    return {run.batch_id for run in _read(warehouse, "where status = 'published'", [], 100_000)}
