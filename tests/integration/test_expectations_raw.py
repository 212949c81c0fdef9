"""The raw checkpoint on real generated batches: clean passes, every injected defect class is caught, no PHI leaks.

One module fixture generates a clean and a defective batch of the same small network (the defective one in the
generator's defect mode, which writes the ground truth) and loads each into its own warehouse; the checkpoint runs
once per warehouse and the tests read those outcomes.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from expectations import CheckpointOutcome, QualityGateFailed, run_checkpoint
from flows.contracts.registry import load_registry
from flows.warehouse import load_batch, open_warehouse
from generators.batch import GROUND_TRUTH_FILE, NetworkSpec, generate_initial

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=11, patients=1500, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 2, 29)
# Each source's defect classes share the rate: appointments have 5, so each gets ~1% of rows, above the 0.5%
# orphan-appointment threshold of thresholds.yml (a class under its threshold is tolerated by design).
DEFECT_RATE = 0.05
EXTERNAL = Path(__file__).resolve().parents[3] / "shared" / "external" / "hospital_mgmt_system"
EXTERNAL_REGISTRY = Path(__file__).resolve().parents[2] / "flows" / "registries" / "hospital_mgmt_system.yml"


@dataclass
class Checked:
    """A landed batch, its warehouse and the raw checkpoint's outcome on it."""

    landing: Path
    warehouse: Path
    docs: Path
    outcome: CheckpointOutcome
    error: QualityGateFailed | None


def _load_and_check(root: Path, defect_rate: float) -> Checked:
    registry = load_registry()
    batch = generate_initial(root / "landing", NETWORK, END, registry=registry, defect_rate=defect_rate)
    warehouse = root / "warehouse.duckdb"
    with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
        load_batch(batch.path, registry, handle)
    docs = root / "data_docs"
    try:
        outcome = run_checkpoint(
            "raw", warehouse_path=warehouse, data_docs_dir=docs, batch_id=batch.batch_id, landing_dir=batch.path
        )
        error = None
    except QualityGateFailed as exc:
        outcome, error = exc.outcome, exc
    return Checked(batch.path, warehouse, docs, outcome, error)


@pytest.fixture(scope="module")
def clean_checked(tmp_path_factory) -> Checked:
    return _load_and_check(tmp_path_factory.mktemp("raw_clean"), 0.0)


@pytest.fixture(scope="module")
def defective_checked(tmp_path_factory) -> Checked:
    return _load_and_check(tmp_path_factory.mktemp("raw_defects"), DEFECT_RATE)


def test_raw_checkpoint_passes_a_clean_batch(clean_checked):
    outcome = clean_checked.outcome
    assert clean_checked.error is None
    assert outcome.success, [failure.describe() for failure in outcome.failures]
    suites = {o.suite for o in outcome.outcomes}
    assert suites == {f"raw.{name}" for name in load_registry().sources}
    assert outcome.data_docs_index == clean_checked.docs / "index.html" and outcome.data_docs_index.exists()
    duckdb.connect(str(clean_checked.warehouse)).close()  # the gate released the file: a writer can open it


def test_data_docs_build_once_a_page_per_suite_of_the_run_linked_from_the_index(clean_checked):
    # The checkpoint builds Data Docs in one pass for all its validations (not once per validation, as GX's
    # stock action does): each suite still gets its validation page, and the index links every one.
    index = (clean_checked.docs / "index.html").read_text(encoding="utf-8")
    for name in load_registry().sources:
        pages = list((clean_checked.docs / "validations" / "raw" / name).rglob("*.html"))
        assert len(pages) == 1, name
        assert pages[0].name in index, name


def _columns_of(outcome) -> set[str]:
    return set(re.split(r"[+,] ?", outcome.column)) if outcome.column else set()


def _catches(defect: str, column: str | None, outcome) -> bool:
    """Whether a failed expectation is one that detects this defect class on this column."""
    rule = (outcome.note or "").split(";")[0].removeprefix("rule ")
    if defect == "duplicate_row":
        return ".unique." in rule
    return column in _columns_of(outcome)


def test_raw_checkpoint_catches_every_injected_defect_class(defective_checked):
    truth = list(csv.DictReader((defective_checked.landing / GROUND_TRUTH_FILE).open(encoding="utf-8")))
    injected: dict[tuple[str, str, str | None], int] = {}
    for row in truth:
        key = (row["source"], row["defect"], row["column"] or None)
        injected[key] = injected.get(key, 0) + 1
    assert len({defect for _, defect, _ in injected}) >= 8  # every class of generators.defects was injected
    failures = defective_checked.outcome.failures
    missed = []
    for (source, defect, column), rows in sorted(injected.items(), key=str):
        catching = [f for f in failures if f.suite == f"raw.{source}" and _catches(defect, column, f)]
        # Each injected row is one failing row at least (a duplicate counts twice in a uniqueness check).
        if not any((f.unexpected_count or 0) >= rows for f in catching):
            missed.append((source, defect, column, rows, [f.describe() for f in catching]))
    assert not missed


def test_quality_gate_failed_names_checkpoint_suite_expectation_column_count_and_docs(defective_checked):
    error = defective_checked.error
    assert error is not None and not error.outcome.success
    message = str(error)
    first = error.outcome.failures[0]
    assert f"batch {defective_checked.outcome.batch_id}" in message
    assert "checkpoint 'raw'" in message
    assert f"suite {first.suite}, {first.expectation}" in message
    assert f"column {first.column}" in message and f"{first.unexpected_count:,} failing rows" in message
    assert f"Data Docs index: {(defective_checked.docs / 'index.html').as_uri()}" in message


def test_quality_gate_failed_names_each_failing_validation_page(defective_checked):
    # The message leads to the failing suite's own page (one per suite), not only to the index.
    outcome = defective_checked.outcome
    failed_suites = {failure.suite for failure in outcome.failures}
    pages = {page.suite: page for page in outcome.validation_pages}
    assert set(pages) == {f"raw.{name}" for name in load_registry().sources}
    assert {suite for suite, page in pages.items() if not page.success} == failed_suites
    first = outcome.failing_page
    assert first is not None and first == pages[outcome.failures[0].suite].path and first.is_file()
    assert first.parts[-5:-3] == tuple(outcome.failures[0].suite.split("."))  # validations/raw/<source>/...
    message = str(defective_checked.error)
    for suite in failed_suites:
        page = pages[suite]
        assert f"{suite} ({page.failed} of {page.evaluated} failed): {page.path.as_uri()}" in message
    # The page holds the suite's counts: what the message promises is there.
    counts = re.search(
        r"Unsuccessful Expectations</div></td><td[^>]*><div[^>]*>(\d+)<", first.read_text(encoding="utf-8")
    )
    assert counts is not None and int(counts[1]) == pages[outcome.failures[0].suite].failed > 0


def _patient_values(landing: Path) -> set[str]:
    source = load_registry()["registration__patients"]
    values: set[str] = set()
    for path in landing.glob("patients_*.csv"):
        with path.open(encoding=source.encoding, newline="") as handle:
            for row in csv.DictReader(handle, delimiter=source.delimiter):
                values |= {f"{row['first_name']} {row['last_name']}", row["ssn"], row["phone"], row["email"]}
                values.add(row["address_line"])
                if len(row["last_name"]) >= 6:
                    values.add(row["last_name"])
    return {value.strip() for value in values if value and value.strip()}


def test_data_docs_and_results_hold_no_patient_value(defective_checked):
    values = _patient_values(defective_checked.landing)
    assert len(values) > 1000
    stored = [defective_checked.docs, defective_checked.docs.parent / "gx_results"]
    files = [path for folder in stored for path in folder.rglob("*") if path.is_file()]
    assert any(path.suffix == ".html" for path in files) and any(path.suffix == ".json" for path in files)
    texts = {str(path): path.read_text(encoding="utf-8", errors="replace") for path in files}
    texts["outcome"] = json.dumps(defective_checked.outcome.to_dict())
    texts["error"] = str(defective_checked.error)
    leaked = _leaked(values, "\n".join(texts.values()))
    assert not leaked, {name: len(_leaked(leaked, text)) for name, text in texts.items()}
    # The scan finds what is there: values planted in the same text are all found.
    planted = sorted(values)[:: max(1, len(values) // 50)]
    assert set(_leaked(values, "\n".join([*texts.values(), *planted]))) >= set(planted)


def _leaked(values, text: str) -> list[str]:
    """The values found in the text (exact substrings); only values whose first word occurs are searched in full."""
    words = set(re.findall(r"\w+", text))
    candidates = [value for value in values if (first := re.search(r"\w+", value)) and first[0] in words]
    return [value for value in candidates if value in text]


def test_raw_checkpoint_fails_when_the_manifest_disagrees_with_the_ledger(clean_checked, tmp_path):
    landing = tmp_path / clean_checked.landing.name
    shutil.copytree(clean_checked.landing, landing)
    manifest = json.loads((landing / "manifest.json").read_text(encoding="utf-8"))
    changed = next(entry for entry in manifest["files"] if entry["source"] == "adt__admissions")
    changed["rows"] += 1
    (landing / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    outcome = run_checkpoint(
        "raw", warehouse_path=clean_checked.warehouse, data_docs_dir=tmp_path / "docs",
        batch_id=landing.name, landing_dir=landing, raise_on_failure=False,
    )  # fmt: skip
    assert [(f.suite, f.note.split(";")[0]) for f in outcome.failures] == [
        ("raw.adt__admissions", "rule adt__admissions.row_counts")
    ]


def test_relative_data_docs_and_results_folders_are_taken_from_the_working_directory(
    clean_checked, tmp_path, monkeypatch
):
    # The default data home is the relative ``data``; GX's file stores refuse relative folders.
    monkeypatch.chdir(tmp_path)
    outcome = run_checkpoint(
        "raw", warehouse_path=clean_checked.warehouse, data_docs_dir=Path("data/data_docs"),
        results_dir=Path("data/gx_results"), batch_id=clean_checked.landing.name, landing_dir=clean_checked.landing,
    )  # fmt: skip
    assert outcome.success
    assert (tmp_path / "data" / "data_docs" / "index.html").is_file()
    assert list((tmp_path / "data" / "gx_results").rglob("*.json"))


def _external_counts() -> dict[str, int]:
    """The extracts' defects counted from the files with Python's csv module, independently of the gate."""

    def rows(name: str, delimiter: str) -> list[dict]:
        with (EXTERNAL / name).open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter=delimiter))

    patients, insurance = rows("patients.csv", "|"), rows("insurance.csv", "^")
    billing, appointments = rows("billing.csv", "\t"), rows("appointments.csv", "~")
    return {
        "hms__patients.date_order.discharge_date": sum(
            1 for r in patients if r["discharge_date"] and r["discharge_date"] < r["admission_date"]
        ),
        "hms__insurance.date_order.coverage_end_date": sum(
            1 for r in insurance if r["coverage_end_date"] < r["coverage_start_date"]
        ),
        "hms__billing.date_order.payment_date": sum(
            1 for r in billing if r["payment_date"] and r["payment_date"] < r["billing_date"]
        ),
        "hms__appointments.date_order.follow_up_date": sum(
            1 for r in appointments if r["follow_up_date"] and r["follow_up_date"] < r["appointment_date"]
        ),
        "hms__billing.payment_date_only_when_paid.payment_date": sum(
            1 for r in billing if r["status"] != "Paid" and r["payment_date"]
        ),
        "hms__appointments.canceled_without_claim.insurance_claim_id": sum(
            1 for r in appointments if r["status"] == "Canceled" and r["insurance_claim_id"]
        ),
    }


@pytest.mark.skipif(not EXTERNAL.exists(), reason="the external extracts are not on this machine")
def test_external_extracts_are_reported_with_their_date_and_category_defects(tmp_path):
    registry = load_registry(EXTERNAL_REGISTRY)
    warehouse = tmp_path / "warehouse.duckdb"
    with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
        batch_id = load_batch(EXTERNAL, registry, handle).batch_id
    outcome = run_checkpoint(
        "raw", warehouse_path=warehouse, data_docs_dir=tmp_path / "docs", batch_id=batch_id,
        landing_dir=EXTERNAL, registry=registry, raise_on_failure=False,
    )  # fmt: skip
    failed = {f.note.split(";")[0].removeprefix("rule "): f.unexpected_count for f in outcome.failures}
    expected = _external_counts()
    assert all(count > 0 for count in expected.values())
    assert {rule: failed.get(rule) for rule in expected} == expected
    assert failed.get("hms__physicians.category_pairs.specialty+department", 0) > 0
    # Their structure is sound: only content rules fail, never columns, types, keys or row counts.
    assert not [rule for rule in failed if rule.split(".")[1] in {"columns", "types", "row_counts", "not_null"}]
