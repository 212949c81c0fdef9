"""Facilities master: the network's hospitals, their clinics and inpatient units (staffed by ``capacity``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from generators import ratios, vocab
from generators.clinical import (
    HOSPITAL_TYPE_CATCHMENT,
    HOSPITAL_TYPE_SHARE,
    HOSPITAL_TYPES,
    SERVICE_LINE_BY_CODE,
    UNIT_MERGE,
)
from generators.seeds import partition_rng

_NAME_STYLE = {
    "teaching": "University Medical Center",
    "community": ("Memorial Hospital", "Regional Medical Center", "Community Hospital", "General Hospital"),
    "critical_access": "Critical Access Hospital",
}


@dataclass
class Facilities:
    """Hospitals and departments as arrays (hospital index h, department index d)."""

    hospital_ids: np.ndarray
    hospital_names: np.ndarray
    hospital_types: np.ndarray
    hospital_city: np.ndarray  # index into cities
    zip3: np.ndarray
    hospital_zip: np.ndarray
    opened: np.ndarray  # datetime64[D]
    catchment: np.ndarray  # share of patients whose home hospital it is
    cities: np.ndarray  # cities_per_hospital names per hospital, flattened
    state_of_city: np.ndarray
    cities_per_hospital: int
    department_ids: np.ndarray
    department_hospital: np.ndarray
    department_line: np.ndarray  # service line code
    department_inpatient: np.ndarray  # bool
    department_beds: np.ndarray  # staffed beds (0 for clinics)

    def hospital_beds(self) -> np.ndarray:
        """Staffed beds per hospital."""
        return np.bincount(self.department_hospital, weights=self.department_beds, minlength=self.hospital_ids.size)

    def department_index(self, hospital: int, line: str, inpatient: bool) -> int:
        """Index of a hospital's department for a service line (-1 when it has none)."""
        match = np.flatnonzero(
            (self.department_hospital == hospital)
            & (self.department_line == line)
            & (self.department_inpatient == inpatient)
        )
        return int(match[0]) if match.size else -1

    def unit_index(self, hospital: int, line: str) -> int:
        """Index of the inpatient unit that takes a service line's patients at a hospital: the line's own unit, or
        the one it merges into (``clinical.UNIT_MERGE``) when the hospital has none for it."""
        index = self.department_index(hospital, line, True)
        while index < 0 and line in UNIT_MERGE:
            line = UNIT_MERGE[line]
            index = self.department_index(hospital, line, True)
        return index

    def with_units(self, units: dict[tuple[int, str], int]) -> Facilities:
        """These facilities with the inpatient units ``units`` ((hospital, service line) -> staffed beds) only."""
        return _with_departments(self, units)


def hospital_count(patients: int) -> int:
    """Hospitals in a network of this many patients."""
    return max(2, round(patients / ratios.PATIENTS_PER_HOSPITAL))


def build_facilities(seed: int, patients: int) -> Facilities:
    """Hospitals with types, places and catchments; their clinics, and an inpatient unit per service line with no
    staffed beds yet (``capacity.staff_facilities`` plans the units and their beds from the simulated demand)."""
    rng = partition_rng(seed, "facilities")
    count = hospital_count(patients)
    kinds = list(HOSPITAL_TYPE_SHARE)
    drawn = rng.choice(len(kinds), count - 1, p=list(HOSPITAL_TYPE_SHARE.values()))
    types = np.array(["teaching", *(kinds[i] for i in drawn)], dtype=object)
    per_hospital = 8
    cities = np.array(vocab.city_names(seed, count * per_hospital), dtype=object)
    states = np.array(vocab.NETWORK_STATES, dtype=object)[rng.integers(0, len(vocab.NETWORK_STATES), count)]
    ranges = vocab.state_zip_ranges()
    zips = np.array([rng.integers(ranges[state][0], ranges[state][1]) for state in states])
    catchment = np.array([HOSPITAL_TYPE_CATCHMENT[kind] for kind in types]) * rng.uniform(0.8, 1.2, count)
    catchment /= catchment.sum()
    names = []
    for index, kind in enumerate(types):
        style = _NAME_STYLE[kind]
        suffix = style if isinstance(style, str) else style[index % len(style)]
        names.append(f"{cities[index * per_hospital]} {suffix}")
    opened = np.datetime64("1950-01-01") + rng.integers(0, 60 * 365, count).astype("timedelta64[D]")
    unstaffed = {
        (index, code): 0
        for index, kind in enumerate(types)
        for code in HOSPITAL_TYPES[kind]
        if SERVICE_LINE_BY_CODE[code].inpatient
    }
    return _with_departments(
        Facilities(
            hospital_ids=np.array([f"H{i + 1:03d}" for i in range(count)], dtype=object),
            hospital_names=np.array(names, dtype=object),
            hospital_types=types,
            hospital_city=np.arange(count) * per_hospital,
            zip3=zips // 100,
            hospital_zip=zips,
            opened=opened,
            catchment=catchment,
            cities=cities,
            state_of_city=np.repeat(states, per_hospital),
            cities_per_hospital=per_hospital,
            department_ids=np.array([], dtype=object),
            department_hospital=np.array([], dtype=np.int64),
            department_line=np.array([], dtype=object),
            department_inpatient=np.array([], dtype=bool),
            department_beds=np.array([], dtype=np.int64),
        ),
        unstaffed,
    )


def _with_departments(facilities: Facilities, units: dict[tuple[int, str], int]) -> Facilities:
    """``facilities`` with its departments: per hospital and service line, the inpatient unit if ``units`` has one
    (with its staffed beds), then the clinic if the line has clinics."""
    dept_ids, dept_hospital, dept_line, dept_inpatient, dept_beds = [], [], [], [], []
    for index, kind in enumerate(facilities.hospital_types):
        for code in HOSPITAL_TYPES[str(kind)]:
            line = SERVICE_LINE_BY_CODE[code]
            if line.inpatient and (index, code) in units:
                dept_ids.append(f"H{index + 1:03d}-{code}")
                dept_hospital.append(index)
                dept_line.append(code)
                dept_inpatient.append(True)
                dept_beds.append(units[(index, code)])
            if line.clinic:
                dept_ids.append(f"H{index + 1:03d}-{code}-CLN")
                dept_hospital.append(index)
                dept_line.append(code)
                dept_inpatient.append(False)
                dept_beds.append(0)
    return replace(
        facilities,
        department_ids=np.array(dept_ids, dtype=object),
        department_hospital=np.array(dept_hospital, dtype=np.int64),
        department_line=np.array(dept_line, dtype=object),
        department_inpatient=np.array(dept_inpatient, dtype=bool),
        department_beds=np.array(dept_beds, dtype=np.int64),
    )


def generate_hospitals(facilities: Facilities, as_of: dt.date) -> pa.Table:
    """The hospitals extract."""
    beds = facilities.hospital_beds().astype(np.int64)
    city = facilities.hospital_city
    return pa.table(
        {
            "hospital_id": pa.array(facilities.hospital_ids, pa.string()),
            "hospital_name": pa.array(facilities.hospital_names, pa.string()),
            "hospital_type": pa.array(facilities.hospital_types, pa.string()),
            "city": pa.array(facilities.cities[city], pa.string()),
            "state": pa.array(facilities.state_of_city[city], pa.string()),
            "zip": pa.array([f"{z:05d}" for z in facilities.hospital_zip], pa.string()),
            "staffed_beds": pa.array(beds, pa.int32()),
            "opened_date": pa.array(facilities.opened).cast(pa.date32()),
            "updated_at": pa.array(np.full(beds.size, _extract_time(as_of))),
        }
    )


def generate_departments(facilities: Facilities, as_of: dt.date) -> pa.Table:
    """The departments extract."""
    names = [
        SERVICE_LINE_BY_CODE[line].name + ("" if inpatient else " Clinic")
        for line, inpatient in zip(facilities.department_line, facilities.department_inpatient, strict=True)
    ]
    lines = [SERVICE_LINE_BY_CODE[line].name for line in facilities.department_line]
    return pa.table(
        {
            "department_id": pa.array(facilities.department_ids, pa.string()),
            "hospital_id": pa.array(facilities.hospital_ids[facilities.department_hospital], pa.string()),
            "department_name": pa.array(names, pa.string()),
            "service_line": pa.array(lines, pa.string()),
            "is_inpatient": pa.array(facilities.department_inpatient, pa.bool_()),
            "staffed_beds": pa.array(facilities.department_beds, pa.int32()),
            "updated_at": pa.array(np.full(len(names), _extract_time(as_of))),
        }
    )


def _extract_time(as_of: dt.date) -> np.datetime64:
    # Master extracts are cut at 01:00 local on the morning after the day they describe.
    return np.datetime64(as_of + dt.timedelta(days=1), "s") + np.timedelta64(3600, "s")
