"""Stages 3 and 6: the quality gates. Runs the ``raw`` or ``marts`` Great Expectations checkpoint (expectations/).

A failed gate fails the stage once, with the gate's message (suite, expectation, column, failing count, Data Docs
page), and is never retried; a locked warehouse is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task

from flows.artifacts import publish_checkpoint_table
from flows.faults import RETRY_JITTER_FACTOR, TRANSIENT_RETRY_DELAYS, retry_transient
from flows.warehouse.resource import DuckDBResource, as_resource

#: A DuckDB file's path, or a warehouse resource's ``ref()`` (JSON-safe, no secret): what subflows take.
WarehouseRef = str | dict[str, str | None]


@task(
    name="run-checkpoint",
    task_run_name="checkpoint-{checkpoint}",
    retries=len(TRANSIENT_RETRY_DELAYS),
    retry_delay_seconds=TRANSIENT_RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER_FACTOR,
    retry_condition_fn=retry_transient,
)
def run_checkpoint_task(
    checkpoint: str, warehouse: WarehouseRef, data_docs: Path, batch_id: str | None, landing: Path | None
) -> dict:
    """Run one checkpoint and return its outcome as a dict (names, counts and percentages only)."""
    from expectations import run_checkpoint

    resource = as_resource(warehouse)
    outcome = run_checkpoint(
        checkpoint,
        resource=resource,
        data_docs_dir=data_docs,
        batch_id=batch_id,
        landing_dir=landing,
        raise_on_failure=False,
    )
    if isinstance(resource, DuckDBResource):
        released = release_engines(resource.path)
        get_run_logger().debug("disposed %d SQLAlchemy engine(s) on %s after the checkpoint", released, warehouse)
    return outcome.to_dict()


def release_engines(warehouse: Path) -> int:
    """Dispose SQLAlchemy engines that connected to ``warehouse`` in this process; returns how many there were.

    DuckDB refuses a read-write connection while a read-only one to the same file is open in the process, so an
    engine GX created and never disposed would make every later stage fail. Defensive: a checkpoint should close
    its own engines, and then disposing them again is a no-op. Engines are recorded as they connect
    (``expectations.duckdb_support.connected_engines``), not searched for among every object of the process.
    """
    from expectations.duckdb_support import connected_engines

    engines = connected_engines(str(warehouse))
    for engine in engines:
        engine.dispose()
    return len(engines)


def outcome_from_dict(data: dict):  # -> CheckpointOutcome
    """Rebuild a ``CheckpointOutcome`` from its ``to_dict()`` form."""
    from flows.contracts.quality import CheckpointOutcome

    return CheckpointOutcome.from_dict(data)


@flow(name="validate", flow_run_name="gate-{checkpoint}")
def validate(
    checkpoint: Literal["raw", "marts"],
    warehouse_path: WarehouseRef,
    data_docs_dir: str,
    batch_id: str | None = None,
    landing_dir: str | None = None,
    docs_url: str | None = None,
) -> dict:
    """Run the ``checkpoint`` gate; raise ``QualityGateFailed`` (the run stops) when an expectation failed.

    ``docs_url`` (``HOSPITAL_DOCS_URL``) adds the failing page's http address to the failure message, for the
    Prefect UI and notifications; the Data Docs folder must be the data home's ``data_docs``. ``warehouse_path``
    is a DuckDB file, or a warehouse resource's ``ref()`` (what the pipeline passes, Snowflake included).
    """
    from flows.contracts.quality import QualityGateFailed
    from flows.docs_server import docs_link
    from flows.settings import DataHome

    logger = get_run_logger()
    data = run_checkpoint_task(
        checkpoint, warehouse_path, Path(data_docs_dir), batch_id, Path(landing_dir) if landing_dir else None
    )
    outcome = outcome_from_dict(data)
    publish_checkpoint_table(outcome)
    if not outcome.success:
        # One line here: the whole message travels with the exception (the run's state, the CLI prints it once).
        logger.error("checkpoint %s failed: %d of %d expectations failed", outcome.checkpoint,
                     len(outcome.failures), outcome.evaluated)  # fmt: skip
        home = DataHome(Path(data_docs_dir).parent)
        link = (lambda path: docs_link(docs_url, home, path)) if docs_url else None
        raise QualityGateFailed(outcome, http_link=link)
    logger.info(
        "checkpoint %s passed: %d expectations in %.1f s", outcome.checkpoint, outcome.evaluated, outcome.seconds
    )
    return data
