"""``hospital run``, ``backfill``, ``status``, ``docs`` and ``serve``: the Prefect pipeline from the command line.

Without ``PREFECT_API_URL`` the flows run against a temporary local Prefect server that starts and stops with
the command; with it, they report to that server (or Prefect Cloud). Output holds names, counts, rates and paths,
never a data value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli_support import EXIT_FAILED, EXIT_OK, fail, settings_or_exit
from flows.server import prefect_api
from flows.settings import Settings
from flows.warehouse.resource import WarehouseResource

DONE = {"published", "already-published", "up-to-date"}
BATCH_HELP = (
    "Batch id to process (landed, or a simulator id); 'next' = the next unpublished batch. "
    "Default: the initial batch HOSPITAL_START_DATE..HOSPITAL_END_DATE"
)


def prepare_prefect_environment() -> None:
    """Defaults for a laptop run: no telemetry, no GX progress bars."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
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


class _OneMessage(logging.Filter):
    """A failed run's message is printed once, by the command, without a traceback: on the console, Prefect's own
    reports of a platform error (the engine's traceback, each flow's "Finished in state Failed(<message>)") are cut
    to their first line. The Prefect API still receives every record whole, for the UI."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and _is_own(error):
            record.exc_info, record.exc_text = None, None
        if record.name.startswith("prefect.") and record.levelno >= logging.INFO:
            message = record.getMessage()
            if message.startswith(("Finished in state Failed", "Encountered exception", "Finished in state Crashed")):
                first = min((i for i in (message.find("\\n"), message.find("\n")) if i >= 0), default=-1)
                if first >= 0:  # the rest of a multi-line message is printed once, by the command
                    record.msg, record.args = message[:first] + " ...", ()
        return True


def _is_own(error: BaseException) -> bool:
    from flows.errors import own_error

    return own_error(error)


def quiet_console(verbose: bool = False) -> None:
    """Show flow-level progress (one line per stage) and every warning and error, but not each dbt node (unless
    ``verbose``); and a failure's message once (``_OneMessage``)."""
    for handler in logging.getLogger().handlers:
        if not verbose and not any(isinstance(f, _QuietTasks) for f in handler.filters):
            handler.addFilter(_QuietTasks())
        if not any(isinstance(f, _OneMessage) for f in handler.filters):
            handler.addFilter(_OneMessage())


def _print_paths(settings: Settings, report: str | None = None) -> None:
    paths = settings.paths
    latest = Path(report).parent if report else paths.latest_report
    rows = [
        ("report", latest / "report.html"),
        ("Data Docs", paths.data_docs / "index.html"),
        ("dbt docs", paths.dbt_docs / "static_index.html"),  # opens from disk (dbt docs generate --static)
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
    from flows.errors import safe_message

    typer.secho("\nThe run failed; the last published report stays the latest.", err=True, fg=typer.colors.RED)
    try:
        latest = runs.latest_run(settings.paths.warehouse, batch_id) if batch_id else None
    except Exception:  # the ledger is unreadable (e.g. the disk is full): the error itself still says what failed
        latest = None
    message = safe_message(error, home=settings.home) if error is not None else "unknown error"
    if latest is not None and latest.status == "failed":
        typer.echo(f"  batch {latest.batch_id} failed at stage: {latest.stage}", err=True)
        message = latest.message or message  # what the run recorded, with its stage
    typer.echo(message, err=True)
    _print_paths(settings)


NODE_TASKS_HELP = (
    "One Prefect task per dbt node. Default: on with PREFECT_API_URL (a server whose UI you use), off with the "
    "temporary server, whose UI nobody sees (a task run per model costs about 1.1x plain dbt: docs/dbt.md)"
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
    message says which and why); 2 for bad arguments (nothing is started); 130 (Ctrl-C) or 143 (SIGTERM) when
    stopped, after the run released the warehouse and recorded itself as interrupted.
    """
    settings = settings_or_exit(home, patients=patients, seed=seed, defect_rate=defect_rate)
    batch_id = checked_batch(batch, settings)
    check_prefect_home()  # before Prefect is imported: importing it creates PREFECT_HOME
    from flows.pipeline import pipeline

    state = _run_flow(pipeline, verbose, dbt_node_tasks, batch_id=batch_id, home=str(settings.home),
                      seed=settings.seed, patients=settings.patients, defect_rate=settings.defect_rate, force=force,
                      full_refresh=full_refresh)  # fmt: skip
    if state.is_completed():
        result = state.result()
        _print_result(result, settings)
        raise typer.Exit(EXIT_OK if result.get("status") in DONE else EXIT_FAILED)
    error = state.result(raise_on_failure=False)
    _print_failure(error if isinstance(error, BaseException) else None, settings, batch_id)
    raise typer.Exit(EXIT_FAILED)


def _run_flow(flow: Any, verbose: bool, dbt_node_tasks: bool | None, **parameters: Any) -> Any:
    """Run a flow from the command line (arguments, and PREFECT_HOME, already checked) and return its final state:
    against PREFECT_API_URL or a temporary server of this command's own, Ctrl-C and SIGTERM stopping it cleanly."""
    prepare_prefect_environment()
    node_tasks = _node_tasks(dbt_node_tasks)  # before a temporary server sets PREFECT_API_URL
    quiet_console(verbose)
    with stop_on_signals() as stopped, prefect_api(while_starting=import_stage_modules):
        state = flow(**parameters, dbt_node_tasks=node_tasks, return_state=True)
    if stopped.signal is not None:
        _print_interrupted(stopped.signal)
    return state


#: The stages' heavy imports, each first needed inside the flow: GX (the gates), dbt and prefect-dbt (transform),
#: matplotlib and the Hyper API (publish): GX alone 2.5-4.5 s, dbt and prefect-dbt 2-3 s on 2 cores (docs/quality.md).
STAGE_MODULES = ("expectations.checkpoints", "prefect_dbt", "dbt.cli.main", "reports.charts", "pantab")


def import_stage_modules() -> None:
    """Import the stages' heavy modules now: called while a temporary Prefect server starts (15-20 s on one core),
    so the flow does not pay for them later. An import that fails here is left to its stage to report."""
    import importlib

    adapter = "dbt.adapters.snowflake" if os.environ.get("HOSPITAL_WAREHOUSE") == "snowflake" else "dbt.adapters.duckdb"
    for name in (*STAGE_MODULES, adapter):
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def checked_batch(batch: str | None, settings: Settings) -> str | None:
    """The batch id a run processes (None: the next one), or exit 2 for an id that is path-like, an impossible
    simulator id, or neither a simulator id nor a landed batch."""
    from flows.contracts.batch_ids import BatchId, InvalidBatchId, check_batch_id

    if batch is None:
        return BatchId.initial(settings.start_date, settings.end_date).text
    if batch == "next":
        return None
    try:
        parsed = check_batch_id(batch, settings.start_date)
    except InvalidBatchId as exc:
        fail(f"--batch: {exc}")
    if parsed.kind == "delivered" and not settings.paths.batch(batch).is_dir():
        fail(
            f"--batch: batch {batch!r} has not landed in {settings.paths.landing} and is not a simulator id "
            "(initial-YYYYMMDD-YYYYMMDD, daily-YYYYMMDD); deliver it there first, or use 'next'"
        )
    return batch


def check_prefect_home() -> None:
    """Exit 2 when runs would go to a temporary server whose PREFECT_HOME cannot be created.

    Read from the environment, not through Prefect: importing Prefect creates its home folder, and a command that
    refuses its arguments must create nothing."""
    if os.environ.get("PREFECT_API_URL"):
        return
    prefect_home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    if not prefect_home.exists() and not prefect_home.parent.is_dir():
        fail(
            f"PREFECT_HOME {prefect_home}: its parent folder does not exist, so the temporary Prefect server cannot "
            "keep its database there; create the folder or point PREFECT_HOME elsewhere"
        )


class _Stopped:
    """Which signal stopped the command (None while it runs)."""

    signal: int | None = None


@contextlib.contextmanager
def stop_on_signals():
    """Turn SIGTERM into the KeyboardInterrupt Ctrl-C raises, so either stops the flow the same way: the stage
    in progress ends, the run is recorded ``interrupted``, the warehouse lock is released and the temporary server
    stopped; then the command exits 130 (Ctrl-C) or 143 (SIGTERM). Yields who stopped it."""
    stopped = _Stopped()

    def interrupt(signum: int, frame) -> None:
        stopped.signal = signum
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stopped
    except KeyboardInterrupt:
        stopped.signal = stopped.signal or signal.SIGINT
        _print_interrupted(stopped.signal)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_interrupted(signum: int) -> None:
    name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
    typer.secho(
        f"\nStopped by {name}: the run was recorded as interrupted and published nothing; the last published report "
        "stays the latest. Run the same command again to resume the batch.",
        err=True,
        fg=typer.colors.RED,
    )
    raise typer.Exit(128 + signum)


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
    settings = settings_or_exit(home, patients=patients, seed=seed, defect_rate=defect_rate)
    if end < start:
        fail(f"--end {end:%Y-%m-%d} is before --start {start:%Y-%m-%d}")
    if start.date() <= settings.end_date:
        fail(
            f"--start {start:%Y-%m-%d} is inside the initial history (it ends {settings.end_date}, "
            "HOSPITAL_END_DATE); daily batches start the day after it"
        )
    check_prefect_home()
    from flows.backfill import backfill as backfill_flow

    state = _run_flow(backfill_flow, verbose, dbt_node_tasks, start=start.date(), end=end.date(),
                      home=str(settings.home), seed=settings.seed, patients=settings.patients,
                      defect_rate=settings.defect_rate)  # fmt: skip
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
    """The last pipeline runs, the load ledger's last batches, and the latest report.

    A run shown ``running`` is alive (it holds the warehouse's lock); one whose process died is shown
    ``interrupted`` (the next run records it so). While a run writes the warehouse, the ledgers cannot be read and
    the command says which run holds it.
    """
    from flows import runs
    from flows.locking import current_holder
    from flows.warehouse.errors import WarehouseBusyError, WarehouseConfigError

    settings = settings_or_exit(home)
    try:
        warehouse = settings.resource()
    except WarehouseConfigError as exc:
        fail(str(exc))
    holder = current_holder(warehouse)
    if holder is not None:
        typer.echo(f"In progress: {holder.describe()}")
    if not warehouse.exists():
        typer.echo(f"No warehouse at {warehouse.label} yet: run `hospital run` first.")
        raise typer.Exit(EXIT_OK)
    try:
        last = runs.last_runs(warehouse, limit)
        ledger = load_ledger_lines(warehouse, limit)
        published = runs.last_published(warehouse)
    except WarehouseBusyError:
        typer.echo(f"The warehouse {warehouse.label} is being written by that run; its ledgers can be read when the "
                   "stage in progress ends. Try again in a moment.")  # fmt: skip
        raise typer.Exit(EXIT_OK) from None
    typer.echo("Pipeline runs (newest first)")
    if not last:
        typer.echo("  none yet")
    for run_row in last:
        state = run_row.status
        if state == "running" and (holder is None or holder.run_id != run_row.flow_run_id):
            state = "interrupted"  # its process is gone; the next run records it so
        finished = f"{run_row.finished_at:%Y-%m-%d %H:%M}" if run_row.finished_at else "-"
        rows = "-" if run_row.rows_loaded is None else f"{run_row.rows_loaded:,}"
        typer.echo(f"  {run_row.started_at:%Y-%m-%d %H:%M}  {run_row.batch_id:<28} {state:<11} "
                   f"stage={run_row.stage or '-':<24} rows={rows:<10} finished={finished}")  # fmt: skip
        if state in ("failed", "interrupted") and run_row.message:
            typer.echo(f"      {run_row.message.splitlines()[0]}")
        elif state == "interrupted":
            typer.echo(f"      {runs.DIED_MESSAGE}")
    typer.echo("\nLoad ledger (last batches)")
    for line in ledger:
        typer.echo(f"  {line}")
    typer.echo("\nLatest report")
    if published is None:
        typer.echo("  none published yet")
    else:
        typer.echo(f"  {settings.paths.latest_report / 'report.html'}  (batch {published.batch_id}, run date "
                   f"{published.run_date}, published {published.finished_at:%Y-%m-%d %H:%M} UTC)")  # fmt: skip


def load_ledger_lines(warehouse: WarehouseResource | Path, limit: int) -> list[str]:
    """One line per recently loaded batch: files by outcome and rows loaded (read-only)."""
    from flows.warehouse.resource import as_resource

    with as_resource(warehouse).session() as session:
        if not session.has_table("ledger", "load_ledger"):
            return ["no batch loaded yet"]
        limit_clause = f" limit {int(limit)}"
        rows = session.rows(
            "select batch_id, max(loaded_at), sum(case when outcome = 'loaded' then 1 else 0 end), "  # noqa: S608
            "sum(case when outcome = 'skipped' then 1 else 0 end), sum(case when outcome = 'failed' then 1 else 0 end),"
            " sum(rows_loaded) from ledger.load_ledger group by batch_id order by max(loaded_at) desc" + limit_clause
        )
    return [
        f"{batch:<28} loaded {loaded} file(s), skipped {skipped}, failed {failed}; {rows_loaded or 0:,} rows "
        f"(last {at:%Y-%m-%d %H:%M})"
        for batch, at, loaded, skipped, failed, rows_loaded in rows
    ]


def docs(
    home: Annotated[Path | None, typer.Option(help="Data home [HOSPITAL_HOME, ./data]")] = None,
    serve_docs: Annotated[
        bool,
        typer.Option("--serve", help="Serve the report, Data Docs and dbt docs over http at HOSPITAL_DOCS_URL"),
    ] = False,
) -> None:
    """Where the latest report, the Data Docs and the dbt docs are: files on disk, and their http URLs.

    With ``--serve``, serve them (only those three folders of the data home, read-only) on the host and port of
    ``HOSPITAL_DOCS_URL`` (default http://127.0.0.1:8765) until Ctrl-C: run artifacts and notifications link there.
    """
    import urllib.parse

    from flows.docs_server import docs_link, make_server

    settings = settings_or_exit(home)
    paths = settings.paths
    url = urllib.parse.urlsplit(settings.docs_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    dbt_static = paths.dbt_docs / "static_index.html"
    for name, path in (
        ("report", paths.latest_report / "report.html"),
        ("Data Docs", paths.data_docs / "index.html"),
        ("dbt docs", dbt_static),  # opens from disk (dbt docs generate --static)
    ):
        if path.exists():
            typer.echo(f"{name:<10} {path.absolute().as_uri()}")
            typer.echo(f"{'':<10} {docs_link(settings.docs_url, paths, path)}")
        else:
            typer.echo(f"{name:<10} {path}  (not yet written: run `hospital run`)")
    if not serve_docs:
        return
    try:
        server = make_server(paths, host, port)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port} ({exc.strerror}); set HOSPITAL_DOCS_URL to another port", EXIT_FAILED)
    typer.echo(f"\nServing {paths.root}'s reports/, data_docs/ and dbt_docs/ at {settings.docs_url}/ (Ctrl-C stops)")
    with contextlib.suppress(KeyboardInterrupt), server:
        server.serve_forever()


def serve(
    timezone: Annotated[str | None, typer.Option(help="The hospitals' time zone for the schedules")] = None,
) -> None:
    """Serve the deployments of deployments/prefect.yaml, schedules included, from this process (Ctrl-C stops).

    They are registered under their own names (`daily-incremental-served`, ...), so the work pool deployments of
    `prefect deploy` on the same server are never replaced or paused; stopping pauses only the served ones.
    Exit code 2 for a bad --timezone (nothing touched), 1 when a served name belongs to a work pool.
    """
    settings_or_exit(timezone=timezone)  # an unknown time zone stops here, before Prefect or a deployment is touched
    # Prefect's runner stops gracefully on SIGTERM (pausing what it served) once it runs; a SIGTERM before that
    # (while Prefect loads and the deployments register) would kill the process and leave the served deployments
    # active. Until the runner takes SIGTERM over, it ends the serve as Ctrl-C does, and they are paused here.
    early: list[int] = []

    def stop_early(signum: int, frame: Any) -> None:
        early.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_early)
    served: list[Any] = []
    persistent = False
    try:
        served, persistent = _serve(timezone)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if early and persistent and served:
        from flows.serve import pause_served

        typer.echo(f"Stopped before serving began: paused {pause_served(served)} served deployment(s).")


def _serve(timezone: str | None) -> tuple[list[Any], bool]:
    from flows.serve import ServeConflictError, TimezoneError, check_timezone

    if timezone is not None:  # a zone zoneinfo knows that Prefect's cron schedules would still refuse
        try:
            check_timezone(timezone)
        except TimezoneError as error:
            fail(f"--timezone {error}; nothing was served")
    prepare_prefect_environment()
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL

    from flows.serve import runner_deployments, server_notes

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
    try:
        with prefect_api():  # without PREFECT_API_URL, a temporary server of this command's own (it dies with it)
            prefect_serve(*served, pause_on_shutdown=persistent)
    except KeyboardInterrupt:
        pass
    return served, persistent
