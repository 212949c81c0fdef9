"""The code sets the network's source systems send and the warehouse's reference lists describe.

Service lines and specialties, UB-04 admission types and discharge statuses, CARC denial reasons and UB-04 revenue
codes are facts shared by the simulator (``generators/``, which emits these codes) and the warehouse's lists
(``dbt_project/scripts/build_lists.py`` writes the dbt seeds from them): defined here once, so neither owns the
other's. How often each occurs (case mix, weights, probabilities) is the simulator's, in ``generators/clinical.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


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

#: Admission types the ADT system sends (UB-04 codes in the reference list).
ADMISSION_TYPES = ("Emergency", "Urgent", "Elective")

#: UB-04 patient discharge status codes.
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

#: CARC claim adjustment reason codes the payers send for denials, with their text.
DENIAL_REASONS = (
    ("CO-16", "Claim lacks information needed for adjudication"),
    ("CO-197", "Precertification/authorization absent"),
    ("CO-50", "Not deemed a medical necessity"),
    ("CO-27", "Expenses incurred after coverage terminated"),
    ("CO-18", "Exact duplicate claim/service"),
    ("CO-29", "The time limit for filing has expired"),
    ("CO-97", "Benefit included in another service already adjudicated"),
    ("CO-4", "Procedure code inconsistent with modifier"),
)


@dataclass(frozen=True)
class ChargeLine:
    """A charge template: UB-04 revenue code, its description and typical unit price (USD)."""

    revenue_code: str
    description: str
    unit_price: float


#: Every UB-04 revenue code the billing system posts, by code.
REVENUE_LINES = {
    line.revenue_code: line
    for line in (
        ChargeLine("0120", "Room & board - semi-private", 2_400.0),
        ChargeLine("0200", "Intensive care", 6_500.0),
        ChargeLine("0250", "Pharmacy", 180.0),
        ChargeLine("0270", "Medical/surgical supplies", 120.0),
        ChargeLine("0300", "Laboratory", 95.0),
        ChargeLine("0320", "Radiology - diagnostic", 420.0),
        ChargeLine("0350", "CT scan", 1_650.0),
        ChargeLine("0360", "Operating room services", 9_800.0),
        ChargeLine("0420", "Physical therapy", 210.0),
        ChargeLine("0450", "Emergency room", 1_900.0),
        ChargeLine("0510", "Clinic visit", 240.0),
        ChargeLine("0636", "Drugs requiring detailed coding", 150.0),
        ChargeLine("0720", "Labor room/delivery", 3_800.0),
        ChargeLine("0730", "EKG/ECG", 260.0),
    )
}
