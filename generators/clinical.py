"""Clinical and business reference data of the simulated network: service lines, case mix, codes."""

from __future__ import annotations

from dataclasses import dataclass

from flows.contracts import code_sets

# The code sets the source systems send, shared with the warehouse's reference lists (re-exported for the simulator).
from flows.contracts.code_sets import DISPOSITIONS as DISPOSITIONS
from flows.contracts.code_sets import EXPIRED_DISPOSITION as EXPIRED_DISPOSITION
from flows.contracts.code_sets import REVENUE_LINES as REVENUE_LINES
from flows.contracts.code_sets import SERVICE_LINE_BY_CODE as SERVICE_LINE_BY_CODE
from flows.contracts.code_sets import SERVICE_LINES as SERVICE_LINES
from flows.contracts.code_sets import TRANSFER_DISPOSITION as TRANSFER_DISPOSITION
from flows.contracts.code_sets import ChargeLine as ChargeLine
from flows.contracts.code_sets import ServiceLine as ServiceLine

# Age bands used for case mix and volumes: lower bounds in years.
AGE_BAND_EDGES = (0, 18, 45, 65, 80)
AGE_BAND_NAMES = ("0-17", "18-44", "45-64", "65-79", "80+")

# Share of inpatient stays by (sex, age band), after HCUP NIS (non-newborn stays): ~56% women, ~45% aged 65+.
STAY_SHARE_BY_SEX_AGE = {
    "F": (3.0, 17.5, 11.5, 12.5, 11.5),
    "M": (3.5, 5.5, 13.0, 12.5, 10.0),
}


# Service lines each hospital type runs. A diagnosis whose service line a hospital lacks falls back along
# FALLBACK (e.g. cardiology patients of a critical access hospital go to internal medicine).
HOSPITAL_TYPES = {
    "teaching": tuple(line.code for line in SERVICE_LINES),
    "community": ("MED", "CARD", "PULM", "ORTH", "SURG", "OBGY", "PEDS", "ICU", "PC"),
    "critical_access": ("MED", "SURG", "PC"),
}
HOSPITAL_TYPE_SHARE = {"teaching": 0.2, "community": 0.6, "critical_access": 0.2}
HOSPITAL_TYPE_CATCHMENT = {"teaching": 2.0, "community": 1.0, "critical_access": 0.2}
FALLBACK = {
    "CARD": "MED",
    "PULM": "MED",
    "NEUR": "MED",
    "ONC": "MED",
    "ICU": "MED",
    "ORTH": "SURG",
    "SURG": "MED",
}
# A service line too small at a hospital for a unit of its own has its patients cared for in another unit (a small
# hospital's medical-surgical unit also takes its deliveries and children); internal medicine is always a unit.
UNIT_MERGE = {**FALLBACK, "OBGY": "MED", "PEDS": "MED"}
# Units that take other units' patients when those are full (off-service placement): adult medical and surgical
# units; intensive care, obstetrics and pediatrics keep their beds for their own patients.
OVERFLOW_LINES = ("MED", "SURG", "CARD", "PULM", "NEUR", "ORTH", "ONC")


@dataclass(frozen=True)
class Diagnosis:
    """One principal diagnosis of the case mix.

    ``weights`` are relative frequencies per age band; ``season`` the amplitude of the winter peak
    (respiratory); ``kind`` decides admission type and weekday pattern.
    """

    code: str
    service_line: str
    weights: tuple[float, float, float, float, float]
    los_median_days: float
    kind: str = "acute"  # acute | elective | delivery | planned
    sex: str | None = None
    season: float = 0.0
    readmit: float = 0.12
    expire: float = 0.01


# Principal diagnoses after HCUP's most frequent reasons for hospital stays, ICD-10-CM billable codes.
CASE_MIX = (
    Diagnosis("O80", "OBGY", (0.3, 40, 0.5, 0, 0), 1.9, "delivery", "F", readmit=0.02, expire=0),
    Diagnosis("O82", "OBGY", (0.1, 14, 0.3, 0, 0), 2.6, "delivery", "F", readmit=0.03, expire=0),
    Diagnosis("A41.9", "MED", (1.0, 3, 7, 10, 12), 4.6, readmit=0.18, expire=0.08),
    Diagnosis("I50.9", "CARD", (0, 0.5, 4, 7, 9), 3.7, readmit=0.22, expire=0.03),
    Diagnosis("J18.9", "PULM", (2.0, 2, 3.5, 5, 6), 3.7, season=0.6, readmit=0.16, expire=0.03),
    Diagnosis("J44.1", "PULM", (0, 0.3, 3, 4.5, 3), 3.3, season=0.5, readmit=0.19),
    Diagnosis("J96.01", "ICU", (0.3, 0.6, 1.5, 2, 2), 5.0, season=0.5, readmit=0.18, expire=0.1),
    Diagnosis("J10.1", "PULM", (0.8, 0.6, 0.8, 1.2, 1.5), 3.0, season=1.2, readmit=0.1),
    Diagnosis("U07.1", "MED", (0.3, 1, 1.5, 2, 2.5), 4.2, season=0.8, readmit=0.13, expire=0.05),
    Diagnosis("J21.9", "PEDS", (4.0, 0, 0, 0, 0), 2.2, season=1.2, readmit=0.05, expire=0),
    Diagnosis("J45.901", "PEDS", (3.0, 0.8, 0.5, 0.3, 0.1), 1.8, season=0.4, readmit=0.06, expire=0),
    Diagnosis("I21.4", "CARD", (0, 0.5, 3, 3.5, 3), 2.9, readmit=0.15, expire=0.04),
    Diagnosis("I48.91", "CARD", (0, 0.3, 1.5, 2.5, 2.5), 2.4, readmit=0.14),
    Diagnosis("I63.9", "NEUR", (0, 0.5, 2, 3, 3.5), 3.4, readmit=0.12, expire=0.06),
    Diagnosis("G40.909", "NEUR", (1.5, 1.5, 0.8, 0.5, 0.3), 2.4, readmit=0.1),
    Diagnosis("N39.0", "MED", (0.5, 1, 1, 2, 3.5), 3.0, readmit=0.14),
    Diagnosis("N17.9", "MED", (0, 0.5, 1.5, 2.5, 3), 3.6, readmit=0.18, expire=0.02),
    Diagnosis("E11.65", "MED", (0.3, 1.5, 1.5, 1, 0.6), 2.6, readmit=0.15),
    Diagnosis("K92.2", "MED", (0, 0.5, 1.2, 1.5, 1.8), 3.0, readmit=0.13),
    Diagnosis("L03.115", "MED", (0.5, 1.5, 1.5, 1, 1), 3.1, readmit=0.1),
    Diagnosis("R55", "MED", (0.2, 0.6, 0.7, 1, 1.5), 1.9, readmit=0.1),
    Diagnosis("F10.239", "MED", (0, 2, 1.5, 0.3, 0), 3.2, readmit=0.2),
    Diagnosis("A08.4", "PEDS", (2.0, 0.3, 0.2, 0.2, 0.3), 1.6, season=0.5, readmit=0.04, expire=0),
    Diagnosis("M17.11", "ORTH", (0, 0.1, 2.5, 3, 0.8), 1.5, "elective", readmit=0.04, expire=0),
    Diagnosis("M16.11", "ORTH", (0, 0.1, 1.2, 1.8, 0.6), 1.6, "elective", readmit=0.04, expire=0),
    Diagnosis("S72.001A", "ORTH", (0, 0.1, 0.4, 1.5, 4), 4.2, readmit=0.14, expire=0.03),
    Diagnosis("K35.80", "SURG", (1.5, 2.5, 1, 0.5, 0.3), 1.8, readmit=0.05, expire=0),
    Diagnosis("K80.10", "SURG", (0, 1.5, 1.2, 0.8, 0.5), 2.0, "elective", readmit=0.06, expire=0),
    Diagnosis("K56.609", "SURG", (0.2, 0.5, 1, 1.5, 1.5), 4.0, readmit=0.15, expire=0.02),
    Diagnosis("I25.10", "CARD", (0, 0.2, 1.5, 1.8, 0.8), 1.8, "elective", readmit=0.08, expire=0),
    Diagnosis("C34.90", "ONC", (0, 0.1, 1, 1.5, 1), 4.5, readmit=0.22, expire=0.06),
    Diagnosis("C50.911", "ONC", (0, 0.3, 0.8, 0.6, 0.3), 2.2, "elective", "F", readmit=0.1, expire=0),
    Diagnosis("D64.9", "MED", (0.2, 0.5, 0.6, 0.8, 1.2), 2.2, readmit=0.16),
)

# Planned readmission: an elective stay for chemotherapy (CMS planned-readmission algorithm, always planned).
PLANNED_READMISSION_CODE = "Z51.11"
PLANNED_READMISSION = Diagnosis("Z51.11", "ONC", (0, 0, 0, 0, 0), 1.6, "planned", readmit=0.0, expire=0)

# Frequent secondary diagnoses (comorbidities), with sampling weights.
COMORBIDITIES = (("I10", 30), ("E11.9", 14), ("E78.5", 18), ("N18.30", 5), ("Z87.891", 8), ("E66.9", 9),
                 ("F32.A", 6), ("J45.909", 5), ("I25.10", 7), ("Z79.4", 4), ("D64.9", 6), ("K21.9", 9),
                 ("F41.9", 6), ("M54.50", 5), ("G47.33", 5), ("E03.9", 7))  # fmt: skip


# Clinic visit reasons per service line.
VISIT_REASONS = {
    "PC": ("Annual wellness visit", "Follow-up", "Hypertension follow-up", "Diabetes management",
           "Acute illness", "Medication review", "Vaccination", "Back pain"),
    "CARD": ("Chest pain evaluation", "Heart failure follow-up", "Atrial fibrillation follow-up",
             "Post-MI follow-up", "Palpitations"),
    "PULM": ("COPD follow-up", "Asthma follow-up", "Shortness of breath", "Sleep apnea evaluation"),
    "NEUR": ("Headache", "Seizure follow-up", "Post-stroke follow-up", "Neuropathy"),
    "ORTH": ("Knee pain", "Hip pain", "Post-operative visit", "Fracture follow-up", "Shoulder pain"),
    "OBGY": ("Prenatal visit", "Annual gynecologic exam", "Postpartum visit", "Contraception counseling"),
    "PEDS": ("Well-child visit", "Immunizations", "Fever", "Ear pain", "Asthma follow-up"),
    "ONC": ("Chemotherapy follow-up", "New cancer consultation", "Survivorship visit"),
}  # fmt: skip

# CARC denial reasons (flows/contracts/code_sets.py) with their sampling weights.
_DENIAL_WEIGHTS = {"CO-16": 28, "CO-197": 18, "CO-50": 14, "CO-27": 9, "CO-18": 8, "CO-29": 6, "CO-97": 9, "CO-4": 8}
DENIAL_REASONS = tuple((code, text, _DENIAL_WEIGHTS[code]) for code, text in code_sets.DENIAL_REASONS)

# Charge templates (flows/contracts/code_sets.py REVENUE_LINES) and how the billing system posts them.
ROOM_MED_SURG = REVENUE_LINES["0120"]
ROOM_ICU = REVENUE_LINES["0200"]
ROOM_OB = REVENUE_LINES["0720"]
INPATIENT_ANCILLARY = (
    (REVENUE_LINES["0250"], 0.95, 6),
    (REVENUE_LINES["0270"], 0.8, 5),
    (REVENUE_LINES["0300"], 0.95, 8),
    (REVENUE_LINES["0320"], 0.5, 2),
    (REVENUE_LINES["0350"], 0.3, 1),
    (REVENUE_LINES["0420"], 0.25, 3),
    (REVENUE_LINES["0730"], 0.35, 1),
)  # (line, probability per stay, max quantity)
SURGERY_LINE = REVENUE_LINES["0360"]
EMERGENCY_LINE = REVENUE_LINES["0450"]
CLINIC_LINE = REVENUE_LINES["0510"]
CLINIC_ANCILLARY = (
    (REVENUE_LINES["0300"], 0.4, 3),
    (REVENUE_LINES["0320"], 0.1, 1),
    (REVENUE_LINES["0636"], 0.12, 1),
)

# Payers of the network and their plans.
PAYERS = (
    ("PAY01", "Medicare", "medicare", (("Original Medicare Part A/B", "FFS"),)),
    ("PAY02", "State Medicaid", "medicaid", (("Medicaid Fee-for-Service", "FFS"), ("Medicaid Managed Care", "HMO"))),
    ("PAY03", "Blue Cross Blue Shield", "commercial", (("BCBS PPO", "PPO"), ("BCBS HMO", "HMO"),
                                                       ("BCBS Medicare Advantage", "Medicare Advantage"))),
    ("PAY04", "UnitedHealthcare", "commercial", (("UHC Choice Plus", "PPO"), ("UHC Medicare Advantage",
                                                                            "Medicare Advantage"))),
    ("PAY05", "Aetna", "commercial", (("Aetna Open Access", "POS"),)),
    ("PAY06", "Self-pay", "self_pay", (("Self-pay", "Self-pay"),)),
)  # fmt: skip
# Allowed amount as a share of billed charges, by payer type (chargemaster markups are ~3-4x Medicare rates).
ALLOWED_RATIO = {"medicare": 0.28, "medicaid": 0.24, "commercial": 0.46, "self_pay": 0.35}
