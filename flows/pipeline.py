"""The parent flow: land -> load -> raw gate -> dbt build -> snapshots -> marts gate -> dbt docs -> publish.

One run processes one batch and holds the warehouse file's concurrency slot from start to end. Every stage is
safe to repeat, so a failed run re-run with the same batch resumes without duplicating data, and a batch whose
run was published is not processed again (unless ``force``). Each run is recorded in ``ledger.pipeline_runs``;
a failed gate marks the batch failed there and leaves the last published report as the latest.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime

from flows import runs
from flows.artifacts import as_url, publish_links, publish_summary, render_summary
from flows.kpis import mart_row_counts, read_kpis
from flows.land_batch import land_batch
from flows.load_raw import load_raw
from flows.locking import warehouse_lock
from flows.publish_reports import publish_reports
from flows.settings import Settings
from flows.transform import (
    TESTS_LOADED_AFTER,
    batch_loaded_after,
    dbt_vars_mapping,
    transform,
    transform_vars,
)
from flows.validate import outcome_from_dict, validate

_INITIAL = re.compile(r"^initial-(\d{8})-(\d{8})$")
_DAILY = re.compile(r"^daily-(\d{8})$")


class PipelineConfigError(ValueError):
    """The run cannot start with these parameters; the message says what to change."""


def _day(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def parse_batch_id(batch_id: str) -> tuple[str, dt.date | None, dt.date]:
    """``("initial", start, end)`` or ``("daily", None, day)`` for a simulator batch id; ``("delivered", None,
    today)`` for any other (a batch delivered by a source system)."""
    if match := _INITIAL.match(batch_id):
        return "initial", _day(match.group(1)), _day(match.group(2))
    if match := _DAILY.match(batch_id):
        return "daily", None, _day(match.group(1))
    return "delivered", None, dt.datetime.now(dt.UTC).date()


def next_batch_id(published: set[str], *, start: dt.date, end: dt.date, today: dt.date) -> str | None:
    """The batch a scheduled run processes: the initial history until it is published, then the day after the
    newest published daily batch, up to yesterday (``today`` in the hospitals' time zone); None when up to date."""
    initial = f"initial-{start:%Y%m%d}-{end:%Y%m%d}"
    if initial not in published:
        return initial
    days = [_day(m.group(1)) for b in published if (m := _DAILY.match(b))]
    following = max([end, *days]) + dt.timedelta(days=1)
    return f"daily-{following:%Y%m%d}" if following < today else None


def safe_message(error: BaseException) -> str:
    """The error's message when it is one of the platform's own (they never quote data values), else its type."""
    from flows.dbt_runner import DbtStageError
    from flows.land_batch import BatchMismatchError
    from flows.locking import WarehouseLockTimeout
    from flows.transform import DbtVarsError
    from flows.warehouse.errors import LoadError

    own: list[type[BaseException]] = [LoadError, DbtStageError, WarehouseLockTimeout, PipelineConfigError,
                                      BatchMismatchError, DbtVarsError]  # fmt: skip
    try:  # the gate and report packages are imported lazily: a broken install must not hide the real error
        from expectations.results import QualityGateFailed
        from reports import PublishAuditFailed, PublishRefused

        own += [QualityGateFailed, PublishRefused, PublishAuditFailed]
    except ImportError:
        pass
    if isinstance(error, tuple(own)):
        return str(error)
    return f"{type(error).__name__} (details in the flow run's logs)"


@dataclass
class _Progress:
    """What the run did so far, for the ledger, the artifacts and the returned summary."""

    batch_id: str
    stage: str = "start"
    stages: list[tuple[str, str, str]] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    began: float = field(default_factory=time.perf_counter)

    def run(self, stage: str, call, describe) -> Any:
        """Run one stage, timing it and recording a one-line result."""
        self.stage = stage
        began = time.perf_counter()
        try:
            value = call()
        except BaseException:
            self.stages.append((stage, "FAILED", f"{time.perf_counter() - began:.1f}"))
            raise
        self.stages.append((stage, describe(value), f"{time.perf_counter() - began:.1f}"))
        self.facts.setdefault("stage_seconds", {})[stage] = round(time.perf_counter() - began, 2)
        return value

    def published(self, run_id: str, report: dict) -> dict:
        """The flow's return value for a published batch (what `hospital run` prints as its summary)."""
        seconds = round(time.perf_counter() - self.began, 2)
        return {**self.facts, "batch_id": self.batch_id, "status": "published", "run_id": run_id,
                "seconds": seconds, "stages": self.stages, "report": report}  # fmt: skip


@flow(name="hospital-pipeline")
def pipeline(
    batch_id: str | None = None,
    home: str | None = None,
    seed: int | None = None,
    patients: int | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    defect_rate: float | None = None,
    full_refresh: bool = False,
    snapshots: bool = True,
    force: bool = False,
    timezone: str | None = None,
    lock_timeout_seconds: float | None = None,
    dbt_vars: str | None = None,
    dbt_node_tasks: bool = True,
) -> dict:
    """Process one batch end to end and publish the report; fails with the gate's message when a gate fails.

    ``batch_id``: a landed batch, or a simulator id (``initial-YYYYMMDD-YYYYMMDD``, ``daily-YYYYMMDD``) that is
    generated when it has not landed; None takes the next batch (see ``next_batch_id``), or with ``force`` the
    newest published one. Unset options come from ``Settings`` (HOSPITAL_*). ``force`` re-processes a batch that
    was published already; ``dbt_node_tasks=False`` runs dbt without one Prefect task per node (faster).
    ``dbt_vars`` (a YAML mapping) go to both dbt commands; a daily batch that is not a full refresh adds the
    daily test scope (``tests_loaded_after``, see ``flows.transform.transform_vars``).
    """
    logger = get_run_logger()
    overrides = {"home": home} if home else {}
    settings = Settings(**overrides)
    if settings.warehouse != "duckdb":
        raise PipelineConfigError(
            "the pipeline runs on the embedded DuckDB warehouse; HOSPITAL_WAREHOUSE=snowflake is supported by "
            "`hospital load` only (dbt-snowflake is not in the pinned set). Unset HOSPITAL_WAREHOUSE"
        )
    paths = settings.paths
    warehouse = paths.warehouse
    start = start_date or settings.start_date
    end = end_date or settings.end_date
    zone = timezone or settings.timezone
    if batch_id is None and force:
        newest = runs.last_published(warehouse)
        batch_id = newest.batch_id if newest is not None else None
        logger.info("force without a batch id: re-processing the newest published batch %s", batch_id)
    if batch_id is None:
        today = dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()
        batch_id = next_batch_id(runs.published_batches(warehouse), start=start, end=end, today=today)
        if batch_id is None:
            logger.info("up to date: every batch up to yesterday (%s) is published; nothing to do", zone)
            return {"batch_id": None, "status": "up-to-date"}
    kind, id_start, run_date = parse_batch_id(batch_id)
    dbt_vars_mapping(dbt_vars)  # malformed dbt vars fail here, before anything is landed or loaded
    if kind == "initial" and id_start != start:
        raise PipelineConfigError(
            f"batch {batch_id} starts on {id_start}, but the network starts on {start} (HOSPITAL_START_DATE); "
            "the simulated world depends on its start date: use the same one"
        )

    with warehouse_lock(warehouse, timeout_seconds=lock_timeout_seconds or settings.lock_timeout_seconds) as lock:
        logger.info("holding concurrency limit %s for %s", lock, warehouse)
        previous = runs.latest_run(warehouse, batch_id)
        if previous is not None and previous.status == "published" and not force:
            logger.info("batch %s was published by run %s: nothing to do", batch_id, previous.run_id)
            return {"batch_id": batch_id, "status": "already-published", "report_dir": previous.report_dir}
        run_id = str(runtime.flow_run.id or uuid.uuid4())
        runs.start_run(warehouse, run_id=run_id, batch_id=batch_id, run_date=run_date, flow_run_id=runtime.flow_run.id)
        progress = _Progress(batch_id)
        options = {
            "seed": settings.seed if seed is None else seed,
            "patients": settings.patients if patients is None else patients,
            "defect_rate": settings.defect_rate if defect_rate is None else defect_rate,
        }
        try:
            published = _stages(progress, settings, batch_id, kind, run_id, run_date, start, options,
                                full_refresh, snapshots, dbt_vars, dbt_node_tasks)  # fmt: skip
        except BaseException as error:
            message = safe_message(error)
            try:
                runs.finish_run(warehouse, run_id=run_id, status="failed", stage=progress.stage, message=message,
                                rows_loaded=progress.facts.get("rows_loaded"))  # fmt: skip
            except Exception as ledger_error:
                logger.warning("could not mark run %s failed in ledger.pipeline_runs (%s)", run_id,
                               type(ledger_error).__name__)  # fmt: skip
            _leave_artifacts(progress, settings, "failed at " + progress.stage, message, report=None)
            logger.error("batch %s failed at stage %s; the last published report stays the latest", batch_id,
                         progress.stage)  # fmt: skip
            raise
        runs.finish_run(warehouse, run_id=run_id, status="published", stage="publish",
                        rows_loaded=progress.facts.get("rows_loaded"), report_dir=published["run_dir"])  # fmt: skip
    _leave_artifacts(progress, settings, "published", None, report=published["report_html"])
    result = progress.published(run_id, published)
    logger.info("batch %s published in %.1f s: %s", batch_id, result["seconds"], published["report_html"])
    return result


def _stages(
    progress: _Progress, settings: Settings, batch_id: str, kind: str, run_id: str, run_date: dt.date,
    start: dt.date, options: dict, full_refresh: bool, snapshots: bool, dbt_vars: str | None, node_tasks: bool,
) -> dict:  # fmt: skip
    paths = settings.paths
    warehouse, landing = str(paths.warehouse), str(paths.landing)
    project, target, logs = str(settings.dbt_project_dir), str(paths.dbt_target), str(paths.dbt_logs)
    land_kwargs: dict[str, Any] = {"landing_dir": landing, "seed": options["seed"], "patients": options["patients"],
                                   "start_date": start, "defect_rate": options["defect_rate"],
                                   "workers": settings.workers}  # fmt: skip
    if kind == "initial":
        land_kwargs["end_date"] = run_date
    elif kind == "daily":
        land_kwargs["as_of"] = run_date
    else:
        land_kwargs["batch_id"] = batch_id
    landed = progress.run("land", lambda: land_batch(**land_kwargs),
                          lambda r: f"{r['files']} files, {r['rows']:,} rows"
                                    + (" (generated)" if r["generated"] else " (picked up)"))  # fmt: skip
    progress.facts["rows_landed"] = landed["rows"]
    loaded = progress.run("load", lambda: load_raw(landed["path"], warehouse),
                          lambda r: f"{r['rows_loaded']:,} rows loaded, {r['rows_rejected']:,} rejected, "
                                    f"{r['files_skipped']} files skipped")  # fmt: skip
    progress.facts["rows_loaded"] = loaded["rows_loaded"]
    progress.facts["rows_rejected"] = loaded["rows_rejected"]
    data_docs = str(paths.data_docs)

    def gate(name: str, **extra: Any) -> dict:
        try:
            outcome = progress.run(f"{name} checkpoint", lambda: validate(name, warehouse, data_docs, **extra),
                                   lambda r: f"{len(r['outcomes'])} expectations passed")  # fmt: skip
        except Exception as error:
            failed = getattr(error, "outcome", None)  # QualityGateFailed carries the checkpoint's outcome
            if failed is not None:
                progress.checkpoints.append(failed.to_dict())
            raise
        progress.checkpoints.append(outcome)
        return outcome

    gate("raw", batch_id=batch_id, landing_dir=landing)
    progress.run("dbt build and snapshots",
                 lambda: transform(project, warehouse, target, logs, full_refresh, snapshots,
                                   _dbt_vars(progress, paths.warehouse, batch_id, kind, full_refresh, dbt_vars),
                                   node_tasks),
                 _describe_transform)  # fmt: skip
    marts = mart_row_counts(paths.warehouse)
    progress.facts["mart_rows"] = sum(marts.values())
    progress.facts["marts"] = len(marts)
    gate("marts")
    data_docs_index = progress.checkpoints[-1].get("data_docs_index") or str(paths.data_docs / "index.html")
    return progress.run(
        "publish",
        lambda: publish_reports(project, warehouse, str(paths.dbt_docs), logs, str(paths.reports), run_id, run_date,
                                progress.checkpoints, as_url(data_docs_index)),
        lambda r: f"{r['files']} files, {r['suppressed_cells']} small cells suppressed",
    )  # fmt: skip


def _dbt_vars(progress: _Progress, warehouse: Path, batch_id: str, kind: str, full_refresh: bool,
              dbt_vars: str | None) -> str | None:  # fmt: skip
    """The run's dbt vars: a daily batch (not a full refresh) gets the daily test scope from its first load."""
    loaded_after = batch_loaded_after(warehouse, batch_id) if kind == "daily" and not full_refresh else None
    vars_yaml = transform_vars(kind, full_refresh=full_refresh, loaded_after=loaded_after, vars_yaml=dbt_vars)
    instant = dbt_vars_mapping(vars_yaml).get(TESTS_LOADED_AFTER)
    progress.facts["dbt_test_scope"] = f"rows loaded after {instant} UTC" if instant else "all rows"
    get_run_logger().info("dbt tests check %s (batch %s, %s)", progress.facts["dbt_test_scope"], batch_id,
                          "full refresh" if full_refresh else kind)  # fmt: skip
    return vars_yaml


def _describe_transform(result: dict) -> str:
    parts = []
    for command, facts in result.items():
        counts = ", ".join(f"{n} {status}" for status, n in sorted(facts["statuses"].items()))
        parts.append(f"{command}: {counts}")
    return "; ".join(parts)


def _leave_artifacts(progress: _Progress, settings: Settings, status: str, message: str | None,
                     report: str | None) -> None:  # fmt: skip
    """The run's summary and links. Never fails the run: a broken artifact must not hide the real outcome."""
    logger = get_run_logger()
    paths = settings.paths
    try:
        checkpoints = [outcome_from_dict(c) for c in progress.checkpoints]
        data_docs = next((c.data_docs_index for c in reversed(checkpoints) if c.data_docs_index), None)
        dbt_index = paths.dbt_docs / "index.html"
        links = {
            "report": as_url(report),
            "data_docs": as_url(data_docs or (paths.data_docs / "index.html" if paths.data_docs.exists() else None)),
            "dbt_docs": as_url(dbt_index) if dbt_index.exists() else None,
        }
        kpis = read_kpis(paths.warehouse) if report else []
        markdown = render_summary(batch_id=progress.batch_id, status=status, stage_rows=progress.stages,
                                  checkpoints=checkpoints, kpis=kpis, links=links, message=message)  # fmt: skip
        publish_summary(markdown, f"batch {progress.batch_id}: {status}")
        publish_links(links)
    except Exception as exc:
        logger.warning("could not write the run's artifacts (%s)", type(exc).__name__)
