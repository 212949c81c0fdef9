"""Clinical and business reference data of the simulated network: service lines, case mix, codes."""

from __future__ import annotations

from dataclasses import dataclass

# Age bands used for case mix and volumes: lower bounds in years.
AGE_BAND_EDGES = (0, 18, 45, 65, 80)
AGE_BAND_NAMES = ("0-17", "18-44", "45-64", "65-79", "80+")

# Share of inpatient stays by (sex, age band), after HCUP NIS (non-newborn stays): ~56% women, ~45% aged 65+.
STAY_SHARE_BY_SEX_AGE = {
    "F": (3.0, 17.5, 11.5, 12.5, 11.5),
    "M": (3.5, 5.5, 13.0, 12.5, 10.0),
}


@dataclass(frozen=True)
class ServiceLine:
    """A service line: its inpatient department and clinic, and the physicians' specialty."""

    code: str
    name: str
    specialty: str
    inpatient: bool
    clinic: bool


SERVICE_LINES = (
    ServiceLine("MED", "Internal Medicine", "Internal Medicine", True, False),
    ServiceLine("CARD", "Cardiology", "Cardiology", True, True),
    ServiceLine("PULM", "Pulmonology", "Pulmonary Disease", True, True),
    ServiceLine("NEUR", "Neurology", "Neurology", True, True),
    ServiceLine("ORTH", "Orthopedics", "Orthopedic Surgery", True, True),
    ServiceLine("SURG", "General Surgery", "General Surgery", True, False),
    ServiceLine("OBGY", "Obstetrics and Gynecology", "Obstetrics & Gynecology", True, True),
    ServiceLine("PEDS", "Pediatrics", "Pediatrics", True, True),
    ServiceLine("ONC", "Oncology", "Hematology & Oncology", True, True),
    ServiceLine("ICU", "Intensive Care", "Critical Care Medicine", True, False),
    ServiceLine("PC", "Primary Care", "Family Medicine", False, True),
)
SERVICE_LINE_BY_CODE = {line.code: line for line in SERVICE_LINES}

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

# UB-04 patient discharge status codes.
DISPOSITIONS = {
    "01": "Discharged to home or self care",
    "02": "Discharged/transferred to a short-term general hospital",
    "03": "Discharged/transferred to a skilled nursing facility",
    "06": "Discharged/transferred to home under care of a home health organization",
    "07": "Left against medical advice",
    "20": "Expired",
    "50": "Discharged to hospice - home",
    "62": "Discharged/transferred to an inpatient rehabilitation facility",
}
TRANSFER_DISPOSITION = "02"
EXPIRED_DISPOSITION = "20"

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

# CARC claim adjustment reason codes used for denials, with weights.
DENIAL_REASONS = (("CO-16", "Claim lacks information needed for adjudication", 28),
                  ("CO-197", "Precertification/authorization absent", 18),
                  ("CO-50", "Not deemed a medical necessity", 14),
                  ("CO-27", "Expenses incurred after coverage terminated", 9),
                  ("CO-18", "Exact duplicate claim/service", 8),
                  ("CO-29", "The time limit for filing has expired", 6),
                  ("CO-97", "Benefit included in another service already adjudicated", 9),
                  ("CO-4", "Procedure code inconsistent with modifier", 8))  # fmt: skip


@dataclass(frozen=True)
class ChargeLine:
    """A charge template: UB-04 revenue code, its description and typical unit price (USD)."""

    revenue_code: str
    description: str
    unit_price: float


ROOM_MED_SURG = ChargeLine("0120", "Room & board - semi-private", 2_400.0)
ROOM_ICU = ChargeLine("0200", "Intensive care", 6_500.0)
ROOM_OB = ChargeLine("0720", "Labor room/delivery", 3_800.0)
INPATIENT_ANCILLARY = (
    (ChargeLine("0250", "Pharmacy", 180.0), 0.95, 6),
    (ChargeLine("0270", "Medical/surgical supplies", 120.0), 0.8, 5),
    (ChargeLine("0300", "Laboratory", 95.0), 0.95, 8),
    (ChargeLine("0320", "Radiology - diagnostic", 420.0), 0.5, 2),
    (ChargeLine("0350", "CT scan", 1_650.0), 0.3, 1),
    (ChargeLine("0420", "Physical therapy", 210.0), 0.25, 3),
    (ChargeLine("0730", "EKG/ECG", 260.0), 0.35, 1),
)  # (line, probability per stay, max quantity)
SURGERY_LINE = ChargeLine("0360", "Operating room services", 9_800.0)
EMERGENCY_LINE = ChargeLine("0450", "Emergency room", 1_900.0)
CLINIC_LINE = ChargeLine("0510", "Clinic visit", 240.0)
CLINIC_ANCILLARY = (
    (ChargeLine("0300", "Laboratory", 95.0), 0.4, 3),
    (ChargeLine("0320", "Radiology - diagnostic", 420.0), 0.1, 1),
    (ChargeLine("0636", "Drugs requiring detailed coding", 150.0), 0.12, 1),
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
