"""The dbt project's generator scripts: sources YAML from the registry, reference lists from the generator."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

SCRIPTS = Path(__file__).resolve().parents[2] / "dbt_project" / "scripts"
REGISTRY = Path(__file__).resolve().parents[2] / "flows" / "sources.yml"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"dbt_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build_sources = _script("build_sources")
build_lists = _script("build_lists")


def test_committed_sources_yaml_is_in_sync_with_the_registry() -> None:
    assert build_sources.main(["--check"]) == 0


def test_sources_check_detects_a_registry_column_missing_from_the_yaml(tmp_path) -> None:
    document = yaml.safe_load(REGISTRY.read_text())
    document["sources"]["registration__patients"]["columns"]["ethnicity"] = "varchar nullable"
    changed = tmp_path / "sources.yml"
    changed.write_text(yaml.safe_dump(document, sort_keys=False))
    assert build_sources.main(["--check", "--registry", str(changed)]) == 1
    rendered = build_sources.render_sources(build_sources.load_registry(changed))
    assert build_sources.out_of_sync(rendered, build_sources.STAGING_DIR) == ["registration/_registration__sources.yml"]


def test_sources_check_detects_stale_and_missing_files(tmp_path) -> None:
    rendered = build_sources.render_sources(build_sources.load_registry(REGISTRY))
    build_sources.write_sources(rendered, tmp_path)
    assert build_sources.out_of_sync(rendered, tmp_path) == []
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "_old__sources.yml").write_text("version: 2\n")
    (tmp_path / "adt" / "_adt__sources.yml").unlink()
    assert build_sources.out_of_sync(rendered, tmp_path) == ["adt/_adt__sources.yml", "old/_old__sources.yml"]


def test_every_registry_source_and_column_is_declared_with_freshness_on_loaded_at() -> None:
    registry = build_sources.load_registry(REGISTRY)
    rendered = build_sources.render_sources(registry)
    tables = {}
    for text in rendered.values():
        for source in yaml.safe_load(text)["sources"]:
            assert source["config"]["loaded_at_field"] == "_loaded_at"
            assert source["config"]["freshness"]["error_after"]["count"] > 0
            tables.update({table["identifier"]: table for table in source["tables"]})
    assert set(tables) == {source.table for source in registry.sources.values()}
    for source in registry.sources.values():
        names = [column["name"] for column in tables[source.table]["columns"]]
        assert names == [*source.column_names, "_batch_id", "_source_file", "_row_number", "_file_sha256", "_loaded_at"]


def test_committed_lists_are_in_sync_with_the_generator_reference_data() -> None:
    assert build_lists.main(["--check"]) == 0


def test_lists_check_detects_an_edited_or_extra_list(tmp_path) -> None:
    lists = build_lists.build_lists()
    for item in lists:
        (tmp_path / f"{item.name}.csv").write_text(item.render())
    assert build_lists.out_of_sync(lists, tmp_path) == []
    edited = tmp_path / "revenue_codes.csv"
    edited.write_text(edited.read_text().replace("0120", "120"))
    (tmp_path / "extra.csv").write_text("a\n")
    assert build_lists.out_of_sync(lists, tmp_path) == ["extra.csv", "revenue_codes.csv"]


def test_each_seed_declares_the_delimiter_its_list_is_written_with() -> None:
    seeds = yaml.safe_load((build_lists.LISTS_DIR / "_lists.yml").read_text())["seeds"]
    declared = {seed["name"]: seed["config"]["delimiter"] for seed in seeds}
    lists = {item.name: item for item in build_lists.build_lists()}
    assert declared == {name: item.delimiter for name, item in lists.items()}
    assert len(set(declared.values())) >= 3
    for name, item in lists.items():
        rows = list(csv.reader(io.StringIO(item.render()), delimiter=item.delimiter))
        assert all(len(row) == len(item.header) for row in rows), name


def test_lists_hold_the_codes_the_generator_emits() -> None:
    from generators import clinical

    lists = {item.name: item for item in build_lists.build_lists()}
    assert len(lists["icd10cm_chapters"].rows) == 22
    assert {row[0] for row in lists["discharge_dispositions"].rows} == set(clinical.DISPOSITIONS)
    assert {row[0] for row in lists["specialties"].rows} == {line.specialty for line in clinical.SERVICE_LINES}
    assert {row[0] for row in lists["denial_reasons"].rows} == {code for code, _, _ in clinical.DENIAL_REASONS}
    posted = [clinical.ROOM_MED_SURG, clinical.ROOM_ICU, clinical.ROOM_OB, clinical.SURGERY_LINE,
              clinical.EMERGENCY_LINE, clinical.CLINIC_LINE]  # fmt: skip
    posted += [line for line, _, _ in clinical.INPATIENT_ANCILLARY + clinical.CLINIC_ANCILLARY]
    assert {row[0] for row in lists["revenue_codes"].rows} == {line.revenue_code for line in posted}
    assert [row[0] for row in lists["admission_types"].rows] == ["Emergency", "Urgent", "Elective"]
