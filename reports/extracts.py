"""BI extracts: every published mart as Parquet, CSV, gzipped CSV and one Tableau Hyper file, and a data dictionary.

Types are set once, per column, as BI tools read them (`arrow_table`): dates as DATE (Arrow date32), counts and
other whole numbers as 64-bit integers (a suppressed count stays a null, never 0), rates and amounts as doubles,
text as UTF-8 strings. Every format is written from that one Arrow table, so Parquet, CSV and Hyper agree.
Descriptions come from dbt's own documentation: ``manifest.json`` (and ``catalog.json`` for warehouse types) when
a dbt target folder is given, else the models' YAML under ``dbt_project/models``; the few columns the publication
adds (``suppressed_columns``, ``zip3``, a chart's period) are described here.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from reports.deidentify import MAX_SUPPRESSED, MIN_CELL, SUPPRESSED_COLUMN
from reports.grains import DAY_COUNT, PERIOD_END, PERIOD_START
from reports.marts import CATALOGUE, MartSpec

#: Descriptions of the columns the publication itself adds or rewrites.
ADDED_COLUMNS = {
    SUPPRESSED_COLUMN: "Comma-separated names of this row's cells suppressed for publication (counts of 1-10, their "
    "complements, and values derived from them); null when none. A suppressed cell is null (empty in CSV), never 0.",
    "zip3": "First three ZIP digits; 000 for the three-digit areas of 20,000 people or fewer (HIPAA Safe Harbor).",
    PERIOD_START: "First day of the period this row covers (the chart's time unit: day, week starting Monday, month, "
    "quarter, half-year, year, or the whole period), on the hospital's local calendar.",
    PERIOD_END: "Last day of the period this row covers that the data reaches (the period's last day, or the data's "
    "last day for a period still running).",
    DAY_COUNT: "Number of days this row adds up (patient-days / days = average midnight census).",
}
#: Whole numbers that are not counts of people or events (a bed count, a weekday, a sort order).
INTEGER_COLUMNS = frozenset({"staffed_beds", "iso_day_of_week", "lead_time_band_order", "diagnosis_chapter_number",
                             "reason_rank", DAY_COUNT})  # fmt: skip
DATE_COLUMN = re.compile(r"(_date|_month)$|^(period_start|period_end)$")
HYPER_SCHEMA = "Extract"
HYPER_FILE = "marts.hyper"
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[1] / "dbt_project" / "models"
_HYPER_TYPES = {"date32[day]": "DATE", "int64": "BIG_INT", "double": "DOUBLE", "string": "TEXT", "bool": "BOOL"}


class ExtractError(ValueError):
    """A published column cannot take its BI type without changing a value."""


@dataclass
class TableDoc:
    """What dbt's documentation says about one model."""

    description: str = ""
    grain: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    warehouse_types: dict[str, str] = field(default_factory=dict)


def _clean(text: object) -> str:
    return " ".join(str(text or "").split())


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
        meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
        docs[node["name"]] = TableDoc(
            description=_clean(node.get("description")),
            grain=_clean(meta.get("grain")),
            columns={name: _clean(c.get("description")) for name, c in node["columns"].items()},
            warehouse_types=types,
        )
    return docs


DOC_BLOCK = re.compile(r"{%-?\s*docs\s+(\w+)\s*-?%}(.*?){%-?\s*enddocs\s*-?%}", re.DOTALL)
DOC_REFERENCE = re.compile(r"{{\s*doc\(\s*['\"](\w+)['\"]\s*\)\s*}}")


def doc_blocks(models_dir: Path) -> dict[str, str]:
    """The dbt docs blocks (``{% docs name %}...{% enddocs %}``) of the Markdown files under ``models_dir``."""
    blocks: dict[str, str] = {}
    for path in sorted(models_dir.rglob("*.md")):
        blocks.update({name: text.strip() for name, text in DOC_BLOCK.findall(path.read_text(encoding="utf-8"))})
    return blocks


def docs_from_yaml(models_dir: Path) -> dict[str, TableDoc]:
    """Model and column descriptions from the YAML files beside the models (``{{ doc('...') }}`` rendered from
    the docs blocks, as dbt renders them into ``manifest.json``)."""
    blocks = doc_blocks(models_dir)

    def render(text: object) -> str:
        return _clean(DOC_REFERENCE.sub(lambda match: blocks.get(match.group(1), ""), str(text or "")))

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
                description=render(model.get("description")),
                grain=_clean(((model.get("config") or {}).get("meta") or {}).get("grain")),
                columns={c["name"]: render(c.get("description")) for c in model.get("columns", []) or []},
            )
    return docs


def load_docs(dbt_target_dir: Path | None, models_dir: Path | None) -> dict[str, TableDoc]:
    """dbt's documentation of the catalogued marts: the manifest if there is one, else the YAML."""
    if dbt_target_dir is not None and (dbt_target_dir / "manifest.json").exists():
        return docs_from_dbt_target(dbt_target_dir)
    if models_dir is not None and models_dir.exists():
        return docs_from_yaml(models_dir)
    return {}


def arrow_type(name: str, series: pd.Series, counts: tuple[str, ...] = ()) -> pa.DataType:
    """The published type of one column: DATE, 64-bit integer, double, boolean or text."""
    if DATE_COLUMN.search(name):
        return pa.date32()
    if name in counts or name.endswith("_count") or name == "midnight_census" or name in INTEGER_COLUMNS:
        return pa.int64()
    if pd.api.types.is_bool_dtype(series):
        return pa.bool_()
    if pd.api.types.is_numeric_dtype(series):
        return pa.float64()
    return pa.string()


def _column(table: str, name: str, series: pd.Series, kind: pa.DataType) -> pa.Array:
    if pa.types.is_date32(kind):
        values = pd.to_datetime(series, errors="coerce")
        return pa.array([None if pd.isna(v) else v.date() for v in values], type=kind)
    if pa.types.is_int64(kind):
        numbers = pd.to_numeric(series, errors="coerce").astype("Float64")
        fractional = numbers.notna() & (numbers != numbers.round())
        if fractional.any():
            raise ExtractError(
                f"{table}.{name}: {int(fractional.sum())} value(s) are not whole numbers, so the column cannot be "
                "published as an integer; fix the mart (it should count) or the type in reports/extracts.py."
            )
        return pa.array(numbers.astype("Int64"), type=kind)
    if pa.types.is_boolean(kind):
        return pa.array(series.astype("boolean"), type=kind)
    if pa.types.is_float64(kind):
        return pa.array(pd.to_numeric(series, errors="coerce").astype("Float64"), type=kind)
    return pa.array([None if pd.isna(v) else str(v) for v in series], type=kind)


def arrow_table(name: str, frame: pd.DataFrame, spec: MartSpec | None = None) -> pa.Table:
    """One published table with the types BI tools read (see the module docstring); no pandas metadata."""
    counts = spec.counts if spec is not None else ()
    columns = {column: _column(name, column, frame[column], arrow_type(column, frame[column], counts))
               for column in frame.columns}  # fmt: skip
    return pa.table(columns)


def _csv_field(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _csv_bytes(table: pa.Table) -> bytes:
    """UTF-8 CSV: comma, header, ISO dates, true/false, an empty field for null, quotes only where needed."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.column_names)
    columns = [column.to_pylist() for column in table.columns]
    writer.writerows(zip(*([_csv_field(value) for value in column] for column in columns), strict=True))
    return text.getvalue().encode("utf-8")


def write_extract(table: pa.Table, directory: Path, name: str) -> list[Path]:
    """One table as ``<name>.parquet``, ``<name>.csv`` (what Tableau's and Power BI's text connectors open) and
    ``<name>.csv.gz`` (the same bytes gzipped, without a timestamp)."""
    directory.mkdir(parents=True, exist_ok=True)
    parquet, plain, gzipped = directory / f"{name}.parquet", directory / f"{name}.csv", directory / f"{name}.csv.gz"
    pq.write_table(table.replace_schema_metadata(None), parquet)
    text = _csv_bytes(table)
    plain.write_bytes(text)
    with gzip.GzipFile(gzipped, mode="wb", mtime=0) as handle:
        handle.write(text)
    return [parquet, plain, gzipped]


def write_csv(table: pa.Table, path: Path) -> Path:
    """One table as a plain CSV file (a chart's cells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_csv_bytes(table))
    return path


def write_hyper(tables: dict[str, pa.Table], path: Path) -> Path:
    """Every table in one Tableau Hyper file, schema ``Extract``, one table per mart (Hyper API via pantab;
    telemetry off, no log file)."""
    import pantab

    path.parent.mkdir(parents=True, exist_ok=True)
    pantab.frames_to_hyper({(HYPER_SCHEMA, name): table for name, table in tables.items()}, path)
    return path


def read_hyper(path: Path) -> dict[str, pd.DataFrame]:
    """The tables of a Hyper file's ``Extract`` schema by name, read back with the Hyper API in one process
    (telemetry off, no log file): what a Tableau user opens."""
    from tableauhyperapi import Connection, HyperProcess, Telemetry

    frames: dict[str, pd.DataFrame] = {}
    with (
        HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}) as hyper,
        Connection(hyper.endpoint, str(path)) as connection,
    ):
        for table in connection.catalog.get_table_names(HYPER_SCHEMA):
            columns = [column.name.unescaped for column in connection.catalog.get_table_definition(table).columns]
            rows = connection.execute_list_query(f"SELECT * FROM {table}")  # noqa: S608 - a catalogued name
            values = [[v.to_date() if hasattr(v, "to_date") else v for v in row] for row in rows]
            frames[table.name.unescaped] = pd.DataFrame(values, columns=columns)
    return frames


def suppressed_when(column: str, spec: MartSpec | None) -> str:
    """When a column's value is null because of suppression (empty when it never is)."""
    if spec is None:
        return ""
    if column in spec.counts:
        return (f"null when the count is from {MIN_CELL} to {MAX_SUPPRESSED} (CMS cell-size rule) or hidden as its "
                "complement (so that such a count cannot be derived from a total); 0 is published")  # fmt: skip
    if column in spec.derived:
        return f"null when {' or '.join(spec.derived[column])} is suppressed"
    return ""


@dataclass(frozen=True)
class DictionaryTable:
    """One published table for the data dictionary."""

    name: str
    table: pa.Table
    spec: MartSpec | None
    files: tuple[str, ...]
    #: The dbt model whose documentation describes the columns (the table itself, or the mart a chart adds up).
    model: str
    description: str | None = None
    grain: str | None = None


def data_dictionary(tables: list[DictionaryTable], docs: dict[str, TableDoc]) -> list[dict]:
    """One entry per published table: description, grain, rows, files, and its columns with type, description and
    when suppression leaves them null."""
    entries = []
    for item in tables:
        doc = docs.get(item.model, TableDoc())
        columns = [
            {
                "name": column.name,
                "type": str(column.type),
                "tableau_type": _HYPER_TYPES.get(str(column.type), str(column.type)),
                "warehouse_type": doc.warehouse_types.get(column.name.lower(), ""),
                "description": ADDED_COLUMNS.get(column.name) or doc.columns.get(column.name, ""),
                "suppressed_when": suppressed_when(column.name, item.spec),
            }
            for column in item.table.schema
        ]
        entries.append({
            "table": item.name,
            "description": item.description or doc.description,
            "grain": item.grain or doc.grain,
            "rows": item.table.num_rows,
            "files": list(item.files),
            "columns": columns,
        })  # fmt: skip
    return entries


def write_data_dictionary(entries: list[dict], directory: Path) -> list[Path]:
    """The dictionary as ``data_dictionary.json``, ``data_dictionary.csv`` (one row per column) and
    ``data_dictionary_tables.csv`` (one row per table: its description once, its grain, rows and files)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "data_dictionary.json"
    columns_path, tables_path = directory / "data_dictionary.csv", directory / "data_dictionary_tables.csv"
    json_path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    with columns_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["table", "column", "type", "tableau_type", "warehouse_type", "description", "suppressed_when"])
        for entry in entries:
            for column in entry["columns"]:
                writer.writerow([entry["table"], *(column[key] for key in ("name", "type", "tableau_type",
                                 "warehouse_type", "description", "suppressed_when"))])  # fmt: skip
    with tables_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["table", "description", "grain", "rows", "files"])
        for entry in entries:
            writer.writerow([entry["table"], entry["description"], entry["grain"], entry["rows"],
                             " ".join(entry["files"])])  # fmt: skip
    return [json_path, columns_path, tables_path]
