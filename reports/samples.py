"""Seeded marts of the contract's shape at any scale, for tests and for trying the report without a warehouse.

Volumes follow the simulated network's real marts (`hospital run`, two hospitals, per 10,000 patients and month):
~87 admissions (64% at the larger hospital), 81 eligible index stays with 11% readmitted, ~1,900 appointments
with 22% no-shows (almost none on Saturday, none on Sunday), ~1,480 claims with 12% denied, payer mix 39%
commercial / 37% Medicare / 14% Medicaid / 4% self-pay, a midnight census near 10 and 6 patients on 19 and 13
staffed beds, and inpatients by sex and age band as published (56% women, "sex unknown" about 2 per 10,000).
``patients`` scales them: at 2,000 patients most monthly cells hold 1 to 10 (so suppression and the charts'
coarser grains are exercised), at 100,000 almost none do. ``write_sample_warehouse`` stores the marts as tables of
the ``marts`` schema of a real DuckDB file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from flows.warehouse.resource import DuckDBResource

PER_10K = 10_000
#: (id, type, share of the network's activity).
HOSPITALS = (("H001", "teaching", 0.64), ("H002", "community", 0.36))
#: Inpatient units: (department id suffix, name, discharges per 10,000 patients over 24 months at H001, H002).
UNITS = (("MED", "Internal Medicine", 482, 329), ("CARD", "Cardiology", 203, 92), ("PULM", "Pulmonology", 170, 64),
         ("OBGY", "Obstetrics and Gynecology", 132, 80), ("SURG", "General Surgery", 82, 56),
         ("ORTH", "Orthopedics", 73, 57), ("NEUR", "Neurology", 67, 0), ("PEDS", "Pediatrics", 62, 40),
         ("ONC", "Oncology", 35, 0), ("ICU", "Intensive Care", 28, 17))  # fmt: skip
CLINICS = (("PCC", "Primary Care Clinic", 0.30), ("CARC", "Cardiology Clinic", 0.12), ("ORTC", "Orthopedics Clinic",
           0.1), ("PEDC", "Pediatrics Clinic", 0.12), ("OBGC", "Women's Health Clinic", 0.08),
           ("DERC", "Dermatology Clinic", 0.04), ("ENDC", "Endocrinology Clinic", 0.04))  # fmt: skip
PAYERS = (("PAY01", "medicare", 426), ("PAY02", "commercial", 326), ("PAY03", "commercial", 396),
          ("PAY04", "medicaid", 208), ("PAY05", "self_pay", 129))  # fmt: skip
PAYER_MIX = (("commercial", 36.3), ("medicare", 34.0), ("medicaid", 13.0), ("self_pay", 3.9))
WEEKDAYS = (("Monday", 0.205), ("Tuesday", 0.197), ("Wednesday", 0.203), ("Thursday", 0.2), ("Friday", 0.188),
            ("Saturday", 0.0076), ("Sunday", 0.0))  # fmt: skip
LEAD_BANDS = (("0 days", 0.038, 0.10), ("1-7 days", 0.262, 0.16), ("8-14 days", 0.119, 0.20),
              ("15-30 days", 0.281, 0.24), ("31-60 days", 0.149, 0.28), ("61+ days", 0.15, 0.31))  # fmt: skip
#: Inpatients per 10,000 patients over 24 months, by (sex, age band).
DEMOGRAPHICS = {("F", "0-17"): 52, ("F", "18-44"): 283, ("F", "45-64"): 191, ("F", "65-74"): 138,
                ("F", "75-84"): 108, ("F", "85-89"): 38, ("F", "90+"): 32, ("M", "0-17"): 67, ("M", "18-44"): 119,
                ("M", "45-64"): 208, ("M", "65-74"): 155, ("M", "75-84"): 117, ("M", "85-89"): 31,
                ("M", "90+"): 29, ("U", "45-64"): 1, ("U", "65-74"): 1}  # fmt: skip
#: ICD-10-CM chapters: (number, title, discharges per 10,000 patients over 24 months, mean nights).
CHAPTERS = ((1, "Certain infectious and parasitic diseases", 340, 6.4), (2, "Neoplasms", 35, 6.1),
            (3, "Diseases of the blood and blood-forming organs and certain disorders involving the immune "
                "mechanism", 20, 3.5), (4, "Endocrine, nutritional and metabolic diseases", 45, 4.5),
            (5, "Mental, Behavioral and Neurodevelopmental disorders", 52, 5.2),
            (6, "Diseases of the nervous system", 56, 2.8), (9, "Diseases of the circulatory system", 353, 4.7),
            (10, "Diseases of the respiratory system", 349, 5.3), (11, "Diseases of the digestive system", 176, 3.7),
            (12, "Diseases of the skin and subcutaneous tissue", 57, 4.7),
            (13, "Diseases of the musculoskeletal system and connective tissue", 89, 1.7),
            (14, "Diseases of the genitourinary system", 129, 5.4), (15, "Pregnancy, childbirth and the puerperium",
                                                                      212, 2.6),
            (18, "Symptoms, signs and abnormal clinical and laboratory findings, not elsewhere classified", 37, 2.8),
            (19, "Injury, poisoning and certain other consequences of external causes", 41, 6.5),
            (21, "Factors influencing health status and contact with health services", 16, 1.8),
            (22, "Codes for special purposes", 62, 6.4))  # fmt: skip
REASONS = (("CO-16", "Claim lacks information needed for adjudication", 0.35),
           ("CO-197", "Precertification/authorization absent", 0.17), ("CO-50", "Not deemed a medical necessity", 0.14),
           ("CO-97", "Benefit included in another service already adjudicated", 0.08),
           ("CO-27", "Expenses incurred after coverage terminated", 0.08),
           ("CO-18", "Exact duplicate claim/service", 0.08),
           ("CO-4", "Procedure code inconsistent with modifier", 0.06),
           ("CO-29", "The time limit for filing has expired", 0.04))  # fmt: skip


def _months(start: dt.date, count: int) -> list[dt.date]:
    return [(pd.Timestamp(start) + pd.DateOffset(months=i)).date() for i in range(count)]


def _rates(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def _departments() -> list[tuple[str, str, str, bool, int]]:
    """(department id, hospital id, name, is inpatient, staffed beds) of the sample network."""
    rows = []
    for hospital, _, _ in HOSPITALS:
        for code, name, first, second in UNITS:
            if (first if hospital == "H001" else second) > 0:
                rows.append((f"{hospital}-{code}", hospital, name, True, 2))
        rows += [(f"{hospital}-{code}", hospital, name, False, 0) for code, name, _ in CLINICS]
    return rows


def sample_marts(
    rng: np.random.Generator, start: dt.date = dt.date(2024, 1, 1), months: int = 6, patients: int = 3_000
) -> dict[str, pd.DataFrame]:
    """Every catalogued mart of the contract as a DataFrame, drawn from ``rng`` for a network of ``patients``."""
    scale = patients / PER_10K
    period = months / 24
    month_list = _months(start, months)
    frames: dict[str, pd.DataFrame] = {}

    rows = []
    for hospital, _, share in HOSPITALS:
        for month in month_list:
            admissions, discharges = rng.poisson(87 * scale * share, 2)
            rows.append((hospital, month, int(admissions), int(discharges), rng.uniform(3.5, 5.5),
                         float(rng.integers(3, 5))))  # fmt: skip
    frames["mart_admissions_monthly"] = pd.DataFrame(rows, columns=[
        "hospital_id", "month_date", "admission_count", "discharge_count", "average_length_of_stay_nights",
        "median_length_of_stay_nights"])  # fmt: skip

    rows = []
    for payer, _, claims_per_month in PAYERS:
        for month in month_list:
            claims = int(rng.poisson(claims_per_month * scale))
            denied = int(rng.binomial(claims, 0.12))
            paid = int(rng.binomial(denied, 0.5))
            rows.append((payer, month, claims, denied, denied / claims if claims else 0.0, paid,
                         paid / denied if denied else np.nan, month))  # fmt: skip
    frames["mart_claim_denials"] = pd.DataFrame(rows, columns=[
        "payer_id", "submission_month", "claim_count", "initially_denied_count", "initial_denial_rate",
        "paid_on_appeal_count", "appeal_overturn_rate", "month_date"])  # fmt: skip
    frames["mart_denial_reasons"] = pd.DataFrame(
        [(month, code, text, count) for month in month_list for code, text, share in REASONS
         if (count := int(rng.poisson(1480 * 0.12 * scale * share))) > 0],
        columns=["month_date", "denial_reason_code", "denial_reason_description", "denied_claim_count"],
    )  # fmt: skip

    demographics = [(sex, band, int(rng.poisson(count * scale * period))) for (sex, band), count in
                    DEMOGRAPHICS.items()]  # fmt: skip
    frames["mart_patient_demographics"] = pd.DataFrame(
        [row for row in demographics if row[2] > 0], columns=["sex", "age_band", "patient_count"]
    )

    rows = []
    for hospital, _, _ in HOSPITALS:
        for code, name, first, second in UNITS:
            expected = (first if hospital == "H001" else second) * scale * period
            if expected > 0 and (count := int(rng.poisson(expected))) > 0:
                rows.append((hospital, f"{hospital}-{code}", name, count, rng.uniform(2.2, 9.5),
                             float(rng.integers(2, 6))))  # fmt: skip
    frames["mart_length_of_stay_by_department"] = pd.DataFrame(rows, columns=[
        "hospital_id", "department_id", "department_name", "discharge_count", "average_length_of_stay_nights",
        "median_length_of_stay_nights"])  # fmt: skip
    rows = [(number, title, count, nights * rng.uniform(0.9, 1.1), float(max(1, round(nights * 0.75))))
            for number, title, per_10k, nights in CHAPTERS
            if (count := int(rng.poisson(per_10k * scale * period))) > 0]  # fmt: skip
    frames["mart_length_of_stay_by_diagnosis_chapter"] = pd.DataFrame(rows, columns=[
        "diagnosis_chapter_number", "diagnosis_chapter_title", "discharge_count", "average_length_of_stay_nights",
        "median_length_of_stay_nights"])  # fmt: skip

    index = rng.poisson(81 * scale, months)
    readmitted = rng.binomial(index, 0.11)
    frames["mart_readmissions_monthly"] = pd.DataFrame({
        "month_date": month_list, "index_discharge_count": index, "readmission_count": readmitted,
        "readmission_rate": _rates(readmitted, index)})  # fmt: skip

    days = pd.date_range(start, month_list[-1] + pd.offsets.MonthEnd(0), freq="D").date
    rows = []
    # Staffed beds and the mean midnight census of each hospital, as the simulated network sizes them.
    for (hospital, _, _), base_beds, beds_per_patient, census_per_patient in zip(
        HOSPITALS, (6, 5), (1.28e-3, 0.77e-3), (1.05e-3, 0.63e-3), strict=True
    ):
        beds = round(base_beds + beds_per_patient * patients)
        census = np.minimum(rng.poisson(census_per_patient * patients, len(days)), beds)
        rows += [(day, hospital, int(c), beds, c / beds) for day, c in zip(days, census, strict=True)]
    frames["mart_bed_occupancy_daily"] = pd.DataFrame(
        rows, columns=["census_date", "hospital_id", "midnight_census", "staffed_beds", "occupancy_rate"]
    )

    weekdays = [(number, name, int(rng.poisson(1900 * months * scale * share)))
                for number, (name, share) in enumerate(WEEKDAYS, start=1) if share > 0]  # fmt: skip
    appointments = np.array([count for _, _, count in weekdays])
    no_shows = rng.binomial(appointments, 0.22)
    frames["mart_no_shows_by_weekday"] = pd.DataFrame({
        "iso_day_of_week": [number for number, _, _ in weekdays], "weekday_name": [name for _, name, _ in weekdays],
        "appointment_count": appointments, "no_show_count": no_shows,
        "no_show_rate": _rates(no_shows, appointments)})  # fmt: skip
    appointments = rng.poisson([1900 * months * scale * share for _, share, _ in LEAD_BANDS])
    no_shows = rng.binomial(appointments, [rate for _, _, rate in LEAD_BANDS])
    frames["mart_no_shows_by_lead_time"] = pd.DataFrame({
        "lead_time_band": [band for band, _, _ in LEAD_BANDS], "lead_time_band_order": range(1, len(LEAD_BANDS) + 1),
        "appointment_count": appointments, "no_show_count": no_shows,
        "no_show_rate": _rates(no_shows, appointments)})  # fmt: skip
    departments = _departments()
    clinics = [d for d in departments if not d[3]]
    shares = {f"{h}-{code}": share * hospital_share for h, _, hospital_share in HOSPITALS
              for code, _, share in CLINICS}  # fmt: skip
    appointments = rng.poisson([1900 * months * scale * shares[d[0]] / 0.8 for d in clinics])
    no_shows = rng.binomial(appointments, 0.22)
    frames["mart_no_shows_by_department"] = pd.DataFrame({
        "hospital_id": [d[1] for d in clinics], "department_id": [d[0] for d in clinics],
        "department_name": [d[2] for d in clinics], "appointment_count": appointments, "no_show_count": no_shows,
        "no_show_rate": _rates(no_shows, appointments)})  # fmt: skip

    rows = []
    for month in month_list:
        counts = rng.poisson([per_month * scale for _, per_month in PAYER_MIX])
        rows += [(month, payer_type, int(count), count / max(1, counts.sum()))
                 for (payer_type, _), count in zip(PAYER_MIX, counts, strict=True) if count > 0]  # fmt: skip
    frames["mart_payer_mix"] = pd.DataFrame(rows, columns=["month_date", "payer_type", "admission_count",
                                                           "admission_share"])  # fmt: skip
    weights = rng.lognormal(0, 1, len(departments))
    weights /= weights.sum()
    rows = []
    for month in month_list:
        for (department, hospital, name, _, _), weight in zip(departments, weights, strict=True):
            if (charges := int(rng.poisson(3000 * scale * weight))) > 0:
                rows.append((month, hospital, department, name, charges, round(charges * rng.uniform(1500, 2900), 2)))
    frames["mart_revenue_by_department"] = pd.DataFrame(
        rows,
        columns=["month_date", "hospital_id", "department_id", "department_name", "charge_count", "charge_amount_usd"],
    )
    physicians = [(f"1{index:09d}", "Internal Medicine" if index % 2 else "Cardiology", departments[index % 4][0])
                  for index in range(max(8, round(35 + patients / 900)))]  # fmt: skip
    frames["mart_physician_activity"] = pd.DataFrame(
        [(month, npi, specialty, department, int(rng.poisson(2.5 * scale ** 0.5)), int(rng.poisson(43 * scale ** 0.5)))
         for month in month_list for npi, specialty, department in physicians],
        columns=["month_date", "npi", "specialty_name", "department_id", "admission_count", "appointment_count"],
    )  # fmt: skip

    beds = frames["mart_bed_occupancy_daily"].groupby("hospital_id")["staffed_beds"].max()
    frames["dim_hospitals"] = pd.DataFrame({
        "hospital_id": [h[0] for h in HOSPITALS], "hospital_name": ["Riverside Medical Center", "Prairie Hospital"],
        "hospital_type": [h[1] for h in HOSPITALS], "city": ["Springfield", "Hayes"], "state_code": ["IL", "NE"],
        "zip_code": ["62701", "69301"], "staffed_beds": [int(beds[h[0]]) for h in HOSPITALS],
        "opened_date": [dt.date(1950, 1, 1), dt.date(1972, 6, 1)]})  # fmt: skip
    frames["dim_departments"] = pd.DataFrame(
        [(d, h, n, "Medicine", inpatient_unit, beds) for d, h, n, inpatient_unit, beds in departments],
        columns=["department_id", "hospital_id", "department_name", "service_line_name", "is_inpatient",
                 "staffed_beds"])  # fmt: skip
    frames["dim_payers"] = pd.DataFrame({
        "payer_id": [p[0] for p in PAYERS], "payer_name": ["Medicare", "Acme Health", "Blue Plains", "State Medicaid",
                                                           "Self-pay"],
        "payer_type": [p[1] for p in PAYERS], "plan_count": [2, 3, 4, 2, 1]})  # fmt: skip
    frames["dim_physicians"] = pd.DataFrame({
        "npi": [p[0] for p in physicians], "specialty_name": [p[1] for p in physicians],
        "service_line_name": ["Medicine"] * len(physicians), "department_id": [p[2] for p in physicians],
        "hospital_id": [p[2][:4] for p in physicians], "is_active": [True] * len(physicians)})  # fmt: skip
    return frames


def write_sample_warehouse(path: Path, frames: dict[str, pd.DataFrame]) -> Path:
    """Store frames as tables of schema ``marts`` in a DuckDB file (created or replaced table by table)."""
    with DuckDBResource(path).session(write=True) as session:
        for name, frame in frames.items():
            session.replace_table("marts", name, frame)
    return path
