"""The ``hospital`` command line."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer 0.29 carries its own click

from flows.cli_support import EXIT_INTERRUPTED, EXIT_USAGE, fail, settings_or_exit
from flows.contracts.registry import RegistryError, load_registry

app = typer.Typer(
    name="hospital",
    help="Hospital data platform: generate, load, validate, transform and publish de-identified KPIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _callback() -> None:
    """Hospital data platform: generate, load, validate, transform and publish de-identified KPIs."""


def main(argv: list[str] | None = None) -> None:
    """The ``hospital`` console entry point: a usage error is one line on stderr and exit code 2.

    Click's own rendering of a usage error is a usage line, a hint and a framed box; commands' own checks print
    ``error: ...`` the same way (``flows.cli_support.fail``), so every bad argument reads alike.
    """
    try:
        code = app(args=argv, standalone_mode=False, prog_name="hospital")
    except NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "hospital --help")
        code = EXIT_USAGE
    except UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "hospital"
        typer.secho(f"error: {command}: {exc.format_message()}", err=True, fg=typer.colors.RED)
        code = EXIT_USAGE
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("interrupted", err=True)
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else 0)


@app.command()
def generate(
    out: Annotated[
        Path | None, typer.Option(help="Landing folder to write the batch into [default: <home>/landing]")
    ] = None,
    patients: Annotated[
        int | None, typer.Option(help="Registered patients at the start date [HOSPITAL_PATIENTS]")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated network [HOSPITAL_SEED]")] = None,
    start: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First day of history")] = None,
    end: Annotated[dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day of the initial batch")] = None,
    as_of: Annotated[
        dt.datetime | None, typer.Option("--as-of", formats=["%Y-%m-%d"], help="Daily batch of this day")
    ] = None,
    defect_rate: Annotated[float | None, typer.Option(help="Share of rows given a defect, 0-0.5")] = None,
    source: Annotated[list[str] | None, typer.Option(help="Only these sources (repeatable)")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes generating partitions")] = None,
    skip_existing: Annotated[bool, typer.Option(help="Exit 0 without writing if the batch already landed")] = False,
) -> None:
    """Generate a landing batch: the initial history (--start/--end) or one day's batch (--as-of)."""
    from generators.batch import (
        BatchError,
        NetworkSpec,
        daily_batch_id,
        generate_daily,
        generate_initial,
        initial_batch_id,
    )

    settings = settings_or_exit(
        patients=patients, seed=seed, defect_rate=defect_rate, workers=workers,
        start_date=start.date() if start else None, end_date=end.date() if end else None,
    )  # fmt: skip
    if as_of is not None and end is not None:
        fail("give either --end (an initial batch) or --as-of (a daily batch), not both")
    network = NetworkSpec(seed=settings.seed, patients=settings.patients, start_date=settings.start_date)
    landing = out if out is not None else settings.paths.landing
    options = {"defect_rate": settings.defect_rate, "workers": settings.workers,
               "sources": tuple(source) if source else None}  # fmt: skip
    last = settings.end_date
    batch_id = daily_batch_id(as_of.date()) if as_of else initial_batch_id(network.start_date, last)
    if skip_existing and (landing / batch_id).exists():
        typer.echo(f"batch {batch_id} already landed at {landing / batch_id}; nothing to do")
        return
    try:
        registry = load_registry()
        if as_of is not None:
            result = generate_daily(landing, network, as_of.date(), registry=registry, **options)
        else:
            result = generate_initial(landing, network, last, registry=registry, **options)
    except (BatchError, RegistryError) as exc:
        fail(str(exc))
    rows = sum(entry["rows"] for entry in result.manifest["files"])
    megabytes = sum(entry["bytes"] for entry in result.manifest["files"]) / 1e6
    typer.echo(f"batch {result.batch_id} -> {result.path}")
    for entry in result.manifest["files"]:
        typer.echo(f"  {entry['file']:<32} {entry['source']:<30} {entry['rows']:>10,} rows")
    truth = result.manifest["ground_truth"]
    if truth:
        typer.echo(f"  defects: {truth['rows']:,} defective rows listed in {truth['file']}")
    typer.echo(f"{rows:,} rows, {megabytes:,.1f} MB in {result.seconds_total:.1f} s")


from flows.load_cli import load  # noqa: E402  (registered after app is defined)

app.command("load")(load)

from flows import run_cli  # noqa: E402  (registered after app is defined)

app.command("run")(run_cli.run)
app.command("backfill")(run_cli.backfill)
app.command("status")(run_cli.status)
app.command("docs")(run_cli.docs)
app.command("serve")(run_cli.serve)

from flows.automations_cli import app as automations_app  # noqa: E402  (registered after app is defined)

app.add_typer(automations_app, name="automations")
