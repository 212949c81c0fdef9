"""Small seeded marts of the contract's shape, for tests and for trying the report without a built warehouse.

The values are plausible, not realistic: a large hospital and a small one (whose cells often fall in 1..10, so
suppression is exercised), six months, Poisson counts. ``write_sample_warehouse`` stores them as tables of the
``marts`` schema of a real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

HOSPITALS = (("H001", "teaching", 120), ("H002", "critical_access", 12))
DEPARTMENTS = (
    ("D001", "H001", "Cardiology", True, 50),
    ("D002", "H001", "General Medicine", True, 70),
    ("D003", "H001", "Cardiology Clinic", False, 0),
    ("D006", "H001", "General Surgery", True, 40),
    ("D004", "H002", "General Medicine", True, 12),
    ("D005", "H002", "Family Medicine Clinic", False, 0),
)
PAYER_TYPES = ("medicare", "medicaid", "commercial", "self_pay")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LEAD_BANDS = ("0-1", "2-7", "8-30", "31+")
AGE_BANDS = ("0-17", "18-44", "45-64", "65-74", "75-84", "85-89", "90+")
CHAPTERS = ((9, "Diseases of the circulatory system"), (10, "Diseases of the respiratory system"),
            (11, "Diseases of the digestive system"), (19, "Injury, poisoning"))  # fmt: skip
REASONS = (("CO-16", "Missing information"), ("CO-50", "Not medically necessary"), ("CO-197", "No authorization"))


def _months(start: dt.date, count: int) -> list[dt.date]:
    return [(pd.Timestamp(start) + pd.DateOffset(months=i)).date() for i in range(count)]


def _rates(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def sample_marts(rng: np.random.Generator, start: dt.date = dt.date(2024, 1, 1), months: int = 6) -> dict:
    """Every catalogued mart of the contract as a DataFrame, drawn from ``rng``."""
    month_list = _months(start, months)
    inpatient = [d for d in DEPARTMENTS if d[3]]
    frames: dict[str, pd.DataFrame] = {}

    rows = []
    for hospital, _, beds in HOSPITALS:
        for month in month_list:
            admissions, discharges = rng.poisson(beds * 2.5, 2)
            rows.append((hospital, month, admissions, discharges, rng.uniform(2, 6), float(rng.integers(2, 6))))
    frames["mart_admissions_monthly"] = pd.DataFrame(rows, columns=[
        "hospital_id", "month_date", "admission_count", "discharge_count", "average_length_of_stay_nights",
        "median_length_of_stay_nights"])  # fmt: skip

    rows = []
    for payer in ("P01", "P02", "P03"):
        for month in month_list:
            claims = int(rng.poisson(150 if payer != "P03" else 8))
            denied = int(rng.binomial(claims, 0.12))
            paid = int(rng.binomial(denied, 0.5))
            rows.append((payer, month, claims, denied, denied / claims if claims else 0.0, paid,
                         paid / denied if denied else np.nan, month))  # fmt: skip
    frames["mart_claim_denials"] = pd.DataFrame(rows, columns=[
        "payer_id", "submission_month", "claim_count", "initially_denied_count", "initial_denial_rate",
        "paid_on_appeal_count", "appeal_overturn_rate", "month_date"])  # fmt: skip

    frames["mart_denial_reasons"] = pd.DataFrame(
        [(month, code, text, int(rng.poisson(14 - 4 * i))) for month in month_list
         for i, (code, text) in enumerate(REASONS)],
        columns=["month_date", "denial_reason_code", "denial_reason_description", "denied_claim_count"],
    )  # fmt: skip
    frames["mart_patient_demographics"] = pd.DataFrame(
        [(sex, band, int(rng.poisson(scale * (5 if band != "90+" else 0.6))))
         for sex, scale in (("F", 12), ("M", 11), ("U", 0.1)) for band in AGE_BANDS],
        columns=["sex", "age_band", "patient_count"],
    )  # fmt: skip
    discharges = rng.poisson([200 if h == "H001" else 8 for _, h, *_ in inpatient])
    frames["mart_length_of_stay_by_department"] = pd.DataFrame({
        "hospital_id": [d[1] for d in inpatient], "department_id": [d[0] for d in inpatient],
        "department_name": [d[2] for d in inpatient], "discharge_count": discharges,
        "average_length_of_stay_nights": rng.uniform(2, 6, len(inpatient)),
        "median_length_of_stay_nights": rng.integers(2, 6, len(inpatient)).astype(float)})  # fmt: skip
    counts = rng.poisson([150, 90, 40, 9])
    frames["mart_length_of_stay_by_diagnosis_chapter"] = pd.DataFrame({
        "diagnosis_chapter_number": [c[0] for c in CHAPTERS], "diagnosis_chapter_title": [c[1] for c in CHAPTERS],
        "discharge_count": counts, "average_length_of_stay_nights": rng.uniform(2, 7, 4),
        "median_length_of_stay_nights": rng.integers(1, 7, 4).astype(float)})  # fmt: skip
    index = rng.poisson(300, months)
    readmitted = rng.binomial(index, 0.14)
    frames["mart_readmissions_monthly"] = pd.DataFrame({
        "month_date": month_list, "index_discharge_count": index, "readmission_count": readmitted,
        "readmission_rate": _rates(readmitted, index)})  # fmt: skip

    days = pd.date_range(start, month_list[-1] + pd.offsets.MonthEnd(0), freq="D").date
    rows = []
    for hospital, _, beds in HOSPITALS:
        census = np.minimum(rng.binomial(beds, 0.75, len(days)), beds)
        rows += [(day, hospital, int(c), beds, c / beds) for day, c in zip(days, census, strict=True)]
    frames["mart_bed_occupancy_daily"] = pd.DataFrame(
        rows, columns=["census_date", "hospital_id", "midnight_census", "staffed_beds", "occupancy_rate"]
    )

    appointments = rng.poisson([400, 380, 390, 410, 350, 9, 0])
    no_shows = rng.binomial(appointments, 0.12)
    frames["mart_no_shows_by_weekday"] = pd.DataFrame({
        "iso_day_of_week": range(1, 8), "weekday_name": WEEKDAYS, "appointment_count": appointments,
        "no_show_count": no_shows, "no_show_rate": _rates(no_shows, appointments)})  # fmt: skip
    appointments = rng.poisson([300, 600, 700, 350])
    no_shows = rng.binomial(appointments, [0.05, 0.1, 0.15, 0.22])
    frames["mart_no_shows_by_lead_time"] = pd.DataFrame({
        "lead_time_band": LEAD_BANDS, "lead_time_band_order": range(1, 5), "appointment_count": appointments,
        "no_show_count": no_shows, "no_show_rate": _rates(no_shows, appointments)})  # fmt: skip
    clinics = [d for d in DEPARTMENTS if not d[3]]
    appointments = rng.poisson([1500 if d[1] == "H001" else 60 for d in clinics])
    no_shows = rng.binomial(appointments, 0.12)
    frames["mart_no_shows_by_department"] = pd.DataFrame({
        "hospital_id": [d[1] for d in clinics], "department_id": [d[0] for d in clinics],
        "department_name": [d[2] for d in clinics], "appointment_count": appointments, "no_show_count": no_shows,
        "no_show_rate": _rates(no_shows, appointments)})  # fmt: skip

    rows = []
    for month in month_list:
        counts = rng.poisson([120, 60, 140, 7])
        rows += [
            (month, payer_type, int(c), c / counts.sum()) for payer_type, c in zip(PAYER_TYPES, counts, strict=True)
        ]
    frames["mart_payer_mix"] = pd.DataFrame(rows, columns=["month_date", "payer_type", "admission_count",
                                                           "admission_share"])  # fmt: skip
    rows = []
    for month in month_list:
        for department, hospital, name, _, _ in DEPARTMENTS:
            charges = int(rng.poisson(400 if hospital == "H001" else 9))
            rows.append((month, hospital, department, name, charges, round(charges * rng.uniform(150, 900), 2)))
    frames["mart_revenue_by_department"] = pd.DataFrame(
        rows,
        columns=["month_date", "hospital_id", "department_id", "department_name", "charge_count", "charge_amount_usd"],
    )
    frames["mart_physician_activity"] = pd.DataFrame(
        [(month, npi, specialty, department, int(rng.poisson(12)), int(rng.poisson(30)))
         for month in month_list
         for npi, specialty, department in (("1234567893", "Cardiology", "D001"), ("1245319599", "Internal Medicine",
                                                                                    "D002"))],
        columns=["month_date", "npi", "specialty_name", "department_id", "admission_count", "appointment_count"],
    )  # fmt: skip

    frames["dim_hospitals"] = pd.DataFrame({
        "hospital_id": [h[0] for h in HOSPITALS], "hospital_name": ["Riverside Medical Center", "Prairie Hospital"],
        "hospital_type": [h[1] for h in HOSPITALS], "city": ["Springfield", "Hayes"], "state_code": ["IL", "NE"],
        "zip_code": ["62701", "69301"], "staffed_beds": [h[2] for h in HOSPITALS],
        "opened_date": [dt.date(1950, 1, 1), dt.date(1972, 6, 1)]})  # fmt: skip
    frames["dim_departments"] = pd.DataFrame(
        [(d, h, n, "Medicine", inpatient_unit, beds) for d, h, n, inpatient_unit, beds in DEPARTMENTS],
        columns=["department_id", "hospital_id", "department_name", "service_line_name", "is_inpatient",
                 "staffed_beds"])  # fmt: skip
    frames["dim_payers"] = pd.DataFrame({
        "payer_id": ["P01", "P02", "P03"], "payer_name": ["Medicare", "State Medicaid", "Acme Health"],
        "payer_type": ["medicare", "medicaid", "commercial"], "plan_count": [2, 3, 4]})  # fmt: skip
    frames["dim_physicians"] = pd.DataFrame({
        "npi": ["1234567893", "1245319599"], "specialty_name": ["Cardiology", "Internal Medicine"],
        "service_line_name": ["Cardiology", "Medicine"], "department_id": ["D001", "D002"],
        "hospital_id": ["H001", "H001"], "is_active": [True, True]})  # fmt: skip
    return frames


def write_sample_warehouse(path: Path, frames: dict[str, pd.DataFrame]) -> Path:
    """Store frames as tables of schema ``marts`` in a DuckDB file (created or replaced table by table)."""
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema if not exists marts")
        for name, frame in frames.items():
            connection.register("frame", frame)
            connection.execute(f"create or replace table marts.{name} as select * from frame")  # noqa: S608
            connection.unregister("frame")
    return path
