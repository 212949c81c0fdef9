"""Stages 7 and 8: generate the dbt docs site, then publish the report (reports/), only after both gates passed.

Publishing writes ``reports/<run date>/`` and then replaces ``reports/latest/``; a run that failed a gate never
reaches this stage, so the last good report stays the latest.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.exceptions import MissingContextError

from flows.dbt_runner import project_digest, run_dbt
from flows.faults import RETRY_JITTER_FACTOR, TRANSIENT_RETRY_DELAYS, retry_transient
from flows.warehouse.resource import WarehouseResource, as_resource

_RETRY = {
    "retries": len(TRANSIENT_RETRY_DELAYS),
    "retry_delay_seconds": TRANSIENT_RETRY_DELAYS,
    "retry_jitter_factor": RETRY_JITTER_FACTOR,
    "retry_condition_fn": retry_transient,
}


#: dbt docs' single page with the manifest and catalog inlined (``--static``): it opens from disk, no server needed.
STATIC_PAGE = "static_index.html"
#: Two faults of the dbt-docs page dbt 1.11 ships, each a console error on every view (from disk and over http):
#: the tree's icons are <use xlink:href="{{ getIcon(...) }}"> in AngularJS templates, so the browser requests the
#: uninterpolated text as a URL before Angular fills it in (``ng-attr-href`` sets the attribute only once it is
#: interpolated; SVG 2's ``href`` draws the same icon); and its favicon link is a webpack expression never built
#: (an empty data: icon instead, so browsers request none).
_STATIC_PAGE_FIXES = (
    ('<use xlink:href="{{ getIcon(', '<use ng-attr-href="{{ getIcon('),
    (
        '<link rel="shortcut icon" href="${require(\'./assets/favicons/favicon.ico\')}"/>',
        '<link rel="icon" href="data:,"/>',
    ),
)


@task(name="dbt-docs-generate", task_run_name="dbt-docs", **_RETRY)
def generate_dbt_docs(project_dir: Path, warehouse: Path | WarehouseResource, docs_dir: Path, log_path: Path) -> Path:
    """``dbt docs generate --static`` into ``docs_dir``; returns ``static_index.html``, which opens from disk.

    index.html, manifest.json and catalog.json are written too (the report's data dictionary reads the manifest);
    index.html needs an http server to load the two JSON files, the static page does not.
    """
    docs_dir.mkdir(parents=True, exist_ok=True)
    run_dbt(
        ["docs", "generate", "--static"],
        project_dir=project_dir,
        warehouse=warehouse,
        target_path=docs_dir,
        log_path=log_path,
        node_tasks=False,
    )
    page = docs_dir / STATIC_PAGE
    fixed = fix_static_page(page)
    if fixed < len(_STATIC_PAGE_FIXES):
        _logger().warning("dbt docs: %d of %d known page faults found in %s", fixed, len(_STATIC_PAGE_FIXES), page)
    return page


def _logger():
    """The run's logger in a flow or task run; this module's outside one (the task's function called directly)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def fix_static_page(page: Path) -> int:
    """Repair the known faults of dbt docs' static page in place (see ``_STATIC_PAGE_FIXES``); returns how many."""
    html = page.read_text(encoding="utf-8")
    found = 0
    for old, new in _STATIC_PAGE_FIXES:
        if old in html:
            html = html.replace(old, new)
            found += 1
    page.write_text(html, encoding="utf-8")
    return found


@task(name="publish-report", task_run_name="publish-report", **_RETRY)
def publish_report(
    warehouse: Path | dict, reports_dir: Path, run_id: str, run_date: dt.date, checkpoints: list[dict],
    data_docs_url: str | None, dbt_docs_dir: Path,
) -> dict:  # fmt: skip
    """Publish the report; returns where it went (latest and dated folders, the HTML file, suppressed cells)."""
    from flows.validate import outcome_from_dict
    from reports import publish

    result = publish(
        warehouse_path=as_resource(warehouse),
        reports_dir=reports_dir,
        run_id=run_id,
        run_date=run_date,
        checkpoints=[outcome_from_dict(c) for c in checkpoints],
        data_docs_url=data_docs_url,
        # Relative, as the Data Docs link (reports/latest/ is two levels below the data home, which `hospital docs
        # --serve` mirrors); the static page opens from disk, index.html needs an http server.
        dbt_docs_url="../../" + dbt_docs_dir.name + "/" + STATIC_PAGE,
        dbt_target_dir=dbt_docs_dir,  # its manifest.json gives the data dictionary the models' descriptions
    )
    return {
        "latest_dir": str(result.latest_dir),
        "dated_dir": str(result.dated_dir),
        "report_html": str(result.report_html),
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "files": len(result.files),
        "suppressed_cells": result.suppressed_cells,
        "kpis": list(result.kpis),  # the report's tiles: the run's summary shows the same figures
    }


#: Beside the dbt docs: the fingerprint of what they were generated from.
FINGERPRINT = ".generated-from"


def docs_fingerprint(project_dir: Path, resource: WarehouseResource) -> str | None:
    """What the dbt docs are generated from: every file of the project (models, macros, seeds, snapshots, tests,
    the generated sources, dbt_project.yml, profiles.yml), dbt's version and the target. None when the docs must
    be generated on every run: Snowflake's catalog carries each table's row count and size, DuckDB's does not.
    """
    from dbt.version import __version__ as dbt_version

    if resource.kind != "duckdb":
        return None
    return project_digest(project_dir, f"dbt {dbt_version} target {resource.dbt_target}\n")


def _stored_fingerprint(docs_dir: Path) -> str | None:
    path = docs_dir / FINGERPRINT
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


@flow(name="publish-reports", flow_run_name="publish")
def publish_reports(
    project_dir: str,
    warehouse_path: str | dict[str, str | None],
    dbt_docs_dir: str,
    dbt_log_path: str,
    reports_dir: str,
    run_id: str,
    run_date: dt.date,
    checkpoints: list[dict],
    data_docs_url: str | None = None,
) -> dict:
    """Generate the dbt docs (unless the project, dbt and the target are unchanged since the last generation on
    DuckDB: ``docs_fingerprint``), then publish the report with links to Data Docs and dbt docs. ``warehouse_path``
    is a DuckDB file, or a warehouse resource's ``ref()`` (the pipeline's, Snowflake included)."""
    logger = get_run_logger()
    resource = as_resource(warehouse_path)
    docs_dir = Path(dbt_docs_dir)
    fingerprint = docs_fingerprint(Path(project_dir), resource)
    index = docs_dir / STATIC_PAGE
    if fingerprint is not None and index.exists() and _stored_fingerprint(docs_dir) == fingerprint:
        logger.info("dbt docs kept: the project, dbt and the target are unchanged since they were generated (%s)",
                    fingerprint[:12])  # fmt: skip
    else:
        (docs_dir / FINGERPRINT).unlink(missing_ok=True)  # a failed generation leaves no stale fingerprint
        index = generate_dbt_docs(Path(project_dir), resource, docs_dir, Path(dbt_log_path))
        if fingerprint is not None:
            (docs_dir / FINGERPRINT).write_text(fingerprint + "\n", encoding="utf-8")
        logger.info("dbt docs generated: %s", index)
    published = publish_report(
        resource.ref(), Path(reports_dir), run_id, run_date, checkpoints, data_docs_url, Path(dbt_docs_dir)
    )
    published["dbt_docs_index"] = str(index)  # static_index.html (the key's name is the pipeline's)
    logger.info(
        "report published: %s (%d files, %d small cells suppressed)",
        published["report_html"],
        published["files"],
        published["suppressed_cells"],
    )
    return published
