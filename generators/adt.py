"""ADT: inpatient admissions with case mix, seasonality, readmissions and bed capacity.

Candidates are drawn per (hospital, month); then one pass over the days places them in arrival order in a free
staffed bed at midnight: their unit's, another unit's of the same hospital, or another hospital's of the network,
and turns the rest away (ambulance diversion), so the midnight census never exceeds staffed beds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generators import casemix, icd10
from generators.clinical import (
    CASE_MIX,
    COMORBIDITIES,
    EXPIRED_DISPOSITION,
    OVERFLOW_LINES,
    PLANNED_READMISSION,
    TRANSFER_DISPOSITION,
)
from generators.facilities import Facilities
from generators.fastcodec import joined_text, pick
from generators.providers import Physicians
from generators.registration import Patients, age_band, mrn
from generators.seeds import partition_rng
from generators.timeutil import month_days, months_between, skip_dst_gap, weekday

DIAGNOSES = (*CASE_MIX, PLANNED_READMISSION)
DX_CODES = np.array([dx.code for dx in DIAGNOSES], dtype=object)
_PLANNED = len(CASE_MIX)
_KIND = np.array([dx.kind for dx in DIAGNOSES], dtype=object)
# Per-diagnosis flags, looked up by index (comparing object arrays of kinds costs ~30x more).
_SCHEDULED = np.isin(_KIND, ("elective", "planned", "delivery"))  # a narrower spread of length of stay
_ACUTE = _KIND == "acute"
_NOT_RETURNING_AS = np.isin(_KIND, ("elective", "delivery"))  # kinds a readmission is never given
_READMIT = np.array([dx.readmit for dx in DIAGNOSES])
_EXPIRE = np.array([dx.expire for dx in DIAGNOSES])
_LOS_MEDIAN = np.array([dx.los_median_days for dx in DIAGNOSES])
SERVICE_LINE = np.array([dx.service_line for dx in DIAGNOSES], dtype=object)
_ONCOLOGY = SERVICE_LINE == "ONC"
ADMISSION_TYPES = np.array(["Emergency", "Urgent", "Elective"], dtype=object)
_ELECTIVE_WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.06, 0.03])
_DISPOSITIONS = np.array(["01", "06", "03", "62", "50", "07", TRANSFER_DISPOSITION, EXPIRED_DISPOSITION])
# Discharge destinations for survivors, under 65 and 65+ (HCUP: SNF and home health rise with age).
_DISPOSITION_P = np.array([[0.84, 0.07, 0.02, 0.01, 0.005, 0.02, 0.025], [0.55, 0.18, 0.16, 0.04, 0.025, 0.01, 0.035]])


@dataclass
class Admissions:
    """All admissions of the network up to a horizon, sorted by admission time; local datetime64[s]."""

    admission_id: pa.Array
    patient: np.ndarray
    hospital: np.ndarray
    department: np.ndarray
    physician: np.ndarray
    dx: np.ndarray  # index into DIAGNOSES
    admission_type: np.ndarray  # index into ADMISSION_TYPES
    admit_at: np.ndarray
    discharge_at: np.ndarray
    disposition: np.ndarray  # index into _DISPOSITIONS
    secondary: pa.Array  # "^"-separated codes or null
    planned: np.ndarray  # bool: a planned readmission
    partition: np.ndarray  # index of the (hospital, month) partition that drew it
    row: np.ndarray  # row in that partition

    @property
    def nights(self) -> np.ndarray:
        """Midnights spent in hospital (HCUP length of stay)."""
        return (self.discharge_at.astype("datetime64[D]") - self.admit_at.astype("datetime64[D]")).astype(int)


@cache
def _month_volume_factor(hospital_type: str, month: int) -> float:
    shares = casemix.group_shares()
    base = season = 0.0
    for sex in (0, 1):
        for band in range(shares.shape[1]):
            weights = np.array([dx.weights[band] for dx in CASE_MIX]) * np.array(
                [line is not None for line in casemix.department_of(hospital_type)]
            )
            base += shares[sex, band] * weights.sum()
            season += shares[sex, band] * (weights * casemix.seasonal_factor(month)).sum()
    return season / base


def _arrival_times(rng: np.random.Generator, day: np.ndarray, planned: np.ndarray) -> np.ndarray:
    hour = np.where(planned, rng.uniform(6, 10, day.size), (rng.normal(15, 5, day.size) % 24))
    return day.astype("datetime64[s]") + (hour * 3600).astype("timedelta64[s]")


def draw_candidates(
    seed: int, hospital: int, month: dt.date, patients: Patients, facilities: Facilities, *,
    stream: str = "admissions", volume: float = 1.0,
) -> dict:  # fmt: skip
    """Admission candidates of one (hospital, month) partition before any bed limit: index stays, their
    readmissions, and each one's midnights; with the partition's generator (``rng``) for the draws that follow.
    Empty when the hospital has no registered patients yet.

    ``stream`` names the partition's random stream and ``volume`` multiplies its admission rate: bed planning
    (``capacity``) draws a large sample of the same process from a stream of its own."""
    rng = partition_rng(seed, stream, hospital, month.isoformat())
    kind_name = str(facilities.hospital_types[hospital])
    days = month_days(month)
    # The hospital's registered patients by sex and age band at mid-month.
    groups = patients.home_patients_by_group(hospital, np.datetime64(month, "s"), days[days.size // 2])
    if groups.count == 0:
        return {}
    expected = groups.count * casemix.admissions_per_patient_day() * days.size * volume
    count = int(rng.poisson(expected * _month_volume_factor(kind_name, month.month)))
    shares = casemix.group_shares().ravel()
    present = groups.sizes > 0
    chosen_group = rng.choice(10, count, p=shares * present / (shares * present).sum())
    patient = groups.pick(chosen_group, rng.random(count))
    dx = np.empty(count, dtype=np.int64)
    for g in np.unique(chosen_group):
        rows = np.flatnonzero(chosen_group == g)
        p = casemix.dx_probabilities(kind_name, int(g // 5), int(g % 5), month.month)
        dx[rows] = rng.choice(p.size, rows.size, p=p)
    kind = _KIND[dx]
    weekday_p = _ELECTIVE_WEEKDAY[weekday(days)]
    scheduled_day = days[rng.choice(days.size, count, p=weekday_p / weekday_p.sum())]
    any_day = days[rng.integers(0, days.size, count)]
    elective_delivery = (kind == "delivery") & (rng.random(count) < 0.3)
    day = np.where((kind == "elective") | elective_delivery, scheduled_day, any_day)
    admission_type = np.where(
        (kind == "elective") | elective_delivery,
        2,
        np.where((kind == "delivery") | (rng.random(count) < 0.15), 1, 0),
    )
    admit_at = _arrival_times(rng, day, admission_type == 2)
    readmit = _readmissions(rng, patient, dx, admit_at, kind_name, month)
    all_dx = np.concatenate([dx, readmit["dx"]])
    return {
        "patient": np.concatenate([patient, readmit["patient"]]),
        "dx": all_dx,
        "admission_type": np.concatenate([admission_type, readmit["admission_type"]]),
        "admit_at": np.concatenate([admit_at, readmit["admit_at"]]),
        "planned": np.concatenate([np.zeros(count, dtype=bool), readmit["planned"]]),
        "nights": _stay_nights(rng, all_dx),
        "rng": rng,
    }


def _stay_nights(rng: np.random.Generator, dx: np.ndarray) -> np.ndarray:
    sigma = np.where(_SCHEDULED[dx], 0.45, casemix.LOS_SIGMA)
    stay = _LOS_MEDIAN[dx] * casemix.LOS_SCALE * np.exp(rng.normal(0, 1, dx.size) * sigma)
    return np.floor(stay).clip(0, 364).astype(int)


def _readmissions(rng, patient, dx, admit_at, kind_name: str, month: dt.date) -> dict:
    """Returns of index candidates: unplanned within 30 days at the diagnosis' rate, some later, and planned
    chemotherapy stays after oncology admissions (CMS planned-readmission algorithm: always planned)."""
    nights = _stay_nights(np.random.default_rng(rng.integers(2**63)), dx)
    discharge_day = admit_at.astype("datetime64[D]") + nights.astype("timedelta64[D]")
    draw = rng.random(dx.size)
    early_rate = _READMIT[dx] * casemix.EARLY_RETURN_FACTOR
    early = draw < early_rate
    late = (draw >= early_rate) & (draw < early_rate + casemix.LATE_RETURN)
    planned = _ONCOLOGY[dx] & (rng.random(dx.size) < casemix.PLANNED_CHEMOTHERAPY)
    gap = np.where(early, 1 + (29 * rng.random(dx.size) ** 1.7).astype(int), rng.integers(31, 91, dx.size))
    gap = np.where(planned, rng.integers(14, 29, dx.size), gap)
    back = early | late | planned
    same_dx = rng.random(dx.size) < 0.5
    new_dx = np.where(same_dx | ~_ACUTE[dx], dx, dx[rng.permutation(dx.size)])
    new_dx = np.where(_NOT_RETURNING_AS[new_dx], dx, new_dx)
    new_dx = np.where(planned, _PLANNED, new_dx)
    day = discharge_day + gap.astype("timedelta64[D]")
    admission_type = np.where(planned, 2, np.where(rng.random(dx.size) < 0.2, 1, 0))
    admit = _arrival_times(rng, day, planned)
    return {
        "patient": patient[back],
        "dx": new_dx[back],
        "admission_type": admission_type[back],
        "admit_at": admit[back],
        "planned": planned[back],
    }


def build_admissions(
    seed: int, start: dt.date, horizon: dt.date, patients: Patients, facilities: Facilities, physicians: Physicians,
    timezone: str,
) -> tuple[Admissions, list[dict]]:  # fmt: skip
    """Every admission from ``start`` to ``horizon``, placed in a staffed bed or turned away (see ``_place``).

    Also returns the partitions' candidates (every attribute drawn per (hospital, month) partition, so an
    admission looks the same whatever the horizon); ``partition`` and ``row`` of each admission point there.
    """
    parts = []
    for month in months_between(start, horizon):
        for hospital in range(facilities.hospital_ids.size):
            candidate = draw_candidates(seed, hospital, month, patients, facilities)
            if not candidate or candidate["dx"].size == 0:
                continue
            size = candidate["dx"].size
            candidate["home"] = hospital  # the partition's hospital, whose emergency department saw the patient
            candidate["hospital"] = np.full(size, hospital)
            candidate["partition"] = np.full(size, len(parts))
            candidate["row"] = np.arange(size)
            candidate["month"] = month
            candidate["admit_at"] = skip_dst_gap(candidate["admit_at"], timezone)
            candidate["department"] = _route(facilities, candidate["hospital"], candidate["dx"])
            parts.append(candidate)
    if not parts:
        return _no_admissions(), parts
    columns = [key for key, value in parts[0].items() if isinstance(value, np.ndarray)]
    merged = {key: np.concatenate([part[key] for part in parts]) for key in columns}
    horizon_end = np.datetime64(horizon + dt.timedelta(days=1), "s")
    keep = (merged["admit_at"] < horizon_end) & (merged["admit_at"] >= np.datetime64(start, "s"))
    placed, department = _place({k: v[keep] for k, v in merged.items()}, facilities, np.datetime64(start, "D"),
                                np.datetime64(horizon, "D"))  # fmt: skip
    merged["department"][keep] = department
    merged["hospital"] = facilities.department_hospital[merged["department"]]
    keep[keep] = placed
    offset = 0
    for part in parts:
        size = part["dx"].size
        part["accepted"] = keep[offset : offset + size]
        part["department"] = merged["department"][offset : offset + size]
        part["hospital"] = merged["hospital"][offset : offset + size]
        offset += size
        _finish(part.pop("rng"), part, patients, physicians, timezone)
    merged.update({key: np.concatenate([part[key] for part in parts]) for key in ("discharge_at", "disposition",
                                                                                  "physician")})  # fmt: skip
    accepted = keep
    order = np.argsort(merged["admit_at"][accepted], kind="stable")
    flat = {key: value[accepted][order] for key, value in merged.items()}
    ids = pa.concat_arrays([part["admission_id"] for part in parts]).filter(pa.array(accepted))
    secondary = pa.concat_arrays([part["secondary"] for part in parts]).filter(pa.array(accepted))
    take = pa.array(order, pa.int64())
    admissions = Admissions(
        admission_id=ids.take(take),
        patient=flat["patient"],
        hospital=flat["hospital"],
        department=flat["department"],
        physician=flat["physician"],
        dx=flat["dx"],
        admission_type=flat["admission_type"],
        admit_at=flat["admit_at"],
        discharge_at=flat["discharge_at"],
        disposition=flat["disposition"],
        secondary=secondary.take(take),
        planned=flat["planned"],
        partition=flat["partition"],
        row=flat["row"],
    )
    return admissions, parts


def _no_admissions() -> Admissions:
    none, moments = np.array([], dtype=np.int64), np.array([], dtype="datetime64[s]")
    return Admissions(
        admission_id=pa.array([], pa.string()), patient=none, hospital=none, department=none, physician=none,
        dx=none, admission_type=none, admit_at=moments, discharge_at=moments, disposition=none,
        secondary=pa.array([], pa.string()), planned=np.array([], dtype=bool), partition=none, row=none,
    )  # fmt: skip


def _unit_table(facilities: Facilities, hospital: int, fallback: str | None = "MED") -> np.ndarray:
    """Inpatient unit of each diagnosis at a hospital: its service line's, or where that line's patients go there
    (-1 where the hospital does not treat it and ``fallback`` is None)."""
    kind = str(facilities.hospital_types[hospital])
    lines = [casemix.route(kind, dx.service_line) or fallback for dx in DIAGNOSES]
    return np.array([-1 if line is None else facilities.unit_index(hospital, line) for line in lines])


def _route(facilities: Facilities, hospital: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Inpatient unit of each stay at its hospital: the diagnosis' service line's, or the unit that takes it."""
    department = np.empty(dx.size, dtype=np.int64)
    for h in np.unique(hospital):
        rows = hospital == h
        department[rows] = _unit_table(facilities, int(h))[dx[rows]]
    return department


def _place(candidate: dict, facilities: Facilities, first: np.datetime64, last: np.datetime64) -> tuple:
    """Place stays in staffed beds day by day, in arrival order, so the midnight census never exceeds the beds.

    A patient goes to the unit of the diagnosis at the hospital that saw them; when it is full, to the adult
    medical or surgical unit of that hospital with the most free beds (an off-service placement); when the whole
    hospital is full, to another hospital of the network (its unit for the diagnosis, else its adult units; the
    largest hospital first); when the network is full, the patient is turned away (ambulance diversion) and the
    stay is not in the data. Same-day stays use no bed at midnight and always stay.
    Returns whether each candidate was placed and its unit (the first choice for those turned away).
    """
    day = (candidate["admit_at"].astype("datetime64[D]") - first).astype(int)
    nights = candidate["nights"]
    department = candidate["department"].copy()
    placed = nights == 0
    overnight = np.flatnonzero(nights > 0)
    order = overnight[np.lexsort((candidate["admit_at"][overnight], department[overnight], day[overnight]))]
    days_total = int((last - first).astype(int)) + 1
    group = day[order] * facilities.department_ids.size + department[order]
    rank = np.arange(order.size) - np.searchsorted(group, group, side="left")
    bounds = np.searchsorted(day[order], np.arange(days_total + 1))
    beds = facilities.department_beds.astype(np.int64)
    census = np.zeros(beds.size, dtype=np.int64)
    departures = np.zeros((days_total + 366, beds.size), dtype=np.int64)
    overflow = _Overflow(facilities, candidate["dx"], candidate["hospital"])
    for today in range(days_total):
        census -= departures[today]
        low, high = bounds[today], bounds[today + 1]
        if low == high:
            continue
        rows = order[low:high]
        admit = rank[low:high] < (beds - census)[department[rows]]
        admitted = rows[admit]
        census += np.bincount(department[admitted], minlength=beds.size)
        np.add.at(departures, (today + nights[admitted], department[admitted]), 1)
        full = rows[~admit]
        for row in full[np.argsort(candidate["admit_at"][full], kind="stable")]:
            unit = overflow.unit(int(row), beds - census)
            if unit >= 0:
                department[row] = unit
                admitted = np.append(admitted, row)
                census[unit] += 1
                departures[today + nights[row], unit] += 1
        placed[admitted] = True
    return placed, department


class _Overflow:
    """Where a patient whose unit is full goes: see ``_place``."""

    def __init__(self, facilities: Facilities, dx: np.ndarray, hospital: np.ndarray) -> None:
        self.dx, self.hospital = dx, hospital
        count = facilities.hospital_ids.size
        adult = facilities.department_inpatient & np.isin(facilities.department_line, OVERFLOW_LINES)
        self.adult_units = [np.flatnonzero(adult & (facilities.department_hospital == h)) for h in range(count)]
        # Treated-there units only: a hospital that does not treat a diagnosis (deliveries at a critical access
        # hospital) takes none of its patients.
        self.unit_of_dx = [_unit_table(facilities, h, fallback=None) for h in range(count)]
        by_size = np.argsort(-facilities.hospital_beds(), kind="stable")
        self.others = [[int(other) for other in by_size if other != h] for h in range(count)]

    def unit(self, row: int, free: np.ndarray) -> int:
        """The unit taking candidate ``row`` given the free beds per unit, or -1: turned away."""
        home = int(self.hospital[row])
        best = self._most_free(self.adult_units[home], free)
        if best >= 0:
            return best
        for other in self.others[home]:
            unit = int(self.unit_of_dx[other][self.dx[row]])
            if unit < 0:
                continue
            if free[unit] > 0:
                return unit
            best = self._most_free(self.adult_units[other], free)
            if best >= 0:
                return best
        return -1

    @staticmethod
    def _most_free(units: np.ndarray, free: np.ndarray) -> int:
        if units.size == 0:
            return -1
        best = int(units[np.argmax(free[units])])
        return best if free[best] > 0 else -1


def _finish(rng, part: dict, patients: Patients, physicians: Physicians, timezone: str) -> None:
    """Discharge, disposition, attending and secondary diagnoses of a partition's placed candidates."""
    size = part["dx"].size
    admit_at = part["admit_at"]
    nights = part["nights"]
    discharge_day = admit_at.astype("datetime64[D]") + nights.astype("timedelta64[D]")
    later = discharge_day.astype("datetime64[s]") + (rng.uniform(10, 19, size) * 3600).astype("timedelta64[s]")
    same_day_end = np.minimum(
        admit_at + (rng.uniform(4, 10, size) * 3600).astype("timedelta64[s]"),
        discharge_day.astype("datetime64[s]") + np.timedelta64(86_399, "s"),
    )
    part["discharge_at"] = skip_dst_gap(np.where(nights == 0, same_day_end, later), timezone)
    band = age_band(patients, part["patient"], admit_at.astype("datetime64[D]"))
    expired = rng.random(size) < _EXPIRE[part["dx"]] * np.where(band >= 4, 1.6, 1.0)
    cumulative = _DISPOSITION_P.cumsum(axis=1)[(band >= 3).astype(int)]
    survivor = (cumulative < rng.random(size)[:, None] * cumulative[:, -1:]).sum(axis=1)
    part["disposition"] = np.where(expired, _DISPOSITIONS.size - 1, survivor)
    department = part["department"]
    slots_start = np.searchsorted(physicians.slot_department, department, side="left")
    slots_count = np.searchsorted(physicians.slot_department, department, side="right") - slots_start
    slot = slots_start + (rng.random(size) * slots_count).astype(np.int64)
    part["physician"] = physicians.on_duty(slot, admit_at)
    part["secondary"] = _secondary_codes(rng, band)
    month = part["month"]
    prefix = f"E{part['home'] + 1:03d}{month:%Y%m}"
    number = part["row"] + 1
    part["admission_id"] = joined_text(prefix, (number, 5))


def _secondary_codes(rng: np.random.Generator, band: np.ndarray) -> pa.Array:
    """Up to six comorbidity codes per stay, mostly frequent ones, some from the long tail of the code list."""
    codes = np.array([code for code, _ in COMORBIDITIES], dtype=object)
    weights = np.array([weight for _, weight in COMORBIDITIES], dtype=np.float64)
    tail = icd10.long_tail(icd10.LONG_TAIL_CHAPTERS)
    count = np.minimum(rng.poisson(0.6 + 0.6 * band), 6)
    joined = pa.nulls(band.size, pa.string())
    for position in range(6):
        common = codes[rng.choice(codes.size, band.size, p=weights / weights.sum())]
        rare = tail[rng.integers(0, tail.size, band.size)]
        code = pa.array(np.where(rng.random(band.size) < 0.15, rare, common), pa.string())
        extended = code if position == 0 else pc.binary_join_element_wise(joined, code, "^")
        # pyarrow's null_handling="skip" drops all-null rows, so codes are appended one position at a time.
        joined = pc.if_else(pa.array(position < count), extended, joined)
    return joined


def admission_versions(
    admissions: Admissions, window_start: np.datetime64 | None, window_end: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a version in the window, and whether that version is the discharge."""
    discharged = admissions.discharge_at <= window_end
    admitted = admissions.admit_at <= window_end
    if window_start is not None:
        discharged &= admissions.discharge_at >= window_start
        admitted &= admissions.admit_at >= window_start
    rows = np.flatnonzero(discharged | admitted)
    return rows, discharged[rows]


def render_admissions(
    admissions: Admissions,
    rows: np.ndarray,
    discharged: np.ndarray,
    facilities: Facilities,
    physicians: Physicians,
) -> pa.Table:
    """Admission rows as the ADT feed writes them (discharge fields empty until discharge)."""
    take = pa.array(rows, pa.int64())
    discharge = np.where(discharged, admissions.discharge_at[rows], np.datetime64("NaT", "s"))
    disposition = np.where(discharged, _DISPOSITIONS[admissions.disposition[rows]], None)
    updated = np.where(discharged, admissions.discharge_at[rows], admissions.admit_at[rows])
    return pa.table(
        {
            "admission_id": admissions.admission_id.take(take),
            "mrn": mrn(admissions.patient[rows]),
            "attending_npi": pa.array(physicians.npi[admissions.physician[rows]]).cast(pa.string()),
            "hospital_id": pick(facilities.hospital_ids, admissions.hospital[rows]),
            "department_id": pick(facilities.department_ids, admissions.department[rows]),
            "admission_type": pick(ADMISSION_TYPES, admissions.admission_type[rows]),
            "admit_at": pa.array(admissions.admit_at[rows]),
            "discharge_at": pa.array(discharge),
            "principal_dx_code": pick(DX_CODES, admissions.dx[rows]),
            "secondary_dx_codes": admissions.secondary.take(take),
            "discharge_disposition": pa.array(disposition, pa.string()),
            "updated_at": pa.array(updated.astype("datetime64[s]")),
        }
    )
