"""Case mix arithmetic of the admission process: diagnoses by hospital type, sex, age and month."""

from __future__ import annotations

from functools import cache

import numpy as np

from generators import ratios
from generators.clinical import CASE_MIX, FALLBACK, HOSPITAL_TYPES, STAY_SHARE_BY_SEX_AGE

LOS_SIGMA = 0.72  # log-normal spread of length of stay: a long right tail, as in HCUP
LOS_SCALE = 1.32  # calibrates the case mix's median stays to HCUP's mean length of stay (~4.6 nights)
_WEIGHTS = np.array([dx.weights for dx in CASE_MIX], dtype=np.float64)  # (dx, band)
_SEASON = np.array([dx.season for dx in CASE_MIX])
_FEMALE_ONLY = np.array([dx.sex == "F" for dx in CASE_MIX])
# The returns of an index stay (adt._readmissions): an unplanned readmission within 30 days with probability
# EARLY_RETURN_FACTOR x the diagnosis' readmission rate (more than the rate itself: every stay is an index stay in
# the 30-day measure, and returns are not followed by returns of their own), else a later one (31-90 days) with
# LATE_RETURN; and after an oncology stay, a planned chemotherapy stay with PLANNED_CHEMOTHERAPY.
EARLY_RETURN_FACTOR = 1.55
LATE_RETURN = 0.05
PLANNED_CHEMOTHERAPY = 0.5
_READMIT = np.array([dx.readmit for dx in CASE_MIX])
_ONCOLOGY = np.array([dx.service_line == "ONC" for dx in CASE_MIX])


def seasonal_factor(month: int) -> np.ndarray:
    """Per-diagnosis multiplier for a calendar month: respiratory stays peak in January, bottom in July."""
    return np.clip(1.0 + _SEASON * np.cos(2 * np.pi * (month - 1) / 12), 0.05, None)


def route(hospital_type: str, service_line: str) -> str | None:
    """The service line that takes a patient of ``service_line`` at a hospital of this type (None: none)."""
    available = set(HOSPITAL_TYPES[hospital_type])
    line: str | None = service_line
    while line is not None and line not in available:
        line = FALLBACK.get(line)
    return line


@cache
def department_of(hospital_type: str) -> tuple[str | None, ...]:
    """Service line that treats each diagnosis at a hospital of this type (None: not treated there)."""
    return tuple(route(hospital_type, dx.service_line) for dx in CASE_MIX)


@cache
def dx_probabilities(hospital_type: str, sex: int, band: int, month: int) -> np.ndarray:
    """P(principal diagnosis | hospital type, sex (0 F, 1 M, 2 U), age band, month); read-only (cached)."""
    weights = _WEIGHTS[:, band] * seasonal_factor(month)
    weights = weights * np.array([line is not None for line in department_of(hospital_type)])
    if sex != 0:
        weights = weights * ~_FEMALE_ONLY
    total = weights.sum()
    return _read_only(weights / total if total > 0 else weights)


@cache
def group_shares() -> np.ndarray:
    """Share of stays by (sex, band) as a (2, 5) array: row 0 women, row 1 men; read-only (cached)."""
    shares = np.array([STAY_SHARE_BY_SEX_AGE["F"], STAY_SHARE_BY_SEX_AGE["M"]], dtype=np.float64)
    return _read_only(shares / shares.sum())


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@cache
def admissions_per_patient_day() -> float:
    """Index admissions per registered patient per day: with their returns (readmissions and planned stays) the
    network has ``ratios.ADMISSIONS_PER_PATIENT_YEAR`` stays per patient-year (returns per index stay averaged
    over a teaching hospital's case mix of a year)."""
    unplanned = np.minimum(1.0, _READMIT * EARLY_RETURN_FACTOR + LATE_RETURN)
    returns = unplanned + PLANNED_CHEMOTHERAPY * _ONCOLOGY * (1 - unplanned)
    shares = group_shares()
    mean_returns = sum(
        shares[sex, band] * float(dx_probabilities("teaching", sex, band, month) @ returns) / 12
        for sex in (0, 1)
        for band in range(shares.shape[1])
        for month in range(1, 13)
    )
    return ratios.ADMISSIONS_PER_PATIENT_YEAR / 365 / (1 + mean_returns)
