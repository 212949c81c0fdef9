"""Provider registry: physicians with valid NPIs, their departments, hires and departures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from generators import ratios, vocab
from generators.clinical import SERVICE_LINE_BY_CODE
from generators.facilities import Facilities
from generators.seeds import partition_rng
from generators.timeutil import SECONDS_PER_DAY, day_start

ANNUAL_TURNOVER = 0.06  # share of physicians who leave a year; the slot is filled by a new hire
_CLINIC_VISITS_PER_PHYSICIAN_YEAR = 3_500


@dataclass
class Physicians:
    """Physician slots of each department and the physicians holding them over time."""

    slot_department: np.ndarray  # per slot
    physician_slot: np.ndarray  # per physician, sorted by (slot, hired)
    hired_at: np.ndarray  # datetime64[s]
    left_at: np.ndarray  # datetime64[s], NaT while employed
    npi: np.ndarray  # int64, 10 digits
    first_name: np.ndarray
    last_name: np.ndarray
    female: np.ndarray

    def on_duty(self, slot: np.ndarray, moment: np.ndarray) -> np.ndarray:
        """Index of the physician holding each slot at each moment (its first holder before anyone held it)."""
        key = self.physician_slot.astype(np.int64) * 10**11 + self.hired_at.astype(np.int64)
        query = slot.astype(np.int64) * 10**11 + moment.astype("datetime64[s]").astype(np.int64)
        # A moment before the slot's first hire (a booking made weeks before its physician joined) finds the
        # previous slot's last physician, of another clinic and perhaps hired after the batch: keep it in its slot.
        first = np.searchsorted(self.physician_slot, slot, side="left")
        return np.maximum(np.searchsorted(key, query, side="right") - 1, first)

    def roster(self, moment: np.datetime64) -> np.ndarray:
        """Physicians employed at ``moment``."""
        employed = (self.hired_at <= moment) & (np.isnat(self.left_at) | (self.left_at > moment))
        return np.flatnonzero(employed)


def npi_check_digit(base: np.ndarray) -> np.ndarray:
    """Luhn check digit of 9-digit NPI bases, with the 80840 prefix (its digits add a constant 24)."""
    digits = (base[:, None] // 10 ** np.arange(8, -1, -1)) % 10  # d1..d9
    doubled = digits[:, ::2] * 2  # d1, d3, d5, d7, d9: every other digit counted from the right
    total = (doubled // 10 + doubled % 10).sum(axis=1) + digits[:, 1::2].sum(axis=1) + 24
    return (10 - total % 10) % 10


def is_valid_npi(npi: str) -> bool:
    """Whether a 10-digit string is a valid NPI (the CMS Luhn rule)."""
    if len(npi) != 10 or not npi.isdigit() or npi[0] not in "12":
        return False
    return int(npi_check_digit(np.array([int(npi[:9])]))[0]) == int(npi[9])


def _splitmix(values: np.ndarray) -> np.ndarray:
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _npis(seed: int, slot: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    # A physician's NPI depends only on (seed, slot, ordinal), so it is stable as the horizon grows.
    with np.errstate(over="ignore"):
        salt = np.zeros(slot.size, dtype=np.uint64)
        while True:
            mixed = _splitmix(np.uint64(seed) * np.uint64(1_000_003) + slot * np.uint64(4096) + ordinal + salt)
            base = (100_000_000 + mixed % np.uint64(100_000_000)).astype(np.int64)
            _, first = np.unique(base, return_index=True)
            clash = np.ones(base.size, dtype=bool)
            clash[first] = False
            if not clash.any():
                return base * 10 + npi_check_digit(base)
            salt[clash] += np.uint64(7_919)


def build_physicians(seed: int, patients: int, start: dt.date, horizon: dt.date, facilities: Facilities) -> Physicians:
    """Slots sized to beds and clinic volume; yearly turnover after ``start``."""
    rng = partition_rng(seed, "physician-slots")
    clinic_share = np.where(facilities.department_line == "PC", 0.55, 0.07)
    hospital_patients = patients * facilities.catchment[facilities.department_hospital]
    visits = hospital_patients * ratios.VISITS_PER_PATIENT_YEAR * clinic_share
    slots = np.where(
        facilities.department_inpatient,
        np.maximum(1, np.round(facilities.department_beds / 5)),
        np.maximum(1, np.round(visits / _CLINIC_VISITS_PER_PHYSICIAN_YEAR)),
    ).astype(np.int64)
    slot_department = np.repeat(np.arange(slots.size), slots)
    total = slot_department.size
    first_hired = day_start(start) - rng.integers(30, 25 * 365, total).astype("timedelta64[D]").astype("timedelta64[s]")
    slot_ids, hires = [np.arange(total)], [first_hired]
    for year in range(start.year, horizon.year + 1):
        year_rng = partition_rng(seed, "physician-turnover", year)
        leaving = np.flatnonzero(year_rng.random(total) < ANNUAL_TURNOVER)
        offset = year_rng.integers(0, 365 * SECONDS_PER_DAY, leaving.size).astype("timedelta64[s]")
        when = max(day_start(dt.date(year, 1, 1)), day_start(start)) + offset
        slot_ids.append(leaving)
        hires.append(when)
    slot = np.concatenate(slot_ids)
    hired = np.concatenate(hires)
    keep = hired <= day_start(horizon + dt.timedelta(days=1))
    slot, hired = slot[keep], hired[keep]
    order = np.lexsort((hired, slot))
    slot, hired = slot[order], hired[order]
    same_slot_next = np.r_[slot[1:] == slot[:-1], False]
    left = np.where(same_slot_next, np.r_[hired[1:], hired[:1]], np.datetime64("NaT", "s"))
    ordinal = np.arange(slot.size) - np.searchsorted(slot, slot, side="left")
    # Per-physician hashes, not a shared stream: a physician's name must not change as the horizon grows.
    draws = [_hash_uniform(seed + salt * 2_147_483_647, slot, ordinal) for salt in (0, 1, 2)]
    female = draws[2] < 0.45
    women, men, last = vocab.first_names("F"), vocab.first_names("M"), vocab.last_names()
    first_name = np.where(
        female,
        women.words[np.searchsorted(np.cumsum(women.p), draws[0] * 0.9999)],
        men.words[np.searchsorted(np.cumsum(men.p), draws[0] * 0.9999)],
    )
    last_name = last.words[np.searchsorted(np.cumsum(last.p), draws[1] * 0.9999)]
    return Physicians(
        slot_department=slot_department,
        physician_slot=slot,
        hired_at=hired,
        left_at=left,
        npi=_npis(seed, slot.astype(np.uint64), ordinal.astype(np.uint64)),
        first_name=first_name,
        last_name=last_name,
        female=female,
    )


def _hash_uniform(seed: int, slot: np.ndarray, ordinal: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        mixed = _splitmix(np.uint64(seed) + slot.astype(np.uint64) * np.uint64(65_537) + ordinal.astype(np.uint64))
    return (mixed % np.uint64(1_000_000)).astype(np.float64) / 1_000_000


def generate_physicians(physicians: Physicians, facilities: Facilities, as_of: dt.date, since: dt.date) -> pa.Table:
    """The provider registry's roster as of the end of ``as_of``: everyone employed at any time since ``since``,
    departed physicians with their termination date (so every NPI in the history resolves)."""
    moment = day_start(as_of + dt.timedelta(days=1))
    left = physicians.left_at
    departed = ~np.isnat(left) & (left < moment)
    roster = np.flatnonzero((physicians.hired_at < moment) & (~departed | (left >= day_start(since))))
    department = physicians.slot_department[physicians.physician_slot[roster]]
    specialty = [SERVICE_LINE_BY_CODE[line].specialty for line in facilities.department_line[department]]
    gone = departed[roster]
    termination = np.where(gone, left[roster].astype("datetime64[D]"), np.datetime64("NaT", "D"))
    updated = np.where(gone, left[roster], physicians.hired_at[roster])
    return pa.table(
        {
            "npi": pa.array(physicians.npi[roster]).cast(pa.string()),
            "first_name": pa.array(physicians.first_name[roster], pa.string()),
            "last_name": pa.array(physicians.last_name[roster], pa.string()),
            "specialty": pa.array(specialty, pa.string()),
            "department_id": pa.array(facilities.department_ids[department], pa.string()),
            "hospital_id": pa.array(facilities.hospital_ids[facilities.department_hospital[department]], pa.string()),
            "hire_date": pa.array(physicians.hired_at[roster].astype("datetime64[D]")).cast(pa.date32()),
            "termination_date": pa.array(termination).cast(pa.date32()),
            "updated_at": pa.array(updated.astype("datetime64[s]")),
        }
    )
