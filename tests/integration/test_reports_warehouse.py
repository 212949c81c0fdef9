"""Publishing from a real warehouse: generate -> load -> dbt build -> publish, then every published file is checked.

One module fixture generates a small network (2,000 patients over two years: most monthly cells hold 1 to 10),
loads it, builds lists, staging and everything downstream with dbt (seed and run: the dbt tests belong to the dbt
test modules) and publishes the report with passing checkpoint outcomes. The tests scan every published file
(Parquet, CSV, Hyper, HTML, SVG, PNG metadata, JSON) for the generated patients' direct identifiers and every
published table for counts from 1 to 10, compare what was published with the marts, and measure each chart's
honesty on the real marts: what its published cells leave out of the mart's own total, its suppressed marks, the
tiles it shares, and the data dictionary against dbt's manifest.
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
from flows.contracts.registry import load_registry
from generators.batch import NetworkSpec, generate_initial
from reports import PublishResult, publish
from reports.charts import CHARTS
from reports.deidentify import SUPPRESSED_COLUMN, check_table
from reports.extracts import ADDED_COLUMNS, read_hyper
from reports.marts import CATALOGUE, KPI_MARTS
from reports.publish import chart_spec, png_text_keys
from tests.integration.dbtkit import copy_project, duckdb_target, invoke, load, query

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=21, patients=2000, start_date=dt.date(2024, 1, 1))
END = dt.date(2025, 12, 31)
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
        elif name.endswith(".hyper"):
            for table, frame in read_hyper(path).items():
                cells += [(f"{name}#{table}", str(value)) for column in frame.columns
                          for value in frame[column].dropna().unique()]  # fmt: skip
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


# --- Honest charts on real marts -----------------------------------------------------------------------------


def chart_cells(published: Published, name: str) -> tuple[pd.DataFrame, dict]:
    """A chart's published cells (its CSV) and what the manifest says about it."""
    manifest = json.loads((published.result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    return pd.read_csv(published.result.run_dir / "charts" / f"{name}.csv"), manifest["charts"][name]


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_each_chart_hides_at_most_five_percent_of_its_mass_measured_on_the_real_marts(published, name) -> None:
    chart = CHARTS[name]
    frame, entry = chart_cells(published, name)
    ((total,),) = query(published.warehouse, f"select sum({chart.mass}) from marts.{chart.mart}")
    shown = frame[chart.measure].notna()
    hidden = 1 - float(frame.loc[shown, chart.mass].sum()) / float(total)
    svg = (published.result.run_dir / "charts" / f"{name}.svg").read_text(encoding="utf-8")
    assert f"Grain: {entry['grain']}" in svg.replace("&#215;", "×")
    if hidden > 0.05:
        # Honest about it: no grain did better, and the chart says that more than 5% stays hidden.
        assert "more than 5%" in svg, (name, entry["grain"], hidden)
    suppressed = frame["suppressed_columns"].fillna("").str.contains(chart.measure)
    assert int(suppressed.sum()) == entry["suppressed_cells"]
    if suppressed.any():
        assert svg.count(">suppressed<") + svg.count("Suppressed (1-10") >= 1, name
    assert check_table(name, frame.astype(object).where(frame.notna(), None),
                       chart_spec(name, entry["grain"], list(frame.columns))) == []  # fmt: skip


def test_the_sex_chart_shows_the_real_sex_totals_not_a_sum_of_the_pyramids_published_cells(published) -> None:
    frame, _ = chart_cells(published, "sex_distribution")
    truth = dict(query(published.warehouse, "select sex, sum(patient_count) from marts.mart_patient_demographics "
                                             "group by sex"))  # fmt: skip
    shown = frame.dropna(subset=["patient_count"])
    assert shown.set_index("sex")["patient_count"].astype(int).to_dict() == {
        sex: int(truth[sex]) for sex in shown["sex"]
    }
    assert {"F", "M"} <= set(shown["sex"])


def test_tiles_equal_the_warehouse_totals_and_the_charts_reference_lines(published) -> None:
    html = published.result.report_html.read_text(encoding="utf-8")
    tiles = dict(re.findall(r'data-kpi="(\w+)">\s*<div class="label">[^<]*</div>\s*<div class="value[^"]*">([^<]+)<',
                            html))  # fmt: skip
    ((readmitted, index),) = query(published.warehouse, "select sum(readmission_count), sum(index_discharge_count) "
                                                        "from marts.mart_readmissions_monthly")  # fmt: skip
    assert tiles["readmission_rate"] == f"{readmitted / index:.1%}"
    ((missed, booked),) = query(published.warehouse, "select sum(no_show_count), sum(appointment_count) "
                                                     "from marts.mart_no_shows_by_weekday")  # fmt: skip
    assert tiles["no_show_rate"] == f"{missed / booked:.1%}"
    for name, key in (("readmission_rate", "readmission_rate"), ("no_show_rate_by_weekday", "no_show_rate"),
                      ("denial_rate", "denial_rate")):  # fmt: skip
        svg = (published.result.run_dir / "charts" / f"{name}.svg").read_text(encoding="utf-8")
        assert f"Whole period: {tiles[key]} (KPI tile)" in svg, name


def test_every_published_column_is_described_by_dbts_manifest_or_by_the_publication(published) -> None:
    manifest = json.loads((published.target / "manifest.json").read_text(encoding="utf-8"))
    nodes = {node["name"]: node for node in manifest["nodes"].values() if node.get("resource_type") == "model"}
    entries = json.loads((published.result.run_dir / "extracts" / "data_dictionary.json").read_text(encoding="utf-8"))
    described = 0
    for entry in entries:
        model = entry["table"] if entry["table"] in nodes else CHARTS[entry["table"].removeprefix("chart_")].mart
        assert entry["description"]
        for column in entry["columns"]:
            expected = ADDED_COLUMNS.get(column["name"]) or " ".join(
                nodes[model]["columns"].get(column["name"], {}).get("description", "").split()
            )
            assert expected and column["description"] == expected, (entry["table"], column["name"])
            described += 1
    assert described > 150
