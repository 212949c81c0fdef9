"""Registration (EHR): the patient population, its address moves, and patient rows as the EHR extracts them.

Patients are held as integer arrays (indices into vocabularies); strings are rendered only for the rows a
batch writes, so a million patients cost tens of megabytes, not gigabytes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generators import ratios, vocab
from generators.clinical import AGE_BAND_EDGES
from generators.facilities import Facilities
from generators.fastcodec import pick
from generators.seeds import partition_rng
from generators.timeutil import SECONDS_PER_DAY, add_months, day_start, months_between

CHUNK = 50_000  # patients per partition of the initial population and of its yearly changes

# US resident population by 5-year age band, 0-4 ... 85-89, 90+ (Census 2020, share of total, %).
_AGE_PYRAMID = np.array([5.7, 6.0, 6.4, 6.4, 6.4, 6.9, 7.0, 6.6, 6.4, 6.0, 6.3, 6.4, 6.4, 5.6, 4.6, 3.1, 2.0,
                         1.2, 0.7])  # fmt: skip
_SEX_CODES = np.array(["F", "M", "U"], dtype=object)
# Days of age at which each age band above the first begins: age_years(days) >= edge exactly when days >= this.
_BAND_CUT_DAYS = np.array([-(-edge * 1461 // 4) for edge in AGE_BAND_EDGES[1:]], dtype=np.int64)


@dataclass
class Patients:
    """The patient population up to a horizon, as arrays indexed by patient number (0-based)."""

    sex: np.ndarray  # int8: 0 F, 1 M, 2 U
    birth_day: np.ndarray  # datetime64[D]
    registered_at: np.ndarray  # datetime64[s]
    home_hospital: np.ndarray  # int16 index into Facilities.hospitals
    first_name: np.ndarray  # int32 index into vocab.first_names(sex)
    last_name: np.ndarray
    phone: np.ndarray  # int64, ten digits
    ssn: np.ndarray  # int64, nine digits
    email_style: np.ndarray  # int8
    language: np.ndarray  # int8 index into vocab.LANGUAGES
    no_show_propensity: np.ndarray  # float32, a patient's latent tendency to miss appointments
    address: Addresses  # the address at registration
    moves: Moves  # later moves, sorted by (patient, moved_at)
    _by_hospital: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)
    _by_age: tuple[np.ndarray, ...] | None = field(default=None, init=False, repr=False)

    @property
    def count(self) -> int:
        """Patients registered up to the horizon."""
        return int(self.sex.size)

    def home_patients(self, hospital: int, moment: np.datetime64) -> np.ndarray:
        """Numbers of the patients of ``hospital`` registered at ``moment``.

        A mask, not a binary search: patient numbers follow registration only within a partition (and a
        newborn's registration is moved to the birth), and a search over an unsorted array would give an answer
        that depends on the array's length, i.e. on how far ahead the world was built."""
        if self._by_hospital is None:  # each hospital's patients in patient-number order, once per world
            order = np.argsort(self.home_hospital, kind="stable")
            bounds = np.searchsorted(self.home_hospital[order], np.arange(int(self.home_hospital.max(initial=0)) + 2))
            self._by_hospital = (order, bounds, self.registered_at[order])
        order, bounds, registered = self._by_hospital
        if hospital + 1 >= bounds.size:
            return order[:0]
        low, high = bounds[hospital], bounds[hospital + 1]
        return order[low:high][registered[low:high] <= moment]

    def home_patients_by_group(self, hospital: int, moment: np.datetime64, day: np.datetime64) -> HomeGroups:
        """The patients of ``hospital`` registered at ``moment``, grouped by sex and age band on ``day``.

        Group = 5 * (sex is not F) + age band (see ``age_band``). The patients are sorted once per world by
        (hospital, sex, birth day, patient number), so a month's groups are ranges found by binary search, not
        ages worked out for every patient; patients registered after ``moment`` are skipped, never counted, so
        they do not shift the others and a group's k-th patient does not depend on the world's horizon.
        """
        if self._by_age is None:
            male = self.sex != 0
            # One stable sort of a packed key (2x faster than lexsort): hospital, sex, days since 1970 (+2**20).
            key = self.home_hospital.astype(np.int64) << 22 | male.astype(np.int64) << 21
            order = np.argsort(key | (self.birth_day.astype(np.int64) + (1 << 20)), kind="stable")
            bounds = np.searchsorted(self.home_hospital[order], np.arange(int(self.home_hospital.max(initial=0)) + 2))
            self._by_age = (order, bounds, male[order], self.birth_day[order], self.registered_at[order])
        order, bounds, male, birth, registered = self._by_age
        low, high = (bounds[hospital], bounds[hospital + 1]) if hospital + 1 < bounds.size else (0, 0)
        male, birth = male[low:high], birth[low:high]
        # eligible_before[i]: eligible patients among the first i of the hospital's sorted patients.
        eligible_before = np.r_[0, np.cumsum(registered[low:high] <= moment)]
        # Born on or before day - cut[k]: at least AGE_BAND_EDGES[k] years old (age_years' arithmetic).
        cut = np.datetime64(day, "D") - _BAND_CUT_DAYS.astype("timedelta64[D]")
        split = int(np.searchsorted(male, True))
        starts, ends = [], []
        for first, last in ((0, split), (split, male.size)):
            # Oldest first: bands 4, 3, 2, 1, 0 end where the births pass the cuts for 80, 65, 45 and 18 years.
            bounds = np.r_[first, first + np.searchsorted(birth[first:last], cut[::-1], side="right"), last]
            starts += list(bounds[4::-1])  # bands 0..4
            ends += list(bounds[5:0:-1])
        first_count = eligible_before[np.array(starts)]
        return HomeGroups(order[low:high], eligible_before, first_count, eligible_before[np.array(ends)] - first_count)

    def age_years(self, index: np.ndarray, on: np.ndarray) -> np.ndarray:
        """Age in whole years of patients ``index`` on days ``on`` (within a day of the calendar age)."""
        days = (on.astype("datetime64[D]") - self.birth_day[index]).astype(np.int64)
        return days * 4 // 1461


@dataclass(frozen=True)
class HomeGroups:
    """A hospital's patients registered by a moment, by sex and age group (``Patients.home_patients_by_group``)."""

    patients: np.ndarray  # the hospital's patients in (sex, birth day, number) order, registered by then or not
    eligible_before: np.ndarray  # eligible_before[i]: patients registered by then among the first i
    first: np.ndarray  # per group (10): registered patients before the group
    sizes: np.ndarray  # per group (10): registered patients in the group

    @property
    def count(self) -> int:
        """Registered patients of the hospital."""
        return int(self.sizes.sum())

    def pick(self, group: np.ndarray, fraction: np.ndarray) -> np.ndarray:
        """Patient numbers: in each ``group``, the registered patient at ``fraction`` (0 <= f < 1) of its size."""
        rank = self.first[group] + (fraction * self.sizes[group]).astype(np.int64) + 1
        return self.patients[np.searchsorted(self.eligible_before, rank, side="left") - 1]


@dataclass
class Addresses:
    """Addresses as vocabulary indices."""

    number: np.ndarray  # house number
    street: np.ndarray  # index into vocab.street_words()[0]
    suffix: np.ndarray  # index into vocab.street_words()[1]
    city: np.ndarray  # index into Facilities.cities
    zip: np.ndarray  # five-digit ZIP as int


@dataclass
class Moves:
    """Address changes after registration."""

    patient: np.ndarray
    moved_at: np.ndarray  # datetime64[s]
    address: Addresses


_MRN_BLOCK = 65_536
_MRN_TABLE_LIMIT = 4_194_304  # ~60 MB of text; patient numbers beyond it are formatted on each call
_mrns: pa.Array = pa.array([], pa.string())  # MRNs of patient numbers 0..len-1, grown in blocks as needed


def _format_mrns(index: np.ndarray) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(index + 1).cast(pa.string()), 8, "0")
    return pc.binary_join_element_wise("MRN", digits, "")


def mrn(index: np.ndarray) -> pa.Array:
    """Medical record numbers for patient numbers: ``MRN`` and eight digits."""
    global _mrns
    index = np.asarray(index, dtype=np.int64)
    if index.size == 0:
        return pa.array([], pa.string())
    needed = int(index.max()) + 1
    if needed > len(_mrns):
        if needed > _MRN_TABLE_LIMIT:
            return _format_mrns(index)
        # Formatting costs ~40 ns a value, a lookup ~5: each MRN is formatted once per process (the batch builds
        # the table before forking its workers, which inherit it).
        _mrns = _format_mrns(np.arange(-(-needed // _MRN_BLOCK) * _MRN_BLOCK))
    return _mrns.take(pa.array(index))


def _draw_population(rng: np.random.Generator, size: int, facilities: Facilities) -> dict[str, np.ndarray]:
    sex = rng.choice(3, size=size, p=[0.505, 0.4935, 0.0015]).astype(np.int8)
    female = vocab.first_names("F")
    male = vocab.first_names("M")
    first = np.where(
        sex == 0, rng.choice(female.words.size, size, p=female.p), rng.choice(male.words.size, size, p=male.p)
    ).astype(np.int32)
    last = vocab.last_names()
    languages = np.array([share for _, share in vocab.LANGUAGES])
    return {
        "sex": sex,
        "first_name": first,
        "last_name": rng.choice(last.words.size, size, p=last.p).astype(np.int32),
        "home_hospital": rng.choice(len(facilities.catchment), size, p=facilities.catchment).astype(np.int16),
        "phone": rng.integers(2_000_000_000, 9_899_999_999, size, dtype=np.int64),
        "ssn": rng.integers(900_000_000, 999_999_999, size, dtype=np.int64),  # 9xx: never issued as an SSN
        "email_style": rng.integers(0, 4, size, dtype=np.int8),
        "language": rng.choice(languages.size, size, p=languages / languages.sum()).astype(np.int8),
        "no_show_propensity": rng.normal(0.0, 1.0, size).astype(np.float32),
    }


def draw_addresses(rng: np.random.Generator, hospital: np.ndarray, facilities: Facilities) -> Addresses:
    """Addresses near each patient's home hospital: mostly its ZIP3, a few elsewhere in its state or beyond."""
    size = hospital.size
    stems, suffixes = vocab.street_words()
    zip3 = facilities.zip3[hospital].astype(np.int64)
    elsewhere = rng.random(size)
    restricted = np.array(vocab.RESTRICTED_ZIP3, dtype=np.int64)
    zip3 = np.where(elsewhere < 0.12, zip3 + rng.integers(-3, 4, size), zip3)
    zip3 = np.where(elsewhere > 0.992, restricted[rng.integers(0, restricted.size, size)], zip3)
    zip3 = np.clip(zip3, 1, 999)
    city_slot = rng.integers(0, facilities.cities_per_hospital, size)
    return Addresses(
        number=rng.integers(1, 9_999, size, dtype=np.int32),
        street=rng.integers(0, stems.size, size, dtype=np.int32),
        suffix=rng.integers(0, suffixes.size, size, dtype=np.int16),
        city=(hospital.astype(np.int32) * facilities.cities_per_hospital + city_slot).astype(np.int32),
        zip=(zip3 * 100 + rng.integers(0, 100, size)).astype(np.int32),
    )


def _birth_days(rng: np.random.Generator, size: int, on: dt.date) -> np.ndarray:
    band = rng.choice(_AGE_PYRAMID.size, size, p=_AGE_PYRAMID / _AGE_PYRAMID.sum())
    width = np.where(band == _AGE_PYRAMID.size - 1, 12, 5)  # 90+ spans 90-101
    age_days = ((band * 5 + rng.random(size) * width) * 365.25).astype(np.int64)
    return np.datetime64(on, "D") - age_days.astype("timedelta64[D]")


def build_patients(seed: int, patients: int, start: dt.date, horizon: dt.date, facilities: Facilities) -> Patients:
    """Everyone registered up to ``horizon``: ``patients`` before ``start``, then monthly new registrations."""
    parts: list[dict[str, np.ndarray]] = []
    for chunk_start in range(0, patients, CHUNK):
        size = min(CHUNK, patients - chunk_start)
        rng = partition_rng(seed, "patients", chunk_start)
        part = _draw_population(rng, size, facilities)
        part["birth_day"] = _birth_days(rng, size, start)
        # Registered over the 15 years before the start (sorted, so patient numbers follow registration).
        seconds = np.sort(rng.integers(1, 15 * 365 * SECONDS_PER_DAY, size))[::-1]
        part["registered_at"] = day_start(start) - seconds.astype("timedelta64[s]")
        part["registered_at"] = np.maximum(part["registered_at"], part["birth_day"].astype("datetime64[s]"))
        part["address"] = draw_addresses(rng, part["home_hospital"], facilities)
        parts.append(part)
    for month in months_between(start, horizon):
        rng = partition_rng(seed, "new-patients", month.isoformat())
        days = (np.datetime64(add_months(month, 1)) - np.datetime64(month)).astype(int)
        size = int(rng.poisson(patients * ratios.NEW_PATIENTS_PER_YEAR * days / 365))
        part = _draw_population(rng, size, facilities)
        # Newly registered people are younger on average (births, people moving into the area).
        part["birth_day"] = _birth_days(rng, size, month)
        offsets = np.sort(rng.integers(8 * 3600, days * SECONDS_PER_DAY - 6 * 3600, size))
        part["registered_at"] = day_start(month) + offsets.astype("timedelta64[s]")
        part["birth_day"] = np.minimum(part["birth_day"], part["registered_at"].astype("datetime64[D]"))
        part["address"] = draw_addresses(rng, part["home_hospital"], facilities)
        parts.append(part)
    merged = {key: np.concatenate([part[key] for part in parts]) for key in parts[0] if key != "address"}
    address = Addresses(
        **{f: np.concatenate([getattr(p["address"], f) for p in parts]) for f in Addresses.__dataclass_fields__}
    )
    horizon_end = day_start(horizon + dt.timedelta(days=1))
    keep = merged["registered_at"] < horizon_end
    merged = {key: value[keep] for key, value in merged.items()}
    address = Addresses(**{f: getattr(address, f)[keep] for f in Addresses.__dataclass_fields__})
    moves = _moves(seed, start, horizon, merged["registered_at"], merged["home_hospital"], facilities)
    return Patients(address=address, moves=moves, **merged)


def _moves(
    seed: int,
    start: dt.date,
    horizon: dt.date,
    registered_at: np.ndarray,
    hospital: np.ndarray,
    facilities: Facilities,
) -> Moves:
    """Address moves per (patient chunk, year): each patient moves at a Poisson rate after registering."""
    patients, moments, addresses = [], [], []
    for year in range(start.year, horizon.year + 1):
        year_start = max(day_start(dt.date(year, 1, 1)), day_start(start))
        year_end = day_start(dt.date(year + 1, 1, 1))
        for chunk_start in range(0, registered_at.size, CHUNK):
            index = np.arange(chunk_start, min(chunk_start + CHUNK, registered_at.size))
            rng = partition_rng(seed, "moves", year, chunk_start)
            span = (year_end - year_start).astype(np.int64)
            # Draws are always CHUNK long, so a patient's moves do not depend on how full the chunk is yet.
            draw = rng.random(CHUNK)[: index.size]
            when = (year_start + rng.integers(0, span, CHUNK).astype("timedelta64[s]"))[: index.size]
            home = np.zeros(CHUNK, dtype=hospital.dtype)
            home[: index.size] = hospital[index]
            new_address = draw_addresses(rng, home, facilities)
            moving = (draw < ratios.ADDRESS_MOVES_PER_YEAR * span / (365 * SECONDS_PER_DAY)) & (
                when > registered_at[index]
            )
            patients.append(index[moving])
            moments.append(when[moving])
            addresses.append(Addresses(**{f: getattr(new_address, f)[: index.size][moving] for f in _ADDRESS_FIELDS}))
    patient = np.concatenate(patients)
    moved_at = np.concatenate(moments)
    order = np.lexsort((moved_at, patient))
    address = Addresses(
        **{f: np.concatenate([getattr(a, f) for a in addresses])[order] for f in Addresses.__dataclass_fields__}
    )
    return Moves(patient=patient[order], moved_at=moved_at[order], address=address)


_ADDRESS_FIELDS = tuple(Addresses.__dataclass_fields__)


def _band(ages: np.ndarray) -> np.ndarray:
    # One comparison per edge: 4x faster than a binary search per value over five edges.
    band = np.full(ages.shape, -1, dtype=np.int64)
    for edge in AGE_BAND_EDGES:
        band += ages >= edge
    return band


def age_band(population: Patients, index: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Age band (0..4, see clinical.AGE_BAND_EDGES) of patients on given days."""
    return _band(population.age_years(index, on))


def render_patients(
    population: Patients, facilities: Facilities, index: np.ndarray, move: np.ndarray, updated_at: np.ndarray
) -> pa.Table:
    """Patient rows as the EHR writes them: ``move`` is the row in ``population.moves`` (-1: original address)."""
    female, male = vocab.first_names("F"), vocab.first_names("M")
    stems, suffixes = vocab.street_words()
    sex = population.sex[index]
    name_index = population.first_name[index]
    first = np.where(
        sex == 0,
        female.words[np.minimum(name_index, female.words.size - 1)],
        male.words[np.minimum(name_index, male.words.size - 1)],
    )
    last = vocab.last_names().words[population.last_name[index]]
    moved = move >= 0
    safe_move = np.where(moved, move, 0)

    def address_field(field: str) -> np.ndarray:
        original = getattr(population.address, field)[index]
        if population.moves.patient.size == 0:
            return original
        return np.where(moved, getattr(population.moves.address, field)[safe_move], original)

    number, street, suffix, city, zips = (address_field(f) for f in ("number", "street", "suffix", "city", "zip"))
    first_arr = pa.array(first, pa.string())
    last_arr = pa.array(last, pa.string())
    street_line = pc.binary_join_element_wise(
        pa.array(number).cast(pa.string()), pa.array(stems[street]), pa.array(suffixes[suffix]), " "
    )
    phone = population.phone[index]
    phone_text = pc.binary_join_element_wise(
        pa.array(phone // 10_000_000).cast(pa.string()),
        pc.utf8_lpad(pa.array(phone // 10_000 % 1_000).cast(pa.string()), 3, "0"),
        pc.utf8_lpad(pa.array(phone % 10_000).cast(pa.string()), 4, "0"),
        "-",
    )
    ssn = population.ssn[index]
    ssn_text = pc.binary_join_element_wise(
        pa.array(ssn // 1_000_000).cast(pa.string()),
        pc.utf8_lpad(pa.array(ssn // 10_000 % 100).cast(pa.string()), 2, "0"),
        pc.utf8_lpad(pa.array(ssn % 10_000).cast(pa.string()), 4, "0"),
        "-",
    )
    return pa.table(
        {
            "mrn": mrn(index),
            "first_name": first_arr,
            "last_name": last_arr,
            "sex": pick(_SEX_CODES, sex),
            "birth_date": pa.array(population.birth_day[index]).cast(pa.date32()),
            "address_line": street_line,
            "city": pick(facilities.cities, city),
            "state": pick(facilities.state_of_city, city),
            "zip": pc.utf8_lpad(pa.array(zips).cast(pa.string()), 5, "0"),
            "phone": phone_text,
            "email": _emails(first_arr, last_arr, population.email_style[index], phone),
            "ssn": ssn_text,
            "preferred_language": pa.array(
                np.array([name for name, _ in vocab.LANGUAGES], dtype=object)[population.language[index]],
                pa.string(),
            ),
            "home_hospital_id": pick(facilities.hospital_ids, population.home_hospital[index]),
            "registered_at": pa.array(population.registered_at[index]),
            "updated_at": pa.array(updated_at.astype("datetime64[s]")),
        }
    )


def _emails(first: pa.Array, last: pa.Array, style: np.ndarray, phone: np.ndarray) -> pa.Array:
    domains = vocab.email_domains()
    domain = pa.array(domains[phone % domains.size], pa.string())
    lower_first, lower_last = pc.utf8_lower(first), pc.utf8_lower(last)
    suffix = pa.array(phone % 100).cast(pa.string())
    local = pc.case_when(
        pc.make_struct(pa.array(style == 0), pa.array(style == 1), pa.array(style == 2)),
        pc.binary_join_element_wise(lower_first, lower_last, "."),
        pc.binary_join_element_wise(lower_first, lower_last, ""),
        pc.binary_join_element_wise(pc.utf8_slice_codeunits(lower_first, 0, 1), lower_last, suffix, ""),
        pc.binary_join_element_wise(lower_last, lower_first, suffix, "."),
    )
    return pc.binary_join_element_wise(local, domain, "@")


def versions_in_window(
    population: Patients, window_start: np.datetime64 | None, window_end: np.datetime64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patients whose record changed in the window, with the latest version in it.

    With no ``window_start`` (an initial batch) every patient registered by ``window_end`` is sent as of then.
    Returns (patient index, move row or -1, updated_at).
    """
    moves = population.moves
    in_window = moves.moved_at <= window_end
    if window_start is not None:
        in_window &= moves.moved_at >= window_start
    move_rows = np.flatnonzero(in_window)
    # Latest move per patient within the window (moves are sorted by patient, then time).
    moved = moves.patient[move_rows]
    move_rows = move_rows[np.r_[moved[1:] != moved[:-1], True][: moved.size]]
    registered = population.registered_at <= window_end
    if window_start is not None:
        registered &= population.registered_at >= window_start
    new_index = np.flatnonzero(registered)
    index = np.concatenate([new_index, moves.patient[move_rows]])
    move = np.concatenate([np.full(new_index.size, -1), move_rows])
    updated = np.concatenate([population.registered_at[new_index], moves.moved_at[move_rows]])
    order = np.lexsort((updated, index))
    index, move, updated = index[order], move[order], updated[order]
    last = np.r_[index[1:] != index[:-1], True][: index.size]
    return index[last], move[last], updated[last]
