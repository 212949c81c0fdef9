"""Defect mode: every row of the ground truth carries the stated defect, and clean batches carry none."""

from __future__ import annotations

import csv
import datetime as dt
import re

import pytest

from generators.batch import GROUND_TRUTH_FILE, NetworkSpec, generate_initial
from generators.defects import DEFECT_CLASSES, DEFECTS_BY_SOURCE
from generators.icd10 import is_billable
from generators.providers import is_valid_npi

from .conftest import read_batch

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=5, patients=4_000, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 4, 30)
RATE = 0.03
ZIP = re.compile(r"^\d{5}$")
REVENUE_CODE = re.compile(r"^\d{4}$")


@pytest.fixture(scope="module")
def batches(tmp_path_factory, registry):
    root = tmp_path_factory.mktemp("defects")
    clean = generate_initial(root / "clean", NETWORK, END, registry=registry)
    dirty = generate_initial(root / "dirty", NETWORK, END, registry=registry, defect_rate=RATE)
    return read_batch(clean, registry), read_batch(dirty, registry), dirty, clean


def _has_defect(defect: str, column: str | None, rows: list[dict], index: int, clean_keys: dict) -> bool:
    row = rows[index]
    value = row.get(column) if column else None
    if defect == "duplicate_row":
        return index > 0 and rows[index - 1] == row
    if defect == "missing_key":
        return value is None
    if defect == "orphan_reference":
        return value not in clean_keys[column]
    if defect == "negative_amount":
        return value < 0
    if defect == "discharge_before_admission":
        return row["discharge_at"] < row["admit_at"]
    if defect == "impossible_date":
        if column == "booked_at":
            return row["booked_at"] > row["scheduled_at"]
        return value > END
    if defect == "stray_whitespace_case":
        return value != value.strip() and value.strip() == value.strip().upper()
    if defect == "malformed_code":
        checks = {
            "npi": is_valid_npi,
            "zip": ZIP.match,
            "revenue_code": REVENUE_CODE.match,
            "principal_dx_code": is_billable,
        }
        return not checks[column](value)
    raise AssertionError(f"unknown defect {defect}")


def test_ground_truth_lists_rows_that_carry_exactly_the_stated_defect(batches):
    clean, dirty, result, _ = batches
    truth = list(csv.DictReader((result.path / GROUND_TRUTH_FILE).open()))
    assert result.manifest["ground_truth"]["rows"] == len(truth) > 0
    clean_keys = {
        "mrn": set(clean["registration__patients"]["mrn"].to_pylist()),
        "encounter_id": set(clean["adt__admissions"]["admission_id"].to_pylist())
        | set(clean["scheduling__appointments"]["appointment_id"].to_pylist()),
    }
    rows = {source: table.to_pylist() for source, table in dirty.items()}
    for entry in truth:
        index = int(entry["row_number"]) - 1
        column = entry["column"] or None
        assert _has_defect(entry["defect"], column, rows[entry["source"]], index, clean_keys), entry


def test_every_defect_class_is_injected_at_about_the_rate(batches):
    clean, dirty, result, _ = batches
    truth = list(csv.DictReader((result.path / GROUND_TRUTH_FILE).open()))
    assert {entry["defect"] for entry in truth} == set(DEFECT_CLASSES)
    for source in DEFECTS_BY_SOURCE:
        listed = sum(entry["source"] == source for entry in truth)
        rows = clean[source].num_rows
        if rows >= 2_000:
            assert 0.5 * RATE * rows <= listed <= 1.5 * RATE * rows, source
        duplicates = sum(e["source"] == source and e["defect"] == "duplicate_row" for e in truth)
        assert dirty[source].num_rows == rows + duplicates, source


def test_a_clean_batch_has_none_of_the_defects(batches):
    clean, _, _, clean_result = batches
    assert clean_result.manifest["ground_truth"] is None
    assert not (clean_result.path / GROUND_TRUTH_FILE).exists()
    admissions = clean["adt__admissions"].to_pylist()
    assert all(r["discharge_at"] is None or r["discharge_at"] >= r["admit_at"] for r in admissions)
    assert all(is_billable(r["principal_dx_code"]) for r in admissions)
    assert all(
        r["amount"] >= 0 and REVENUE_CODE.match(r["revenue_code"]) for r in clean["billing__charges"].to_pylist()
    )
    patients = clean["registration__patients"].to_pylist()
    assert all(ZIP.match(p["zip"]) and p["birth_date"] <= END and p["sex"] in ("F", "M", "U") for p in patients)
    assert all(is_valid_npi(n) for n in clean["provider_registry__physicians"]["npi"].to_pylist())
    statuses = set(clean["scheduling__appointments"]["status"].to_pylist())
    assert statuses <= {"Scheduled", "Completed", "Cancelled", "No Show"}
