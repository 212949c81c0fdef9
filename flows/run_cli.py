"""``hospital run``, ``backfill``, ``status``, ``docs`` and ``serve``: the Prefect pipeline from the command line.

Without ``PREFECT_API_URL`` the flows run against a temporary local Prefect server that starts and stops with
the command; with it, they report to that server (or Prefect Cloud). Output holds names, counts, rates and paths,
never a data value.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DONE = {"published", "already-published", "up-to-date"}
BATCH_HELP = (
    "Batch id to process (landed, or a simulator id); 'next' = the next unpublished batch. "
    "Default: the initial batch HOSPITAL_START_DATE..HOSPITAL_END_DATE"
)


def prepare_prefect_environment() -> None:
    """Defaults for a laptop run: no telemetry, a patient start-up timeout for the temporary server, no GX bars."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("TQDM_DISABLE", "1")


_DBT_PROGRESS = re.compile(r"^(\d+) of (\d+) (?!START)")
#: Show every this many finished dbt nodes (and the last one) as progress on the console.
DBT_PROGRESS_EVERY = 50


class _QuietTasks(logging.Filter):
    """Keep per-task INFO lines (one per dbt node) off the console, but for a progress line every 50 dbt nodes
    and dbt's own summary; everything still goes to the Prefect API."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("prefect.task_runs") or record.levelno >= logging.WARNING:
            return True
        message = record.getMessage()
        if message.startswith(("Done. PASS=", "Finished running")):
            return True
        progress = _DBT_PROGRESS.match(message)
        return bool(progress) and (
            int(progress.group(1)) % DBT_PROGRESS_EVERY == 0 or progress.group(1) == progress.group(2)
        )


def quiet_console() -> None:
    """Show flow-level progress (one line per stage) and every warning and error, but not each dbt node."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _QuietTasks) for f in handler.filters):
            handler.addFilter(_QuietTasks())


def _settings(home: Path | None) -> Settings:
    return Settings(home=home) if home is not None else Settings()


def _print_paths(settings: Settings, report: str | None = None) -> None:
    paths = settings.paths
    latest = Path(report).parent if report else paths.latest_report
    rows = [
        ("report", latest / "report.html"),
        ("Data Docs", paths.data_docs / "index.html"),
        ("dbt docs", paths.dbt_docs / "index.html"),
        ("warehouse", paths.warehouse),
    ]
    for name, path in rows:
        state = "" if path.exists() else "  (not yet written)"
        typer.echo(f"  {name:<10} {path}{state}")


def _print_result(result: dict[str, Any], settings: Settings) -> None:
    status = result.get("status")
    if status == "up-to-date":
        typer.echo("Nothing to do: every batch up to yesterday is published.")
        _print_paths(settings)
        return
    if status == "already-published":
        typer.echo(f"Batch {result['batch_id']} was published before: nothing changed (use --force to redo it).")
        _print_paths(settings)
        return
    typer.echo(f"\nBatch {result['batch_id']} published in {result['seconds']:.0f} s.")
    typer.echo("\nStages")
    for stage, outcome, seconds in result.get("stages", []):
        typer.echo(f"  {stage:<25} {seconds:>7} s  {outcome}")
    typer.echo(f"\nRows: {result.get('rows_landed', 0):,} landed, {result.get('rows_loaded', 0):,} loaded into raw, "
               f"{result.get('rows_rejected', 0):,} rejected, {result.get('mart_rows', 0):,} in "
               f"{result.get('marts', 0)} marts")  # fmt: skip
    typer.echo("\nWhere things are")
    _print_paths(settings, result.get("report", {}).get("report_html"))


def _print_failure(error: BaseException | None, settings: Settings, batch_id: str | None) -> None:
    from flows import runs
    from flows.pipeline import safe_message

    typer.secho("\nThe run failed; the last published report stays the latest.", err=True, fg=typer.colors.RED)
    latest = runs.latest_run(settings.paths.warehouse, batch_id) if batch_id else None
    if latest is not None and latest.status == "failed":
        typer.echo(f"  batch {latest.batch_id} failed at stage: {latest.stage}", err=True)
    message = safe_message(error) if error is not None else "unknown error"
    typer.echo(message, err=True)
    _print_paths(settings)


NODE_TASKS_HELP = (
    "One Prefect task per dbt node. Default: on with PREFECT_API_URL (a server whose UI you use), off with the "
    "temporary server (dbt then runs about 5x faster: docs/pipeline.md)"
)


def _node_tasks(chosen: bool | None) -> bool:
    """One Prefect task per dbt node: as chosen, else only when runs go to a server someone looks at."""
    if chosen is not None:
        return chosen
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def run(
    patients: Annotated[int | None, typer.Option(help="Registered patients [HOSPITAL_PATIENTS, 10,000]")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated network [HOSPITAL_SEED, 42]")] = None,
    defect_rate: Annotated[
        float | None, typer.Option(min=0.0, max=0.5, help="Share of generated rows given a defect (0-0.5)")
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(help=BATCH_HELP),
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Data home [HOSPITAL_HOME, ./data]")] = None,
    force: Annotated[bool, typer.Option(help="Process the batch again even if it was published")] = False,
    full_refresh: Annotated[bool, typer.Option(help="Rebuild incremental facts from raw (dbt --full-refresh)")] = False,
    dbt_node_tasks: Annotated[bool | None, typer.Option(help=NODE_TASKS_HELP)] = None,
    verbose: Annotated[bool, typer.Option(help="Print every task's log lines (each dbt node)")] = False,
) -> None:
    """Run the whole pipeline on one batch: land, load, raw gate, dbt build, snapshots, marts gate, docs, publish.

    Exit code 0 when the report was published (or the batch was already); 1 when a stage or a gate failed (the
    message says which and why); 2 for bad arguments.
    """
    prepare_prefect_environment()
    settings = _settings(home)
    from generators.batch import initial_batch_id

    batch_id: str | None = batch if batch != "next" else None
    if batch is None:
        batch_id = initial_batch_id(settings.start_date, settings.end_date)
    from flows.pipeline import pipeline

    if not verbose:
        quiet_console()
    state = pipeline(
        batch_id=batch_id, home=str(settings.home), seed=seed, patients=patients, defect_rate=defect_rate,
        force=force, full_refresh=full_refresh, dbt_node_tasks=_node_tasks(dbt_node_tasks), return_state=True,
    )  # fmt: skip
    if state.is_completed():
        result = state.result()
        _print_result(result, settings)
        raise typer.Exit(EXIT_OK if result.get("status") in DONE else EXIT_FAILED)
    error = state.result(raise_on_failure=False)
    _print_failure(error if isinstance(error, BaseException) else None, settings, batch_id)
    raise typer.Exit(EXIT_FAILED)


def backfill(
    start: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="First day (its daily batch)")],
    end: Annotated[dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="Last day, inclusive")],
    home: Annotated[Path | None, typer.Option(help="Data home [HOSPITAL_HOME, ./data]")] = None,
    patients: Annotated[int | None, typer.Option(help="Registered patients [HOSPITAL_PATIENTS]")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated network [HOSPITAL_SEED]")] = None,
    defect_rate: Annotated[float | None, typer.Option(min=0.0, max=0.5, help="Share of rows given a defect")] = None,
    dbt_node_tasks: Annotated[bool | None, typer.Option(help=NODE_TASKS_HELP)] = None,
    verbose: Annotated[bool, typer.Option(help="Print every task's log lines")] = False,
) -> None:
    """Process the daily batches from --start to --end in order; stop at the first failed gate (exit 1)."""
    prepare_prefect_environment()
    settings = _settings(home)
    if end < start:
        typer.secho(f"error: --end {end:%Y-%m-%d} is before --start {start:%Y-%m-%d}", err=True, fg="red")
        raise typer.Exit(EXIT_USAGE)
    from flows.backfill import backfill as backfill_flow

    if not verbose:
        quiet_console()
    state = backfill_flow(
        start=start.date(), end=end.date(), home=str(settings.home), seed=seed, patients=patients,
        defect_rate=defect_rate, dbt_node_tasks=_node_tasks(dbt_node_tasks), return_state=True,
    )  # fmt: skip
    if state.is_completed():
        result = state.result()
        for entry in result["batches"]:
            typer.echo(f"  {entry['batch_id']:<20} {entry['status']}")
        typer.echo(f"Backfill done: {result['days']} day(s).")
        _print_paths(settings)
        raise typer.Exit(EXIT_OK)
    error = state.result(raise_on_failure=False)
    from flows import runs

    failed = next((r for r in runs.last_runs(settings.paths.warehouse, 1) if r.status == "failed"), None)
    _print_failure(error if isinstance(error, BaseException) else None, settings, failed.batch_id if failed else None)
    raise typer.Exit(EXIT_FAILED)


def status(
    home: Annotated[Path | None, typer.Option(help="Data home [HOSPITAL_HOME, ./data]")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs to list")] = 10,
) -> None:
    """The last pipeline runs, the load ledger's last batches, and the latest report."""
    from flows import runs

    settings = _settings(home)
    warehouse = settings.paths.warehouse
    if not warehouse.exists():
        typer.echo(f"No warehouse at {warehouse} yet: run `hospital run` first.")
        raise typer.Exit(EXIT_OK)
    last = runs.last_runs(warehouse, limit)
    typer.echo("Pipeline runs (newest first)")
    if not last:
        typer.echo("  none yet")
    for run_row in last:
        finished = f"{run_row.finished_at:%Y-%m-%d %H:%M}" if run_row.finished_at else "-"
        rows = "-" if run_row.rows_loaded is None else f"{run_row.rows_loaded:,}"
        typer.echo(f"  {run_row.started_at:%Y-%m-%d %H:%M}  {run_row.batch_id:<28} {run_row.status:<10} "
                   f"stage={run_row.stage or '-':<24} rows={rows:<10} finished={finished}")  # fmt: skip
        if run_row.status == "failed" and run_row.message:
            typer.echo(f"      {run_row.message.splitlines()[0]}")
    typer.echo("\nLoad ledger (last batches)")
    for line in load_ledger_lines(warehouse, limit):
        typer.echo(f"  {line}")
    published = runs.last_published(warehouse)
    typer.echo("\nLatest report")
    if published is None:
        typer.echo("  none published yet")
    else:
        typer.echo(f"  {settings.paths.latest_report / 'report.html'}  (batch {published.batch_id}, run date "
                   f"{published.run_date}, published {published.finished_at:%Y-%m-%d %H:%M} UTC)")  # fmt: skip


def load_ledger_lines(warehouse: Path, limit: int) -> list[str]:
    """One line per recently loaded batch: files by outcome and rows loaded (read-only)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        exists = connection.execute(
            "select count(*) from duckdb_tables() where schema_name = 'ledger' and table_name = 'load_ledger'"
        ).fetchone()[0]
        if not exists:
            return ["no batch loaded yet"]
        rows = connection.execute(
            "select batch_id, max(loaded_at), count(*) filter (where outcome = 'loaded'), "
            "count(*) filter (where outcome = 'skipped'), count(*) filter (where outcome = 'failed'), "
            "sum(rows_loaded) from ledger.load_ledger group by batch_id order by max(loaded_at) desc limit ?",
            [limit],
        ).fetchall()
    return [
        f"{batch:<28} loaded {loaded} file(s), skipped {skipped}, failed {failed}; {rows_loaded or 0:,} rows "
        f"(last {at:%Y-%m-%d %H:%M})"
        for batch, at, loaded, skipped, failed, rows_loaded in rows
    ]


def docs(home: Annotated[Path | None, typer.Option(help="Data home [HOSPITAL_HOME, ./data]")] = None) -> None:
    """Where the latest report, the Data Docs and the dbt docs are (paths and file:// URLs)."""
    settings = _settings(home)
    paths = settings.paths
    for name, path in (
        ("report", paths.latest_report / "report.html"),
        ("Data Docs", paths.data_docs / "index.html"),
        ("dbt docs", paths.dbt_docs / "index.html"),
    ):
        if path.exists():
            typer.echo(f"{name:<10} {path.resolve().as_uri()}")
        else:
            typer.echo(f"{name:<10} {path}  (not yet written: run `hospital run`)")


def serve(
    timezone: Annotated[str | None, typer.Option(help="The hospitals' time zone for the schedules")] = None,
) -> None:
    """Serve the deployments of deployments/prefect.yaml, schedules included, from this process (Ctrl-C stops).

    They are registered under their own names (`daily-incremental-served`, ...), so the work pool deployments of
    `prefect deploy` on the same server are never replaced or paused; stopping pauses only the served ones.
    Exit code 2 for a bad --timezone (nothing touched), 1 when a served name belongs to a work pool.
    """
    from deployments.serve import ServeConflictError, TimezoneError, check_timezone

    if timezone is not None:
        try:
            check_timezone(timezone)
        except TimezoneError as error:
            typer.secho(f"error: --timezone {error}; nothing was served", err=True, fg=typer.colors.RED)
            raise typer.Exit(EXIT_USAGE) from None
    prepare_prefect_environment()
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL

    from deployments.serve import runner_deployments, server_notes

    served = runner_deployments(timezone=timezone)
    persistent = bool(PREFECT_API_URL.value())
    if persistent:
        try:
            notes = server_notes(served)
        except ServeConflictError as error:
            typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
            raise typer.Exit(EXIT_FAILED) from None
        for note in notes:
            typer.echo(f"note: {note}")
    else:
        typer.echo(
            "PREFECT_API_URL is not set: serving against a temporary local Prefect server; its runs and UI end with "
            "this process. For a lasting UI run `prefect server start` and set PREFECT_API_URL."
        )
    # Pausing the schedules at shutdown matters on a lasting server (no one would run them); a temporary server
    # stops first and the pause would only print connection errors. Only the served deployments are paused.
    prefect_serve(*served, pause_on_shutdown=persistent)
