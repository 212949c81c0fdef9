"""The ``hospital`` command line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from flows.registry import RegistryError, load_registry
from flows.settings import Settings

app = typer.Typer(
    name="hospital",
    help="Hospital data platform: generate, load, validate, transform and publish de-identified KPIs.",
    no_args_is_help=True,
    add_completion=False,
)

EXIT_USAGE = 2


@app.callback()
def main() -> None:
    """Hospital data platform: generate, load, validate, transform and publish de-identified KPIs."""


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


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

    settings = Settings()
    if as_of is not None and end is not None:
        raise _fail("give either --end (an initial batch) or --as-of (a daily batch), not both")
    network = NetworkSpec(
        seed=settings.seed if seed is None else seed,
        patients=settings.patients if patients is None else patients,
        start_date=start.date() if start else settings.start_date,
    )
    landing = out if out is not None else settings.paths.landing
    options = {
        "defect_rate": settings.defect_rate if defect_rate is None else defect_rate,
        "workers": settings.workers if workers is None else workers,
        "sources": tuple(source) if source else None,
    }
    last = end.date() if end else settings.end_date
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
        raise _fail(str(exc)) from exc
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
