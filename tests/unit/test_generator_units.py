"""Pure pieces of the generator: NPI check digits, the physician on duty in a slot, ICD-10-CM chapters, partition
seeds, JSON lines, time zones, coverage lookups, MRNs, decimals from cents, a hospital's registered patients and
their age groups, bed planning (Erlang's loss formula, units merged by size, the occupancy band) and bed placement,
the write-behind landing files and the shared memory arena in which workers hand chunks over."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import random
import weakref
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import simple_icd_10_cm as icd

from generators import adt, capacity, facilities, providers, ratios, registration, scheduling
from generators.batch import Chunk, NetworkSpec, _hand_over, build_population
from generators.clinical import CASE_MIX, COMORBIDITIES, PLANNED_READMISSION_CODE
from generators.fastcodec import decimal_from_cents, iso_text, pick, repeated
from generators.icd10 import LONG_TAIL_FILE, chapters, is_billable, long_tail, long_tail_from_package
from generators.payers import Coverage
from generators.providers import Physicians, is_valid_npi, npi_check_digit
from generators.registration import Addresses, Moves, Patients, age_band, mrn
from generators.seeds import partition_rng
from generators.timeutil import iso_utc, skip_dst_gap, utc_seconds
from generators.writer import LandingFile, Slot, SlotArena, WriteBehind, encode_jsonl

pytestmark = pytest.mark.unit


def test_npi_check_digit_follows_the_cms_luhn_rule():
    # CMS's worked example: 123456789 with prefix 80840 has check digit 3.
    assert npi_check_digit(np.array([123456789]))[0] == 3
    assert is_valid_npi("1234567893")
    assert not is_valid_npi("1234567894")
    assert not is_valid_npi("323456789")


def test_chapter_map_agrees_with_the_package_on_a_sample():
    codes = chapters()
    sample = random.Random(3).sample(sorted(codes), 40)
    for code in sample:
        assert icd.is_leaf(code), code
        assert icd.get_ancestors(code)[-1] == codes[code], code
    assert codes["J18.9"] == "10"
    assert codes["O80"] == "15"


def test_the_stored_long_tail_codes_are_what_the_installed_package_gives():
    # If this fails after a package upgrade, regenerate the file: python -m generators.icd10
    stored = json.loads(LONG_TAIL_FILE.read_text(encoding="utf-8"))
    assert stored == long_tail_from_package()
    tail = long_tail(("4", "9"))
    assert tail.size > 1000 and all(is_billable(code) for code in tail[::50])
    assert list(tail) == sorted(tail) and {code[0] for code in tail} == {"E", "I"}


def test_every_coded_diagnosis_is_a_billable_icd10cm_code():
    for code in [dx.code for dx in CASE_MIX] + [code for code, _ in COMORBIDITIES] + [PLANNED_READMISSION_CODE]:
        assert is_billable(code), code


def test_partition_streams_depend_only_on_seed_and_key():
    first = partition_rng(1, "appointments", 0, "2024-01-01").random(3)
    again = partition_rng(1, "appointments", 0, "2024-01-01").random(3)
    other = partition_rng(1, "appointments", 1, "2024-01-01").random(3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_json_lines_escape_text_and_keep_numbers_and_nulls():
    table = pa.table(
        {
            "name": ['say "hi"', "back\\slash", None],
            "amount": pa.array([1.5, 2.25, 0.0]).cast(pa.decimal128(12, 2)),
            "history": ['[{"status":"paid"}]', "[]", "[]"],
        }
    )
    lines = bytes(encode_jsonl(table, frozenset({"history"}))).decode().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert parsed[0] == {"name": 'say "hi"', "amount": 1.5, "history": [{"status": "paid"}]}
    assert parsed[1]["name"] == "back\\slash"
    assert parsed[2]["name"] is None


def _local_times(year: int, size: int) -> np.ndarray:
    """Random local times of a year, plus every minute of both DST transition days in the US and Europe, and NaT."""
    rng = np.random.default_rng(year)
    start = np.datetime64(f"{year}-01-01T00:00:00")
    spread = start + rng.integers(0, 365 * 86_400, size).astype("timedelta64[s]")
    days = [f"{year}-03-10", f"{year}-03-31", f"{year}-11-03", f"{year}-10-27", f"{year}-03-09", f"{year}-11-02"]
    minutes = [np.arange(np.datetime64(f"{day}T00:00:00"), np.datetime64(f"{day}T06:00:00"), 60) for day in days]
    return np.concatenate([spread, *minutes, np.array(["NaT"], dtype="datetime64[s]")])


@pytest.mark.parametrize("timezone", ["America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_utc_conversion_and_dst_gap_agree_with_arrow_time_zones(timezone):
    local = np.concatenate([_local_times(2024, 20_000), _local_times(2025, 20_000)])
    arrow = pa.array(local)
    expected = pc.assume_timezone(arrow, timezone, ambiguous="earliest", nonexistent="latest").cast(pa.int64())
    assert pa.array(utc_seconds(local, timezone)).cast(pa.int64()).equals(expected)
    earliest = pc.assume_timezone(arrow, timezone, ambiguous="earliest", nonexistent="earliest").cast(pa.int64())
    in_gap = np.asarray(pc.fill_null(pc.not_equal(earliest, expected), False))
    assert in_gap.any() == (timezone != "Asia/Kolkata")  # Kolkata has no DST: no gap to skip
    moved = skip_dst_gap(local, timezone)
    assert np.array_equal(moved, np.where(in_gap, local + np.timedelta64(1, "h"), local), equal_nan=True)


def test_iso_utc_writes_zulu_timestamps_and_nulls():
    local = np.array(["2024-03-10T01:30:00", "2024-07-01T12:00:00", "NaT", "2024-11-03T01:30:00"], "datetime64[s]")
    assert iso_utc(local, "America/Chicago").to_pylist() == [
        "2024-03-10T07:30:00Z",  # CST, UTC-6
        "2024-07-01T17:00:00Z",  # CDT, UTC-5
        None,
        "2024-11-03T06:30:00Z",  # ambiguous hour: the earlier (CDT) instant
    ]
    outside = np.array(["1850-01-01T00:00:00", "NaT"], "datetime64[s]")  # before the lookup tables
    assert iso_utc(outside, "UTC").to_pylist() == ["1850-01-01T00:00:00Z", None]


def test_iso_text_from_lookup_tables_equals_arrows_formatting():
    rng = np.random.default_rng(12)
    low, high = np.datetime64("1900-01-01T00:00:00", "s"), np.datetime64("2100-12-31T23:59:59", "s")
    moments = low + rng.integers(0, (high - low).astype(np.int64) + 1, 100_000).astype("timedelta64[s]")
    moments = np.r_[moments, low, high, np.datetime64("NaT", "s"), np.datetime64("2024-02-29T23:59:59", "s")]
    arrow = pc.binary_replace_slice(
        pc.binary_replace_slice(pa.array(moments).cast(pa.string()), 10, 11, "T"), 19, 19, "Z"
    )
    assert iso_text(moments).equals(arrow.cast(pa.string()))
    assert iso_text(moments, " ", "").to_pylist()[-1] == "2024-02-29 23:59:59"
    assert iso_text(np.array(["2101-01-01T00:00:00"], "datetime64[s]")) is None


def test_plan_lookup_finds_the_segment_in_force_or_the_first_one():
    # Patient 0: plans 3 (from Jan) and 5 (from Jul); patient 1: plan 2 (from Mar); patient 2: 1, 4, 0.
    patient = np.array([0, 0, 1, 2, 2, 2])
    effective = np.array(
        ["2024-01-01", "2024-07-01", "2024-03-01", "2024-02-01", "2024-05-01", "2024-09-01"], "datetime64[D]"
    )
    plan = np.array([3, 5, 2, 1, 4, 0])
    nat = np.full(6, np.datetime64("NaT", "s"))
    coverage = Coverage(patient, np.zeros(6), plan, effective, nat, nat, np.searchsorted(patient, np.arange(4)))
    who = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    day = np.array(
        ["2024-06-30", "2024-07-01", "2023-12-01", "2024-01-01", "2024-12-31", "2024-01-15", "2024-05-01",
         "2024-08-31", "2024-09-01"], "datetime64[s]",
    )  # fmt: skip
    assert coverage.plan_on(who, day).tolist() == [3, 5, 3, 2, 2, 1, 4, 4, 0]


def test_mrns_are_formatted_for_any_patient_number():
    assert mrn(np.array([0, 99_999_998])).to_pylist() == ["MRN00000001", "MRN99999999"]
    assert mrn(np.array([41, 7, 41])).to_pylist() == ["MRN00000042", "MRN00000008", "MRN00000042"]
    assert mrn(np.array([], dtype=np.int64)).to_pylist() == []


def test_write_behind_landing_file_matches_a_direct_write_and_consumes_spilled_chunks(tmp_path):
    source = SimpleNamespace(
        name="demo__rows", system="demo", entity="rows", pattern="rows_*.csv", format="csv", delimiter=",",
        encoding="utf-8", header=True, column_names=["a", "b"], newline="\n",
    )  # fmt: skip
    chunks = [f"{i},{i * i}\n".encode() * 5_000 for i in range(40)]
    (tmp_path / "direct").mkdir()
    (tmp_path / "behind").mkdir()
    direct = LandingFile(tmp_path / "direct", source, dt.date(2024, 1, 1))
    sink = WriteBehind(depth=2)
    behind = LandingFile(tmp_path / "behind", source, dt.date(2024, 1, 1), sink)
    for index, chunk in enumerate(chunks):
        direct.append_encoded(chunk, 5_000)
        if index % 2:
            spilled = tmp_path / f"chunk-{index}"
            spilled.write_bytes(chunk)
            behind.append_spilled(spilled, 5_000)
        else:
            behind.append_encoded(chunk, 5_000)
    expected, got = direct.close(), behind.close()
    sink.stop()
    content = (tmp_path / "behind" / "rows_20240101.csv").read_bytes()
    assert content == (tmp_path / "direct" / "rows_20240101.csv").read_bytes()
    assert got == expected
    assert got["sha256"] == hashlib.sha256(content).hexdigest() and got["rows"] == 200_000
    assert not list(tmp_path.glob("chunk-*"))  # spilled chunks are deleted once copied


def test_write_behind_raises_a_write_error_in_the_caller(tmp_path):
    class Broken:
        def write_now(self, data: bytes) -> None:
            raise OSError(f"disk full while writing {len(data)} bytes to {tmp_path}")

    sink = WriteBehind()
    sink.put(Broken(), b"rows")
    with pytest.raises(OSError, match="disk full"):
        sink.drain()
    sink.stop()


def test_decimals_from_cents_equal_arrows_cast_value_for_value():
    rng = np.random.default_rng(4)
    cents = np.r_[rng.integers(-(10**11), 10**11, 50_000), 0, 1, -1, 5, -5, 99, -99, 100, -100, 10**12 - 1, 1 - 10**12]
    built = decimal_from_cents(cents)
    assert built.type == pa.decimal128(12, 2)
    assert built.equals(pa.array(cents / 100).cast(pa.decimal128(12, 2)))
    assert str(built[-2]) == "9999999999.99" and str(built[50_002]) == "-0.01"
    with pytest.raises(ValueError, match="do not fit decimal"):
        decimal_from_cents(np.array([10**12]))


def test_a_hospitals_registered_patients_do_not_depend_on_patients_registered_later():
    """Registration times are sorted only within a partition; the answer must be the brute-force one, and the
    same whether or not patients registered after the moment are in the world yet."""
    rng = np.random.default_rng(9)
    size = 5_000
    registered = np.r_[np.sort(rng.integers(0, 10**6, 3_000)), np.sort(rng.integers(0, 10**6, 2_000))]
    hospital = rng.integers(0, 3, size).astype(np.int16)

    def world(count: int) -> Patients:
        columns = {name: np.zeros(count) for name in Patients.__dataclass_fields__ if not name.startswith("_")}
        columns.update(
            registered_at=registered[:count].astype("datetime64[s]"), home_hospital=hospital[:count],
            address=Addresses(*[None] * len(Addresses.__dataclass_fields__)),
            moves=Moves(*[None] * len(Moves.__dataclass_fields__)),
        )  # fmt: skip
        return Patients(**columns)

    moment = np.datetime64(400_000, "s")
    for h in range(3):
        expected = np.flatnonzero((hospital == h) & (registered <= 400_000))
        assert expected.size > 100
        np.testing.assert_array_equal(world(size).home_patients(h, moment), expected)
        later = registered > 400_000
        shorter = int(np.flatnonzero(later)[-1])  # drop the last patient registered after the moment
        np.testing.assert_array_equal(world(shorter).home_patients(h, moment), expected)
    assert world(size).home_patients(7, moment).size == 0


def test_vocabulary_lookups_equal_converting_the_text():
    words = np.array(["Scheduled", "Completed", "No Show", "Café"], dtype=object)
    index = np.random.default_rng(5).integers(0, words.size, 10_000)
    assert pick(words, index).equals(pa.array(words[index], pa.string()))
    assert pick(pa.array(list(words)), index[:3]).to_pylist() == list(words[index[:3]])
    assert repeated("outpatient", 3).equals(pa.array(["outpatient"] * 3, pa.string()))
    assert len(repeated("x", 0)) == 0


def _arena(slots: int, slot_bytes: int) -> SlotArena:
    return SlotArena(slots, slot_bytes, multiprocessing.get_context("fork"))


def _rows_source(header: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        name="demo__rows", system="demo", entity="rows", pattern="rows_*.csv", format="csv", delimiter=",",
        encoding="utf-8", header=header, column_names=["a", "b"], newline="\n",
    )  # fmt: skip


def test_slot_arena_claims_runs_of_free_slots_without_waiting_and_reuses_freed_ones():
    arena = _arena(4, 16)
    first, second = arena.put(b"a" * 20), arena.put(memoryview(b"b" * 16))
    assert (first, second) == (Slot(0, 2, 20), Slot(2, 1, 16))
    assert arena.put(b"c" * 17) is None  # one slot free, two needed: no room right now
    assert arena.put(b"d" * 65) is None  # bigger than the arena
    with arena.view(first) as view:
        assert view == b"a" * 20
    arena.free(first)
    assert arena.put(b"e" * 32) == Slot(0, 2, 32)
    assert arena.put(b"f") == Slot(3, 1, 1)
    assert arena.put(b"g") is None


def test_a_forked_worker_hands_a_chunk_over_through_the_arena():
    context = multiprocessing.get_context("fork")
    arena = SlotArena(4, 1024, context)
    rows = b"rows from a worker\n" * 100  # 1,900 bytes: two slots
    worker = context.Process(target=arena.put, args=(rows,))
    worker.start()
    worker.join()
    assert worker.exitcode == 0
    assert arena.put(b"x" * 2048) == Slot(2, 2, 2048)  # the worker's claim is seen here
    with arena.view(Slot(0, 2, len(rows))) as view:
        assert view == rows


def test_a_chunk_finding_no_room_in_the_arena_is_spilled_to_a_file(tmp_path):
    arena = _arena(2, 16)
    data = [b"a" * 30, memoryview(b"b" * 40), b"c"]  # fits; bigger than the arena; arena full (no waiting)
    handed = [_hand_over(Chunk("demo", chunk, 5), arena, tmp_path / f".job-0-{n}") for n, chunk in enumerate(data)]
    assert handed[0].data == Slot(0, 2, 30)
    assert [chunk.data for chunk in handed[1:]] == [tmp_path / ".job-0-1", tmp_path / ".job-0-2"]
    assert (tmp_path / ".job-0-1").read_bytes() == b"b" * 40 and (tmp_path / ".job-0-2").read_bytes() == b"c"
    assert all(chunk.rows == 5 for chunk in handed)


@pytest.mark.parametrize("behind", [True, False], ids=["writer thread", "in place"])
def test_a_landing_file_writes_and_hashes_a_slots_bytes_as_a_direct_write_and_frees_it(tmp_path, behind):
    chunks = [f"{i},{i * i}\n".encode() * 5_000 for i in range(40)]  # 20-40 KB each
    arena = _arena(8, 64 << 10)
    (tmp_path / "direct").mkdir()
    (tmp_path / "slots").mkdir()
    direct = LandingFile(tmp_path / "direct", _rows_source(), dt.date(2024, 1, 1))
    sink = WriteBehind(depth=2) if behind else None
    handed = LandingFile(tmp_path / "slots", _rows_source(), dt.date(2024, 1, 1), sink)
    for index, chunk in enumerate(chunks):
        direct.append_encoded(chunk, 5_000)
        if index % 3:
            slot = arena.put(chunk)
            assert slot is not None  # at most the queue's two and the one being written are taken
            assert handed.append_slot(arena, slot, 5_000) == index * 5_000 + 1
        else:
            handed.append_encoded(chunk, 5_000)
    expected, got = direct.close(), handed.close()
    if sink is not None:
        sink.stop()
    content = (tmp_path / "slots" / "rows_20240101.csv").read_bytes()
    assert content == (tmp_path / "direct" / "rows_20240101.csv").read_bytes()
    assert got == expected
    assert got["sha256"] == hashlib.sha256(content).hexdigest() and got["bytes"] == len(content)
    assert arena.put(b"x" * (8 * 64 << 10)) == Slot(0, 8, 8 * 64 << 10)  # every slot was freed
    memory = weakref.ref(arena._memory)
    del arena
    assert memory() is None  # no view of the arena outlives the writes: it is unmapped with its last reference


def test_a_write_error_from_a_slot_is_raised_in_the_caller_and_the_slot_freed(tmp_path):
    class Full(LandingFile):
        def write_now(self, data: bytes | memoryview) -> None:
            raise OSError(f"disk full while writing {len(data)} bytes")

    arena = _arena(2, 16)
    sink = WriteBehind()
    landing = Full(tmp_path, _rows_source(header=False), dt.date(2024, 1, 1), sink)
    landing.append_slot(arena, arena.put(b"a" * 32), 1)
    with pytest.raises(OSError, match="disk full while writing 32 bytes"):
        sink.drain()
    sink.stop()
    assert arena.put(b"b" * 32) == Slot(0, 2, 32)


def test_erlang_loss_is_the_textbook_value_and_beds_for_loss_the_fewest_that_keep_under_it():
    # Erlang B(4 beds, load 3) = (3^4 / 4!) / sum(3^k / k!, k = 0..4) = 3.375 / 16.375.
    assert capacity.erlang_loss(4, 3.0) == pytest.approx(3.375 / 16.375)
    assert capacity.erlang_loss(0, 3.0) == 1.0
    beds = capacity.beds_for_loss(3.0, 0.05)
    assert capacity.erlang_loss(beds, 3.0) <= 0.05 < capacity.erlang_loss(beds - 1, 3.0)
    assert capacity.beds_for_loss(0.0, 0.05) == 1  # no demand: still one bed


def test_a_service_line_too_small_for_a_unit_of_its_own_is_cared_for_in_the_unit_it_merges_into():
    site = facilities.build_facilities(42, 10_000)  # a teaching hospital and a community hospital
    assert list(site.hospital_types) == ["teaching", "community"]
    # Mean census per (hospital, service line); a unit needs ratios.MIN_UNIT_BEDS beds' worth of it.
    growth = 1 + ratios.NEW_PATIENTS_PER_YEAR * 1.5
    unit = ratios.MIN_UNIT_BEDS * ratios.TARGET_OCCUPANCY / growth  # the least census that makes a unit
    demand = {(0, "MED"): 20.0, (0, "CARD"): 2 * unit, (0, "SURG"): 0.6 * unit, (0, "ORTH"): 0.3 * unit,
              (0, "PEDS"): 0.5 * unit, (1, "MED"): 4.0}  # fmt: skip
    units = capacity.plan_units(site, demand)
    assert set(units) == {(0, "MED"), (0, "CARD"), (1, "MED")}
    # Orthopedics into surgery, which is still too small: both, and pediatrics, into medicine.
    assert units[(0, "MED")] == round((20.0 + 1.4 * unit) * growth / ratios.TARGET_OCCUPANCY)
    assert units[(0, "CARD")] == round(2 * unit * growth / ratios.TARGET_OCCUPANCY)
    assert sum(units.values()) >= capacity.beds_for_loss(sum(demand.values()) * growth, ratios.MAX_TURNED_AWAY)
    staffed = site.with_units(units)
    department = dict(zip(staffed.department_ids, range(staffed.department_ids.size), strict=True))
    assert staffed.unit_index(0, "ORTH") == department["H001-MED"]
    assert staffed.unit_index(0, "CARD") == department["H001-CARD"]
    assert staffed.unit_index(1, "ICU") == department["H002-MED"]
    assert "H001-ORTH-CLN" in department and "H001-ORTH" not in department  # the clinic stays
    # A tiny network: the Erlang floor, not the occupancy target, sizes it; every unit has a bed.
    tiny = capacity.plan_units(site, {(0, "MED"): 2.0, (1, "MED"): 1.0})
    assert sum(tiny.values()) == capacity.beds_for_loss(3.0 * growth, ratios.MAX_TURNED_AWAY)
    assert min(capacity.plan_units(site, {}).values()) == 1


def test_a_band_holds_a_sampled_figure_up_to_two_standard_errors_and_an_exact_one_strictly():
    band = ratios.Band(0.11, 0.17, "~14%", "HCUP")
    assert band.holds(0.11) and band.holds(0.17) and not band.holds(0.109)
    assert not band.holds(0.10, standard_error=0.004)  # 0.11 - 2 x 0.004 = 0.102
    assert band.holds(0.10, standard_error=0.006) and band.holds(0.18, standard_error=0.006)


def test_occupancy_band_is_ahas_unless_the_network_is_too_small_to_reach_it():
    band = ratios.BANDS["bed_occupancy"]
    assert capacity.occupancy_band(20.0) == (band.low, band.high)
    low, high = capacity.occupancy_band(3.5)
    assert high == band.high
    assert low == pytest.approx(3.5 / capacity.beds_for_loss(3.5, ratios.GENEROUS_TURNED_AWAY))
    assert 3.5 / capacity.beds_for_loss(3.5, ratios.MAX_TURNED_AWAY) < band.low  # why it is relaxed


def test_beds_are_planned_from_the_year_before_the_start_whatever_the_worlds_horizon():
    start = dt.date(2024, 1, 1)
    site = facilities.build_facilities(3, 3_000)
    staffed = []
    for horizon in (dt.date(2024, 2, 29), dt.date(2025, 6, 30)):
        people = registration.build_patients(3, 3_000, start, horizon, site)
        staffed.append(capacity.staff_facilities(3, start, people, site))
    assert list(staffed[0].department_ids) == list(staffed[1].department_ids)
    assert list(staffed[0].department_beds) == list(staffed[1].department_beds)
    assert staffed[0].department_beds[staffed[0].department_inpatient].min() >= 1


def test_age_groups_are_the_brute_force_groups_and_ignore_patients_registered_later():
    start = dt.date(2024, 1, 1)
    site = facilities.build_facilities(5, 4_000)
    later = registration.build_patients(5, 4_000, start, dt.date(2025, 6, 30), site)
    earlier = registration.build_patients(5, 4_000, start, dt.date(2024, 7, 31), site)
    moment, day = np.datetime64("2024-07-01T00:00:00"), np.datetime64("2024-07-16")
    for hospital in range(site.hospital_ids.size):
        groups = later.home_patients_by_group(hospital, moment, day)
        registered = later.home_patients(hospital, moment)
        assert groups.count == registered.size > 100
        expected = np.where(later.sex[registered] == 0, 0, 1) * 5 + age_band(
            later, registered, np.full(registered.size, day)
        )
        for group in range(10):
            size = int(groups.sizes[group])
            picked = groups.pick(np.full(size, group), (np.arange(size) + 0.5) / max(size, 1))
            assert sorted(picked) == sorted(registered[expected == group]), group
            # The world built to an earlier horizon picks the same patients.
            same = earlier.home_patients_by_group(hospital, moment, day)
            np.testing.assert_array_equal(
                same.pick(np.full(size, group), (np.arange(size) + 0.5) / max(size, 1)), picked
            )


def test_a_patient_whose_unit_is_full_goes_to_another_unit_then_another_hospital_then_is_turned_away():
    site = facilities.build_facilities(42, 10_000).with_units({(0, "CARD"): 1, (0, "MED"): 1, (1, "MED"): 1})
    department = dict(zip(site.department_ids, range(site.department_ids.size), strict=True))
    heart_failure = [dx.code for dx in adt.DIAGNOSES].index("I50.9")
    size = 5
    candidate = {
        "admit_at": np.datetime64("2024-03-04T08:00:00") + np.arange(size) * np.timedelta64(1, "h"),
        "nights": np.array([3, 3, 3, 3, 0]),  # the last one goes home the same day
        "dx": np.full(size, heart_failure),
        "hospital": np.zeros(size, dtype=np.int64),
    }
    candidate["department"] = np.full(size, department["H001-CARD"])
    day = np.datetime64("2024-03-01", "D")
    placed, unit = adt._place(candidate, site, day, day + 30)
    assert placed.tolist() == [True, True, True, False, True]
    assert [site.department_ids[u] for u in unit[:3]] == ["H001-CARD", "H001-MED", "H002-MED"]


def test_the_physician_on_duty_before_a_slots_first_hire_is_that_slots_first_holder():
    # Slot 0: physician 0 until 2026-02-05, then physician 1. Slot 1: physician 2 from 2023-11-05.
    hired = np.array(["2003-09-15", "2026-02-05T06:24:06", "2023-11-05"], dtype="datetime64[s]")
    staff = Physicians(
        slot_department=np.array([0, 0]),
        physician_slot=np.array([0, 0, 1]),
        hired_at=hired,
        left_at=np.array(["2026-02-05T06:24:06", "NaT", "NaT"], dtype="datetime64[s]"),
        npi=np.array([1234567893, 1245319599, 1003000126]),
        first_name=np.array(["A", "B", "C"], dtype=object),
        last_name=np.array(["A", "B", "C"], dtype=object),
        female=np.zeros(3, dtype=bool),
    )
    moments = np.array(["2023-10-01", "2024-01-10", "2025-06-01", "2026-03-01", "2023-10-01"], dtype="datetime64[s]")
    # Before 2023-11-05 slot 1 had no one yet: its first holder, never slot 0's future hire (physician 1).
    assert staff.on_duty(np.array([0, 0, 0, 0, 1]), moments).tolist() == [0, 0, 0, 1, 2]
    assert staff.on_duty(np.array([1, 1]), moments[1:3]).tolist() == [2, 2]


def test_appointments_booked_before_their_clinic_physician_was_hired_stay_in_that_clinic_and_registry():
    # The 1m-patient network at seed 42 has a clinic slot first filled 2023-11-05, after January's earliest
    # bookings: they went to the previous slot's physician hired in 2026, whom the 2024-25 registry lacks.
    # Here every clinic slot's first holder joins 10 days after the start, before any replacement does.
    start, end = dt.date(2024, 1, 1), dt.date(2024, 3, 31)
    world = build_population(NetworkSpec(seed=7, patients=2_000, start_date=start), end, "America/Chicago")
    staff, site = world.physicians, world.facilities
    joined = np.datetime64(start, "s") + np.timedelta64(10, "D")
    slot = staff.physician_slot
    first = np.r_[True, slot[1:] != slot[:-1]]
    replaced_later = np.r_[~first[1:], False] & (np.r_[staff.hired_at[1:], joined] > joined)
    clinic = ~site.department_inpatient[staff.slot_department[slot]]
    moved = first & clinic & (~np.r_[~first[1:], False] | replaced_later)
    assert moved.sum() >= 5
    staff.hired_at = np.where(moved, joined, staff.hired_at)
    registry = set(providers.generate_physicians(staff, site, end, start).column("npi").to_pylist())
    for hospital in range(site.hospital_ids.size):
        booked = scheduling.generate_appointments(7, hospital, start, world.patients, site, staff, world.timezone)
        assert (booked.booked_at < joined).any()
        department = staff.slot_department[staff.physician_slot[booked.physician]]
        assert (department == booked.department).all(), site.hospital_ids[hospital]
        assert set(staff.npi[booked.physician].astype(str)) <= registry
