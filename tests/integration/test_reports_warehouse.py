"""Publishing from a real warehouse: generate -> load -> dbt build -> publish, then every published file is checked.

One module fixture generates a small network, loads it, builds lists, staging and everything downstream with dbt
(seed and run: the dbt tests belong to the dbt test modules) and publishes the report with passing checkpoint
outcomes. The tests
scan every published file (Parquet, gzipped CSV, HTML, SVG, PNG metadata, JSON) for the generated patients' direct
identifiers and every published table for counts from 1 to 10, and compare what was published with the marts.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from expectations.results import CheckpointOutcome, ExpectationOutcome
from flows.registry import load_registry
from generators.batch import NetworkSpec, generate_initial
from reports import PublishResult, publish
from reports.deidentify import SUPPRESSED_COLUMN, check_table
from reports.marts import CATALOGUE, KPI_MARTS
from reports.publish import png_text_keys
from tests.integration.dbtkit import copy_project, duckdb_target, invoke, load, query

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=21, patients=3000, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 2, 29)
SALT = "report-test-salt-" + "0123456789abcdef" * 2
SELECT = ["--select", "staging+", "int_surrogate_salt_generated", "dim_dates"]
VARS = ["--vars", f"{{defect_severity: warn, surrogate_salt: {SALT}}}"]
DAY = dt.date(2026, 11, 23)


@dataclass
class Published:
    """The landed batch, the built warehouse, the dbt target folder and the publication."""

    landing: Path
    warehouse: Path
    target: Path
    result: PublishResult


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("report-warehouse")
    project = copy_project(root / "dbt_project")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    batch = generate_initial(landing, NETWORK, END, registry=load_registry())
    load(batch.path, warehouse)
    with duckdb_target(warehouse):
        # Seeds and models only: the dbt tests have their own modules, and the report reads what the models built.
        invoke(project, root, "seed", *VARS)
        invoke(project, root, "run", *SELECT, *VARS)
    passed = [
        CheckpointOutcome(name, True, "run-7", batch.batch_id, None, (ExpectationOutcome(name, "e", None, True, 0),))
        for name in ("raw", "marts")
    ]
    result = publish(
        warehouse, root / "reports", "run-7", DAY, passed, "../../data_docs/index.html", "../../dbt_docs/index.html",
        dbt_target_dir=root / "target",
    )  # fmt: skip
    yield Published(landing, warehouse, root / "target", result)


def marts_in_warehouse(warehouse: Path) -> set[str]:
    return {name for (name,) in query(warehouse, "select table_name from information_schema.tables "
                                                 "where table_schema = 'marts'")}  # fmt: skip


def landing_rows(landing: Path, pattern: str) -> list[dict]:
    """Every record of the landed files matching a pattern (CSV, TSV, JSON array or JSON lines)."""
    rows: list[dict] = []
    for path in sorted(landing.glob(f"*/{pattern}")):
        if path.suffix == ".json":
            rows += json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".jsonl":
            rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            with path.open(newline="", encoding="utf-8") as handle:
                rows += list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))
    return rows


def patient_identifiers(landing: Path) -> tuple[set[str], set[str]]:
    """(whole identifiers, single name words) of every generated patient.

    Whole identifiers (full name, MRN, SSN, phone, e-mail, street line) must not appear anywhere, even inside a
    longer text; a single first or last name must not be a published cell. Words of the facility and payer files
    and the languages are left out of the single names: a surname can also be a town ("Jackson") or a language
    ("English"), which is not evidence of a leak.
    """
    patients = landing_rows(landing, "patients_*.csv")
    assert len(patients) >= NETWORK.patients
    whole, names = set(), set()
    for row in patients:
        first, last = (row["first_name"] or "").strip(), (row["last_name"] or "").strip()
        whole |= {f"{first} {last}", row["mrn"], row["ssn"], row["phone"], row["email"], row["address_line"]}
        names |= {first, last}
    facility_words = {row["preferred_language"] for row in patients}
    for pattern in ("hospitals_*.json", "departments_*.json", "payers_*.tsv"):
        for row in landing_rows(landing, pattern):
            facility_words |= {word for value in row.values() for word in re.findall(r"[A-Za-z']+", str(value))}
    whole = {value.strip() for value in whole if value and len(value.strip()) >= 5}
    return whole, {name for name in names if name} - facility_words


def published_cells(result: PublishResult) -> list[tuple[str, str]]:
    """(file, text) of everything published a person or a BI tool can read: cells, lines, metadata."""
    cells: list[tuple[str, str]] = []
    for path in result.files:
        name = path.relative_to(result.run_dir).as_posix()
        if name.endswith(".parquet"):
            frame = pd.read_parquet(path)
            cells += [(name, str(value)) for column in frame.columns for value in frame[column].dropna().unique()]
            cells += [(name, column) for column in frame.columns]
        elif name.endswith(".csv.gz"):
            with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
                cells += [(name, value) for row in csv.reader(handle) for value in row]
        elif name.endswith((".html", ".svg")):
            # What a reader sees or a tool indexes: element text and attribute values (not path coordinates).
            text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text(encoding="utf-8"))
            cells += [(name, value) for value in re.findall(r">([^<>]+)<", text)]
            cells += [(name, value) for value in re.findall(r'(?:alt|href|title|id|class)="([^"]*)"', text)]
        elif name.endswith((".json", ".csv")):
            cells += [(name, line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif name.endswith(".png"):
            cells += [(name, key.decode("latin-1")) for key in png_text_keys(path)]
    # A number alone cannot hold a name, MRN, SSN, phone, e-mail or street line (each has a letter, "-" or "@").
    return sorted({(name, value) for name, value in cells if re.search(r"[A-Za-z@-]", value)})


def identifier_hits(cells: list[tuple[str, str]], whole: set[str], names: set[str]) -> list[tuple[str, str]]:
    """Published (file, identifier) pairs: a whole identifier inside any cell, or a name equal to a cell."""
    hits: set[tuple[str, str]] = set()
    by_file: dict[str, list[str]] = {}
    for file, value in cells:
        by_file.setdefault(file, []).append(value.lower())
    lowered_names = {name.lower(): name for name in names}
    for file, values in by_file.items():
        text = "\n".join(values)
        hits |= {(file, value) for value in whole if value.lower() in text}
        hits |= {(file, lowered_names[value.strip()]) for value in values if value.strip() in lowered_names}
    return sorted(hits)


def test_every_contract_mart_the_warehouse_has_is_published_and_the_others_are_listed(published) -> None:
    present = marts_in_warehouse(published.warehouse)
    assert "mart_admissions_monthly" in present
    published_tables = {path.name.removesuffix(".parquet") for path in published.result.files
                        if path.suffix == ".parquet"}  # fmt: skip
    assert published_tables == set(CATALOGUE) & present
    assert set(published.result.missing_marts) == set(CATALOGUE) - present
    html = published.result.report_html.read_text(encoding="utf-8")
    assert all(name in html for name in published.result.missing_marts)


def test_no_published_file_holds_a_generated_patients_identifier(published) -> None:
    whole, names = patient_identifiers(published.landing)
    cells = published_cells(published.result)
    assert len(cells) > 500
    # The scan is able to find a leak: plant each kind of identifier of one patient and it must report them all.
    patient = landing_rows(published.landing, "patients_*.csv")[0]
    planted = [f"{patient['first_name']} {patient['last_name']}"] + [
        patient[column] for column in ("mrn", "ssn", "phone", "email", "address_line")
    ]
    control = [("planted.html", f"Seen: {value}.") for value in planted] + [("planted.csv", patient["last_name"])]
    found = {value for _, value in identifier_hits(control, whole, names)}
    assert found >= {value.strip() for value in planted}
    assert identifier_hits(cells, whole, names) == []


def test_no_published_table_has_a_count_from_one_to_ten_or_a_lone_suppressed_cell(published) -> None:
    checked = 0
    for path in published.result.files:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            assert check_table(path.name, frame, CATALOGUE.get(path.stem)) == []
            checked += 1
        elif path.name.endswith(".csv.gz"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False).replace("", None)
            assert check_table(path.name, frame, CATALOGUE.get(path.name.removesuffix(".csv.gz"))) == []
            checked += 1
    assert checked >= 4


def test_published_counts_equal_the_marts_and_suppressed_ones_were_small_or_complements(published) -> None:
    present = marts_in_warehouse(published.warehouse)
    compared = 0
    for spec in KPI_MARTS:
        if spec.name not in present:
            continue
        extract = pd.read_parquet(published.result.run_dir / "extracts" / f"{spec.name}.parquet")
        columns = ", ".join(spec.counts)
        order = ", ".join(spec.order_by)
        mart = pd.DataFrame(query(published.warehouse, f"select {columns} from marts.{spec.name} order by {order}"),
                            columns=list(spec.counts))  # fmt: skip
        assert len(extract) == len(mart), spec.name
        for column in spec.counts:
            shown = extract[column].notna().to_numpy()
            assert (extract[column][shown].astype(int).to_numpy() == mart[column][shown].to_numpy()).all()
            hidden = extract.loc[~shown, SUPPRESSED_COLUMN].fillna("")
            assert hidden.str.contains(column).all(), (spec.name, column)
            compared += 1
    assert compared >= 3


def test_the_data_dictionary_takes_descriptions_from_dbts_manifest(published) -> None:
    manifest = json.loads((published.target / "manifest.json").read_text(encoding="utf-8"))
    node = next(n for n in manifest["nodes"].values() if n.get("name") == "mart_admissions_monthly")
    entries = {e["table"]: e for e in json.loads(
        (published.result.run_dir / "extracts" / "data_dictionary.json").read_text(encoding="utf-8"))}  # fmt: skip
    assert entries["mart_admissions_monthly"]["description"] == " ".join(node["description"].split())
    documented = {name: " ".join(column["description"].split()) for name, column in node["columns"].items()}
    for column in entries["mart_admissions_monthly"]["columns"]:
        if documented.get(column["name"]):
            assert column["description"] == documented[column["name"]]
