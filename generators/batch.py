"""Batches: the initial history for a date range, and daily incremental batches after it.

The simulated world is a pure function of (seed, patients, start date); a batch is the slice of record
versions whose ``updated_at`` falls in its window. So a daily batch holds that day's new records *and* the
changes to existing ones (moves, plan changes, discharges, appointment outcomes, claim status changes).
"""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flows.contracts.batch_ids import BatchId, InvalidBatchId, validate_batch_id
from flows.contracts.manifest import Manifest, Network, manifest_file
from generators import adt, billing, capacity, claims, facilities, payers, providers, registration, scheduling
from generators.defects import DEFECTS_BY_SOURCE, inject_defects
from generators.seeds import partition_rng
from generators.timeutil import add_months, day_end, day_start, iso_utc, skip_dst_gap
from generators.writer import SCHEMA_VERSION, LandingFile, Slot, SlotArena, WriteBehind, encode_rows

LOOKAHEAD_MONTHS = 4  # appointments are booked up to 90 days ahead
CLAIM_LOOKBACK_MONTHS = 6  # a claim's last status change comes within ~4 months of the visit
# Shared memory for workers' chunks (see writer.SlotArena): 128 MB holds what they encode ahead of the parent at
# 100,000 patients (chunks of ~1-5 MB, ~10 MB for patients); what finds no room goes through files.
ARENA_SLOTS = 128
SLOT_BYTES = 1 << 20
GROUND_TRUTH_FILE = "defects.ground_truth.csv"


class BatchError(ValueError):
    """A batch cannot be generated with these arguments; the message says why and what to do."""


@dataclass(frozen=True)
class NetworkSpec:
    """What defines the simulated network: the same spec always gives the same world."""

    seed: int
    patients: int
    start_date: dt.date


@dataclass
class BatchResult:
    """A generated batch: where it is, its manifest, and how long each source took."""

    batch_id: str
    path: Path
    manifest: dict
    seconds_by_source: dict[str, float] = field(default_factory=dict)
    seconds_total: float = 0.0


@dataclass
class World:
    """Everything of the network up to a horizon (admissions are added last, see ``add_admissions``)."""

    network: NetworkSpec
    facilities: facilities.Facilities
    patients: registration.Patients
    physicians: providers.Physicians
    coverage: payers.Coverage
    timezone: str
    admissions: adt.Admissions | None = None
    admission_parts: list[dict] = field(default_factory=list)


def initial_batch_id(start: dt.date, end: dt.date) -> str:
    """Id of the initial batch for a date range (``flows.contracts.batch_ids.BatchId``)."""
    return BatchId.initial(start, end).text


def daily_batch_id(day: dt.date) -> str:
    """Id of the daily batch of one day (``flows.contracts.batch_ids.BatchId``)."""
    return BatchId.daily(day).text


def generate_initial(
    landing_root: Path, network: NetworkSpec, end: dt.date, *, registry: Any, defect_rate: float = 0.0,
    workers: int = 1, sources: tuple[str, ...] | None = None,
) -> BatchResult:  # fmt: skip
    """The history from ``network.start_date`` to ``end``: every record as of the end of ``end``."""
    if end < network.start_date:
        raise BatchError(f"end date {end} is before start date {network.start_date}; pass --end after --start")
    batch_id = initial_batch_id(network.start_date, end)
    return _generate(landing_root, network, _select(registry, sources), batch_id, "initial", None, end, defect_rate,
                     workers)  # fmt: skip


def generate_daily(
    landing_root: Path, network: NetworkSpec, as_of: dt.date, *, registry: Any, defect_rate: float = 0.0,
    workers: int = 1, sources: tuple[str, ...] | None = None,
) -> BatchResult:  # fmt: skip
    """One day's batch: the record versions created or changed on ``as_of``."""
    if as_of <= network.start_date:
        raise BatchError(f"--as-of {as_of} must be after the network's start date {network.start_date}")
    batch_id = daily_batch_id(as_of)
    return _generate(landing_root, network, _select(registry, sources), batch_id, "daily", as_of, as_of,
                     defect_rate, workers)  # fmt: skip


SIMULATED_SOURCES = (
    "facilities__hospitals", "facilities__departments", "provider_registry__physicians", "registration__patients",
    "payers__payers", "payers__plans", "payers__coverage", "scheduling__appointments", "adt__admissions",
    "billing__charges", "claims__claims",
)  # fmt: skip


@dataclass(frozen=True)
class _Selection:
    """The registry restricted to the sources a batch writes."""

    registry: Any
    names: tuple[str, ...]

    @property
    def sources(self) -> dict:
        return {name: self.registry[name] for name in self.names}

    def __getitem__(self, name: str) -> Any:
        return self.registry[name]


def _select(registry: Any, sources: tuple[str, ...] | None) -> _Selection:
    missing = [name for name in SIMULATED_SOURCES if name not in registry.sources]
    if missing:
        raise BatchError(f"the registry {registry.path} lacks simulated sources {missing}; restore their entries")
    unknown = sorted(set(sources or ()) - set(SIMULATED_SOURCES))
    if unknown:
        raise BatchError(f"unknown sources {unknown}; choose from: {', '.join(SIMULATED_SOURCES)}")
    chosen = tuple(name for name in SIMULATED_SOURCES if not sources or name in sources)
    return _Selection(registry, chosen)


def _check(landing_root: Path, network: NetworkSpec, batch_id: str, defect_rate: float, workers: int) -> Path:
    if network.patients <= 0:
        raise BatchError(f"--patients must be a positive number, got {network.patients}")
    if network.seed < 0:
        raise BatchError(f"--seed must be zero or positive, got {network.seed}")
    if not 0 <= defect_rate <= 0.5:
        raise BatchError(f"--defect-rate must be between 0 and 0.5, got {defect_rate}")
    if workers < 1:
        raise BatchError(f"--workers must be at least 1, got {workers}")
    try:
        validate_batch_id(batch_id)
    except InvalidBatchId as exc:
        raise BatchError(str(exc)) from None
    target = landing_root / batch_id
    if target.exists():
        raise BatchError(f"batch {batch_id} already exists at {target}; remove it or choose other dates")
    try:
        landing_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(
            f"cannot create output folder {landing_root}: {exc.strerror}; choose a writable --out"
        ) from exc
    if not os.access(landing_root, os.W_OK):
        raise BatchError(f"output folder {landing_root} is not writable; choose a writable --out")
    return target


def build_world(network: NetworkSpec, horizon: dt.date, timezone: str) -> World:
    """The network up to ``horizon`` (patients, physicians and coverage a few months beyond, for bookings)."""
    return add_admissions(build_population(network, horizon, timezone), horizon)


def build_population(network: NetworkSpec, horizon: dt.date, timezone: str) -> World:
    """The world without admissions: facilities, patients, physicians and coverage (what clinic visits need)."""
    ahead = add_months(horizon.replace(day=1), LOOKAHEAD_MONTHS) - dt.timedelta(days=1)
    seed, start = network.seed, network.start_date
    site = facilities.build_facilities(seed, network.patients)
    people = registration.build_patients(seed, network.patients, start, ahead, site)
    site = capacity.staff_facilities(seed, start, people, site)
    staff = providers.build_physicians(seed, network.patients, start, ahead, site)
    plans = payers.build_coverage(seed, start, ahead, people)
    return World(network, site, people, staff, plans, timezone)


def add_admissions(world: World, horizon: dt.date) -> World:
    """Add the admissions up to ``horizon`` (and their per-partition candidates) to ``world``."""
    network = world.network
    world.admissions, world.admission_parts = adt.build_admissions(
        network.seed, network.start_date, horizon, world.patients, world.facilities, world.physicians, world.timezone
    )
    return world


@dataclass
class Chunk:
    """Encoded rows of one source from one partition, with the defects injected into them."""

    source: str
    # A table only for JSON-array sources; a slot or a path: handed over by a worker (see ``_hand_over``).
    data: bytes | memoryview | pa.Table | Slot | Path
    rows: int
    truth: pa.Table | None = None  # row (within the chunk), defect, column, key


def prepare_chunk(
    table: pa.Table, source: Any, seed: int, defect_rate: float, key: tuple, ensure_each: bool = False
) -> Chunk:
    """Inject defects (seeded by the partition ``key``) and encode; pure, so workers can run it."""
    truth = None
    if defect_rate > 0:
        rng = partition_rng(seed, "defects", source.name, *key)
        table, (rows, names, columns) = inject_defects(table, source.name, defect_rate, rng, ensure_each)
        if rows.size:
            truth = pa.table(
                {
                    "row": pa.array(rows, pa.int64()),
                    "defect": pa.array(names, pa.string()),
                    "column": pa.array(columns, pa.string()),
                    "key": table.column(source.primary_key[0]).take(pa.array(rows)).cast(pa.string()),
                }
            )
    raw = frozenset(column.name for column in source.columns if column.type == "json")
    data = table if source.format == "json" else encode_rows(table, source, raw)
    return Chunk(source.name, data, table.num_rows, truth)


class _Batch:
    """Open landing files of one batch, the ground truth, and per-source timings."""

    def __init__(
        self, directory: Path, registry: Any, day: dt.date, seed: int, defect_rate: float, sink: WriteBehind | None
    ) -> None:
        self.registry = registry
        self.directory = directory
        self.files = {name: LandingFile(directory, source, day, sink) for name, source in registry.sources.items()}
        self.seconds: dict[str, float] = defaultdict(float)
        self.seed, self.defect_rate = seed, defect_rate
        self.truth: list[pa.Table] = []
        self._seeded: set[str] = set()

    def wants(self, source: str) -> bool:
        """Whether this batch writes ``source``."""
        return source in self.files

    def ensure_each(self, source: str, rows: int) -> bool:
        """Whether this chunk should carry every defect class (the first big-enough chunk of each file)."""
        if source in self._seeded or rows < 2 * len(DEFECTS_BY_SOURCE.get(source, ())):
            return False
        self._seeded.add(source)
        return True

    def write(self, source: str, table: pa.Table, started: float, key: tuple = ("main",)) -> None:
        """Prepare and append one table of a source."""
        if not self.wants(source):
            return
        source_spec = self.registry[source]
        ensure = self.defect_rate > 0 and self.ensure_each(source, table.num_rows)
        self.add(prepare_chunk(table, source_spec, self.seed, self.defect_rate, key, ensure), started)

    def add(self, chunk: Chunk, started: float, arena: SlotArena | None = None) -> None:
        """Append a prepared chunk (from ``arena`` if it is a slot) and record its ground truth with row numbers
        in the file."""
        if not self.wants(chunk.source):
            # Workers hand over only the batch's sources; should anything else come, it must not stay behind.
            if isinstance(chunk.data, Path):
                chunk.data.unlink(missing_ok=True)
            elif isinstance(chunk.data, Slot) and arena is not None:
                arena.free(chunk.data)
            return
        landing = self.files[chunk.source]
        if isinstance(chunk.data, pa.Table):
            first = landing.append_json(chunk.data)
        elif isinstance(chunk.data, Path):
            first = landing.append_spilled(chunk.data, chunk.rows)
        elif isinstance(chunk.data, Slot):
            assert arena is not None
            first = landing.append_slot(arena, chunk.data, chunk.rows)
        else:
            first = landing.append_encoded(chunk.data, chunk.rows)
        if chunk.truth is not None:
            size = chunk.truth.num_rows
            self.truth.append(
                pa.table(
                    {
                        "file": pa.array(np.full(size, landing.name), pa.string()),
                        "source": pa.array(np.full(size, chunk.source), pa.string()),
                        "row_number": pc.add(chunk.truth["row"], first),
                        "defect": chunk.truth["defect"],
                        "column": chunk.truth["column"],
                        "key": chunk.truth["key"],
                    }
                )
            )
        self.seconds[chunk.source] += time.perf_counter() - started


def _window(window_start: dt.date | None, last_day: dt.date) -> tuple[np.datetime64 | None, np.datetime64]:
    return (None if window_start is None else day_start(window_start)), day_end(last_day)


def _generate(
    landing_root: Path, network: NetworkSpec, registry: Any, batch_id: str, batch_type: str,
    window_start: dt.date | None, last_day: dt.date, defect_rate: float, workers: int,
) -> BatchResult:  # fmt: skip
    target = _check(landing_root, network, batch_id, defect_rate, workers)
    began = time.perf_counter()
    staging = landing_root / f".{batch_id}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    sink = WriteBehind()  # writes and checksums overlap with generating
    try:
        timezone = registry["registration__patients"].timezone
        started = time.perf_counter()
        world = build_population(network, last_day, timezone)
        batch = _Batch(staging, registry, last_day, network.seed, defect_rate, sink)
        batch.seconds["registration__patients"] += time.perf_counter() - started
        _write_partitions(batch, world, window_start, last_day, workers)
        manifest = _finish(batch, staging, network, batch_id, batch_type, window_start, last_day)
        sink.stop()
        staging.rename(target)  # atomic: the batch appears whole or not at all
    except BaseException:
        sink.stop()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BatchResult(batch_id, target, manifest, dict(batch.seconds), time.perf_counter() - began)


def _write_masters(batch: _Batch, world: World, day: dt.date) -> None:
    for source, make in (
        ("facilities__hospitals", lambda: facilities.generate_hospitals(world.facilities, day)),
        ("facilities__departments", lambda: facilities.generate_departments(world.facilities, day)),
        ("provider_registry__physicians", lambda: providers.generate_physicians(
            world.physicians, world.facilities, day, world.network.start_date)),
        ("payers__payers", lambda: payers.generate_payers(day)),
        ("payers__plans", lambda: payers.generate_plans(day)),
    ):  # fmt: skip
        started = time.perf_counter()
        batch.write(source, make(), started)


def _inpatient_encounters(world: World, part: dict) -> billing.Encounters:
    line = world.facilities.department_line[part["department"]]  # the unit the bed is in
    service = adt.SERVICE_LINE[part["dx"]]  # the diagnosis' own service (its surgery is billed whatever the bed)
    kind = adt._KIND[part["dx"]]
    return billing.Encounters(
        encounter_id=part["admission_id"],
        encounter_type="inpatient",
        patient=part["patient"],
        start_at=part["admit_at"],
        end_at=part["discharge_at"],
        nights=part["nights"],
        icu=line == "ICU",
        obstetric=kind == "delivery",
        surgical=np.isin(service, ("ORTH", "SURG")) & (kind != "acute") | (service == "SURG"),
        emergency=part["admission_type"] == 0,
    )


def _billing_tables(
    world: World, encounters: billing.Encounters, accepted: np.ndarray, start: np.datetime64 | None,
    end: np.datetime64, key: tuple,
) -> tuple[pa.Table, pa.Table, float]:  # fmt: skip
    """Charges and claims of one partition's encounters; drawn for all of them, so the horizon changes nothing.

    Returns both tables and the seconds spent on claims."""
    rng = partition_rng(world.network.seed, "billing", *key)
    charges = billing.generate_charges(rng, encounters)
    posted = accepted[charges.encounter] & (charges.posted_at <= end)
    if start is not None:
        posted &= charges.posted_at >= start
    charge_table = billing.render_charges(encounters, charges, np.flatnonzero(posted))
    started = time.perf_counter()
    plan = world.coverage.plan_on(encounters.patient, encounters.start_at)
    claim = claims.generate_claims(rng, encounters, charges, plan)
    rows, count = claims.claim_versions(claim, start, end)
    keep = accepted[claim.encounter[rows]]
    claim_table = claims.render_claims(claim, encounters, rows[keep], count[keep], world.timezone)
    return charge_table, claim_table, time.perf_counter() - started


@dataclass
class _PoolState:
    """What every partition job reads, inherited by forked workers (never pickled)."""

    world: World
    registry: Any
    defect_rate: float
    start: np.datetime64 | None
    end: np.datetime64
    patient_versions: tuple[np.ndarray, np.ndarray, np.ndarray]
    spill: Path | None = None  # where workers leave encoded chunks for the parent (None: in this process)
    arena: SlotArena | None = None  # where they leave them first, if it has room


_POOL_STATE: _PoolState | None = None
Job = tuple[str, int, tuple, frozenset]  # kind, index, arguments, sources that must carry every defect class


def _run_job(job: Job) -> list[tuple[Chunk, float]]:
    """One partition of the batch, encoded: patients, a stay partition's billing, or a clinic month."""
    assert _POOL_STATE is not None
    kind, index, arguments, ensure = job
    state = _POOL_STATE
    if kind == "patients":
        chunks = _patients_job(state, *arguments, ensure=ensure)
    elif kind == "inpatient":
        chunks = _inpatient_job(state, *arguments, ensure=ensure)
    else:
        chunks = _outpatient_job(state, *arguments, ensure=ensure)
    if state.spill is not None:
        chunks = [
            (_hand_over(chunk, state.arena, state.spill / f".job-{index}-{n}"), took)
            for n, (chunk, took) in enumerate(chunks)
        ]
    return chunks


def _hand_over(chunk: Chunk, arena: SlotArena | None, path: Path) -> Chunk:
    """Hand the encoded bytes over in slots of the shared ``arena`` or, if it has no room right now, as a file in
    the staging folder: the parent's writer thread hashes and writes them from there (one copy) instead of the
    parent receiving, unpickling and writing them (three copies)."""
    if isinstance(chunk.data, (pa.Table, Slot, Path)):
        return chunk
    if not len(chunk.data):  # nothing to hand over (and a view of Arrow's buffer cannot be pickled)
        return Chunk(chunk.source, b"", chunk.rows, chunk.truth)
    slot = None if arena is None else arena.put(chunk.data)
    if slot is not None:
        return Chunk(chunk.source, slot, chunk.rows, chunk.truth)
    path.write_bytes(chunk.data)
    return Chunk(chunk.source, path, chunk.rows, chunk.truth)


def _chunk(state: _PoolState, source: str, table: pa.Table, key: tuple, ensure: frozenset) -> Chunk:
    if source not in state.registry.names:  # a source this batch does not write: nothing to encode or hand over
        return Chunk(source, b"", 0)
    spec = state.registry[source]
    return prepare_chunk(table, spec, state.world.network.seed, state.defect_rate, key, source in ensure)


def _patients_job(state: _PoolState, low: int, *, ensure: frozenset) -> list[tuple[Chunk, float]]:
    started = time.perf_counter()
    index, move, updated = (array[low : low + registration.CHUNK] for array in state.patient_versions)
    world = state.world
    table = registration.render_patients(world.patients, world.facilities, index, move, updated)
    chunk = _chunk(state, "registration__patients", table, ("patients", low), ensure)
    return [(chunk, time.perf_counter() - started)]


def _billing_chunks(
    state: _PoolState, encounters: billing.Encounters, accepted: np.ndarray, key: tuple, ensure: frozenset
) -> list[tuple[Chunk, float]]:
    started = time.perf_counter()
    charge_table, claim_table, claim_seconds = _billing_tables(
        state.world, encounters, accepted, state.start, state.end, key
    )
    charges = _chunk(state, "billing__charges", charge_table, key, ensure)
    charge_seconds = time.perf_counter() - started - claim_seconds
    started = time.perf_counter()
    claims_chunk = _chunk(state, "claims__claims", claim_table, key, ensure)
    return [(charges, charge_seconds), (claims_chunk, claim_seconds + time.perf_counter() - started)]


def _inpatient_job(state: _PoolState, part: dict, *, ensure: frozenset) -> list[tuple[Chunk, float]]:
    # The part travels with the job: workers are forked before the admissions are built.
    key = ("inpatient", part["home"], part["month"].isoformat())
    return _billing_chunks(state, _inpatient_encounters(state.world, part), part["accepted"], key, ensure)


def _outpatient_job(state: _PoolState, hospital: int, month: dt.date, *, ensure: frozenset) -> list:
    """Appointments of one (hospital, month) and the charges and claims of its visits, encoded."""
    world = state.world
    key = ("outpatient", hospital, month.isoformat())
    started = time.perf_counter()
    booked = scheduling.generate_appointments(
        world.network.seed, hospital, month, world.patients, world.facilities, world.physicians, world.timezone
    )
    rows, status = scheduling.appointment_versions(booked, state.start, state.end)
    table = scheduling.render_appointments(booked, rows, status, world.facilities, world.physicians)
    chunks = [(_chunk(state, "scheduling__appointments", table, key, ensure), time.perf_counter() - started)]
    done = np.flatnonzero(booked.completed)
    if done.size:
        none = np.zeros(done.size, dtype=bool)
        visits = billing.Encounters(
            encounter_id=booked.appointment_id.take(pa.array(done, pa.int64())),
            encounter_type="outpatient",
            patient=booked.patient[done],
            start_at=booked.scheduled_at[done],
            end_at=booked.scheduled_at[done] + booked.duration[done].astype("timedelta64[m]"),
            nights=np.zeros(done.size, dtype=np.int64),
            icu=none,
            obstetric=none,
            surgical=none,
            emergency=none,
        )
        chunks += _billing_chunks(state, visits, np.ones(done.size, dtype=bool), key, ensure)
    return chunks


def _clinic_jobs(world: World, window_start: dt.date | None, last_day: dt.date, patients: int) -> list[Job]:
    """Jobs that need no admissions, in the order their rows are written: patients, then clinic months."""
    first = world.network.start_date.replace(day=1)
    if window_start is not None:
        first = max(first, add_months(window_start.replace(day=1), -CLAIM_LOOKBACK_MONTHS))
    months = []
    cursor = first
    while cursor <= add_months(last_day.replace(day=1), LOOKAHEAD_MONTHS - 1):
        months.append(cursor)
        cursor = add_months(cursor, 1)
    specs: list[tuple[str, tuple]] = [("patients", (low,)) for low in range(0, patients, registration.CHUNK)]
    specs += [("outpatient", (h, m)) for m in months for h in range(world.facilities.hospital_ids.size)]
    return _numbered(specs, 0)


def _stay_jobs(world: World, offset: int) -> list[Job]:
    """Charges and claims of the admission partitions, written after the clinic months' (see ``_clinic_jobs``)."""
    return _numbered([("inpatient", (part,)) for part in world.admission_parts if part["accepted"].any()], offset)


# The first job of each kind carries every defect class of its sources (see defects.inject_defects).
_CARRIES_EVERY_DEFECT = {
    "patients": frozenset({"registration__patients"}),
    "outpatient": frozenset({"scheduling__appointments", "billing__charges", "claims__claims"}),
    "inpatient": frozenset({"billing__charges", "claims__claims"}),
}


def _numbered(specs: list[tuple[str, tuple]], offset: int) -> list[Job]:
    jobs, seen = [], set()
    for index, (kind, arguments) in enumerate(specs):
        jobs.append((kind, offset + index, arguments, _CARRIES_EVERY_DEFECT[kind] if kind not in seen else frozenset()))
        seen.add(kind)
    return jobs


def _single_threaded_arrow() -> None:
    # Each worker is one of the parallel streams: Arrow's own thread pool would only oversubscribe the cores.
    pa.set_cpu_count(1)


def _write_partitions(
    batch: _Batch, world: World, window_start: dt.date | None, last_day: dt.date, workers: int
) -> None:
    """Every source of the batch; ``world`` gets its admissions here.

    Workers are forked before the admissions exist and start on the patients and clinic months, which need
    none, while this process writes the coverage and builds and writes the admissions; the stays' charges and
    claims follow the clinic months' in their files. Rows are written in job order whatever the number of
    workers, and a writer thread writes and hashes them while the next ones are generated.
    """
    global _POOL_STATE
    start, end = _window(window_start, last_day)
    versions = registration.versions_in_window(world.patients, start, end)
    jobs = _clinic_jobs(world, window_start, last_day, versions[0].size)
    spill = batch.directory if workers > 1 else None
    context = multiprocessing.get_context("fork")
    arena = SlotArena(ARENA_SLOTS, SLOT_BYTES, context) if workers > 1 else None
    _POOL_STATE = _PoolState(world, batch.registry, batch.defect_rate, start, end, versions, spill, arena)
    pool = None
    try:
        # Before forking, what every worker would otherwise build again: the masters are small, and writing
        # them loads what pyarrow imports lazily (pandas); the MRN lookup table; the zone's offsets per year
        # (bookings start a quarter before the history, claims end months after it); the ISO date and time tables.
        _write_masters(batch, world, last_day)
        registration.mrn(np.arange(world.patients.count))
        first, last = world.network.start_date.year - 1, last_day.year + 1
        skip_dst_gap(np.array([f"{first}-06-01", f"{last}-06-01"], dtype="datetime64[s]"), world.timezone)
        iso_utc(np.array([f"{first}-06-01"], dtype="datetime64[s]"), world.timezone)  # its lookup tables
        if workers > 1:
            pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_single_threaded_arrow)
            results: Iterable = pool.map(_run_job, _clean(jobs, batch), chunksize=1)
        started = time.perf_counter()
        rows, terminated = payers.coverage_versions(world.coverage, start, end)
        batch.write("payers__coverage", payers.render_coverage(world.coverage, rows, terminated), started)
        started = time.perf_counter()
        add_admissions(world, last_day)
        assert world.admissions is not None
        rows, discharged = adt.admission_versions(world.admissions, start, end)
        table = adt.render_admissions(world.admissions, rows, discharged, world.facilities, world.physicians)
        batch.write("adt__admissions", table, started)
        stays = _clean(_stay_jobs(world, len(jobs)), batch)
        if pool is None:
            results = map(_run_job, [*_clean(jobs, batch), *stays])
        else:
            results = itertools.chain(results, pool.map(_run_job, stays, chunksize=1))
        for chunks in results:
            for chunk, seconds in chunks:
                batch.add(chunk, time.perf_counter() - seconds, arena)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        # The arena is unmapped once the writer thread has written the slots queued for it (they hold it), even
        # while a traceback holds this frame.
        _POOL_STATE = arena = None


def _clean(jobs: list[Job], batch: _Batch) -> list[Job]:
    """Without defects no job needs to carry every defect class."""
    if batch.defect_rate:
        return jobs
    return [(kind, index, arguments, frozenset()) for kind, index, arguments, _ in jobs]


def _finish(
    batch: _Batch, staging: Path, network: NetworkSpec, batch_id: str, batch_type: str,
    window_start: dt.date | None, last_day: dt.date,
) -> dict:  # fmt: skip
    entries = [landing.close() for landing in batch.files.values()]
    ground_truth = None
    if batch.defect_rate > 0:
        truth_path = staging / GROUND_TRUTH_FILE
        columns = ["file", "source", "row_number", "defect", "column", "key"]
        table = (
            pa.concat_tables(batch.truth) if batch.truth else pa.table({c: pa.array([], pa.string()) for c in columns})
        )
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, truth_path)
        import hashlib

        ground_truth = {
            "file": GROUND_TRUTH_FILE,
            "rows": table.num_rows,
            "sha256": hashlib.sha256(truth_path.read_bytes()).hexdigest(),
            "defect_rate": batch.defect_rate,
        }
    manifest = Manifest(
        files=tuple(manifest_file(entry) for entry in entries),
        batch_id=batch_id,
        batch_type=batch_type,
        schema_version=SCHEMA_VERSION,
        network=Network(network.seed, network.patients, network.start_date),
        period_start=window_start or network.start_date,
        period_end=last_day,
        ground_truth=ground_truth,
    )
    manifest.write(staging)
    return manifest.to_dict()
