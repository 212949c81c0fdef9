"""Case mix arithmetic shared by facilities (bed sizing) and ADT (sampling diagnoses)."""

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
# Mean midnights per stay: nights are the log-normal stay rounded down, hence the half night less.
MEAN_LOS_DAYS = np.array([dx.los_median_days for dx in CASE_MIX]) * LOS_SCALE * np.exp(LOS_SIGMA**2 / 2) - 0.5
MEAN_READMIT = float(np.mean([dx.readmit for dx in CASE_MIX]))


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


def dx_probabilities(hospital_type: str, sex: int, band: int, month: int) -> np.ndarray:
    """P(principal diagnosis | hospital type, sex (0 F, 1 M, 2 U), age band, month)."""
    weights = _WEIGHTS[:, band] * seasonal_factor(month)
    weights = weights * np.array([line is not None for line in department_of(hospital_type)])
    if sex != 0:
        weights = weights * ~_FEMALE_ONLY
    total = weights.sum()
    return weights / total if total > 0 else weights


def group_shares() -> np.ndarray:
    """Share of stays by (sex, band) as a (2, 5) array: row 0 women, row 1 men."""
    shares = np.array([STAY_SHARE_BY_SEX_AGE["F"], STAY_SHARE_BY_SEX_AGE["M"]], dtype=np.float64)
    return shares / shares.sum()


def expected_census(hospital_type: str, admissions_per_day: float) -> dict[str, float]:
    """Expected midnight census per service line of a hospital, for sizing its staffed beds."""
    census: dict[str, float] = {}
    shares = group_shares()
    for sex in (0, 1):
        for band in range(shares.shape[1]):
            for month in range(1, 13):
                p = dx_probabilities(hospital_type, sex, band, month)
                for dx_index, line in enumerate(department_of(hospital_type)):
                    if line is None or p[dx_index] == 0:
                        continue
                    stays = admissions_per_day * shares[sex, band] * p[dx_index] / 12
                    census[line] = census.get(line, 0.0) + stays * MEAN_LOS_DAYS[dx_index]
    return census


def admissions_per_patient_day() -> float:
    """Index admissions per registered patient per day; readmissions come on top of these."""
    return ratios.ADMISSIONS_PER_PATIENT_YEAR / 365 / (1 + MEAN_READMIT * 0.8)
