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
"""

from __future__ import annotations

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
