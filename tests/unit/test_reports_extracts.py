"""BI extract types, the CSV a BI tool reads, and the data dictionary's one source (dbt's documentation)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reports.deidentify import publishable
from reports.extracts import (
    ADDED_COLUMNS,
    DEFAULT_MODELS_DIR,
    DictionaryTable,
    ExtractError,
    arrow_table,
    data_dictionary,
    doc_blocks,
    docs_from_yaml,
    write_data_dictionary,
    write_extract,
)
from reports.marts import CATALOGUE
from reports.samples import sample_marts

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def published() -> dict[str, pd.DataFrame]:
    frames = sample_marts(np.random.default_rng(8), months=6, patients=2_000)
    return {name: publishable(frame, CATALOGUE[name])[0] for name, frame in frames.items()}


def test_dates_are_dates_and_counts_and_beds_are_integers(published) -> None:
    beds = published["mart_bed_occupancy_daily"].assign(staffed_beds=lambda f: f["staffed_beds"].astype(float))
    table = arrow_table("mart_bed_occupancy_daily", beds, CATALOGUE["mart_bed_occupancy_daily"])
    assert table.schema.field("census_date").type == pa.date32()
    assert table.schema.field("staffed_beds").type == pa.int64()  # 11.0 from a HUGEINT sum becomes 11
    assert table.schema.field("midnight_census").type == pa.int64()
    assert table.schema.field("occupancy_rate").type == pa.float64()
    hospitals = arrow_table("dim_hospitals", published["dim_hospitals"], CATALOGUE["dim_hospitals"])
    assert hospitals.schema.field("opened_date").type == pa.date32()
    assert hospitals.schema.field("staffed_beds").type == pa.int64()
    assert hospitals.column("opened_date").to_pylist()[0] == dt.date(1950, 1, 1)


def test_a_suppressed_count_stays_a_null_in_every_format(published, tmp_path) -> None:
    frame = published["mart_bed_occupancy_daily"]
    hidden = int(frame["midnight_census"].isna().sum())
    assert hidden > 0
    table = arrow_table("mart_bed_occupancy_daily", frame, CATALOGUE["mart_bed_occupancy_daily"])
    parquet, plain, gzipped = write_extract(table, tmp_path, "mart_bed_occupancy_daily")
    assert pq.read_table(parquet).column("midnight_census").null_count == hidden
    rows = list(csv.DictReader(io.StringIO(plain.read_text(encoding="utf-8"))))
    assert sum(row["midnight_census"] == "" for row in rows) == hidden
    assert not any(row["midnight_census"] == "0" for row, was in zip(rows, frame["midnight_census"].isna(),
                                                                     strict=True) if was)  # fmt: skip
    assert gzip.decompress(gzipped.read_bytes()) == plain.read_bytes()


def test_plain_csv_has_iso_dates_whole_numbers_and_quotes_only_where_needed(published, tmp_path) -> None:
    table = arrow_table("dim_hospitals", published["dim_hospitals"], CATALOGUE["dim_hospitals"])
    _, plain, _ = write_extract(table, tmp_path, "dim_hospitals")
    lines = plain.read_text(encoding="utf-8").splitlines()
    assert lines[0].split(",") == list(published["dim_hospitals"].columns)
    first = dict(zip(lines[0].split(","), next(csv.reader([lines[1]])), strict=True))
    assert first["staffed_beds"].isdigit() and first["opened_date"] == "1950-01-01" and first["zip3"] == "627"
    assert '"' not in lines[1]


def test_a_fractional_value_in_an_integer_column_is_refused_with_its_table_and_column() -> None:
    frame = pd.DataFrame({"hospital_id": ["H1"], "staffed_beds": [10.5]})
    with pytest.raises(ExtractError, match=r"dim_hospitals\.staffed_beds: 1 value\(s\) are not whole numbers"):
        arrow_table("dim_hospitals", frame)


def test_every_published_column_is_described_from_the_dbt_yaml_or_by_the_publication(published, tmp_path) -> None:
    docs = docs_from_yaml(DEFAULT_MODELS_DIR)
    tables = [DictionaryTable(name, arrow_table(name, frame, CATALOGUE[name]), CATALOGUE[name], (f"{name}.csv",),
                              name) for name, frame in published.items()]  # fmt: skip
    entries = data_dictionary(tables, docs)
    assert {entry["table"] for entry in entries} == set(CATALOGUE)
    for entry in entries:
        assert entry["description"] == docs[entry["table"]].description != ""
        assert entry["grain"].startswith("one row per")
        for column in entry["columns"]:
            expected = ADDED_COLUMNS.get(column["name"]) or docs[entry["table"]].columns.get(column["name"])
            assert column["description"] and column["description"] == expected, (entry["table"], column["name"])
    paths = write_data_dictionary(entries, tmp_path)
    rows = list(csv.DictReader(io.StringIO(paths[1].read_text(encoding="utf-8"))))
    assert "table_description" not in rows[0]  # each table's description is written once, in the tables file
    tables_rows = list(csv.DictReader(io.StringIO(paths[2].read_text(encoding="utf-8"))))
    assert len(tables_rows) == len(entries) and all(row["description"] for row in tables_rows)
    assert json.loads(paths[0].read_text())[0]["columns"]


def test_suppressed_values_are_documented_per_column(published) -> None:
    docs = docs_from_yaml(DEFAULT_MODELS_DIR)
    name = "mart_readmissions_monthly"
    table = arrow_table(name, published[name], CATALOGUE[name])
    (entry,) = data_dictionary([DictionaryTable(name, table, CATALOGUE[name], (), name)], docs)
    columns = {column["name"]: column for column in entry["columns"]}
    assert "null when the count is from 1 to 10" in columns["readmission_count"]["suppressed_when"]
    assert columns["readmission_rate"]["suppressed_when"] == (
        "null when index_discharge_count or readmission_count is suppressed"
    )
    assert columns["month_date"]["suppressed_when"] == ""
    assert columns["month_date"]["tableau_type"] == "DATE" and columns["readmission_count"]["tableau_type"] == "BIG_INT"


def test_shared_descriptions_come_from_dbt_docs_blocks_rendered_as_dbt_renders_them() -> None:
    blocks = doc_blocks(DEFAULT_MODELS_DIR)
    docs = docs_from_yaml(DEFAULT_MODELS_DIR)
    assert docs["dim_hospitals"].columns["hospital_id"] == blocks["hospital_id"]
    assert docs["mart_bed_occupancy_daily"].columns["hospital_id"] == blocks["hospital_id"]
    assert "{{" not in json.dumps({name: doc.columns for name, doc in docs.items()})
