"""Reference generator for the benchmark: the row-by-row Faker + pandas approach a typical project takes.

For every registry source it builds the requested number of rows one at a time in Python, each a dict
with exactly the registry's columns (Faker for names, addresses, phones and dates; ``random`` for codes,
amounts and categories; foreign keys drawn from the rows built before), collects them into a pandas
DataFrame and writes it with ``DataFrame.to_csv(sep=<registry delimiter>)`` or
``DataFrame.to_json(orient="records"[, lines=True])``.

It is written the plain way, with no sleeps and no needless work: it is the baseline the vectorized
generator in ``generators/`` is compared against, so it must be neither crippled nor hand-tuned.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from faker import Faker

from flows.contracts.registry import Registry, Source

Row = dict[str, Any]

HOSPITAL_TYPES = ("Academic Medical Center", "Community Hospital", "Critical Access Hospital",
                  "Children's Hospital", "Specialty Hospital")  # fmt: skip
HOSPITAL_SUFFIXES = ("General Hospital", "Medical Center", "Regional Medical Center", "Memorial Hospital",
                     "Community Hospital")  # fmt: skip
# (department name, service line, is inpatient)
DEPARTMENTS = (
    ("Emergency Department", "Emergency", False), ("Cardiology", "Cardiovascular", False),
    ("Cardiac Care Unit", "Cardiovascular", True), ("Intensive Care Unit", "Critical Care", True),
    ("Medical-Surgical Unit", "Medicine", True), ("Orthopedics", "Orthopedics", False),
    ("Orthopedic Surgery", "Orthopedics", True), ("Labor and Delivery", "Women's Health", True),
    ("Obstetrics and Gynecology", "Women's Health", False), ("Pediatrics", "Pediatrics", False),
    ("Oncology", "Oncology", False), ("Behavioral Health Unit", "Behavioral Health", True),
    ("Neurology", "Neurosciences", False), ("Family Medicine", "Primary Care", False),
    ("Internal Medicine", "Primary Care", False),
)  # fmt: skip
SPECIALTIES = ("Family Medicine", "Internal Medicine", "Cardiology", "Emergency Medicine",
               "Orthopedic Surgery", "Obstetrics and Gynecology", "Pediatrics", "Oncology", "Neurology",
               "Psychiatry", "General Surgery", "Hospitalist", "Anesthesiology", "Radiology")  # fmt: skip
LANGUAGES = ("English", "Spanish", "Chinese", "Vietnamese", "Arabic", "Tagalog", "Korean", "Russian",
             "German")  # fmt: skip
LANGUAGE_WEIGHTS = (78, 13, 1.2, 0.8, 0.8, 0.7, 0.5, 0.5, 1.2)
PAYERS = (("Medicare", "Medicare"), ("Medicaid", "Medicaid"), ("Self-Pay", "Self-Pay"),
          ("Blue Cross Blue Shield", "Commercial"), ("UnitedHealthcare", "Commercial"),
          ("Aetna", "Commercial"), ("Cigna", "Commercial"), ("Humana", "Commercial"),
          ("Anthem", "Commercial"), ("TRICARE", "Government"))  # fmt: skip
PRODUCT_TYPES = ("HMO", "PPO", "EPO", "POS", "HDHP", "Medicare Advantage", "Medicaid Managed Care")
PLAN_TIERS = ("Bronze", "Silver", "Gold", "Platinum", "Select", "Choice", "Plus")
APPOINTMENT_STATUSES = ("completed", "cancelled", "no_show", "scheduled")
APPOINTMENT_STATUS_WEIGHTS = (64, 11, 20, 5)
APPOINTMENT_REASONS = ("Annual physical", "Follow-up visit", "Chest pain", "Hypertension check",
                       "Diabetes management", "Back pain", "Prenatal visit", "Well-child visit",
                       "Medication review", "Knee pain", "Headache", "Post-operative check",
                       "Shortness of breath", "Skin rash")  # fmt: skip
ADMISSION_TYPES = ("Emergency", "Urgent", "Elective", "Newborn", "Trauma")
ADMISSION_TYPE_WEIGHTS = (55, 15, 22, 6, 2)
# A handful of common ICD-10-CM diagnosis codes, as a typical project would hard-code them.
DX_CODES = ("I10", "E11.9", "J18.9", "I50.9", "N39.0", "A41.9", "J44.1", "I21.4", "K35.80", "O80",
            "Z38.00", "S72.001A", "F32.9", "M17.11", "R07.9", "I48.91", "E78.5", "J96.01", "K57.30",
            "N17.9")  # fmt: skip
DISPOSITIONS = ("Home", "Home health", "Skilled nursing facility", "Rehabilitation facility", "Transferred",
                "Left against medical advice", "Expired", "Hospice")  # fmt: skip
DISPOSITION_WEIGHTS = (62, 14, 10, 5, 4, 2, 2, 1)
# (revenue code, description, unit price range in USD)
REVENUE_CODES = (
    ("0120", "Room and board - semi-private", (1500.0, 4000.0)), ("0250", "Pharmacy", (5.0, 500.0)),
    ("0300", "Laboratory", (15.0, 250.0)), ("0320", "Radiology - diagnostic", (100.0, 1500.0)),
    ("0360", "Operating room services", (2000.0, 20000.0)), ("0420", "Physical therapy", (80.0, 350.0)),
    ("0450", "Emergency room", (300.0, 3000.0)), ("0510", "Clinic visit", (90.0, 400.0)),
    ("0636", "Drugs requiring detailed coding", (20.0, 2000.0)), ("0730", "EKG/ECG", (50.0, 400.0)),
)  # fmt: skip
CLAIM_STATUSES = ("submitted", "accepted", "paid", "partially_paid", "denied")
CLAIM_STATUS_WEIGHTS = (8, 10, 60, 10, 12)
# The statuses a claim passed through to reach its current one.
CLAIM_STATUS_PATHS = {
    "submitted": ("submitted",),
    "accepted": ("submitted", "accepted"),
    "paid": ("submitted", "accepted", "paid"),
    "partially_paid": ("submitted", "accepted", "partially_paid"),
    "denied": ("submitted", "accepted", "denied"),
}
DENIAL_CODES = ("CO-16", "CO-18", "CO-22", "CO-45", "CO-50", "CO-97", "CO-197", "PR-1", "PR-2", "PR-204")


@dataclass(frozen=True)
class ReferenceResult:
    """One file written by the reference generator."""

    source: str
    path: Path
    rows: int
    bytes: int
    seconds: float


@dataclass
class _Context:
    """Faker, random and the keys of the rows built so far, which later sources refer to."""

    fake: Faker
    rng: random.Random
    start: dt.datetime
    end: dt.datetime
    hospitals: list[str] = field(default_factory=list)
    departments: list[tuple[str, str]] = field(default_factory=list)  # (department_id, hospital_id)
    physicians: list[tuple[str, str, str]] = field(default_factory=list)  # (npi, department_id, hospital_id)
    patients: list[str] = field(default_factory=list)
    payers: list[tuple[str, str]] = field(default_factory=list)  # (payer_id, payer_name)
    plans: list[tuple[str, str]] = field(default_factory=list)  # (plan_id, payer_id)
    # (encounter_id, encounter_type, mrn, encounter datetime): admissions and completed appointments
    encounters: list[tuple[str, str, str, dt.datetime]] = field(default_factory=list)

    def when(self) -> dt.datetime:
        """A timestamp in the generated period, to the second as source systems write them."""
        return self.fake.date_time_between(self.start, self.end).replace(microsecond=0)

    def hospital(self) -> str:
        return self.rng.choice(self.hospitals) if self.hospitals else f"H{self.rng.randint(1, 20):03d}"

    def department(self) -> tuple[str, str]:
        if self.departments:
            return self.rng.choice(self.departments)
        return f"D{self.rng.randint(1, 200):05d}", self.hospital()

    def physician(self) -> tuple[str, str, str]:
        if self.physicians:
            return self.rng.choice(self.physicians)
        department_id, hospital_id = self.department()
        return f"1{self.rng.randint(0, 999_999_999):09d}", department_id, hospital_id

    def patient(self) -> str:
        return self.rng.choice(self.patients) if self.patients else f"MRN{self.rng.randint(1, 10**8):08d}"

    def plan(self) -> tuple[str, str]:
        return self.rng.choice(self.plans) if self.plans else ("PLN0001", "PAY001")

    def encounter(self) -> tuple[str, str, str, dt.datetime]:
        if self.encounters:
            return self.rng.choice(self.encounters)
        return f"ADM{self.rng.randint(1, 10**9):09d}", "inpatient", self.patient(), self.when()


def _hospital(ctx: _Context, i: int) -> Row:
    fake, rng = ctx.fake, ctx.rng
    hospital_id = f"H{i + 1:03d}"
    ctx.hospitals.append(hospital_id)
    city = fake.city()
    return {
        "hospital_id": hospital_id,
        "hospital_name": f"{city} {rng.choice(HOSPITAL_SUFFIXES)}",
        "hospital_type": rng.choice(HOSPITAL_TYPES),
        "city": city,
        "state": fake.state_abbr(),
        "zip": fake.zipcode(),
        "staffed_beds": rng.randint(25, 900),
        "opened_date": fake.date_between(dt.date(1950, 1, 1), dt.date(2015, 12, 31)),
        "updated_at": ctx.when(),
    }


def _department(ctx: _Context, i: int) -> Row:
    department_id, hospital_id = f"D{i + 1:05d}", ctx.hospital()
    ctx.departments.append((department_id, hospital_id))
    name, service_line, is_inpatient = ctx.rng.choice(DEPARTMENTS)
    return {
        "department_id": department_id,
        "hospital_id": hospital_id,
        "department_name": name,
        "service_line": service_line,
        "is_inpatient": is_inpatient,
        "staffed_beds": ctx.rng.randint(8, 60) if is_inpatient else 0,
        "updated_at": ctx.when(),
    }


def _physician(ctx: _Context, i: int) -> Row:
    fake = ctx.fake
    npi = f"1{i + 1:09d}"
    department_id, hospital_id = ctx.department()
    ctx.physicians.append((npi, department_id, hospital_id))
    terminated = ctx.rng.random() < 0.05
    return {
        "npi": npi,
        "first_name": fake.first_name(),
        "last_name": fake.last_name(),
        "specialty": ctx.rng.choice(SPECIALTIES),
        "department_id": department_id,
        "hospital_id": hospital_id,
        "hire_date": fake.date_between(dt.date(1990, 1, 1), ctx.start.date()),
        "termination_date": fake.date_between(ctx.start.date(), ctx.end.date()) if terminated else None,
        "updated_at": ctx.when(),
    }


def _patient(ctx: _Context, i: int) -> Row:
    fake, rng = ctx.fake, ctx.rng
    mrn = f"MRN{i + 1:08d}"
    ctx.patients.append(mrn)
    sex = rng.choice(("F", "M"))
    registered_at = ctx.when()
    return {
        "mrn": mrn,
        "first_name": fake.first_name_female() if sex == "F" else fake.first_name_male(),
        "last_name": fake.last_name(),
        "sex": sex,
        "birth_date": fake.date_of_birth(minimum_age=0, maximum_age=100),
        "address_line": fake.street_address(),
        "city": fake.city(),
        "state": fake.state_abbr(),
        "zip": fake.zipcode(),
        "phone": fake.phone_number(),
        "email": fake.email(),
        "ssn": fake.ssn(),
        "preferred_language": rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0],
        "home_hospital_id": ctx.hospital(),
        "registered_at": registered_at,
        "updated_at": registered_at + dt.timedelta(days=rng.randint(0, 30)),
    }


def _payer(ctx: _Context, i: int) -> Row:
    payer_id = f"PAY{i + 1:03d}"
    if i < len(PAYERS):
        name, payer_type = PAYERS[i]
    else:
        name, payer_type = f"{ctx.fake.company()} Health", "Commercial"
    ctx.payers.append((payer_id, name))
    return {"payer_id": payer_id, "payer_name": name, "payer_type": payer_type, "updated_at": ctx.when()}


def _plan(ctx: _Context, i: int) -> Row:
    rng = ctx.rng
    plan_id = f"PLN{i + 1:04d}"
    payer_id, payer_name = rng.choice(ctx.payers) if ctx.payers else ("PAY001", "Medicare")
    ctx.plans.append((plan_id, payer_id))
    product_type = rng.choice(PRODUCT_TYPES)
    return {
        "plan_id": plan_id,
        "payer_id": payer_id,
        "plan_name": f"{payer_name} {product_type} {rng.choice(PLAN_TIERS)}",
        "product_type": product_type,
        "updated_at": ctx.when(),
    }


def _coverage(ctx: _Context, i: int) -> Row:
    fake, rng = ctx.fake, ctx.rng
    effective = fake.date_between(ctx.start.date() - dt.timedelta(days=3 * 365), ctx.end.date())
    terminated = rng.random() < 0.3
    return {
        "coverage_id": f"COV{i + 1:09d}",
        "mrn": ctx.patient(),
        "plan_id": ctx.plan()[0],
        "member_id": fake.bothify("???#########").upper(),
        "effective_date": effective,
        "termination_date": effective + dt.timedelta(days=rng.randint(30, 720)) if terminated else None,
        "updated_at": ctx.when(),
    }


def _appointment(ctx: _Context, i: int) -> Row:
    rng = ctx.rng
    appointment_id = f"APT{i + 1:010d}"
    mrn = ctx.patient()
    npi, department_id, _ = ctx.physician()
    scheduled_at = ctx.when().replace(minute=rng.choice((0, 15, 30, 45)), second=0, microsecond=0)
    status = rng.choices(APPOINTMENT_STATUSES, APPOINTMENT_STATUS_WEIGHTS)[0]
    duration = rng.choice((15, 20, 30, 45, 60))
    if status == "completed":
        ctx.encounters.append((appointment_id, "outpatient", mrn, scheduled_at))
    booked_at = scheduled_at - dt.timedelta(days=rng.randint(1, 90), minutes=rng.randint(0, 600))
    return {
        "appointment_id": appointment_id,
        "mrn": mrn,
        "npi": npi,
        "department_id": department_id,
        "booked_at": booked_at,
        "scheduled_at": scheduled_at,
        "duration_minutes": duration,
        "status": status,
        "reason": rng.choice(APPOINTMENT_REASONS),
        "updated_at": booked_at if status == "scheduled" else scheduled_at + dt.timedelta(minutes=duration),
    }


def _admission(ctx: _Context, i: int) -> Row:
    rng = ctx.rng
    admission_id = f"ADM{i + 1:09d}"
    mrn = ctx.patient()
    npi, department_id, hospital_id = ctx.physician()
    admit_at = ctx.when()
    discharged = rng.random() < 0.95
    discharge_at = admit_at + dt.timedelta(hours=rng.randint(12, 24 * 14)) if discharged else None
    ctx.encounters.append((admission_id, "inpatient", mrn, admit_at))
    secondary = rng.sample(DX_CODES, rng.randint(0, 4))
    return {
        "admission_id": admission_id,
        "mrn": mrn,
        "attending_npi": npi,
        "hospital_id": hospital_id,
        "department_id": department_id,
        "admission_type": rng.choices(ADMISSION_TYPES, ADMISSION_TYPE_WEIGHTS)[0],
        "admit_at": admit_at,
        "discharge_at": discharge_at,
        "principal_dx_code": rng.choice(DX_CODES),
        "secondary_dx_codes": ";".join(secondary) if secondary else None,
        "discharge_disposition": rng.choices(DISPOSITIONS, DISPOSITION_WEIGHTS)[0] if discharged else None,
        "updated_at": discharge_at or admit_at,
    }


def _charge(ctx: _Context, i: int) -> Row:
    rng = ctx.rng
    encounter_id, encounter_type, mrn, encounter_at = ctx.encounter()
    revenue_code, description, (low, high) = rng.choice(REVENUE_CODES)
    quantity = rng.choices((1, 2, 3, 4, 5), (70, 15, 8, 4, 3))[0]
    unit_price = round(rng.uniform(low, high), 2)
    service_at = encounter_at + dt.timedelta(days=rng.randint(0, 3) if encounter_type == "inpatient" else 0)
    return {
        "charge_id": f"CHG{i + 1:011d}",
        "encounter_id": encounter_id,
        "encounter_type": encounter_type,
        "mrn": mrn,
        "revenue_code": revenue_code,
        "charge_description": description,
        "service_date": service_at.date(),
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": round(quantity * unit_price, 2),
        "posted_at": service_at + dt.timedelta(days=rng.randint(1, 10), minutes=rng.randint(0, 1440)),
    }


def _claim(ctx: _Context, i: int) -> Row:
    rng = ctx.rng
    encounter_id, encounter_type, mrn, encounter_at = ctx.encounter()
    plan_id, payer_id = ctx.plan()
    billed = round(rng.uniform(100.0, 60000.0 if encounter_type == "inpatient" else 2500.0), 2)
    status = rng.choices(CLAIM_STATUSES, CLAIM_STATUS_WEIGHTS)[0]
    allowed = 0.0 if status in ("submitted", "denied") else round(billed * rng.uniform(0.3, 0.9), 2)
    if status == "paid":
        paid = allowed
    elif status == "partially_paid":
        paid = round(allowed * rng.uniform(0.4, 0.9), 2)
    else:
        paid = 0.0
    submitted_at = (encounter_at + dt.timedelta(days=rng.randint(2, 20))).replace(tzinfo=dt.UTC)
    path = CLAIM_STATUS_PATHS[status]
    at, history = submitted_at, []
    for step in path:
        if history:
            at += dt.timedelta(days=rng.randint(1, 21), hours=rng.randint(0, 23))
        history.append({"status": step, "at": at.isoformat()})
    return {
        "claim_id": f"CLM{i + 1:010d}",
        "encounter_id": encounter_id,
        "encounter_type": encounter_type,
        "mrn": mrn,
        "payer_id": payer_id,
        "plan_id": plan_id,
        "billed_amount": billed,
        "allowed_amount": allowed,
        "paid_amount": paid,
        "claim_status": status,
        "denial_reason_code": rng.choice(DENIAL_CODES) if status == "denied" else None,
        "submitted_at": submitted_at,
        "status_history": history,
        "updated_at": at,
    }


ROW_BUILDERS: dict[str, Callable[[_Context, int], Row]] = {
    "facilities__hospitals": _hospital,
    "facilities__departments": _department,
    "provider_registry__physicians": _physician,
    "registration__patients": _patient,
    "payers__payers": _payer,
    "payers__plans": _plan,
    "payers__coverage": _coverage,
    "scheduling__appointments": _appointment,
    "adt__admissions": _admission,
    "billing__charges": _charge,
    "claims__claims": _claim,
}


def _generic_row(source: Source) -> Callable[[_Context, int], Row]:
    """Rows for a source this module has no builder for yet: a Faker value per column, by registry type."""

    def build(ctx: _Context, i: int) -> Row:
        fake, rng, row = ctx.fake, ctx.rng, {}
        for column in source.columns:
            kind = column.type
            if source.primary_key and column.name == source.primary_key[0] and kind == "varchar":
                row[column.name] = f"{source.entity[:3].upper()}{i + 1:09d}"
            elif kind in ("integer", "bigint"):
                row[column.name] = rng.randint(0, 1000)
            elif kind == "double" or kind.startswith("decimal"):
                row[column.name] = round(rng.uniform(0, 10000), 2)
            elif kind == "date":
                row[column.name] = fake.date_between(ctx.start.date(), ctx.end.date())
            elif kind in ("timestamp", "timestamptz"):
                value = ctx.when()
                row[column.name] = value.replace(tzinfo=dt.UTC) if kind == "timestamptz" else value
            elif kind == "boolean":
                row[column.name] = rng.random() < 0.5
            elif kind == "json":
                row[column.name] = {"note": fake.word()}
            else:
                row[column.name] = fake.word()
        return row

    return build


def write_frame(frame: pd.DataFrame, source: Source, path: Path) -> None:
    """Write a DataFrame the way the registry describes the source, with pandas' own writers."""
    if source.format == "csv":
        frame.to_csv(
            path,
            sep=source.delimiter,
            index=False,
            header=source.header,
            quotechar=source.quote,
            encoding=source.encoding,
            lineterminator=source.newline,
        )
        return
    # JSON has no date type: dates go out as ISO strings, timestamps with pandas' date_format="iso".
    for column in source.columns:
        if column.type == "date":
            frame[column.name] = frame[column.name].astype(str)
    frame.to_json(path, orient="records", lines=source.format == "jsonl", date_format="iso")


def _file_name(source: Source, tag: str) -> str:
    return source.pattern.replace("*", tag, 1).replace("*", "")


def generate_reference(
    out_dir: Path,
    row_counts: Mapping[str, int],
    registry: Registry,
    *,
    seed: int = 42,
    start: dt.date = dt.date(2024, 1, 1),
    end: dt.date = dt.date(2025, 12, 31),
    tag: str = "reference",
) -> dict[str, ReferenceResult]:
    """Build ``row_counts[source]`` rows for each registry source row by row and write one file per source."""
    unknown = sorted(set(row_counts) - set(registry.sources))
    if unknown:
        raise ValueError(f"row_counts names sources that are not in {registry.path}: {', '.join(unknown)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    ctx = _Context(
        fake=fake,
        rng=random.Random(seed),
        start=dt.datetime.combine(start, dt.time()),
        end=dt.datetime.combine(end, dt.time(23, 59, 59)),
    )
    results: dict[str, ReferenceResult] = {}
    # Registry order is dependency order (hospitals before departments, patients before their encounters).
    for name, source in registry.sources.items():
        if name not in row_counts:
            continue
        build = ROW_BUILDERS.get(name) or _generic_row(source)
        path = out_dir / _file_name(source, tag)
        began = time.perf_counter()
        rows = [build(ctx, i) for i in range(row_counts[name])]
        if rows and list(rows[0]) != source.column_names:
            raise ValueError(
                f"{name}: the reference builds columns {list(rows[0])} but {registry.path} lists "
                f"{source.column_names}; update its row builder in benchmarks/reference_generator.py"
            )
        frame = pd.DataFrame(rows, columns=source.column_names)
        write_frame(frame, source, path)
        seconds = time.perf_counter() - began
        results[name] = ReferenceResult(name, path, len(rows), path.stat().st_size, seconds)
    return results
