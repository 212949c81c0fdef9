"""BI extracts: every published mart as Parquet and gzipped CSV, and a data dictionary describing them.

Descriptions come from dbt's own documentation: ``manifest.json`` (and ``catalog.json`` for warehouse types) when
a dbt target folder is given, else the models' YAML under ``dbt_project/models``. Types are the published
file's Arrow types, which is what Tableau or Power BI will read.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from reports.deidentify import SUPPRESSED_COLUMN
from reports.marts import CATALOGUE

#: Descriptions of the columns the publication itself adds or rewrites.
ADDED_COLUMNS = {
    SUPPRESSED_COLUMN: "Comma-separated names of this row's cells suppressed for publication (counts of 1-10, their "
    "complements, and values derived from them); null when none. A suppressed cell is null.",
    "zip3": "First three ZIP digits; 000 for the three-digit areas of 20,000 people or fewer (HIPAA Safe Harbor).",
}
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[1] / "dbt_project" / "models"


@dataclass
class TableDoc:
    """What dbt's documentation says about one model."""

    description: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    warehouse_types: dict[str, str] = field(default_factory=dict)


def docs_from_dbt_target(target_dir: Path) -> dict[str, TableDoc]:
    """Model and column descriptions from ``manifest.json``, warehouse types from ``catalog.json`` if present."""
    manifest = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))
    catalog_path = target_dir / "catalog.json"
    catalog = json.loads(catalog_path.read_text(encoding="utf-8")) if catalog_path.exists() else {"nodes": {}}
    docs: dict[str, TableDoc] = {}
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") != "model" or node.get("name") not in CATALOGUE:
            continue
        types = {
            name.lower(): column.get("type", "")
            for name, column in catalog.get("nodes", {}).get(unique_id, {}).get("columns", {}).items()
        }
        docs[node["name"]] = TableDoc(
            description=" ".join((node.get("description") or "").split()),
            columns={name: " ".join((c.get("description") or "").split()) for name, c in node["columns"].items()},
            warehouse_types=types,
        )
    return docs


def docs_from_yaml(models_dir: Path) -> dict[str, TableDoc]:
    """Model and column descriptions from the YAML files beside the models."""
    docs: dict[str, TableDoc] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: the YAML is large
    for path in sorted(models_dir.rglob("*.yml")):
        text = path.read_text(encoding="utf-8")
        if not any(name in text for name in CATALOGUE):
            continue
        content = yaml.load(text, Loader=loader) or {}  # noqa: S506 - a safe loader
        for model in content.get("models", []) or []:
            if model.get("name") not in CATALOGUE:
                continue
            docs[model["name"]] = TableDoc(
                description=" ".join((model.get("description") or "").split()),
                columns={
                    column["name"]: " ".join((column.get("description") or "").split())
                    for column in model.get("columns", []) or []
                },
            )
    return docs


def load_docs(dbt_target_dir: Path | None, models_dir: Path | None) -> dict[str, TableDoc]:
    """dbt's documentation of the catalogued marts: the manifest if there is one, else the YAML."""
    if dbt_target_dir is not None and (dbt_target_dir / "manifest.json").exists():
        return docs_from_dbt_target(dbt_target_dir)
    if models_dir is not None and models_dir.exists():
        return docs_from_yaml(models_dir)
    return {}


def write_extract(frame: pd.DataFrame, directory: Path, name: str) -> tuple[Path, Path]:
    """One table as ``<name>.parquet`` and ``<name>.csv.gz`` (UTF-8, comma, header, nulls empty; no gzip mtime)."""
    directory.mkdir(parents=True, exist_ok=True)
    parquet, csv_gz = directory / f"{name}.parquet", directory / f"{name}.csv.gz"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.replace_schema_metadata(None), parquet)
    with gzip.GzipFile(csv_gz, mode="wb", mtime=0) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        frame.to_csv(text, index=False, date_format="%Y-%m-%d", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return parquet, csv_gz


def data_dictionary(frames: dict[str, pd.DataFrame], docs: dict[str, TableDoc]) -> list[dict]:
    """One entry per published table: description, grain, rows and its columns with type and description."""
    entries = []
    for name, frame in frames.items():
        doc = docs.get(name, TableDoc())
        schema = pa.Schema.from_pandas(frame, preserve_index=False)
        columns = [
            {
                "name": column.name,
                "type": str(column.type),
                "warehouse_type": doc.warehouse_types.get(column.name.lower(), ""),
                "description": ADDED_COLUMNS.get(column.name) or doc.columns.get(column.name, ""),
            }
            for column in schema
        ]
        entries.append({"table": name, "description": doc.description, "rows": len(frame), "columns": columns})
    return entries


def write_data_dictionary(entries: list[dict], directory: Path) -> tuple[Path, Path]:
    """The dictionary as ``data_dictionary.json`` and as a flat ``data_dictionary.csv`` (table, column, type...)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = directory / "data_dictionary.json", directory / "data_dictionary.csv"
    json_path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["table", "column", "type", "warehouse_type", "description", "table_description"])
        for entry in entries:
            for column in entry["columns"]:
                writer.writerow([entry["table"], column["name"], column["type"], column["warehouse_type"],
                                 column["description"], entry["description"]])  # fmt: skip
    return json_path, csv_path
