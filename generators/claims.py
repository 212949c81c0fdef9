"""Claims clearinghouse: one claim per insured encounter with its status history (UTC timestamps).

Timeline: submitted a few days after the charges post; then paid, or denied with a CARC reason code;
a share of denials is appealed, and a share of appeals is overturned and paid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generators import ratios
from generators.billing import Charges, Encounters, cents_to_decimal
from generators.clinical import ALLOWED_RATIO, DENIAL_REASONS
from generators.fastcodec import joined_text, pick, repeated
from generators.payers import PLAN_IDS, PLAN_PAYER, PLAN_PAYER_TYPE
from generators.registration import mrn
from generators.timeutil import iso_utc

STATUSES = np.array(["submitted", "denied", "appealed", "paid"], dtype=object)
_REASON_CODES = np.array([code for code, _, _ in DENIAL_REASONS], dtype=object)
_REASON_P = np.array([weight for _, _, weight in DENIAL_REASONS], dtype=np.float64)
_PLAN_ALLOWED_RATIO = np.array([ALLOWED_RATIO[kind] for kind in PLAN_PAYER_TYPE])
_PLAN_DENIAL_RATE = np.array([ratios.DENIAL_RATE_BY_PAYER_TYPE.get(kind, 0.0) for kind in PLAN_PAYER_TYPE])


@dataclass
class Claims:
    """Claims with up to four status events each (NaT where an event did not happen)."""

    encounter: np.ndarray  # row in Encounters
    plan: np.ndarray
    billed_cents: np.ndarray
    allowed_cents: np.ndarray
    paid_cents: np.ndarray
    events: np.ndarray  # (claims, 4) datetime64[s] local: submitted, denied, appealed, final
    final_status: np.ndarray  # status of the 4th event: 3 paid or 1 denied (upheld), -1 none
    first_outcome: np.ndarray  # 3 paid or 1 denied
    reason: np.ndarray  # CARC code of the denial, or None


def _business(rng: np.random.Generator, base: np.ndarray, low: int, high: int) -> np.ndarray:
    days = rng.integers(low, high + 1, base.size).astype("timedelta64[D]")
    hour = rng.integers(8 * 3600, 18 * 3600, base.size).astype("timedelta64[s]")
    return (base.astype("datetime64[D]") + days).astype("datetime64[s]") + hour


def generate_claims(rng: np.random.Generator, encounters: Encounters, charges: Charges, plan: np.ndarray) -> Claims:
    """Claims for encounters whose payer is not self-pay."""
    insured = np.flatnonzero(PLAN_PAYER_TYPE[plan] != "self_pay")
    plan = plan[insured]
    size = insured.size
    billed = charges.billed_cents(encounters.size)[insured]
    ratio = _PLAN_ALLOWED_RATIO[plan] * rng.uniform(0.9, 1.1, size)
    allowed = np.minimum(np.round(billed * ratio), billed).astype(np.int64)
    paid = np.round(allowed * rng.uniform(0.75, 0.97, size)).astype(np.int64)
    first_posted = charges.posted_at[np.searchsorted(charges.encounter, insured)]
    submitted = _business(rng, first_posted, 1, 5)
    denied = rng.random(size) < _PLAN_DENIAL_RATE[plan]
    appealed = denied & (rng.random(size) < ratios.APPEAL_RATE)
    overturned = appealed & (rng.random(size) < ratios.APPEAL_OVERTURN_RATE)
    nat = np.datetime64("NaT", "s")
    denied_at = np.where(denied, _business(rng, submitted, 7, 30), nat)
    paid_first = np.where(~denied, _business(rng, submitted, 10, 35), nat)
    appealed_at = np.where(appealed, _business(rng, np.where(denied, denied_at, submitted), 5, 30), nat)
    final_at = np.where(appealed, _business(rng, np.where(appealed, appealed_at, submitted), 14, 45), nat)
    events = np.stack([submitted, np.where(denied, denied_at, paid_first), appealed_at, final_at], axis=1)
    final_status = np.where(appealed, np.where(overturned, 3, 1), -1)
    reason = np.where(denied, _REASON_CODES[rng.choice(_REASON_CODES.size, size, p=_REASON_P / _REASON_P.sum())], None)
    paid = np.where(denied & ~overturned, 0, paid)
    allowed = np.where(denied & ~overturned, 0, allowed)
    return Claims(insured, plan, billed, allowed, paid, events, final_status, np.where(denied, 1, 3), reason)


def claim_versions(
    claims: Claims, window_start: np.datetime64 | None, window_end: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """Claims with a status event in the window, and how many events their latest version in it holds."""
    happened = ~np.isnat(claims.events) & (claims.events <= window_end)
    count = happened.sum(axis=1)
    if window_start is None:
        rows = np.flatnonzero(count > 0)
    else:
        in_window = happened & (claims.events >= window_start)
        rows = np.flatnonzero(in_window.any(axis=1))
    return rows, count[rows]


def _event_status(claims: Claims, rows: np.ndarray) -> np.ndarray:
    """(rows, 4) status index of each event."""
    status = np.empty((rows.size, 4), dtype=np.int64)
    status[:, 0] = 0
    status[:, 1] = claims.first_outcome[rows]
    status[:, 2] = 2
    status[:, 3] = claims.final_status[rows]
    return status


def render_claims(
    claims: Claims, encounters: Encounters, rows: np.ndarray, count: np.ndarray, timezone: str
) -> pa.Table:
    """Claim rows as the clearinghouse sends them: the status as of the version and the history so far."""
    status = _event_status(claims, rows)
    latest = status[np.arange(rows.size), count - 1]
    adjudicated_paid = latest == 3
    reason = np.where(count >= 2, claims.reason[rows], None)
    events = claims.events[rows]
    submitted = iso_utc(events[:, 0], timezone)
    reason_array = pa.array(reason, pa.string())
    reason_field = pc.fill_null(pc.binary_join_element_wise(',"reason_code":"', reason_array, '"', ""), "")
    status_text = pa.array(STATUSES, pa.string())
    history = pa.nulls(rows.size, pa.string())
    for k in range(4):
        # Events are built only for the claims that have them (appeals and their outcomes are rare).
        has = k < count
        if not has.any():
            break
        every = bool(has.all())
        subset = None if every else pa.array(np.flatnonzero(has))
        kth = status[:, k] if every else status[has, k]
        reasons = pc.if_else(pa.array(kth == 1), reason_field if every else reason_field.take(subset), "")
        stamp = submitted if k == 0 and every else iso_utc(events[:, k] if every else events[has, k], timezone)
        event = pc.binary_join_element_wise(
            '{"status":"', status_text.take(pa.array(np.maximum(kth, 0))), '","at":"', stamp, '"', reasons, "}", "",
        )  # fmt: skip
        if k:
            event = pc.binary_join_element_wise(history if every else history.take(subset), event, ",")
        history = event if every else pc.replace_with_mask(history, pa.array(has), event)
    encounter = claims.encounter[rows]
    encounter_id = encounters.encounter_id.take(pa.array(encounter, pa.int64()))
    updated = iso_utc(events[np.arange(rows.size), count - 1], timezone)  # the latest event's
    return pa.table(
        {
            "claim_id": joined_text("CLM", encounter_id),
            "encounter_id": encounter_id,
            "encounter_type": repeated(encounters.encounter_type, rows.size),
            "mrn": mrn(encounters.patient[encounter]),
            "payer_id": pick(PLAN_PAYER, claims.plan[rows]),
            "plan_id": pick(PLAN_IDS, claims.plan[rows]),
            "billed_amount": cents_to_decimal(claims.billed_cents[rows]),
            "allowed_amount": cents_to_decimal(np.where(adjudicated_paid, claims.allowed_cents[rows], 0)),
            "paid_amount": cents_to_decimal(np.where(adjudicated_paid, claims.paid_cents[rows], 0)),
            "claim_status": status_text.take(pa.array(latest)),
            "denial_reason_code": reason_array,
            "submitted_at": submitted,
            "status_history": pc.binary_join_element_wise("[", history, "]", ""),
            "updated_at": updated,
        }
    )
