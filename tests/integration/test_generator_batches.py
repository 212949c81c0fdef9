"""Generator batches: determinism, formats, referential integrity, incremental changes, atomic writes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import weakref
from collections import Counter

import numpy as np
import pyarrow.compute as pc
import pytest

from generators import batch as batch_module
from generators.batch import NetworkSpec, generate_daily, generate_initial
from generators.providers import is_valid_npi
from generators.writer import LandingFile

from .conftest import DAILY_DAYS, read_batch, read_landing_file

pytestmark = pytest.mark.integration

SMALL = NetworkSpec(seed=11, patients=3_000, start_date=dt.date(2024, 1, 1))


def _digests(result) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(result.path.iterdir())}


def test_same_seed_gives_byte_identical_batches_whatever_the_workers(tmp_path, registry):
    one = generate_initial(tmp_path / "a", SMALL, dt.date(2024, 3, 31), registry=registry, defect_rate=0.02)
    two = generate_initial(tmp_path / "b", SMALL, dt.date(2024, 3, 31), registry=registry, defect_rate=0.02, workers=2)
    assert _digests(one) == _digests(two)
    other = generate_initial(
        tmp_path / "c", NetworkSpec(12, 3_000, SMALL.start_date), dt.date(2024, 3, 31), registry=registry
    )
    assert _digests(other)["patients_20240331.csv"] != _digests(one)["patients_20240331.csv"]


def test_chunks_finding_no_room_in_the_shared_arena_give_the_same_bytes_through_files(tmp_path, registry, monkeypatch):
    handed: Counter = Counter()

    def counting(method: str):
        original = getattr(LandingFile, method)

        def counted(self, *args):
            handed[method] += 1
            return original(self, *args)

        return counted

    for method in ("append_slot", "append_spilled"):
        monkeypatch.setattr(LandingFile, method, counting(method))
    # 128 KB: the patients chunk (~640 KB) never fits, the clinic months' chunks when slots are free.
    monkeypatch.setattr(batch_module, "ARENA_SLOTS", 8)
    monkeypatch.setattr(batch_module, "SLOT_BYTES", 16 << 10)
    one = generate_initial(tmp_path / "a", SMALL, dt.date(2024, 3, 31), registry=registry, defect_rate=0.02)
    two = generate_initial(tmp_path / "b", SMALL, dt.date(2024, 3, 31), registry=registry, defect_rate=0.02, workers=2)
    assert handed["append_slot"] and handed["append_spilled"]
    assert _digests(one) == _digests(two)
    assert not list(tmp_path.rglob(".job-*"))


def test_a_batch_of_some_sources_holds_their_files_only_and_the_same_bytes_whatever_the_workers(
    tmp_path, registry, monkeypatch
):
    """Workers once handed over the charges of a batch without charges, as files the batch then kept: the loader
    refused the batch (files not in the manifest). A small arena makes workers hand chunks over through files."""
    monkeypatch.setattr(batch_module, "ARENA_SLOTS", 8)
    monkeypatch.setattr(batch_module, "SLOT_BYTES", 16 << 10)
    sources = tuple(name for name in batch_module.SIMULATED_SOURCES if name != "billing__charges")
    end = dt.date(2024, 3, 31)
    full = generate_initial(tmp_path / "full", SMALL, end, registry=registry)
    one = generate_initial(tmp_path / "one", SMALL, end, registry=registry, sources=sources)
    two = generate_initial(tmp_path / "two", SMALL, end, registry=registry, sources=sources, workers=2)
    for result in (one, two):
        listed = {entry["file"] for entry in result.manifest["files"]}
        assert {path.name for path in result.path.iterdir()} == listed | {"manifest.json"}
        assert {entry["source"] for entry in result.manifest["files"]} == set(sources)
    assert _digests(one) == _digests(two)
    kept = {name: digest for name, digest in _digests(full).items() if name in _digests(one)}
    assert {name: digest for name, digest in _digests(one).items() if name != "manifest.json"} == {
        name: digest for name, digest in kept.items() if name != "manifest.json"
    }


def test_a_worker_failure_leaves_nothing_behind_and_releases_the_arena(tmp_path, registry, monkeypatch):
    memories = []

    class Recorded(batch_module.SlotArena):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            memories.append(weakref.ref(self._memory))

    outpatient = batch_module._outpatient_job

    def failing(state, hospital, month, *, ensure):
        if month == dt.date(2024, 3, 1):
            raise OSError("worker out of disk")
        return outpatient(state, hospital, month, ensure=ensure)

    monkeypatch.setattr(batch_module, "SlotArena", Recorded)
    monkeypatch.setattr(batch_module, "_outpatient_job", failing)  # workers are forked with it
    with pytest.raises(OSError, match="worker out of disk"):
        generate_initial(tmp_path, SMALL, dt.date(2024, 3, 31), registry=registry, workers=2)
    assert list(tmp_path.iterdir()) == []
    assert len(memories) == 1 and memories[0]() is None


def test_every_file_round_trips_with_its_registry_format(initial_batch, registry):
    manifest = json.loads((initial_batch.path / "manifest.json").read_text())
    delimiters = {entry["delimiter"] for entry in manifest["files"] if entry["format"] == "csv"}
    assert {",", "|", "\t", ";"} <= delimiters
    assert {entry["format"] for entry in manifest["files"]} == {"csv", "json", "jsonl"}
    for entry in manifest["files"]:
        source = registry[entry["source"]]
        path = initial_batch.path / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        table = read_landing_file(path, source)
        assert table.column_names == source.column_names, entry["file"]
        assert table.num_rows == entry["rows"] > 0, entry["file"]
        for column in source.columns:
            if not column.nullable:
                assert table[column.name].null_count == 0, f"{entry['file']}: {column.name} has nulls"


def test_every_foreign_key_points_at_an_existing_record(initial_tables):
    t = initial_tables

    def keys(source, column):
        return set(t[source][column].to_pylist())

    mrns = keys("registration__patients", "mrn")
    npis = keys("provider_registry__physicians", "npi")
    departments = keys("facilities__departments", "department_id")
    hospitals = keys("facilities__hospitals", "hospital_id")
    encounters = keys("adt__admissions", "admission_id") | keys("scheduling__appointments", "appointment_id")
    checks = {
        ("payers__coverage", "mrn"): mrns,
        ("payers__coverage", "plan_id"): keys("payers__plans", "plan_id"),
        ("payers__plans", "payer_id"): keys("payers__payers", "payer_id"),
        ("scheduling__appointments", "mrn"): mrns,
        ("scheduling__appointments", "npi"): npis,
        ("scheduling__appointments", "department_id"): departments,
        ("adt__admissions", "mrn"): mrns,
        ("adt__admissions", "attending_npi"): npis,
        ("adt__admissions", "hospital_id"): hospitals,
        ("adt__admissions", "department_id"): departments,
        ("billing__charges", "encounter_id"): encounters,
        ("billing__charges", "mrn"): mrns,
        ("claims__claims", "encounter_id"): encounters,
        ("claims__claims", "mrn"): mrns,
        ("claims__claims", "plan_id"): keys("payers__plans", "plan_id"),
        ("provider_registry__physicians", "department_id"): departments,
        ("facilities__departments", "hospital_id"): hospitals,
        ("registration__patients", "home_hospital_id"): hospitals,
    }
    for (source, column), parents in checks.items():
        orphans = keys(source, column) - parents
        assert not orphans, f"{source}.{column}: {len(orphans)} values without a parent"
    for source, key in (
        ("registration__patients", "mrn"),
        ("adt__admissions", "admission_id"),
        ("claims__claims", "claim_id"),
        ("billing__charges", "charge_id"),
    ):
        assert len(keys(source, key)) == t[source].num_rows, f"{source}.{key} is not unique"


def test_codes_are_valid_npis_and_icd10cm(initial_tables):
    from generators.icd10 import is_billable

    assert all(is_valid_npi(npi) for npi in initial_tables["provider_registry__physicians"]["npi"].to_pylist())
    admissions = initial_tables["adt__admissions"]
    assert all(is_billable(code) for code in set(admissions["principal_dx_code"].to_pylist()))
    secondary = {c for codes in admissions["secondary_dx_codes"].drop_null().to_pylist() for c in codes.split("^")}
    assert secondary and all(is_billable(code) for code in secondary)


def test_specialty_matches_department(initial_tables):
    from generators.clinical import SERVICE_LINE_BY_CODE

    physicians = initial_tables["provider_registry__physicians"]
    for department, specialty in zip(
        physicians["department_id"].to_pylist(), physicians["specialty"].to_pylist(), strict=True
    ):
        line = department.split("-")[1]
        assert SERVICE_LINE_BY_CODE[line].specialty == specialty


def test_daily_batches_hold_new_records_and_changes_to_existing_ones(initial_tables, daily_batches, registry):
    initial = initial_tables
    for result, day in zip(daily_batches, DAILY_DAYS, strict=True):
        daily = read_batch(result, registry)
        for source in (
            "registration__patients",
            "payers__coverage",
            "scheduling__appointments",
            "adt__admissions",
            "billing__charges",
        ):
            column = "posted_at" if source == "billing__charges" else "updated_at"
            days = daily[source][column].to_numpy().astype("datetime64[D]")
            assert days.size and (days == np.datetime64(day)).all(), f"{source}: rows outside {day}"
        claim_days = {value.date() for value in daily["claims__claims"]["updated_at"].to_pylist()}
        assert claim_days <= {day, day + dt.timedelta(days=1)}  # the clearinghouse writes UTC, ahead of Chicago
    daily = read_batch(daily_batches[0], registry)
    # Appointments booked earlier get their outcome; open stays get their discharge; claims move on.
    before = dict(
        zip(
            initial["scheduling__appointments"]["appointment_id"].to_pylist(),
            initial["scheduling__appointments"]["status"].to_pylist(),
            strict=True,
        )
    )
    changed = [
        (before[i], s)
        for i, s in zip(
            daily["scheduling__appointments"]["appointment_id"].to_pylist(),
            daily["scheduling__appointments"]["status"].to_pylist(),
            strict=True,
        )
        if i in before
    ]
    assert changed and all(old == "Scheduled" and new != "Scheduled" for old, new in changed)
    open_stays = set(
        initial["adt__admissions"]
        .filter(pc.is_null(initial["adt__admissions"]["discharge_at"]))["admission_id"]
        .to_pylist()
    )
    discharged = daily["adt__admissions"].filter(pc.is_valid(daily["adt__admissions"]["discharge_at"]))
    assert set(discharged["admission_id"].to_pylist()) & open_stays
    claim_status = dict(
        zip(
            initial["claims__claims"]["claim_id"].to_pylist(),
            initial["claims__claims"]["claim_status"].to_pylist(),
            strict=True,
        )
    )
    moved_on = [c for c in daily["claims__claims"]["claim_id"].to_pylist() if c in claim_status]
    assert moved_on
    old_addresses = dict(
        zip(
            initial["registration__patients"]["mrn"].to_pylist(),
            initial["registration__patients"]["address_line"].to_pylist(),
            strict=True,
        )
    )
    moves = [
        (m, a)
        for m, a in zip(
            daily["registration__patients"]["mrn"].to_pylist(),
            daily["registration__patients"]["address_line"].to_pylist(),
            strict=True,
        )
        if m in old_addresses
    ]
    assert moves and all(old_addresses[m] != a for m, a in moves)
    coverage = daily["payers__coverage"]
    assert coverage.filter(pc.is_valid(coverage["termination_date"])).num_rows > 0


def test_unchanged_fields_agree_between_initial_and_daily_versions(initial_tables, daily_batches, registry):
    daily = read_batch(daily_batches[0], registry)
    initial = initial_tables["scheduling__appointments"]
    scheduled = dict(zip(initial["appointment_id"].to_pylist(), initial["scheduled_at"].to_pylist(), strict=True))
    rows = daily["scheduling__appointments"]
    for appointment, when in zip(rows["appointment_id"].to_pylist(), rows["scheduled_at"].to_pylist(), strict=True):
        if appointment in scheduled:
            assert scheduled[appointment] == when


INCREMENTAL_SOURCES = (
    "registration__patients", "payers__coverage", "scheduling__appointments", "adt__admissions", "billing__charges",
    "claims__claims",
)  # fmt: skip


def _without_nulls(value):
    """A value as its file states it: pyarrow gives every object of a JSON list the union of the keys it saw in
    that file, so an absent ``reason_code`` reads as None in one file and is missing in another."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _latest_by_key(tables: list, source) -> dict:
    """Each record's last version over ``tables`` in order (a later batch's version replaces an earlier one)."""
    latest = {}
    for table in tables:
        key_columns = list(source.primary_key)
        for row in table.to_pylist():
            latest[tuple(row[c] for c in key_columns)] = _without_nulls(row)
    return latest


@pytest.mark.parametrize(
    ("seed", "patients", "last_initial_day"),
    [(23, 300, dt.date(2024, 1, 31)), (5, 2_000, dt.date(2024, 2, 29)), (8, 1_000, dt.date(2024, 6, 30))],
)
def test_a_record_is_the_same_in_every_batch_across_a_month_end(tmp_path, registry, seed, patients, last_initial_day):
    """The world is a function of the network, not of the batch's horizon: the history to the end of a month plus
    the next day's batch is exactly the history to that next day (a daily run on the 1st once held charges of
    visits that no batch contained)."""
    network = NetworkSpec(seed=seed, patients=patients, start_date=dt.date(2024, 1, 1))
    next_day = last_initial_day + dt.timedelta(days=1)
    before = read_batch(generate_initial(tmp_path / "a", network, last_initial_day, registry=registry), registry)
    daily = read_batch(generate_daily(tmp_path / "a", network, next_day, registry=registry), registry)
    through = read_batch(generate_initial(tmp_path / "b", network, next_day, registry=registry), registry)
    for name in INCREMENTAL_SOURCES:
        source = registry[name]
        combined = _latest_by_key([before[name], daily[name]], source)
        expected = _latest_by_key([through[name]], source)
        missing = sorted(set(expected) - set(combined))[:3]
        extra = sorted(set(combined) - set(expected))[:3]
        assert not missing and not extra, f"{name}: only in the longer history {missing}; only in the batches {extra}"
        changed = [key for key in expected if expected[key] != combined[key]][:3]
        assert not changed, f"{name}: records differ between the two ways of building {next_day}: {changed}"
    assert daily["scheduling__appointments"].num_rows > 0, "an empty daily batch would show nothing"
    visits = set(through["scheduling__appointments"]["appointment_id"].to_pylist())
    stays = set(through["adt__admissions"]["admission_id"].to_pylist())
    orphans = set(daily["billing__charges"]["encounter_id"].to_pylist()) - visits - stays
    assert not orphans, f"charges of {next_day} for encounters no batch holds: {sorted(orphans)[:3]}"


def test_a_failure_mid_batch_leaves_nothing_behind(tmp_path, registry, monkeypatch):
    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(batch_module, "_write_partitions", explode)
    with pytest.raises(OSError, match="disk full"):
        generate_initial(tmp_path, SMALL, dt.date(2024, 1, 31), registry=registry)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_batch_is_never_overwritten(tmp_path, registry):
    first = generate_daily(tmp_path, SMALL, dt.date(2024, 2, 1), registry=registry)
    before = _digests(first)
    with pytest.raises(batch_module.BatchError, match="already exists"):
        generate_daily(tmp_path, SMALL, dt.date(2024, 2, 1), registry=registry)
    assert _digests(first) == before


@pytest.mark.parametrize("patients", [1, 20, 300])
def test_tiny_networks_generate_complete_batches(tmp_path, registry, patients):
    network = NetworkSpec(seed=1, patients=patients, start_date=dt.date(2024, 1, 1))
    result = generate_initial(tmp_path, network, dt.date(2024, 1, 31), registry=registry)
    assert len(result.manifest["files"]) == len(registry.sources)
    assert all((result.path / entry["file"]).exists() for entry in result.manifest["files"])
