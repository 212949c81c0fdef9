"""Volumes and published figures the generator is calibrated to. Every volume scales with ``--patients``.

Sources (see docs/generator.md for the bands the tests check):
- HCUP Statistical Brief #225/#277 (AHRQ): mean length of stay ~4.5-4.7 days, long right tail; about 56% of
  stays are women's; stays of people 65+ are ~40-45% of all; Medicare + Medicaid pay for ~60% of stays.
- HCUP Statistical Brief #248 and CMS HRRP: all-cause 30-day readmission rate ~14%.
- Dantas et al. (2018), "No-shows in appointment scheduling - a systematic literature review", Health Policy
  122(4): mean no-show rate 23% (North America ~24%); lead time and prior no-shows are the strongest predictors.
- Change Healthcare / AHA (2020-2023) denial indices: initial denial rate ~10-12% of claims.
- AHA Hospital Statistics: staffed-bed occupancy of US community hospitals ~65-80%; small and rural hospitals are
  emptier (HFMA 2018, "Acute care and critical access hospital occupancy rate variability by location").
- CDC FluView / HCUP: respiratory admissions peak December-February.

``BANDS`` is the one definition of the bands: the generator's realism tests (landing files) and the marts'
(``tests/integration/test_realism_marts.py``) both check them, and docs/generator.md lists them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Network size.
PATIENTS_PER_HOSPITAL = 60_000  # hospitals = max(2, round(patients / this))
NEW_PATIENTS_PER_YEAR = 0.06  # new registrations per registered patient per year

# Encounter volumes per registered patient per year (age-weighted, see registration.AGE_BANDS).
ADMISSIONS_PER_PATIENT_YEAR = 0.12
VISITS_PER_PATIENT_YEAR = 3.2

# Inpatient capacity (generators/capacity.py): planned from the demand of the year before the start.
TARGET_OCCUPANCY = 0.74  # a unit's staffed beds are sized so its planned midnight census fills this share
MIN_UNIT_BEDS = 4  # a service line whose demand fills fewer beds has no unit of its own (a four-bed ICU is small)
MAX_TURNED_AWAY = 0.05  # the network has at least the beds that turn away at most this share (Erlang B)
GENEROUS_TURNED_AWAY = 0.01  # a network staffed to turn away only this share is as empty as plausible
PLANNING_SAMPLE_STAYS = 50_000  # index stays simulated to estimate the demand beds are planned for

# Changes to existing records, per patient per year.
ADDRESS_MOVES_PER_YEAR = 0.09
COVERAGE_CHANGES_PER_YEAR = 0.10

# Scheduling.
CANCELLATION_RATE = 0.11

# Claims: initial denial probability by payer type (weighted mean ~11.5%).
DENIAL_RATE_BY_PAYER_TYPE = {"medicare": 0.09, "medicaid": 0.16, "commercial": 0.115}
APPEAL_RATE = 0.6
APPEAL_OVERTURN_RATE = 0.55


@dataclass(frozen=True)
class Band:
    """A published figure and the band the simulated network's KPI must fall in (bounds included)."""

    low: float
    high: float
    published: str
    source: str

    def holds(self, value: float, standard_error: float = 0.0) -> bool:
        """Whether ``value`` is in the band, up to two standard errors of the sample it was measured on.

        A KPI measured on n events carries sampling noise no model removes: a share of ~500 stays (a 2,000-patient
        network's two years) is uncertain by +-4 points at two standard errors, a share of 25,000 stays by +-0.6.
        """
        margin = 2 * standard_error
        return self.low - margin <= value <= self.high + margin


BANDS = {
    "average_length_of_stay": Band(4.0, 5.2, "~4.6 nights", "HCUP SB #225"),
    # The tail: the 99th percentile of nights over the mean (and the median below the mean).
    "length_of_stay_p99_to_mean": Band(3.0, math.inf, "long right tail", "HCUP SB #225"),
    "readmission_rate": Band(0.11, 0.17, "~14%", "HCUP SB #248, CMS HRRP"),
    "no_show_rate": Band(0.20, 0.25, "23%", "Dantas et al. 2018"),
    # No-show rate of bookings made more than 30 days ahead minus that of bookings within 7 days.
    "no_show_long_minus_short_lead": Band(0.04, 1.0, "lead time raises no-shows", "Dantas et al. 2018"),
    # No-show rate of patients who missed an earlier visit over that of patients who did not.
    "no_show_prior_ratio": Band(1.5, math.inf, "prior no-shows predict no-shows", "Dantas et al. 2018"),
    "initial_denial_rate": Band(0.10, 0.13, "~10-12%", "Change Healthcare denials index"),
    "medicare_medicaid_share_of_stays": Band(0.50, 1.0, "~60%", "HCUP"),
    # For a network whose census is big enough: see capacity.occupancy_band for small ones.
    "bed_occupancy": Band(0.65, 0.80, "65-80%", "AHA Hospital Statistics"),
    # Respiratory (ICD-10-CM chapter 10) admissions in December-February over June-August.
    "respiratory_winter_to_summer": Band(1.5, math.inf, "winter peak", "CDC FluView, HCUP"),
    "elective_admissions_on_weekdays": Band(0.90, 1.0, "scheduled on weekdays", "HCUP"),
    "emergency_admissions_on_weekdays": Band(0.0, 0.80, "every day of the week", "HCUP"),
    "clinic_visits_on_weekdays": Band(0.95, 1.0, "clinics open on weekdays", "MEPS"),
    "female_share_of_stays": Band(0.52, 0.62, "~56%", "HCUP NIS"),
    "aged_65_plus_share_of_stays": Band(0.38, 0.55, "~45%", "HCUP NIS"),
}
