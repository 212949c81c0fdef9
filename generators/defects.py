"""Defect mode: realistic data defects injected into extracts, with a ground truth of every defective row.

Every defect keeps the row loadable (types still parse), so it is the quality gates' job to catch it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEFECT_CLASSES = (
    "duplicate_row",
    "missing_key",
    "orphan_reference",
    "discharge_before_admission",
    "negative_amount",
    "malformed_code",
    "impossible_date",
    "stray_whitespace_case",
)


@dataclass(frozen=True)
class Defect:
    """One defect class applicable to a source: which column it touches and how."""

    name: str
    column: str | None
    apply: Callable[[pa.Table, np.ndarray, np.random.Generator], pa.Array] | None = None


def _replace(table: pa.Table, column: str, mask: np.ndarray, values: pa.Array) -> pa.Table:
    position = table.schema.get_field_index(column)
    current = table.column(column).combine_chunks()
    new_values = values.cast(current.type).filter(pa.array(mask))
    updated = pc.replace_with_mask(current, pa.array(mask), new_values)
    return table.set_column(position, column, updated)


def _null(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
    return pa.nulls(table.num_rows, table.schema.field(column).type)


def _orphan(prefix: str, digits: int) -> Callable:
    def make(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
        numbers = rng.integers(10 ** (digits - 1) * 9, 10**digits, table.num_rows)
        return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")

    return make


def _shouty(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
    values = table.column(column).combine_chunks().cast(pa.string())
    return pc.binary_join_element_wise(" ", pc.utf8_upper(values), "  ", "")


def _negative(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
    values = table.column(column).combine_chunks()
    return pc.negate(pc.add(values, pa.scalar(1, values.type)))


def _future_day(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
    days = np.datetime64("2099-01-01") + rng.integers(0, 365, table.num_rows).astype("timedelta64[D]")
    return pa.array(days).cast(pa.date32())


def _before(reference: str, hours: int) -> Callable:
    def make(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
        base = table.column(reference).combine_chunks().cast(pa.timestamp("s")).to_numpy(zero_copy_only=False)
        return pa.array(base - np.timedelta64(hours, "h"))

    return make


def _after(reference: str, hours: int) -> Callable:
    def make(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
        base = table.column(reference).combine_chunks().cast(pa.timestamp("s")).to_numpy(zero_copy_only=False)
        return pa.array(base + np.timedelta64(hours, "h"))

    return make


def _bad_code(pattern: str) -> Callable:
    def make(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
        numbers = rng.integers(0, 10, table.num_rows).astype(str).astype(object)
        return pa.array(pattern + numbers, pa.string())

    return make


def _bad_npi(table: pa.Table, column: str, rng: np.random.Generator) -> pa.Array:
    values = pc.cast(table.column(column).combine_chunks(), pa.string())
    last = pc.utf8_slice_codeunits(values, 9, 10).cast(pa.int64())
    wrong = pc.bit_wise_and(pc.add(last, 1), 7)  # a different digit: the check digit no longer matches
    return pc.binary_join_element_wise(pc.utf8_slice_codeunits(values, 0, 9), pc.cast(wrong, pa.string()), "")


_MISSING_MRN = Defect("missing_key", "mrn", _null)
_ORPHAN_MRN = Defect("orphan_reference", "mrn", _orphan("MRN9", 7))
DEFECTS_BY_SOURCE: dict[str, tuple[Defect, ...]] = {
    "provider_registry__physicians": (
        Defect("duplicate_row", None),
        Defect("malformed_code", "npi", _bad_npi),
        Defect("stray_whitespace_case", "specialty", _shouty),
    ),
    "registration__patients": (
        Defect("duplicate_row", None),
        _MISSING_MRN,
        Defect("impossible_date", "birth_date", _future_day),
        Defect("stray_whitespace_case", "sex", _shouty),
        Defect("malformed_code", "zip", _bad_code("ZIP-")),
    ),
    "payers__coverage": (
        Defect("duplicate_row", None),
        Defect("missing_key", "coverage_id", _null),
        _ORPHAN_MRN,
        Defect("impossible_date", "effective_date", _future_day),
    ),
    "scheduling__appointments": (
        Defect("duplicate_row", None),
        Defect("missing_key", "appointment_id", _null),
        _ORPHAN_MRN,
        Defect("stray_whitespace_case", "status", _shouty),
        Defect("impossible_date", "booked_at", _after("scheduled_at", 48)),
    ),
    "adt__admissions": (
        Defect("duplicate_row", None),
        Defect("missing_key", "admission_id", _null),
        _ORPHAN_MRN,
        Defect("discharge_before_admission", "discharge_at", _before("admit_at", 6)),
        Defect("malformed_code", "principal_dx_code", _bad_code("XX.9")),
        Defect("stray_whitespace_case", "admission_type", _shouty),
    ),
    "billing__charges": (
        Defect("duplicate_row", None),
        Defect("missing_key", "charge_id", _null),
        Defect("orphan_reference", "encounter_id", _orphan("E999", 9)),
        Defect("negative_amount", "amount", _negative),
        Defect("malformed_code", "revenue_code", _bad_code("RC")),
    ),
    "claims__claims": (
        Defect("duplicate_row", None),
        Defect("missing_key", "claim_id", _null),
        Defect("orphan_reference", "encounter_id", _orphan("E999", 9)),
        Defect("negative_amount", "billed_amount", _negative),
    ),
}


def inject_defects(
    table: pa.Table, source: str, rate: float, rng: np.random.Generator, ensure_each: bool = False
) -> tuple[pa.Table, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Give about ``rate`` of the rows one defect each; returns the new table and (rows, defects, columns).

    With ``ensure_each``, every defect class of the source is given to at least one row (when the table
    has rows that can carry it), so a small batch still exercises every rule of the quality gate.
    """
    defects = DEFECTS_BY_SOURCE.get(source, ())
    if not defects or rate <= 0 or table.num_rows == 0:
        return table, (np.array([], dtype=np.int64), np.array([], dtype=object), np.array([], dtype=object))
    chosen = rng.random(table.num_rows) < rate
    kind = rng.integers(0, len(defects), table.num_rows)
    if ensure_each and table.num_rows >= 2 * len(defects):
        spots = rng.choice(table.num_rows, len(defects), replace=False)
        chosen[spots] = True
        kind[spots] = np.arange(len(defects))
    for index, defect in enumerate(defects):
        if defect.name == "discharge_before_admission" and defect.column is not None:
            # Only a discharged stay can be discharged before its admission; give open ones to another class.
            empty = np.asarray(pc.is_null(table.column(defect.column)).combine_chunks())
            if ensure_each and (kind == index).any() and not ((kind == index) & ~empty).any():
                kind[np.flatnonzero(~empty)[:1]] = index
                chosen[np.flatnonzero(~empty)[:1]] = True
            kind = np.where((kind == index) & empty, 0, kind)
    for index, defect in enumerate(defects):
        mask = chosen & (kind == index)
        if defect.apply is None or not mask.any():
            continue
        table = _replace(table, defect.column, mask, defect.apply(table, defect.column, rng))
    duplicate = chosen & (kind == 0)
    # A duplicate is the same record sent twice in a row: the copy follows its original.
    take = np.repeat(np.arange(table.num_rows), np.where(duplicate, 2, 1))
    new_position = np.cumsum(np.where(duplicate, 2, 1)) - 1  # position of each original's last copy
    rows = np.flatnonzero(chosen)
    names = np.array([defect.name for defect in defects], dtype=object)[kind[rows]]
    columns = np.array([defect.column for defect in defects], dtype=object)[kind[rows]]
    return table.take(pa.array(take)), (new_position[rows], names, columns)
