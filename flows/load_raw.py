"""Stage 2: load a landed batch into the raw schema, all or nothing, with the load ledger (flows/warehouse).

A re-run is safe: files the ledger records as loaded are skipped, so a resumed run never duplicates rows. A locked
warehouse is retried with backoff; a batch the loader refuses (checksum, drift, too many rejects) fails at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.faults import RETRY_JITTER_FACTOR, TRANSIENT_RETRY_DELAYS, retry_transient


@dataclass(frozen=True)
class LoadSummary:
    """Counts of one batch load (no values): files by outcome and rows loaded and rejected."""

    batch_id: str
    outcome: str
    files_loaded: int
    files_skipped: int
    rows_loaded: int
    rows_rejected: int
    message: str

    def to_dict(self) -> dict:
        """Plain JSON-safe dict (a flow's return value)."""
        return asdict(self)


@task(
    name="load-batch",
    task_run_name="load-{batch_dir.name}",
    retries=len(TRANSIENT_RETRY_DELAYS),
    retry_delay_seconds=TRANSIENT_RETRY_DELAYS,
    retry_jitter_factor=RETRY_JITTER_FACTOR,
    retry_condition_fn=retry_transient,
)
def load_batch_task(
    batch_dir: Path, warehouse: Path, kind: str = "duckdb", snowflake_block: str | None = None,
    max_reject_rate: float | None = None,
) -> LoadSummary:  # fmt: skip
    """Load one batch folder; raises the loader's ``LoadError`` when the batch failed (nothing was loaded)."""
    from flows.contracts.registry import load_registry
    from flows.warehouse import load_batch, open_warehouse

    registry = load_registry()
    with open_warehouse(kind, duckdb_path=warehouse, snowflake_block=snowflake_block, registry=registry) as handle:
        result = load_batch(batch_dir, registry, handle, max_reject_rate=max_reject_rate)
    result.raise_for_failure()
    files = result.files
    return LoadSummary(
        batch_id=result.batch_id,
        outcome=result.outcome,
        files_loaded=sum(f.outcome == "loaded" for f in files),
        files_skipped=sum(f.outcome == "skipped" for f in files),
        rows_loaded=sum(f.rows_loaded for f in files),
        rows_rejected=sum(f.rows_rejected for f in files),
        message=result.message,
    )


@flow(name="load-raw", flow_run_name="load")
def load_raw(
    batch_dir: str, warehouse_path: str, warehouse: str = "duckdb", snowflake_block: str | None = None,
    max_reject_rate: float | None = None,
) -> dict:  # fmt: skip
    """Load the batch in ``batch_dir`` into the warehouse's raw schema and return its counts."""
    summary = load_batch_task(Path(batch_dir), Path(warehouse_path), warehouse, snowflake_block, max_reject_rate)
    get_run_logger().info(
        "%s (%d rows loaded, %d rejected to raw._rejects)", summary.message, summary.rows_loaded, summary.rows_rejected
    )
    return summary.to_dict()
