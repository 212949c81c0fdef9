"""Generated batches shared by the generator tests, and a reader that parses landing files by the registry."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pytest

from flows.contracts.registry import Registry, load_registry
from generators.batch import BatchResult, NetworkSpec, generate_daily, generate_initial

NETWORK = NetworkSpec(seed=7, patients=30_000, start_date=dt.date(2024, 1, 1))
INITIAL_END = dt.date(2024, 12, 31)
DAILY_DAYS = (dt.date(2025, 1, 1), dt.date(2025, 1, 2))


def _arrow_type(registry_type: str) -> pa.DataType:
    decimal = re.match(r"decimal\((\d+),(\d+)\)", registry_type)
    if decimal:
        return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))
    return {
        "varchar": pa.string(),
        "integer": pa.int32(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("s"),
        "timestamptz": pa.string(),
        "boolean": pa.bool_(),
        "json": pa.string(),
    }[registry_type]


def read_landing_file(path: Path, source) -> pa.Table:
    """Parse one landing file exactly as its registry entry describes it."""
    if source.format == "json":
        return pa.Table.from_pylist(json.loads(path.read_text(encoding=source.encoding)))
    if source.format == "jsonl":
        if path.stat().st_size == 0:  # a quiet day: no records (pyarrow refuses an empty file)
            return pa.table({column.name: pa.array([], pa.string()) for column in source.columns})
        return pajson.read_json(path)
    types = {column.name: _arrow_type(column.type) for column in source.columns}
    return pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=source.encoding),
        parse_options=pacsv.ParseOptions(delimiter=source.delimiter, quote_char=source.quote),
        convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )


def read_batch(result: BatchResult, registry: Registry) -> dict[str, pa.Table]:
    """Every data file of a batch, keyed by registry source name."""
    return {
        entry["source"]: read_landing_file(result.path / entry["file"], registry[entry["source"]])
        for entry in result.manifest["files"]
    }


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="session")
def landing_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("landing")


@pytest.fixture(scope="session")
def initial_batch(landing_root, registry) -> BatchResult:
    return generate_initial(landing_root, NETWORK, INITIAL_END, registry=registry)


@pytest.fixture(scope="session")
def daily_batches(landing_root, registry, initial_batch) -> list[BatchResult]:
    return [generate_daily(landing_root, NETWORK, day, registry=registry) for day in DAILY_DAYS]


@pytest.fixture(scope="session")
def initial_tables(initial_batch, registry) -> dict[str, pa.Table]:
    return read_batch(initial_batch, registry)
