"""Payers: payers, plans and each patient's coverage timeline (plan changes, ageing into Medicare)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from generators import ratios
from generators.clinical import PAYERS
from generators.fastcodec import joined_text, pick
from generators.registration import CHUNK, Patients, mrn
from generators.seeds import partition_rng
from generators.timeutil import day_start

PLAN_IDS = np.array([f"{payer_id}-{i + 1:02d}" for payer_id, _, _, plans in PAYERS for i in range(len(plans))])
PLAN_PAYER = np.array([payer_id for payer_id, _, _, plans in PAYERS for _ in plans])
PLAN_PAYER_TYPE = np.array([kind for _, _, kind, plans in PAYERS for _ in plans])
PLAN_PRODUCT = np.array([product for _, _, _, plans in PAYERS for _, product in plans])
_PLAN = {plan_id: index for index, plan_id in enumerate(PLAN_IDS)}

# Plan choice: (plan, probability) for people 65+ and, under 65, by age band (0-17, 18-44, 45-64).
# Under 65, Medicare covers people on disability benefits (SSDI: ~3% of 18-44, ~8% of 45-64 here), and Medicaid a
# third of young adults (it pays for ~41% of births, CDC NVSS 2022): with them Medicare and Medicaid pay for ~58%
# of stays (HCUP: ~60%).
_SENIOR = {"PAY01-01": 0.88, "PAY03-03": 0.07, "PAY04-02": 0.05}
_UNDER_65 = {
    "PAY01-01": (0.0, 0.03, 0.09),
    "PAY02-01": (0.14, 0.12, 0.07),
    "PAY02-02": (0.32, 0.28, 0.13),
    "PAY06-01": (0.04, 0.10, 0.07),
    "PAY03-01": (0.16, 0.20, 0.24),
    "PAY03-02": (0.12, 0.14, 0.16),
    "PAY04-01": (0.13, 0.17, 0.22),
    "PAY05-01": (0.09, 0.12, 0.16),
}


@dataclass
class Coverage:
    """Coverage segments sorted by (patient, effective date); segment k of a patient is its k-th plan."""

    patient: np.ndarray
    ordinal: np.ndarray
    plan: np.ndarray  # index into PLAN_IDS
    effective: np.ndarray  # datetime64[D]
    processed_at: np.ndarray  # datetime64[s], when the payer recorded the segment
    next_processed_at: np.ndarray  # datetime64[s], when it was terminated (NaT: still open)
    first_row: np.ndarray  # first_row[p]: row of patient p's first segment; first_row[count]: number of rows

    def plan_on(self, patient: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Plan index covering each patient on each day (the first plan if the day precedes all)."""
        if self.plan.size == 0:
            return self.plan[:0]
        # A patient has a handful of segments: stepping through them beats a binary search over all of them.
        low, high = self.first_row[patient], self.first_row[np.asarray(patient) + 1]
        day = day.astype("datetime64[D]")
        last = self.plan.size - 1
        row = low.copy()
        for step in range(1, int(np.diff(self.first_row).max(initial=1))):
            candidate = low + step
            row += (candidate < high) & (self.effective[np.minimum(candidate, last)] <= day)
        return self.plan[np.minimum(row, last)]


def _plans_from_draws(draw: np.ndarray, ages: np.ndarray) -> np.ndarray:
    """Plan per person from a uniform draw each, by age (65+: Medicare or Medicare Advantage)."""
    tables = [(_SENIOR.keys(), np.array(list(_SENIOR.values())))]
    tables += [(_UNDER_65.keys(), np.array([shares[i] for shares in _UNDER_65.values()])) for i in range(3)]
    group = np.where(ages >= 65, 0, 1 + np.searchsorted(np.array([18, 45]), ages, side="right"))
    plans = np.empty(ages.size, dtype=np.int16)
    for index, (ids, weights) in enumerate(tables):
        members = group == index
        cumulative = np.cumsum(weights / weights.sum())
        pick = np.minimum(np.searchsorted(cumulative, draw[members], side="right"), cumulative.size - 1)
        plans[members] = np.array([_PLAN[i] for i in ids])[pick]
    return plans


def _first_of_month(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[M]").astype("datetime64[D]")


def build_coverage(seed: int, start: dt.date, horizon: dt.date, population: Patients) -> Coverage:
    """First coverage at registration; plan changes at a yearly rate; Medicare from the 65th birthday."""
    count = population.count
    # Separate streams: each is consumed one value per patient, so prefixes stay put as patients are added.
    rng = partition_rng(seed, "coverage-initial")
    plan_rng = partition_rng(seed, "coverage-initial-plan")
    registered_day = population.registered_at.astype("datetime64[D]")
    back = rng.integers(0, 6 * 365, count).astype("timedelta64[D]")
    effective = _first_of_month(np.maximum(registered_day, np.datetime64(start, "D") - back))
    effective = np.minimum(effective, _first_of_month(registered_day))
    ages = population.age_years(np.arange(count), np.maximum(effective, np.datetime64(start, "D")))
    patients, plans, effectives = (
        [np.arange(count)],
        [_plans_from_draws(plan_rng.random(count), ages)],
        [effective],
    )
    processed = [np.maximum(population.registered_at, effective.astype("datetime64[s]") + np.timedelta64(8, "h"))]
    # Ageing into Medicare: coverage changes on the first of the month of the 65th birthday. Worked out once
    # (calendar conversions cost ~20 ns a value), like the first of each month of a year below.
    turning_month = population.birth_day.astype("datetime64[M]") + np.timedelta64(65 * 12, "M")
    turning_year = turning_month.astype("datetime64[Y]").astype(int) + 1970
    turning_day = turning_month.astype("datetime64[D]")
    for year in range(start.year, horizon.year + 1):
        month_start = np.arange(np.datetime64(f"{year}-01", "M"), np.datetime64(f"{year + 1}-01", "M"))
        month_start = month_start.astype("datetime64[D]")
        for chunk_start in range(0, count, CHUNK):
            index = np.arange(chunk_start, min(chunk_start + CHUNK, count))
            chunk_rng = partition_rng(seed, "coverage-changes", year, chunk_start)
            # Draws are always CHUNK long, so a patient's changes do not depend on how full the chunk is yet.
            size = index.size
            changing = chunk_rng.random(CHUNK)[:size] < ratios.COVERAGE_CHANGES_PER_YEAR
            month = chunk_rng.integers(1, 13, CHUNK)[:size]
            lead = chunk_rng.integers(3, 46, CHUNK)[:size].astype("timedelta64[D]")
            hours = chunk_rng.integers(8 * 3600, 17 * 3600, CHUNK)[:size].astype("timedelta64[s]")
            plan_draw = chunk_rng.random(CHUNK)[:size]
            turning = turning_year[index] == year
            when = np.where(turning, turning_day[index], month_start[month - 1])
            valid = (changing | turning) & (when > np.datetime64(start, "D")) & (when > registered_day[index])
            who = index[valid]
            patients.append(who)
            plans.append(_plans_from_draws(plan_draw[valid], population.age_years(who, when[valid])))
            effectives.append(when[valid])
            recorded = (when[valid] - lead[valid]).astype("datetime64[s]") + hours[valid]
            # A payer cannot record coverage for someone before the hospital has registered them.
            processed.append(np.maximum(recorded, population.registered_at[who] + np.timedelta64(1, "h")))
    patient = np.concatenate(patients)
    plan = np.concatenate(plans)
    effective = np.concatenate(effectives)
    processed_at = np.concatenate(processed)
    order = np.lexsort((effective, patient))
    patient, plan, effective, processed_at = (
        patient[order],
        plan[order],
        effective[order],
        processed_at[order],
    )
    # Two changes on the same day for one patient: keep the later one.
    keep = np.r_[(patient[1:] != patient[:-1]) | (effective[1:] != effective[:-1]), True][: patient.size]
    patient, plan, effective, processed_at = patient[keep], plan[keep], effective[keep], processed_at[keep]
    horizon_end = day_start(horizon + dt.timedelta(days=1))
    keep = processed_at < horizon_end
    patient, plan, effective, processed_at = patient[keep], plan[keep], effective[keep], processed_at[keep]
    same_next = np.r_[patient[1:] == patient[:-1], False]
    next_processed = np.where(same_next, np.r_[processed_at[1:], processed_at[:1]], np.datetime64("NaT", "s"))
    ordinal = np.arange(patient.size) - np.searchsorted(patient, patient, side="left")
    first_row = np.searchsorted(patient, np.arange(count + 1))
    return Coverage(patient, ordinal, plan, effective, processed_at, next_processed, first_row)


def coverage_versions(
    coverage: Coverage, window_start: np.datetime64 | None, window_end: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """Segments with a version in the window, and whether that version carries their termination."""
    opened = coverage.processed_at <= window_end
    closed = ~np.isnat(coverage.next_processed_at) & (coverage.next_processed_at <= window_end)
    if window_start is not None:
        closed &= coverage.next_processed_at >= window_start
        opened &= (coverage.processed_at >= window_start) | closed
    rows = np.flatnonzero(opened | closed)
    return rows, closed[rows]


def render_coverage(coverage: Coverage, rows: np.ndarray, terminated: np.ndarray) -> pa.Table:
    """Coverage rows as the payer feed writes them."""
    patient = coverage.patient[rows]
    ordinal = coverage.ordinal[rows]
    plan = coverage.plan[rows]
    next_effective = coverage.effective[np.minimum(rows + 1, coverage.effective.size - 1)]
    termination = np.where(terminated, next_effective - np.timedelta64(1, "D"), np.datetime64("NaT", "D"))
    updated = np.where(terminated, coverage.next_processed_at[rows], coverage.processed_at[rows])
    coverage_id = joined_text("COV", (patient + 1, 8), "-", (ordinal, 2))
    member_number = (patient.astype(np.int64) * 7_919 + ordinal * 104_729 + 31_337) % 1_000_000_000
    prefix = np.array(["MBI", "MCD", "BCB", "UHC", "AET", "SP"], dtype=object)
    payer_index = np.searchsorted(np.array([p[0] for p in PAYERS]), PLAN_PAYER[plan])
    member_id = pc.binary_join_element_wise(
        pa.array(prefix[payer_index], pa.string()),
        pc.utf8_lpad(pa.array(member_number).cast(pa.string()), 9, "0"),
        "",
    )
    return pa.table(
        {
            "coverage_id": coverage_id,
            "mrn": mrn(patient),
            "plan_id": pick(PLAN_IDS, plan),
            "member_id": member_id,
            "effective_date": pa.array(coverage.effective[rows]).cast(pa.date32()),
            "termination_date": pa.array(termination).cast(pa.date32()),
            "updated_at": pa.array(updated.astype("datetime64[s]")),
        }
    )


def generate_payers(as_of: dt.date) -> pa.Table:
    """The payers extract."""
    stamp = np.datetime64(dt.datetime(2020, 1, 1, 8, 0), "s")
    return pa.table(
        {
            "payer_id": [payer_id for payer_id, *_ in PAYERS],
            "payer_name": [name for _, name, *_ in PAYERS],
            "payer_type": [kind for _, _, kind, _ in PAYERS],
            "updated_at": pa.array(np.full(len(PAYERS), stamp)),
        }
    )


def generate_plans(as_of: dt.date) -> pa.Table:
    """The plans extract."""
    stamp = np.datetime64(dt.datetime(2020, 1, 1, 8, 0), "s")
    names = [name for _, _, _, plans in PAYERS for name, _ in plans]
    return pa.table(
        {
            "plan_id": pa.array(PLAN_IDS, pa.string()),
            "payer_id": pa.array(PLAN_PAYER, pa.string()),
            "plan_name": names,
            "product_type": pa.array(PLAN_PRODUCT, pa.string()),
            "updated_at": pa.array(np.full(len(names), stamp)),
        }
    )
