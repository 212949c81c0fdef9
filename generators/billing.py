"""Billing: encounters (admissions and completed visits) and their charge lines with UB-04 revenue codes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from generators.clinical import (
    CLINIC_ANCILLARY,
    CLINIC_LINE,
    EMERGENCY_LINE,
    INPATIENT_ANCILLARY,
    ROOM_ICU,
    ROOM_MED_SURG,
    ROOM_OB,
    SURGERY_LINE,
)
from generators.fastcodec import decimal_from_cents, joined_text, pick, repeated
from generators.registration import mrn

TEMPLATES = (
    ROOM_MED_SURG, ROOM_ICU, ROOM_OB, SURGERY_LINE, EMERGENCY_LINE, CLINIC_LINE,
    *(line for line, _, _ in INPATIENT_ANCILLARY), *(line for line, _, _ in CLINIC_ANCILLARY),
)  # fmt: skip
_CODE = np.array([t.revenue_code for t in TEMPLATES], dtype=object)
_DESCRIPTION = np.array([t.description for t in TEMPLATES], dtype=object)
_PRICE_CENTS = np.array([round(t.unit_price * 100) for t in TEMPLATES], dtype=np.int64)
_INPATIENT_ANCILLARY_AT = 6
_CLINIC_ANCILLARY_AT = 6 + len(INPATIENT_ANCILLARY)


@dataclass
class Encounters:
    """Billable encounters: inpatient stays or completed clinic visits (local datetime64[s])."""

    encounter_id: pa.Array
    encounter_type: str  # inpatient | outpatient
    patient: np.ndarray
    start_at: np.ndarray
    end_at: np.ndarray
    nights: np.ndarray
    icu: np.ndarray
    obstetric: np.ndarray
    surgical: np.ndarray
    emergency: np.ndarray

    @property
    def size(self) -> int:
        """Number of encounters."""
        return int(self.patient.size)


@dataclass
class Charges:
    """Charge lines of a set of encounters, sorted by (encounter, line)."""

    encounter: np.ndarray  # row in Encounters
    template: np.ndarray
    quantity: np.ndarray
    unit_cents: np.ndarray
    service_day: np.ndarray  # datetime64[D]
    posted_at: np.ndarray  # datetime64[s]
    line: np.ndarray  # 1-based line number within the encounter

    def billed_cents(self, encounters: int) -> np.ndarray:
        """Total charges per encounter, in cents."""
        return np.bincount(self.encounter, weights=self.quantity * self.unit_cents, minlength=encounters).astype(
            np.int64
        )


def generate_charges(rng: np.random.Generator, encounters: Encounters) -> Charges:
    """Charge lines: room and board per night, ancillaries by probability, OR and ER lines where they apply."""
    size = encounters.size
    rows, templates, quantities = [], [], []

    def add(mask: np.ndarray, template: int, quantity: np.ndarray | int) -> None:
        picked = np.flatnonzero(mask)
        rows.append(picked)
        templates.append(np.full(picked.size, template))
        quantities.append(np.broadcast_to(quantity, size)[picked])

    everyone = np.ones(size, dtype=bool)
    nights = encounters.nights
    if encounters.encounter_type == "inpatient":
        add(~encounters.icu, 0, np.maximum(nights, 1))
        add(encounters.icu, 1, np.maximum(nights, 1))
        add(encounters.obstetric, 2, 1)
        add(encounters.surgical, 3, 1)
        add(encounters.emergency, 4, 1)
        for offset, (_, probability, most) in enumerate(INPATIENT_ANCILLARY):
            quantity = np.minimum(1 + rng.poisson(nights * 0.5), most)
            add(rng.random(size) < probability, _INPATIENT_ANCILLARY_AT + offset, quantity)
    else:
        add(everyone, 5, 1)
        for offset, (_, probability, most) in enumerate(CLINIC_ANCILLARY):
            add(rng.random(size) < probability, _CLINIC_ANCILLARY_AT + offset, rng.integers(1, most + 1, size))
    encounter = np.concatenate(rows)
    template = np.concatenate(templates)
    quantity = np.concatenate(quantities).astype(np.int64)
    order = np.lexsort((template, encounter))
    encounter, template, quantity = encounter[order], template[order], quantity[order]
    count = encounter.size
    unit = np.round(_PRICE_CENTS[template] * rng.lognormal(0.0, 0.2, count)).astype(np.int64)
    start_day = encounters.start_at[encounter].astype("datetime64[D]")
    spread = (rng.random(count) * (nights[encounter] + 1)).astype(int)
    spread = np.where(np.isin(template, (0, 1, 4)), 0, spread)
    end_day = encounters.end_at[encounter].astype("datetime64[D]")
    service_day = np.minimum(start_day + spread.astype("timedelta64[D]"), end_day)
    # The billing system posts an encounter's charges in its nightly run after discharge or visit.
    posting = rng.integers(2 * 3600, 5 * 3600, size).astype("timedelta64[s]")
    posted = (end_day + np.timedelta64(1, "D")).astype("datetime64[s]") + posting[encounter]
    line = np.arange(count) - np.searchsorted(encounter, encounter, side="left") + 1
    return Charges(encounter, template, quantity, unit, service_day, posted, line)


def render_charges(encounters: Encounters, charges: Charges, rows: np.ndarray) -> pa.Table:
    """Charge rows as the billing system writes them."""
    encounter = charges.encounter[rows]
    take = pa.array(encounter, pa.int64())
    encounter_id = encounters.encounter_id.take(take)
    template = charges.template[rows]
    return pa.table(
        {
            "charge_id": joined_text(encounter_id, "-", (charges.line[rows], 2)),
            "encounter_id": encounter_id,
            "encounter_type": repeated(encounters.encounter_type, rows.size),
            "mrn": mrn(encounters.patient[encounter]),
            "revenue_code": pick(_CODE, template),
            "charge_description": pick(_DESCRIPTION, template),
            "service_date": pa.array(charges.service_day[rows]).cast(pa.date32()),
            "quantity": pa.array(charges.quantity[rows], pa.int32()),
            "unit_price": cents_to_decimal(charges.unit_cents[rows]),
            "amount": cents_to_decimal(charges.unit_cents[rows] * charges.quantity[rows]),
            "posted_at": pa.array(charges.posted_at[rows]),
        }
    )


def cents_to_decimal(cents: np.ndarray) -> pa.Array:
    """Integer cents -> decimal(12,2) dollars, exactly."""
    return decimal_from_cents(cents, 12)
