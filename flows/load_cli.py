"""``hospital load``: load one landed batch into the warehouse and print a per-file summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.contracts.registry import DEFAULT_REGISTRY, RegistryError, load_registry
from flows.settings import Settings
from flows.warehouse import LoadError, batch_folder, load_batch, open_warehouse, render_summary
from flows.warehouse.errors import BatchIdError, BatchNotFoundError, WarehouseConfigError

EXIT_DATA_FAULT = 1
EXIT_BAD_ARGUMENTS = 2


def load(
    batch: Annotated[
        str | None,
        typer.Argument(help="Batch id: a folder under <home>/landing/ (letters, digits, '.', '_', '-')."),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Load this folder instead (its name is the batch id), e.g. extracts."),
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Data home (default: HOSPITAL_HOME or ./data).")] = None,
    registry: Annotated[Path, typer.Option(help="Source registry file.")] = DEFAULT_REGISTRY,
    max_reject_rate: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Override every source's max_reject_rate (share of rows, 0-1)."),
    ] = None,
) -> None:
    """Load one landed batch into the raw schema, all or nothing, and print what happened to each file.

    Without a manifest.json the folder's files are matched to sources by the registry's patterns.
    Exit code 0: loaded or skipped; 1: the batch failed (nothing was loaded); 2: bad arguments.
    """
    settings = Settings(home=home) if home is not None else Settings()
    try:
        folder = _resolve(batch, directory, settings.paths.landing)
        sources = load_registry(registry)
    except (BatchIdError, BatchNotFoundError, RegistryError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_ARGUMENTS) from exc
    try:
        with open_warehouse(
            settings.warehouse,
            duckdb_path=settings.paths.warehouse,
            snowflake_block=settings.snowflake_block,
            registry=sources,
        ) as warehouse:
            result = load_batch(folder, sources, warehouse, max_reject_rate=max_reject_rate)
        result.notes += warehouse.take_notes()  # e.g. a checkpoint on close that a full disk postponed
    except BatchIdError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_ARGUMENTS) from exc
    except WarehouseConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_ARGUMENTS) from exc
    except LoadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_DATA_FAULT) from exc
    typer.echo(render_summary(result))
    if not result.ok:
        raise typer.Exit(EXIT_DATA_FAULT)


def _resolve(batch: str | None, directory: Path | None, landing: Path) -> Path:
    """The batch folder from a batch id (validated before any file access) or an explicit ``--dir``."""
    if (batch is None) == (directory is None):
        raise BatchIdError("give either a batch id or --dir FOLDER (not both)")
    if directory is not None:
        if not directory.is_dir():
            raise BatchNotFoundError(f"--dir {directory}: not a folder")
        return directory.resolve()  # the folder the user named; its files are then read from it only
    assert batch is not None
    return batch_folder(landing, batch)
