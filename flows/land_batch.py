"""Stage 1: land a batch. Pick up a batch already in the landing folder, or generate it with the simulator."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.contracts.manifest import read_manifest


class BatchMismatchError(ValueError):
    """A landed batch was generated for another network (seed, patients, start date) than the run asks for."""


@dataclass(frozen=True)
class LandedBatch:
    """A batch in the landing folder: its id, folder, how it got there, and its files' row counts."""

    batch_id: str
    path: str
    generated: bool
    files: int
    rows: int
    period_end: str | None
    defect_rate_note: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON-safe dict (a flow's return value)."""
        return asdict(self)


def _describe(folder: Path, generated: bool) -> LandedBatch:
    manifest = read_manifest(folder)
    if manifest is None:  # a delivered folder without a manifest: the loader matches files by pattern
        files = [p for p in folder.iterdir() if p.is_file()]
        return LandedBatch(folder.name, str(folder), generated, len(files), 0, None)
    truth = manifest.ground_truth
    note = f"{truth.get('rows')} defective rows listed in {truth['file']}" if truth else None
    period = manifest.period_end.isoformat() if manifest.period_end else None
    return LandedBatch(folder.name, str(folder), generated, len(manifest.files), manifest.rows, period, note)


def check_network(folder: Path, seed: int, patients: int, start_date: dt.date) -> None:
    """Refuse a landed batch generated for another network than the one asked for (mixing worlds corrupts marts)."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.network is None:
        return
    network = manifest.network
    wanted = {"seed": seed, "patients": patients, "start_date": start_date}
    found = {"seed": network.seed, "patients": network.patients, "start_date": network.start_date}
    different = {key: str(found[key]) for key in wanted if found[key] != wanted[key]}
    if different:
        raise BatchMismatchError(
            f"batch {folder.name} in {folder.parent} was generated with {different}, but this run asks for "
            f"{ {key: str(wanted[key]) for key in different} }. Use another data home (HOSPITAL_HOME or --home), "
            "or the same --seed/--patients as before"
        )


@task(name="generate-batch", task_run_name="generate")
def generate_batch(
    landing: Path, *, seed: int, patients: int, start_date: dt.date, end_date: dt.date | None,
    as_of: dt.date | None, defect_rate: float, workers: int,
) -> LandedBatch:  # fmt: skip
    """Generate the initial batch (``as_of`` None: start..end) or one day's batch, unless it already landed."""
    from flows.contracts.registry import load_registry
    from generators.batch import NetworkSpec, daily_batch_id, generate_daily, generate_initial, initial_batch_id

    network = NetworkSpec(seed=seed, patients=patients, start_date=start_date)
    if as_of is None:
        assert end_date is not None
        batch_id = initial_batch_id(start_date, end_date)
    else:
        batch_id = daily_batch_id(as_of)
    folder = landing / batch_id
    if folder.exists():
        check_network(folder, seed, patients, start_date)
        return _describe(folder, generated=False)
    registry = load_registry()
    if as_of is None:
        generate_initial(landing, network, end_date, registry=registry, defect_rate=defect_rate, workers=workers)
    else:
        generate_daily(landing, network, as_of, registry=registry, defect_rate=defect_rate, workers=workers)
    return _describe(folder, generated=True)


@task(name="pick-up-batch", task_run_name="pick-up-{batch_id}")
def pick_up_batch(landing: Path, batch_id: str) -> LandedBatch:
    """A batch delivered to the landing folder by a source system (or generated before)."""
    from flows.warehouse import batch_folder

    return _describe(batch_folder(landing, batch_id), generated=False)


@flow(name="land-batch", flow_run_name="land", log_prints=False)
def land_batch(
    landing_dir: str,
    batch_id: str | None = None,
    as_of: dt.date | None = None,
    seed: int = 42,
    patients: int = 10_000,
    start_date: dt.date = dt.date(2024, 1, 1),
    end_date: dt.date = dt.date(2025, 12, 31),
    defect_rate: float = 0.0,
    workers: int = 1,
) -> dict:
    """Land one batch: ``batch_id`` picks up a delivered batch; otherwise generate the initial or ``as_of`` batch."""
    logger = get_run_logger()
    landing = Path(landing_dir)
    if batch_id is not None:
        landed = pick_up_batch(landing, batch_id)
    else:
        landed = generate_batch(
            landing, seed=seed, patients=patients, start_date=start_date, end_date=end_date, as_of=as_of,
            defect_rate=defect_rate, workers=workers,
        )  # fmt: skip
    how = "generated" if landed.generated else "picked up"
    logger.info("batch %s %s: %d files, %d rows", landed.batch_id, how, landed.files, landed.rows)
    if landed.defect_rate_note:
        logger.info("batch %s carries injected defects: %s", landed.batch_id, landed.defect_rate_note)
    return landed.to_dict()
