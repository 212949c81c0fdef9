"""Write-audit-publish of the report: stage everything, audit it, then switch it in atomically as ``latest``.

Layout of ``reports_dir``::

    runs/<run date>_<run id>/    one real folder per publication, never modified after the switch (the history)
    <run date>  -> runs/...      symlink: the day's latest publication (DataHome.dated_report)
    latest      -> runs/...      symlink: the latest publication (DataHome.latest_report)
    .staging-<run id>-<nonce>/   exists only while a publication is being written and audited

A symlink is switched by creating a new link beside it and renaming it over the old one (``os.replace``, atomic on
POSIX), so a reader of ``latest`` sees either the previous publication or the new one, whole. Nothing is written
when a checkpoint failed; a failure while writing or auditing removes the staging folder and leaves ``latest`` and
the dated link untouched.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from flows.contracts.quality import CheckpointOutcome
from flows.warehouse.resource import WarehouseResource, as_resource
from reports.charts import CHARTS
from reports.deidentify import check_table
from reports.extracts import (
    DEFAULT_MODELS_DIR,
    HYPER_FILE,
    HYPER_SCHEMA,
    DictionaryTable,
    arrow_table,
    data_dictionary,
    load_docs,
    read_hyper,
    write_csv,
    write_data_dictionary,
    write_extract,
    write_hyper,
)
from reports.grains import share_text, view_spec
from reports.html import ChartImage, format_period, kpi_tiles, period_of, render_report
from reports.kpis import BY_KEY
from reports.marts import CATALOGUE, KPI_MARTS, MartSpec, read_marts
from reports.rendering import ChartJob, ChartPainter, cpu_ticks, worker_processes
from reports.views import Publication, publish_marts

RUNS = "runs"
LATEST = "latest"
SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
#: An address's local part starts where a run of its characters starts (the look-behind): without it, every
#: position of a long run of word characters (the report's base64 images) was tried, quadratic in the run's length.
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"\(?\b\d{3}\)?[-. ]\d{3}-\d{4}\b")
ALLOWED_PNG_TEXT = {b"Title"}


class PublishError(RuntimeError):
    """The report was not published; ``latest`` is unchanged."""


class PublishRefused(PublishError):  # noqa: N818 - the name the pipeline flow calls
    """A checkpoint failed (or none ran): nothing was written and the latest report is unchanged."""


class PublishAuditFailed(PublishError):  # noqa: N818 - as QualityGateFailed
    """The staged publication broke a completeness or Safe Harbor rule: it was discarded."""


@dataclass(frozen=True)
class PublishResult:
    """Where the publication went and what it holds."""

    latest_dir: Path
    dated_dir: Path
    report_html: Path
    files: list[Path]
    suppressed_cells: int
    run_dir: Path | None = None
    missing_marts: tuple[str, ...] = field(default_factory=tuple)
    #: The report's KPI tiles as published ({key, label, value, mart}): what the run's summary shows too.
    kpis: tuple[dict, ...] = field(default_factory=tuple)


def refuse_unless_passed(checkpoints: Sequence[CheckpointOutcome], latest: Path) -> None:
    """Raise PublishRefused unless at least one checkpoint ran and every one passed."""
    current = f"still {latest.readlink()}" if latest.is_symlink() else "none published yet"
    if not checkpoints:
        raise PublishRefused(
            f"No checkpoint outcome was given, so the data is not known to be valid: nothing was published and the "
            f"latest report is unchanged ({current}). Run the raw and marts checkpoints first."
        )
    failed = [c for c in checkpoints if not c.success]
    if failed:
        names = ", ".join(f"'{c.checkpoint}' ({len(c.failures)} of {c.evaluated} expectations failed)" for c in failed)
        raise PublishRefused(
            f"Checkpoint {names} failed: nothing was published and the latest report is unchanged ({current}). "
            "See the checkpoint's Data Docs, fix the data, re-run the gates, then publish."
        )


def safe_name(text: str) -> str:
    """A run id usable as part of a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "run"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chart_spec(name: str, grain_label: str, columns: list[str]) -> MartSpec | None:
    """The `MartSpec` of a chart's published cells (its keys and known totals), from its name and grain label."""
    chart = CHARTS.get(name)
    grain = next((g for g in chart.grains if g.label == grain_label), None) if chart else None
    return None if grain is None else view_spec(CATALOGUE[chart.mart], grain, columns, f"chart_{name}")


def _dictionary_tables(
    publication: Publication, tables: dict[str, pa.Table], charts: dict[str, pa.Table]
) -> list[DictionaryTable]:
    """The published tables and charts' cells as the data dictionary lists them."""
    items = []
    for name, table in tables.items():
        files = (*(f"extracts/{name}.{suffix}" for suffix in ("parquet", "csv", "csv.gz")),
                 f"extracts/{HYPER_FILE}#{HYPER_SCHEMA}.{name}")  # fmt: skip
        items.append(DictionaryTable(name, table, CATALOGUE[name], files, name))
    for name, table in charts.items():
        view = publication.views[name]
        description = (
            f"The cells the chart '{name}' draws: {view.mart} added up to the grain {view.note.grain.label!r} "
            "(counts and amounts are sums over the period and group; rates, averages and shares are recomputed "
            "from those sums) and suppressed together with the extract of the mart."
        )
        items.append(
            DictionaryTable(
                f"chart_{name}",
                table,
                view.spec,
                (f"charts/{name}.csv",),
                view.mart,
                description,
                f"one row per {' and '.join(view.spec.margins) or 'period'}",
            )
        )
    return items


def write_publication(
    staging: Path,
    *,
    warehouse_path: WarehouseResource | Path,
    run_id: str,
    run_date: dt.date,
    checkpoints: Sequence[CheckpointOutcome],
    data_docs_url: str | None,
    dbt_docs_url: str | None,
    dbt_target_dir: Path | None,
    dbt_models_dir: Path | None,
    processes: int | None = None,
) -> dict:
    """Write extracts, dictionary, charts and the page into ``staging``; return the manifest (also written).

    Charts are drawn in ``processes`` worker processes besides this one (reports/rendering.py; None: one when
    enough charts are to be drawn and a core was idle while the marts were read, ``worker_processes``), the Hyper
    file is written and read back in a thread (its work is done by the hyperd process), while this process writes
    the other extracts and checks them (``audit_early``) until it draws the charts the worker has not started; the
    files are the same as drawn one after the other. The findings of the checks made while writing (the Hyper
    file's, read back in its thread, and the other extracts') are returned in the manifest's private ``_audited``
    entry (each with the digest of the bytes checked), which ``audit`` uses instead of reading a file a second
    time unless it changed, and which is not written.
    """
    ticks = cpu_ticks()
    marts = read_marts(warehouse_path)
    if not any(spec.name in marts.frames for spec in KPI_MARTS):
        raise PublishError(
            f"Warehouse {as_resource(warehouse_path).label} has no KPI mart (schema marts): build the dbt marts "
            "before publishing; the latest report is unchanged."
        )
    if processes is None:
        processes = worker_processes(sum(chart.mart in marts.frames for chart in CHARTS.values()), ticks)
    # The worker (if any) starts now: its imports overlap the suppression. Without one, the Hyper file is written
    # here too: pantab holds the GIL for most of its write, so a thread would only contend with this one.
    with ChartPainter(processes) as painter, ThreadPoolExecutor(1, thread_name_prefix="hyper") as hyper_thread:
        overlap = hyper_thread if processes > 0 else _Inline()
        publication = publish_marts(marts.frames)
        published = publication.tables
        period = format_period(period_of(published))
        jobs = [ChartJob(chart, view.frame, view.note, period, run_id) for chart, view in publication.views.items()]
        painter.submit(jobs, staging / "charts")
        tables = {name: arrow_table(name, frame, CATALOGUE[name]) for name, frame in published.items()}
        hyper = overlap.submit(_write_and_audit_hyper, tables, staging / "extracts" / HYPER_FILE)
        for name, table in tables.items():
            write_extract(table, staging / "extracts", name)
        views = publication.views
        charts = {chart: arrow_table(f"chart_{chart}", view.frame, view.spec) for chart, view in views.items()}
        for chart, table in charts.items():
            write_csv(table, staging / "charts" / f"{chart}.csv")
        docs = load_docs(dbt_target_dir, dbt_models_dir)
        dictionary = data_dictionary(_dictionary_tables(publication, tables, charts), docs)
        dictionary_files = write_data_dictionary(dictionary, staging / "extracts")
        extract_files = [p for name in tables for p in (f"{name}.parquet", f"{name}.csv", f"{name}.csv.gz")]
        checked = audit_early(staging, [f"extracts/{name}" for name in (*extract_files,
                              *(path.name for path in dictionary_files))], sorted(tables))  # fmt: skip
        drawn = painter.drawn()
        checked[f"extracts/{HYPER_FILE}"] = hyper.result()
    images = [
        ChartImage(chart, view.mart, drawn[chart].title, drawn[chart].png, view.note.grain.label)
        for chart, view in publication.views.items()
    ]
    loaded = "unknown" if marts.loaded_at is None else f"{marts.loaded_at:%Y-%m-%d %H:%M} UTC"
    freshness = f"newest raw data loaded {loaded}; data up to {period.split(' to ')[-1]}"
    render_report(
        path=staging / "report.html", frames=published, marts=marts.frames, charts=images, checkpoints=checkpoints,
        run_id=run_id, run_date=run_date, freshness=freshness, suppressed_cells=publication.suppressed_cells,
        missing=marts.missing, data_docs_url=data_docs_url, dbt_docs_url=dbt_docs_url,
    )  # fmt: skip
    files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    manifest = {
        "run_id": run_id,
        "run_date": run_date.isoformat(),
        "period": period,
        "tables": sorted(published),
        "missing_marts": list(marts.missing),
        "suppressed_cells": publication.suppressed_cells,
        "chart_suppressed_cells": publication.chart_suppressed_cells,
        "charts": {
            name: {
                "mart": view.mart,
                "grain": view.note.grain.label,
                "cells": view.note.cells,
                "suppressed_cells": view.note.hidden_cells,
                "hidden": share_text(view.note.hidden_share),
            }
            for name, view in publication.views.items()
        },
        "checkpoints": [
            {"checkpoint": c.checkpoint, "success": c.success, "evaluated": c.evaluated} for c in checkpoints
        ],
        "kpis": [
            {"key": t.key, "label": t.label, "value": t.value, "mart": BY_KEY[t.key].mart}
            for t in kpi_tiles(marts.frames)
        ],
        "files": {name: sha256(staging / name) for name in files},
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {**manifest, AUDITED: checked}


class _Inline:
    """An executor that runs the call at once, in this thread (``submit`` returns a done future)."""

    def submit(self, function: Callable, *args: object) -> Future:
        future: Future = Future()
        future.set_result(function(*args))
        return future


#: The manifest's private entry (never written): findings of checks done while writing, by file and digest.
AUDITED = "_audited"


def _write_and_audit_hyper(tables: dict[str, pa.Table], path: Path) -> tuple[str, list[str]]:
    """Write the Hyper file, then read it back as a Tableau user would and check it (``_audit_hyper``)."""
    write_hyper(tables, path)
    return sha256(path), _audit_hyper(f"extracts/{path.name}", path, sorted(tables))


def png_text_keys(path: Path) -> list[bytes]:
    """The keywords of a PNG's text chunks (tEXt, zTXt, iTXt)."""
    data, keys, position = path.read_bytes(), [], 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind in {b"tEXt", b"zTXt", b"iTXt"}:
            keys.append(data[position + 8 : position + 8 + length].split(b"\0", 1)[0])
        position += 12 + length
    return keys


def audit_text(name: str, text: str) -> list[str]:
    """Direct identifiers a text file must not contain (SSN, e-mail address, phone number shapes)."""
    problems = []
    for label, pattern in (("an SSN", SSN), ("an e-mail address", EMAIL), ("a phone number", PHONE)):
        if pattern.search(text):
            problems.append(f"{name}: contains what looks like {label}")
    return problems


def audit_file(staging: Path, name: str, manifest: dict) -> list[str]:
    """The Safe Harbor and table rules on one staged file (``manifest``: its ``tables`` and ``charts``)."""
    path = staging / name
    problems: list[str] = []
    if name.endswith(".parquet"):
        problems += check_table(name, pd.read_parquet(path), CATALOGUE.get(Path(name).name[: -len(".parquet")]))
    elif name.endswith(".csv.gz"):
        text = gzip.decompress(path.read_bytes())
        plain = path.with_name(path.name.removesuffix(".gz"))
        # The same bytes as the plain CSV beside it (written from one Arrow table): the plain file's checks hold
        # for it. Anything else is a finding, and is checked on its own too.
        if not (plain.exists() and plain.read_bytes() == text):
            problems.append(f"{name}: not the same table as {plain.name} (the two are written from one table)")
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            stem = Path(name).name[: -len(".csv.gz")]
            problems += check_table(name, frame.replace("", None), CATALOGUE.get(stem))
            problems += audit_text(name, text.decode("utf-8"))
    elif name.endswith(".hyper"):
        problems += _audit_hyper(name, path, manifest["tables"])
    elif name.endswith((".html", ".svg", ".json", ".csv")):
        text = path.read_text(encoding="utf-8")
        problems += audit_text(name, text)
        if name.endswith(".csv") and not Path(name).name.startswith("data_dictionary"):
            problems += _audit_csv(name, path, manifest)
        if name.endswith(".html") and re.search(r"<img[^>]+src=\"(?!data:)", text):
            problems.append(f"{name}: an image is not embedded (the page must be self-contained)")
    elif name.endswith(".png"):
        extra = [key.decode("latin-1") for key in png_text_keys(path) if key not in ALLOWED_PNG_TEXT]
        if extra:
            problems.append(f"{name}: PNG metadata beyond a title: {extra}")
    return problems


def audit_early(staging: Path, names: Sequence[str], tables: Sequence[str]) -> dict[str, tuple[str, list[str]]]:
    """``audit_file`` on finished extract files while the charts are still being drawn: by name, the digest of
    the bytes checked and the problems found (``audit`` checks a file again if its digest changed)."""
    partial = {"tables": sorted(tables), "charts": {}}
    return {name: (sha256(staging / name), audit_file(staging, name, partial)) for name in names}


def audit(staging: Path, manifest: dict) -> list[str]:
    """Every problem of the staged publication: missing, unlisted or altered files, and Safe Harbor breaches."""
    problems: list[str] = []
    listed = set(manifest["files"]) | {"manifest.json"}
    present = {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()}
    problems += [f"{name}: listed in the manifest but missing" for name in sorted(listed - present)]
    problems += [f"{name}: present but not listed in the manifest" for name in sorted(present - listed)]
    for name, digest in manifest["files"].items():
        path = staging / name
        if not path.exists():
            continue
        if path.stat().st_size == 0:
            problems.append(f"{name}: empty file")
        if sha256(path) != digest:
            problems.append(f"{name}: changed after it was written")
    for table in manifest["tables"]:
        for suffix in ("parquet", "csv", "csv.gz"):
            if f"extracts/{table}.{suffix}" not in present:
                problems.append(f"extracts/{table}.{suffix}: missing")
    for chart in manifest.get("charts", {}):
        if f"charts/{chart}.csv" not in present:
            problems.append(f"charts/{chart}.csv: missing")
    audited = manifest.get(AUDITED, {})
    for name in sorted(present):
        # A file checked while the publication was written (write_publication) is checked again only if its
        # bytes changed since.
        digest, found = audited.get(name, (None, None))
        problems += (
            found if digest is not None and digest == sha256(staging / name) else audit_file(staging, name, manifest)
        )
    for checkpoint in manifest["checkpoints"]:
        if not checkpoint["success"]:
            problems.append(f"checkpoint {checkpoint['checkpoint']} failed")
    return problems


def _audit_csv(name: str, path: Path, manifest: dict) -> list[str]:
    """The table rules on a plain CSV extract or a chart's cells (with the chart's own keys and known totals)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).replace("", None)
    stem = Path(name).name.removesuffix(".csv")
    if name.startswith("charts/"):
        entry = manifest.get("charts", {}).get(stem)
        spec = chart_spec(stem, entry["grain"], list(frame.columns)) if entry else None
        if spec is None:
            return [f"{name}: not a chart of this publication, or its grain is unknown"]
        return check_table(name, frame, spec)
    return check_table(name, frame, CATALOGUE.get(stem))


def _audit_hyper(name: str, path: Path, tables: list[str]) -> list[str]:
    """The Hyper file holds exactly the published tables, and each passes the table rules."""
    try:
        frames = read_hyper(path)
    except Exception as error:  # any failure to read is the finding
        return [f"{name}: cannot be read with the Hyper API ({type(error).__name__}: {error})"]
    problems = []
    if sorted(frames) != sorted(tables):
        problems.append(f"{name}: holds tables {sorted(frames)}, not the published {sorted(tables)}")
    for table, frame in frames.items():
        problems += check_table(f"{name}#{table}", frame, CATALOGUE.get(table))
    return problems


def switch_link(reports_dir: Path, name: str, target: Path) -> None:
    """Point ``reports_dir/name`` at ``target`` atomically (a new link renamed over the old one)."""
    link = reports_dir / name
    if link.exists() and not link.is_symlink():
        # A real folder from an older layout: keep it in the history, then the link can take its place.
        link.rename(reports_dir / RUNS / f"{name}-previous-{uuid.uuid4().hex[:8]}")
    temporary = reports_dir / f".{name}.{uuid.uuid4().hex[:8]}.link"
    temporary.symlink_to(target.relative_to(reports_dir), target_is_directory=True)
    temporary.replace(link)


def publish(
    warehouse_path: WarehouseResource | Path,
    reports_dir: Path,
    run_id: str,
    run_date: dt.date,
    checkpoints: Sequence[CheckpointOutcome],
    data_docs_url: str | None = None,
    dbt_docs_url: str | None = None,
    *,
    dbt_target_dir: Path | None = None,
    dbt_models_dir: Path | None = DEFAULT_MODELS_DIR,
    staging_hook: Callable[[Path], None] | None = None,
    processes: int | None = None,
) -> PublishResult:
    """Publish the de-identified report and BI extracts of one run, only if every checkpoint passed.

    ``warehouse_path`` (a warehouse resource, or a DuckDB file) is opened read-only and closed before this
    returns. ``dbt_target_dir`` (a folder with ``manifest.json``, e.g. the dbt docs folder) gives the data
    dictionary its descriptions, else the YAML under ``dbt_models_dir``. ``staging_hook`` is called with the
    staging folder once everything is written and before the audit (extensions and tests; an exception from it
    aborts the publication). ``processes``: how many processes draw charts besides this one (default: one when
    there are charts enough and a core was idle while the marts were read; 0 draws every chart here). Raises
    PublishRefused before writing anything if a checkpoint failed or none ran, PublishAuditFailed if the staged
    files break a rule, PublishError if writing fails; in every case ``latest`` is unchanged.
    """
    refuse_unless_passed(checkpoints, reports_dir / LATEST)
    reports_dir.mkdir(parents=True, exist_ok=True)
    staging = reports_dir / f".staging-{safe_name(run_id)}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        manifest = write_publication(
            staging, warehouse_path=warehouse_path, run_id=run_id, run_date=run_date, checkpoints=checkpoints,
            data_docs_url=data_docs_url, dbt_docs_url=dbt_docs_url, dbt_target_dir=dbt_target_dir,
            dbt_models_dir=dbt_models_dir, processes=processes,
        )  # fmt: skip
        if staging_hook is not None:
            staging_hook(staging)
        problems = audit(staging, manifest)
        if problems:
            listed = "\n".join(f"  - {problem}" for problem in problems[:20])
            more = f"\n  - ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise PublishAuditFailed(
                f"The staged report of run {run_id} failed its audit and was discarded; the latest report is "
                f"unchanged:\n{listed}{more}\nFix the marts or reports/ rules named above, then publish again."
            )
        run_dir = reports_dir / RUNS / f"{run_date.isoformat()}_{safe_name(run_id)}"
        if run_dir.exists():
            run_dir = run_dir.with_name(f"{run_dir.name}-{uuid.uuid4().hex[:8]}")
        run_dir.parent.mkdir(exist_ok=True)
        staging.rename(run_dir)
    except PublishError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise PublishError(
            f"Publishing the report of run {run_id} failed while writing {staging.name} ({type(error).__name__}: "
            f"{error}); the staged files were removed and the latest report is unchanged."
        ) from error
    switch_link(reports_dir, run_date.isoformat(), run_dir)
    switch_link(reports_dir, LATEST, run_dir)
    latest, dated = reports_dir / LATEST, reports_dir / run_date.isoformat()
    return PublishResult(
        latest_dir=latest,
        dated_dir=dated,
        report_html=latest / "report.html",
        files=sorted(path for path in run_dir.rglob("*") if path.is_file()),
        suppressed_cells=manifest["suppressed_cells"],
        run_dir=run_dir,
        missing_marts=tuple(manifest["missing_marts"]),
        kpis=tuple(manifest["kpis"]),
    )
