"""Backfill: the daily batches of a date range, in order, each through the whole pipeline; stops at the first
failed run (a failed gate leaves the days after it unprocessed, so history never skips a bad day).

Days already published are skipped by the pipeline itself, so a backfill re-run after a fix resumes at the day
that failed. The initial history is processed first when it has not been published yet.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger, runtime

from flows.contracts.batch_ids import BatchId
from flows.pipeline import pipeline


class BackfillRangeError(ValueError):
    """The date range is empty or reversed."""


def backfill_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from ``start`` to ``end`` inclusive, in order."""
    if end < start:
        raise BackfillRangeError(f"backfill end {end} is before its start {start}; give --start <= --end")
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]


def _run_name() -> str:
    parameters = runtime.flow_run.parameters
    return f"backfill-{parameters.get('start')}-to-{parameters.get('end')}"


@flow(name="hospital-backfill", flow_run_name=_run_name)
def backfill(
    start: dt.date,
    end: dt.date,
    home: str | None = None,
    seed: int | None = None,
    patients: int | None = None,
    defect_rate: float | None = None,
    force: bool = False,
    lock_timeout_seconds: float | None = None,
    dbt_node_tasks: bool = True,
) -> dict:
    """Run the pipeline for each day's batch from ``start`` to ``end``; stop at the first failure.

    Each daily run tests the rows of its own batch (the daily test scope, docs/pipeline.md); run a full refresh
    after a long backfill to test every row together. ``dbt_node_tasks=False`` runs dbt without a Prefect task
    per node (faster).
    """
    from flows.settings import Settings

    logger = get_run_logger()
    days = backfill_days(start, end)
    settings = Settings(**({"home": home} if home else {}))
    common = {"home": home, "seed": seed, "patients": patients, "defect_rate": defect_rate,
              "lock_timeout_seconds": lock_timeout_seconds, "dbt_node_tasks": dbt_node_tasks}  # fmt: skip
    initial = BatchId.initial(settings.start_date, settings.end_date).text
    if start > settings.end_date:
        pipeline(batch_id=initial, **common)  # a no-op when it is published already
    results: list[dict] = []
    for position, day in enumerate(days, start=1):
        batch_id = BatchId.daily(day).text
        try:
            result = pipeline(batch_id=batch_id, force=force, **common)
        except Exception:
            left = len(days) - position
            logger.error("backfill stopped at %s (day %d of %d); %d later day(s) not run. Fix the batch and run the "
                         "backfill again: published days are skipped", batch_id, position, len(days), left)  # fmt: skip
            raise
        results.append({"batch_id": batch_id, "status": result["status"]})
        logger.info("backfill %d/%d: %s %s", position, len(days), batch_id, result["status"])
    return {"days": len(days), "batches": results}
