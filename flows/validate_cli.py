"""``hospital validate``: the raw quality gate on any batch already loaded into the warehouse.

The same checkpoint the pipeline's raw gate runs (``expectations.run_checkpoint("raw", ...)``, as
``flows/validate.py`` calls it), without a pipeline run: for a batch loaded with ``hospital load``, such as
another project's extracts loaded by their own registry. It prints the pipeline's failure summary
(``QualityGateFailed``'s message: every failing expectation named, the failing Data Docs pages and their http link)
and exits 1 when an expectation fails, 0 when the gate passes, 2 on bad arguments (nothing is validated).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli_support import EXIT_FAILED, fail, settings_or_exit
from flows.contracts.manifest import MANIFEST
from flows.contracts.registry import DEFAULT_REGISTRY, Registry, RegistryError, load_registry
from flows.settings import Settings
from flows.warehouse.base import LEDGER_SCHEMA, LEDGER_TABLE
from flows.warehouse.batch import validate_batch_id
from flows.warehouse.errors import BatchIdError, WarehouseConfigError
from flows.warehouse.resource import WarehouseResource

#: Ledger outcomes that leave the batch's rows in the raw tables (a skipped file was loaded before, unchanged).
IN_WAREHOUSE = ("loaded", "skipped")
RULES_HELP = (
    "Raw rules file [default: expectations/raw_rules.yml, or expectations/registries/<registry file name> for "
    "another registry]"
)


def validate(
    batch: Annotated[str, typer.Argument(help="Batch id of a loaded batch (`hospital status` lists them).")],
    registry: Annotated[
        Path, typer.Option(help="Source registry the batch was loaded with (e.g. flows/registries/<name>.yml).")
    ] = DEFAULT_REGISTRY,
    rules: Annotated[
        Path | None,
        typer.Option(help=RULES_HELP),
    ] = None,
    home: Annotated[Path | None, typer.Option(help="Data home [HOSPITAL_HOME, ./data]")] = None,
) -> None:
    """Run the raw quality gate on a loaded batch and print its summary, as the pipeline's raw gate does.

    The batch's landing folder (<home>/landing/<batch>), when there is one, supplies its manifest.json, whose row
    counts the gate reconciles; a batch loaded without one (``hospital load --dir``, a delivered extract) is
    reconciled against the load ledger alone, and the output says so. Holds the warehouse's lock while it reads.
    Exit code 0: the gate passed; 1: an expectation failed (each is named, with its Data Docs page); 2: bad
    arguments (unknown batch, registry or rules file).
    """
    from expectations.rules import RulesConfigError

    settings = settings_or_exit(home)
    try:
        validate_batch_id(batch)
        sources = load_registry(registry)
    except (BatchIdError, RegistryError) as exc:
        fail(str(exc))
    if rules is not None and not rules.is_file():
        fail(f"--rules {rules}: no such file; give a raw rules file such as expectations/raw_rules.yml")
    folder, manifest_note = landing_folder(settings, batch)
    try:
        with warehouse_access(settings, batch) as (loaded, run):
            check_loaded(batch, loaded)
            typer.echo(f"Validating batch {batch} with registry {registry} ({len(sources.sources)} sources).")
            typer.echo(manifest_note)
            outcome = run(batch_id=batch, landing_dir=folder, registry=sources, rules=rules)
    except RulesConfigError as exc:
        fail(str(exc))
    except WarehouseConfigError as exc:
        fail(str(exc))
    print_outcome(outcome, settings)


def landing_folder(settings: Settings, batch_id: str) -> tuple[Path | None, str]:
    """The batch's landing folder (None when it has none) and one line on what its manifest allows."""
    folder = settings.paths.batch(batch_id)
    if not folder.is_dir():
        return None, (
            f"No landing folder {folder}: no manifest to reconcile; row counts are checked against the load "
            "ledger only (loaded + rejected = rows in file)."
        )
    if not (folder / MANIFEST).is_file():
        return folder, (
            f"The batch has no manifest ({folder / MANIFEST} does not exist): row counts are checked against the "
            "load ledger only (loaded + rejected = rows in file)."
        )
    return folder, f"Manifest {folder / MANIFEST}: the gate reconciles its row counts with the ledger and raw."


def check_loaded(batch_id: str, loaded: dict[str, set[str]]) -> None:
    """Exit 2 unless the ledger has rows of ``batch_id`` in the warehouse; the message lists the loaded batches."""
    outcomes = loaded.get(batch_id)
    if outcomes and outcomes & set(IN_WAREHOUSE):
        return
    if outcomes:
        fail(f"batch {batch_id} failed to load (nothing of it is in the warehouse): fix it and load it again "
             "with `hospital load`, then validate it")  # fmt: skip
    batches = sorted(name for name, kinds in loaded.items() if kinds & set(IN_WAREHOUSE))
    listed = ", ".join(batches) if batches else "none"
    fail(f"batch {batch_id} is not in the load ledger; loaded batches: {listed}. Load it first (`hospital load`)")


@contextlib.contextmanager
def warehouse_access(settings: Settings, batch_id: str) -> Iterator[tuple[dict[str, set[str]], Callable[..., Any]]]:
    """The load ledger's batches (batch id -> its files' outcomes) and the raw checkpoint, in the configured warehouse
    (``Settings.resource()``: the DuckDB file, or Snowflake through a block or SNOWFLAKE_* variables).

    The warehouse's lock (``flows.locking``) is held throughout, as a pipeline run holds it, so the gate never opens
    the file while another process writes it (a run in progress is waited for, up to HOSPITAL_LOCK_TIMEOUT_SECONDS).
    """
    from flows.locking import WarehouseLockTimeout, warehouse_lock
    from flows.warehouse.errors import WarehouseConfigError

    try:
        resource = settings.resource()
    except WarehouseConfigError as exc:
        fail(str(exc))
    if not resource.exists():
        fail(f"no warehouse at {resource.label}: load the batch first (`hospital load {batch_id}`)")

    def waiting(holder: Any) -> None:
        who = holder.describe() if holder is not None else "another process"
        typer.echo(f"Waiting for the warehouse: {who} holds it.", err=True)

    try:
        with warehouse_lock(resource, timeout_seconds=settings.lock_timeout_seconds, batch_id=batch_id,
                            on_wait=waiting):  # fmt: skip
            yield _ledger(resource), partial(_checkpoint, settings, resource=resource)
    except WarehouseLockTimeout as exc:
        fail(str(exc), EXIT_FAILED)


_LEDGER_QUERY = f"select distinct batch_id, outcome from {LEDGER_SCHEMA}.{LEDGER_TABLE}"  # noqa: S608 - constants


def _ledger(resource: WarehouseResource) -> dict[str, set[str]]:
    """Each batch of the load ledger and its files' outcomes (read-only; empty when nothing was loaded yet)."""
    loaded: dict[str, set[str]] = {}
    with resource.session() as session:
        if not session.has_table(LEDGER_SCHEMA, LEDGER_TABLE):
            return loaded
        for batch_id, outcome in session.rows(_LEDGER_QUERY):
            loaded.setdefault(batch_id, set()).add(outcome)
    return loaded


def _checkpoint(settings: Settings, *, registry: Registry, **kwargs: Any) -> Any:
    """The raw checkpoint, as the pipeline's gate runs it (Data Docs and results in the data home)."""
    from expectations import run_checkpoint

    return run_checkpoint("raw", data_docs_dir=settings.paths.data_docs, registry=registry,
                          raise_on_failure=False, **kwargs)  # fmt: skip


def print_outcome(outcome: Any, settings: Settings) -> None:
    """The gate's result: a pass line (exit 0), or the pipeline's failure summary on stderr (exit 1)."""
    from flows.contracts.quality import QualityGateFailed
    from flows.docs_server import docs_link

    if outcome.success:
        index = outcome.data_docs_index
        where = f"; Data Docs: {index.as_uri() if index is not None else settings.paths.data_docs}"
        typer.echo(f"Raw gate passed on batch {outcome.batch_id}: {outcome.evaluated} expectations in "
                   f"{len(outcome.validation_pages)} suites, {outcome.seconds:.1f} s{where}")  # fmt: skip
        return
    error = QualityGateFailed(outcome, http_link=lambda path: docs_link(settings.docs_url, settings.paths, path))
    typer.secho(str(error), err=True, fg=typer.colors.RED)
    raise typer.Exit(EXIT_FAILED)
