"""The parent flow: land -> load -> raw gate -> dbt build -> snapshots -> marts gate -> dbt docs -> publish.

One run processes one batch and holds the warehouse file's concurrency slot from start to end. Every stage is
safe to repeat, so a failed run re-run with the same batch resumes without duplicating data, and a batch whose
run was published is not processed again (unless ``force``). Each run is recorded in ``ledger.pipeline_runs``;
a failed gate marks the batch failed there and leaves the last published report as the latest.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, runtime

from flows import runs
from flows.artifacts import publish_links, publish_summary, render_summary
from flows.contracts.batch_ids import InvalidBatchId, check_batch_id, next_batch_id, parse_batch_id, run_name
from flows.dbt_runner import interruption
from flows.docs_server import docs_link
from flows.errors import PipelineConfigError, PipelineStageError, own_types, safe_message
from flows.kpis import mart_row_counts
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
from flows.warehouse.errors import WarehouseConfigError
from flows.warehouse.resource import WarehouseResource

#: From a published report (``reports/latest/report.html``) to the data home.
FROM_REPORT = "../../"


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
                "seconds": seconds, "stages": self.stages, "report": report,
                "checkpoints": self.checkpoints}  # fmt: skip


def _first_run_name() -> str:
    """The flow run's name before the batch is known: the batch id asked for, else ``next-batch``."""
    asked = runtime.flow_run.parameters.get("batch_id")
    return str(asked) if asked else "next-batch"


def _name_run(name: str) -> None:
    """Rename this flow run (shown in the UI and in every log line) once the batch is known."""
    from prefect.client.orchestration import get_client

    flow_run_id = runtime.flow_run.id
    if not flow_run_id or runtime.flow_run.name == name:
        return
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run_id, name=name)
    except Exception as exc:  # a name is cosmetic: never fail the run for it
        get_run_logger().warning("could not rename the flow run to %s (%s)", name, type(exc).__name__)


@flow(name="hospital-pipeline", flow_run_name=_first_run_name)
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

    The run holds the warehouse's lock from start to end (``flows.locking``); a ``running`` row it finds in
    ``ledger.pipeline_runs`` belongs to a run whose process died, and is closed as ``interrupted``. At the end of
    every run, published or not, the history older than ``HOSPITAL_RETENTION_DAYS`` is pruned (``flows.retention``).
    """
    logger = get_run_logger()
    overrides = {"home": home} if home else {}
    settings = Settings(**overrides)
    try:
        warehouse = settings.resource()  # the DuckDB file, or Snowflake (a block or SNOWFLAKE_* variables)
    except WarehouseConfigError as exc:
        raise PipelineConfigError(str(exc)) from None
    start = start_date or settings.start_date
    end = end_date or settings.end_date
    zone = timezone or settings.timezone
    if batch_id is not None:
        try:
            check_batch_id(batch_id, start)  # before anything is locked, landed or loaded
        except InvalidBatchId as exc:
            raise PipelineConfigError(str(exc)) from None
    dbt_vars_mapping(dbt_vars)  # malformed dbt vars fail here too

    def waiting(holder) -> None:
        logger.info("waiting for the warehouse %s: it is in use by %s", warehouse.label,
                    holder.describe() if holder else "another run")  # fmt: skip

    flow_run_id = str(runtime.flow_run.id) if runtime.flow_run.id else None
    timeout = lock_timeout_seconds or settings.lock_timeout_seconds
    with warehouse_lock(warehouse, timeout_seconds=timeout, run_id=flow_run_id, batch_id=batch_id, on_wait=waiting):
        _close_abandoned_runs(warehouse)
        if batch_id is None and force:
            newest = runs.last_published(warehouse)
            batch_id = newest.batch_id if newest is not None else None
            logger.info("force without a batch id: re-processing the newest published batch %s", batch_id)
        if batch_id is None:
            today = dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()
            batch_id = next_batch_id(runs.published_batches(warehouse), start=start, end=end, today=today)
            if batch_id is None:
                _name_run(f"up-to-date-{today:%Y%m%d}")
                logger.info("up to date: every batch up to yesterday (%s) is published; nothing to do", zone)
                return {"batch_id": None, "status": "up-to-date"}
        _name_run(run_name(batch_id, full_refresh=full_refresh, force=force))
        kind, _, run_date = parse_batch_id(batch_id)
        previous = runs.latest_run(warehouse, batch_id)
        if previous is not None and previous.status == "published" and not force:
            logger.info("batch %s was published by run %s: nothing to do", batch_id, previous.run_id)
            return {"batch_id": batch_id, "status": "already-published", "report_dir": previous.report_dir}
        run_id = flow_run_id or str(uuid.uuid4())
        runs.start_run(warehouse, run_id=run_id, batch_id=batch_id, run_date=run_date, flow_run_id=flow_run_id)
        progress = _Progress(batch_id)
        options = {
            "seed": settings.seed if seed is None else seed,
            "patients": settings.patients if patients is None else patients,
            "defect_rate": settings.defect_rate if defect_rate is None else defect_rate,
        }
        try:
            published = _stages(progress, settings, warehouse, batch_id, kind, run_id, run_date, start, options,
                                full_refresh, snapshots, dbt_vars, dbt_node_tasks)  # fmt: skip
        except BaseException as error:
            interrupted = interruption(error) is not None
            status = "interrupted" if interrupted else "failed"
            message = (
                f"stopped by Ctrl-C or SIGTERM during stage {progress.stage}; nothing was published. Run the batch "
                "again to resume it: every stage is safe to repeat"
                if interrupted
                else safe_message(error, stage=progress.stage, home=settings.home)
            )
            try:
                runs.finish_run(warehouse, run_id=run_id, status=status, stage=progress.stage, message=message,
                                rows_loaded=progress.facts.get("rows_loaded"))  # fmt: skip
            except Exception as ledger_error:
                logger.warning("could not mark run %s %s in ledger.pipeline_runs (%s)", run_id, status,
                               type(ledger_error).__name__)  # fmt: skip
            if not interrupted:
                _leave_artifacts(progress, settings, "failed at " + progress.stage, message, report=None, kpis=[])
                _apply_retention(settings)
            logger.error("batch %s %s at stage %s; the last published report stays the latest", batch_id,
                         status, progress.stage)  # fmt: skip
            if interrupted or isinstance(error, own_types()):
                raise
            raise PipelineStageError(message) from error
        runs.finish_run(warehouse, run_id=run_id, status="published", stage="publish",
                        rows_loaded=progress.facts.get("rows_loaded"), report_dir=published["run_dir"],
                        checkpoint_runs=[outcome_from_dict(c).run_key for c in progress.checkpoints])  # fmt: skip
        _apply_retention(settings)
    _leave_artifacts(progress, settings, "published", None, report=published["report_html"],
                     kpis=published.get("kpis", []))  # fmt: skip
    result = progress.published(run_id, published)
    logger.info("batch %s published in %.1f s: %s", batch_id, result["seconds"], published["report_html"])
    return result


def _close_abandoned_runs(warehouse: WarehouseResource) -> None:
    """Close the ledger rows (and Prefect flow runs) of runs whose process died: this run holds the lock."""
    logger = get_run_logger()
    for abandoned in runs.close_abandoned(warehouse):
        logger.warning("run %s of batch %s (started %s UTC) ended without finishing; marked interrupted",
                       abandoned.run_id, abandoned.batch_id, f"{abandoned.started_at:%Y-%m-%d %H:%M}")  # fmt: skip
        if abandoned.flow_run_id:
            _crash_flow_run(abandoned.flow_run_id)


def _crash_flow_run(flow_run_id: str) -> None:
    """Set a dead run's Prefect flow run Crashed if the server still shows it running (best effort)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(uuid.UUID(flow_run_id))
            if flow_run.state is not None and not flow_run.state.is_final():
                client.set_flow_run_state(flow_run.id, Crashed(message=runs.DIED_MESSAGE), force=True)
    except Exception as exc:  # another server, or a server that forgot the run: the ledger is what matters
        get_run_logger().debug("flow run %s not marked crashed (%s)", flow_run_id, type(exc).__name__)


def _apply_retention(settings: Settings) -> None:
    """Prune the history older than the retention; never fails the run (it only logs what it could not do)."""
    from flows.retention import apply_retention

    logger = get_run_logger()
    try:
        pruned = apply_retention(settings)
    except Exception as exc:
        logger.warning("retention could not prune the run history (%s); it is retried at the next run",
                       type(exc).__name__)  # fmt: skip
        return
    if pruned.total:
        logger.info("retention (%d days): %s", settings.retention_days, pruned.describe())


def _stages(
    progress: _Progress, settings: Settings, resource: WarehouseResource, batch_id: str, kind: str, run_id: str,
    run_date: dt.date,
    start: dt.date, options: dict, full_refresh: bool, snapshots: bool, dbt_vars: str | None, node_tasks: bool,
) -> dict:  # fmt: skip
    paths = settings.paths
    landing = str(paths.landing)
    ref = resource.ref()  # what subflows take: a JSON-safe reference to the warehouse, no secret
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
    loaded = progress.run("load", lambda: load_raw(landed["path"], ref),
                          lambda r: f"{r['rows_loaded']:,} rows loaded, {r['rows_rejected']:,} rejected, "
                                    f"{r['files_skipped']} files skipped")  # fmt: skip
    progress.facts["rows_loaded"] = loaded["rows_loaded"]
    progress.facts["rows_rejected"] = loaded["rows_rejected"]
    data_docs = str(paths.data_docs)

    def gate(name: str, **extra: Any) -> dict:
        try:
            outcome = progress.run(f"{name} checkpoint",
                                   lambda: validate(name, ref, data_docs, docs_url=settings.docs_url, **extra),
                                   lambda r: f"{len(r['outcomes'])} expectations passed")  # fmt: skip
        except Exception as error:
            failed = getattr(error, "outcome", None)  # QualityGateFailed carries the checkpoint's outcome
            if failed is not None:
                progress.checkpoints.append(failed.to_dict())
            raise
        progress.checkpoints.append(outcome)
        return outcome

    gate("raw", batch_id=batch_id, landing_dir=landed["path"])  # the batch's own folder, with its manifest
    progress.run("dbt build and snapshots",
                 lambda: transform(project, ref, target, logs, full_refresh, snapshots,
                                   _dbt_vars(progress, resource, batch_id, kind, full_refresh, dbt_vars),
                                   node_tasks),
                 _describe_transform)  # fmt: skip
    marts = mart_row_counts(resource)
    progress.facts["mart_rows"] = sum(marts.values())
    progress.facts["marts"] = len(marts)
    gate("marts")
    # The report links the docs relatively: reports/latest/ and reports/<date>/ sit two levels below the data home,
    # which `hospital docs --serve` mirrors, so one link works from disk and over http.
    return progress.run(
        "publish",
        lambda: publish_reports(project, ref, str(paths.dbt_docs), logs, str(paths.reports), run_id, run_date,
                                progress.checkpoints, FROM_REPORT + "data_docs/index.html"),
        lambda r: f"{r['files']} files, {r['suppressed_cells']} small cells suppressed",
    )  # fmt: skip


def _dbt_vars(progress: _Progress, warehouse: WarehouseResource, batch_id: str, kind: str, full_refresh: bool,
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
                     report: str | None, kpis: list[dict]) -> None:  # fmt: skip
    """The run's summary and links. Never fails the run: a broken artifact must not hide the real outcome."""
    logger = get_run_logger()
    try:
        checkpoints = [outcome_from_dict(c) for c in progress.checkpoints]
        links = run_links(settings, checkpoints, report)
        markdown = render_summary(batch_id=progress.batch_id, status=status, stage_rows=progress.stages,
                                  checkpoints=checkpoints, kpis=kpis, links=links, message=message)  # fmt: skip
        publish_summary(markdown, f"batch {progress.batch_id}: {status}")
        publish_links(links)
    except Exception as exc:
        logger.warning("could not write the run's artifacts (%s)", type(exc).__name__)


def run_links(settings: Settings, checkpoints: list, report: str | None) -> dict[str, str | None]:
    """http links (under ``HOSPITAL_DOCS_URL``) to the run's report, its most relevant Data Docs page (the failing
    validation's, else the index) and the dbt docs: what the artifacts and notifications show."""
    paths = settings.paths
    page = None
    for outcome in reversed(checkpoints):
        page = failing_page(outcome) if not outcome.success else None
        if page is not None:
            break
    if page is None:
        page = paths.data_docs / "index.html" if (paths.data_docs / "index.html").exists() else None
    dbt_docs = next((p for p in (paths.dbt_docs / "static_index.html", paths.dbt_docs / "index.html") if p.exists()),
                    None)  # fmt: skip
    return {name: docs_link(settings.docs_url, paths, target)
            for name, target in (("report", report), ("data_docs", page), ("dbt_docs", dbt_docs))}  # fmt: skip


def failing_page(outcome) -> Path | None:
    """The Data Docs page of a failed checkpoint's first failing validation (else its index)."""
    return outcome.failing_page or outcome.data_docs_index
