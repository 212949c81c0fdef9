"""The benchmark's reference generator writes the registry's sources, columns and row counts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks import reference_generator as reference
from flows.contracts.registry import load_registry

pytestmark = pytest.mark.unit


def _read_back(path: Path, source) -> pd.DataFrame:
    if source.format == "csv":
        return pd.read_csv(path, sep=source.delimiter, dtype=str, keep_default_na=False)
    return pd.read_json(path, orient="records", lines=source.format == "jsonl", dtype=False)


def test_reference_writes_every_source_with_registry_columns_and_requested_rows(tmp_path):
    registry = load_registry()
    # Distinct counts per source, so a file holding another source's rows would be caught.
    row_counts = {name: 5 + 3 * i for i, name in enumerate(registry.sources)}

    results = reference.generate_reference(tmp_path, row_counts, registry, seed=7)

    assert set(results) == set(registry.sources)
    for name, source in registry.sources.items():
        result = results[name]
        assert result.path.parent == tmp_path
        assert result.path.match(source.pattern)
        assert result.bytes == result.path.stat().st_size > 0
        frame = _read_back(result.path, source)
        assert list(frame.columns) == source.column_names, name
        assert len(frame) == result.rows == row_counts[name], name
        key = list(source.primary_key)
        assert not frame.duplicated(subset=key).any(), f"{name}: duplicate {key}"


def test_reference_fills_required_columns_and_writes_claim_status_history(tmp_path):
    registry = load_registry()
    row_counts = dict.fromkeys(registry.sources, 40)

    results = reference.generate_reference(tmp_path, row_counts, registry, seed=7)

    for name, source in registry.sources.items():
        frame = _read_back(results[name].path, source)
        for column in source.columns:
            if not column.nullable and column.type != "boolean":
                values = frame[column.name]
                assert values.notna().all() and (values.astype(str) != "").all(), f"{name}.{column.name}"
    claims = _read_back(results["claims__claims"].path, registry["claims__claims"])
    for status, history in zip(claims["claim_status"], claims["status_history"], strict=True):
        assert isinstance(history, list) and history, history
        assert history[0]["status"] == "submitted"
        assert history[-1]["status"] == status


def test_reference_is_deterministic_for_a_seed(tmp_path):
    registry = load_registry()
    row_counts = {"registration__patients": 20, "billing__charges": 20}

    first = reference.generate_reference(tmp_path / "a", row_counts, registry, seed=3)
    second = reference.generate_reference(tmp_path / "b", row_counts, registry, seed=3)

    for name in row_counts:
        assert first[name].path.read_bytes() == second[name].path.read_bytes()


def test_reference_rejects_sources_missing_from_the_registry(tmp_path):
    with pytest.raises(ValueError, match="not_a_source"):
        reference.generate_reference(tmp_path, {"not_a_source": 1}, load_registry())
