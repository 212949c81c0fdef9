"""When the dbt docs are generated again: only when what they are generated from changed (flows/publish_reports.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from flows.publish_reports import docs_fingerprint
from flows.settings import Settings
from flows.warehouse.resource import DuckDBResource, SnowflakeResource


def _project(tmp_path: Path) -> Path:
    source = Settings().dbt_project_dir
    return Path(shutil.copytree(source, tmp_path / "project", ignore=shutil.ignore_patterns("target", "logs")))


def test_the_fingerprint_follows_the_project_and_not_dbts_output(tmp_path: Path) -> None:
    project = _project(tmp_path)
    duckdb = DuckDBResource(tmp_path / "warehouse.duckdb")
    first = docs_fingerprint(project, duckdb)
    assert first is not None and first == docs_fingerprint(project, duckdb)
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")
    (project / ".user.yml").write_text("id: x\n")
    assert docs_fingerprint(project, duckdb) == first  # dbt's own output and user file are not the project
    model = next((project / "models" / "marts").rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- a change\n")
    assert docs_fingerprint(project, duckdb) != first
    seed = next((project / "seeds").rglob("*.csv"))
    before = docs_fingerprint(project, duckdb)
    seed.rename(seed.with_name("renamed_" + seed.name))
    assert docs_fingerprint(project, duckdb) != before  # a renamed file changes it too


def test_snowflake_docs_are_generated_every_run(tmp_path: Path) -> None:
    # Snowflake's catalog carries row counts and sizes: docs kept from an earlier run would show stale figures.
    snowflake = SnowflakeResource(lambda: None, home=tmp_path, account="acme", database="HOSPITAL")
    assert docs_fingerprint(_project(tmp_path), snowflake) is None
