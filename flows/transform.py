"""Stages 4 and 5: dbt build (staging, integration, marts and their tests) and the snapshots, via prefect-dbt.

Each dbt node runs as its own Prefect task (``PrefectDbtRunner``). The build leaves snapshots to their own stage
so a failed model or test stops the run before history is written. Incremental facts and snapshots make both
stages safe to repeat: a resumed run rewrites what it must and adds no duplicate rows.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.dbt_runner import DbtOutcome, run_dbt
from flows.faults import RETRY_JITTER_FACTOR, TRANSIENT_RETRY_DELAYS, retry_transient

_RETRY = {
    "retries": len(TRANSIENT_RETRY_DELAYS),
    "retry_delay_seconds": TRANSIENT_RETRY_DELAYS,
    "retry_jitter_factor": RETRY_JITTER_FACTOR,
    "retry_condition_fn": retry_transient,
}


def build_args(*, full_refresh: bool, vars_yaml: str | None = None) -> list[str]:
    """``dbt build`` arguments: everything but snapshots and their tests; ``--full-refresh`` rebuilds incremental
    facts (the surrogate-key salt is ``full_refresh: false`` and survives)."""
    args = ["build", "--exclude", "resource_type:snapshot"]
    if full_refresh:
        args.append("--full-refresh")
    if vars_yaml:
        args += ["--vars", vars_yaml]
    return args


def _dbt_call(
    args: list[str], project_dir: str, warehouse: str, target: str, logs: str, node_tasks: bool
) -> DbtOutcome:
    return run_dbt(
        args,
        project_dir=Path(project_dir),
        warehouse=Path(warehouse),
        target_path=Path(target),
        log_path=Path(logs),
        node_tasks=node_tasks,
    )


@flow(name="transform")
def transform(
    project_dir: str,
    warehouse_path: str,
    target_path: str,
    log_path: str,
    full_refresh: bool = False,
    snapshots: bool = True,
    vars_yaml: str | None = None,
    node_tasks: bool = True,
) -> dict:
    """``dbt build`` (all but snapshots), then the snapshots; fails naming every errored or failed node.

    ``node_tasks`` shows each dbt node as a Prefect task (prefect-dbt); off, dbt runs about three times faster
    on a busy machine (docs/pipeline.md).
    """
    logger = get_run_logger()
    build = dbt_build(project_dir, warehouse_path, target_path, log_path, full_refresh, vars_yaml, node_tasks)
    logger.info("%s", build.describe())
    result = {"build": {"statuses": build.statuses, "seconds": build.seconds}}
    if snapshots:
        snapshot = dbt_snapshot(project_dir, warehouse_path, target_path, log_path, vars_yaml, node_tasks)
        logger.info("%s", snapshot.describe())
        result["snapshot"] = {"statuses": snapshot.statuses, "seconds": snapshot.seconds}
    return result


@task(name="dbt-build", **_RETRY)
def dbt_build(
    project_dir: str, warehouse: str, target: str, logs: str, full_refresh: bool, vars_yaml: str | None,
    node_tasks: bool = True,
) -> DbtOutcome:  # fmt: skip
    """Run ``dbt build``; its nodes appear as tasks nested under this one."""
    args = build_args(full_refresh=full_refresh, vars_yaml=vars_yaml)
    return _dbt_call(args, project_dir, warehouse, target, logs, node_tasks)


@task(name="dbt-snapshot", **_RETRY)
def dbt_snapshot(
    project_dir: str, warehouse: str, target: str, logs: str, vars_yaml: str | None, node_tasks: bool = True
) -> DbtOutcome:
    """Build the snapshots (type-2 history of patients with coverage, claims, physicians) and run their tests."""
    args = ["build", "--select", "resource_type:snapshot"] + (["--vars", vars_yaml] if vars_yaml else [])
    return _dbt_call(args, project_dir, warehouse, target, logs, node_tasks)
