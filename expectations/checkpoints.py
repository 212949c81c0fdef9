"""The ``raw`` and ``marts`` checkpoints: GX suites, validation definitions and a checkpoint, run in the warehouse.

``run_checkpoint`` builds an ephemeral GX context whose Data Docs site is the data home's ``data_docs`` folder,
validates by SQL pushdown on the DuckDB file (read-only) or in Snowflake (both checkpoints), builds the run's Data
Docs pages and the index once per run whether the gate passes or fails (offline, from a summary of the kept runs:
``expectations/datadocs.py``), and returns a :class:`CheckpointOutcome` of names, counts and each suite's page; on
failure it raises :class:`QualityGateFailed`, naming the failing pages, after the docs are built. Result formats
are fixed at checkpoint level to BASIC with no unexpected values, rows or index queries, so no patient value reaches
Data Docs, results or logs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import great_expectations as gx
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.checkpoint.checkpoint import CheckpointResult
from great_expectations.core.freshness_diagnostics import (
    CheckpointFreshnessDiagnostics,
    ValidationDefinitionFreshnessDiagnostics,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context import AbstractDataContext
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
from great_expectations.exceptions import CheckpointNotAddedError, ValidationDefinitionNotAddedError

from expectations.datadocs import SITE_NAME, site_config, validation_page
from expectations.dialects import DIALECTS
from expectations.duckdb_support import DuckDBDatasource, check_versions, duckdb_connection_string
from expectations.gx_overhead import config_saved_once, kwargs_read_once
from expectations.marts_suites import DEFAULT_MARTS_RULES, load_marts_rules, marts_suites
from expectations.raw_suites import load_raw_rules, raw_suites, read_manifest, rules_file_for
from expectations.rules import DEFAULT_THRESHOLDS, SuiteSpec, load_thresholds
from expectations.snowflake_support import (
    SNOWFLAKE_URL,
    SnowflakeConnectionDatasource,
    check_snowflake_versions,
    enable_snowflake_dialect,
    register_connector,
)
from flows.contracts.quality import CheckpointOutcome, ExpectationOutcome, QualityGateFailed, ValidationPage
from flows.contracts.registry import Registry, load_registry
from flows.warehouse.resource import SnowflakeResource, WarehouseResource, as_resource

__all__ = [
    "RESULT_FORMAT",
    "add_snowflake_datasource",
    "add_warehouse_datasource",
    "build_checkpoint",
    "build_context",
    "run_checkpoint",
]

logger = logging.getLogger(__name__)

DATASOURCE_NAME = "warehouse"
#: Counts and percentages only: no partial unexpected lists, no unexpected rows, no unexpected index queries.
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "BASIC",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
CHECKPOINTS = ("raw", "marts")
WAREHOUSES = ("duckdb", "snowflake")

# Both register their datasource type (`duckdb`, `snowflake_connection`) with GX when this module is imported.
_ = (DuckDBDatasource, SnowflakeConnectionDatasource)


class UpdateDataDocsOnceAction(UpdateDataDocsAction):
    """GX's ``UpdateDataDocsAction``, building the pages of every validation of the run in one pass.

    GX 1.24.1's action rebuilds the site once per validation result, index included (the index reads every stored
    result): with one validation per suite that is 11 builds for the raw checkpoint and ~30 for marts, and was
    about half of the checkpoint's time. This builds each run's validation and suite pages and the index once
    (the site's builders, ``expectations/datadocs.py``, render only those pages and the index from a summary).
    """

    type: Literal["update_data_docs_once"] = "update_data_docs_once"  # type: ignore[assignment]

    def run(self, checkpoint_result: CheckpointResult, action_context: Any = None) -> dict:
        """Build the site's pages for all of the run's results, and its index, once."""
        identifiers: list[Any] = []
        for result_identifier, result in checkpoint_result.run_results.items():
            identifiers += [result_identifier, ExpectationSuiteIdentifier(name=result.suite_name)]
        self._build_data_docs(site_names=self.site_names, resource_identifiers=identifiers)
        return {}


class BuiltValidationDefinition(gx.ValidationDefinition):
    """A validation definition built, added and run by :func:`run_checkpoint` in one call: fresh by construction.

    GX 1.24.1 checks a validation definition's freshness (its suite, batch definition and itself read back from the
    context's stores and compared field by field with the objects held) when the checkpoint checks its own and
    again when it runs it: 0.4-0.9 s a gate for nothing, as these objects live in an ephemeral context that nothing
    else sees and are run right after they are added. Whether it was added (has an id) is still checked.
    """

    def is_fresh(self) -> ValidationDefinitionFreshnessDiagnostics:
        """Fresh when added to the context (GX gave it an id); the stores are not read back."""
        return ValidationDefinitionFreshnessDiagnostics(
            errors=[] if self.id else [ValidationDefinitionNotAddedError(name=self.name)]
        )


class BuiltCheckpoint(gx.Checkpoint):
    """A checkpoint of :class:`BuiltValidationDefinition`, fresh by construction like them (see there)."""

    def is_fresh(self) -> CheckpointFreshnessDiagnostics:
        """Fresh when it and its validation definitions were added to the context; the stores are not read back."""
        missing = [] if self.id else [CheckpointNotAddedError(name=self.name)]
        diagnostics = CheckpointFreshnessDiagnostics(errors=missing)
        diagnostics.update_with_children(*(definition.is_fresh() for definition in self.validation_definitions))
        return diagnostics


def build_context(data_docs_dir: Path, results_dir: Path | None = None) -> AbstractDataContext:
    """An ephemeral GX context (nothing in the repository) whose Data Docs site is ``data_docs_dir``.

    The site works offline and keeps its index in a summary file (:func:`expectations.datadocs.site_config`).
    With ``results_dir``, validation results (BASIC: counts only) are kept there as JSON, and the Data Docs index
    lists every kept run of both checkpoints, not only the latest one (:func:`expectations.datadocs.prune`).
    Relative folders are taken from the working directory (GX's file stores accept only absolute ones, and the
    default data home is ``data``).
    """
    data_docs_dir = data_docs_dir.absolute()
    results_dir = None if results_dir is None else results_dir.absolute()
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,  # no usage events leave the machine
        progress_bars=ProgressBarsConfig(globally=False),  # logs, not terminal bars
    )
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        config.stores[config.validation_results_store_name] = {
            "class_name": "ValidationResultsStore",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(results_dir)},
        }
    data_docs_dir.mkdir(parents=True, exist_ok=True)
    config.data_docs_sites = {SITE_NAME: site_config(data_docs_dir)}
    return gx.get_context(project_config=config, mode="ephemeral")


def add_warehouse_datasource(context: AbstractDataContext, warehouse_path: Path) -> DuckDBDatasource:
    """The DuckDB file as a GX datasource (read-only); call its ``close()`` when validation is done."""
    check_versions()
    return context.data_sources.add_duckdb(
        DATASOURCE_NAME,
        connection_string=duckdb_connection_string(str(warehouse_path)),
        kwargs={"connect_args": {"read_only": True}},
    )


def add_snowflake_datasource(context: AbstractDataContext, connect: Callable[[], Any]) -> SnowflakeConnectionDatasource:
    """Snowflake as a GX datasource on connections from ``connect`` (no credential enters GX's configuration).

    ``connect`` returns a DB-API Snowflake connection, e.g. ``flows.warehouse.snowflake_connect.connection_from_env``
    or a function opening the prefect-snowflake block's connection; call the datasource's ``close()`` when done.
    """
    check_snowflake_versions()
    enable_snowflake_dialect()
    return context.data_sources.add_snowflake_connection(
        DATASOURCE_NAME, connection_string=SNOWFLAKE_URL, kwargs={"connector_key": register_connector(connect)}
    )


def build_checkpoint(
    context: AbstractDataContext,
    name: str,
    datasource: DuckDBDatasource | SnowflakeConnectionDatasource,
    suites: list[SuiteSpec],
) -> gx.Checkpoint:
    """A checkpoint validating every suite on the datasource (one query asset per suite), updating Data Docs.

    Its objects are fresh by construction (:class:`BuiltCheckpoint`): run it right away, do not edit it first.
    """
    definitions = []
    with config_saved_once(context):  # one save of the context's configuration, not two per suite
        for spec in suites:
            if spec.query is not None:
                asset = datasource.add_query_asset(spec.name, query=spec.query)
            else:
                asset = datasource.add_table_asset(spec.name, table_name=spec.table, schema_name=spec.schema)
            batch_definition = asset.add_batch_definition_whole_table(spec.name)
            suite = context.suites.add(
                gx.ExpectationSuite(name=spec.name, expectations=[rule.expectation for rule in spec.rules])
            )
            definitions.append(
                context.validation_definitions.add(
                    BuiltValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
                )
            )
    checkpoint = BuiltCheckpoint(
        name=name,
        validation_definitions=definitions,
        actions=[UpdateDataDocsOnceAction(name="update_data_docs", site_names=[SITE_NAME])],
        result_format=RESULT_FORMAT,
    )
    # The store gives it its id; GX's `add` returns a copy read back from the store, whose validation definitions
    # are plain GX ones (checked against the stores at every step): run the one built here.
    context.checkpoints.add(checkpoint)
    return checkpoint


def run_checkpoint(
    checkpoint: str,
    *,
    warehouse_path: Path | None = None,
    data_docs_dir: Path,
    batch_id: str | None = None,
    landing_dir: Path | None = None,
    registry: Registry | None = None,
    config: Path | None = None,
    rules: Path | None = None,
    raise_on_failure: bool = True,
    warehouse: str = "duckdb",
    results_dir: Path | None = None,
    snowflake_connect: Callable[[], Any] | None = None,
    resource: WarehouseResource | None = None,
    timezone: str | None = None,
) -> CheckpointOutcome:
    """Run the ``raw`` (one batch) or ``marts`` checkpoint; Data Docs are rebuilt pass or fail.

    ``config`` is the thresholds file (default ``expectations/thresholds.yml``); ``rules`` the rules file (default:
    ``raw_rules.yml`` for the platform's registry, ``registries/<registry file name>`` for another one, and
    ``marts_rules.yml`` for marts). Raises :class:`QualityGateFailed` when an expectation fails and
    ``raise_on_failure`` is set. Validation results (counts only) are kept in ``results_dir``, default
    ``gx_results`` beside ``data_docs_dir`` in the data home, so Data Docs index every run.

    ``resource`` is the warehouse resource (``flows.warehouse.resource``: what the pipeline passes); without it,
    ``warehouse="duckdb"`` validates the file ``warehouse_path`` and ``warehouse="snowflake"`` validates
    Snowflake on connections from ``snowflake_connect`` (see :func:`add_snowflake_datasource`).

    ``timezone`` (marts): the zone of the local calendar months, by default the registry's ``defaults.timezone``.
    """
    if resource is not None:
        warehouse = resource.kind
        warehouse_path = getattr(resource, "path", None)
        snowflake_connect = getattr(resource, "connect", None)
    _check_arguments(checkpoint, warehouse, batch_id, warehouse_path, snowflake_connect)
    if resource is None:
        resource = (
            as_resource(warehouse_path)
            if warehouse == "duckdb"
            else SnowflakeResource(
                snowflake_connect, home=data_docs_dir.parent, account="(snowflake_connect)", database=None
            )
        )  # type: ignore[arg-type]
    data_docs_dir = data_docs_dir.absolute()  # the outcome's page paths are absolute, whatever the caller passed
    started = time.perf_counter()
    thresholds = load_thresholds(config or DEFAULT_THRESHOLDS, checkpoint)
    with resource.session() as session:
        tables = session.tables()
        columns = session.columns() if checkpoint == "marts" else {}
    if checkpoint == "raw":
        registry = registry or load_registry()
        rule_file = rules if rules is not None else rules_file_for(registry)
        suites = raw_suites(
            registry, batch_id or "", thresholds, load_raw_rules(rule_file, registry),
            read_manifest(landing_dir, batch_id), {table for schema, table in tables if schema == "raw"},
            DIALECTS[warehouse],
        )  # fmt: skip
    else:
        mart_rules = load_marts_rules(rules or DEFAULT_MARTS_RULES)
        zone = timezone or (registry or load_registry()).timezone
        suites = marts_suites(mart_rules, thresholds, columns, DIALECTS[warehouse], timezone=zone)
    context = build_context(data_docs_dir, results_dir or data_docs_dir.parent / "gx_results")
    if warehouse == "snowflake":
        datasource = add_snowflake_datasource(context, snowflake_connect)  # type: ignore[arg-type]
    else:
        datasource = add_warehouse_datasource(context, warehouse_path)  # type: ignore[arg-type]
    try:
        gx_checkpoint = build_checkpoint(context, checkpoint, datasource, suites)
        with kwargs_read_once():
            result = gx_checkpoint.run(run_id=RunIdentifier(run_name=f"{checkpoint} {batch_id or ''}".strip()))
    finally:
        datasource.close()  # the very instance the assets use: `data_sources.get` returns a copy
    outcome = CheckpointOutcome(
        checkpoint=checkpoint,
        success=bool(result.success),
        run_id=str(result.run_id.run_name or result.run_id.run_time),
        batch_id=batch_id,
        data_docs_index=_index(data_docs_dir),
        outcomes=tuple(_outcomes(result, suites)),
        seconds=time.perf_counter() - started,
        run_time=result.run_id.run_time.astimezone(dt.UTC).isoformat(),
        validation_pages=tuple(_pages(result, data_docs_dir)),
    )
    logger.info(
        "checkpoint %s%s: %s, %d of %d expectations failed, Data Docs %s",
        checkpoint, f" on batch {batch_id}" if batch_id else "", "passed" if outcome.success else "FAILED",
        len(outcome.failures), outcome.evaluated, outcome.failing_page or outcome.data_docs_index,
    )  # fmt: skip
    if raise_on_failure and not outcome.success:
        raise QualityGateFailed(outcome)
    return outcome


def _check_arguments(
    checkpoint: str,
    warehouse: str,
    batch_id: str | None,
    warehouse_path: Path | None,
    snowflake_connect: Callable[[], Any] | None,
) -> None:
    if checkpoint not in CHECKPOINTS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    if warehouse not in WAREHOUSES:
        raise ValueError(f"warehouse must be one of {WAREHOUSES}, got {warehouse!r}")
    if checkpoint == "raw" and not batch_id:
        raise ValueError("the raw checkpoint validates one batch: pass batch_id (the _batch_id of the raw rows)")
    if warehouse == "snowflake":
        if snowflake_connect is None:
            raise ValueError(
                "warehouse='snowflake' needs snowflake_connect=: a function returning a Snowflake connection, e.g. "
                "flows.warehouse.snowflake_connect.connection_from_env (SNOWFLAKE_* variables)"
            )
        return
    if warehouse_path is None or not warehouse_path.exists():
        raise FileNotFoundError(f"{warehouse_path}: no warehouse file; load a batch first (hospital load)")


def _index(data_docs_dir: Path) -> Path | None:
    index = data_docs_dir / "index.html"
    return index if index.exists() else None


def _pages(result: Any, data_docs_dir: Path) -> list[ValidationPage]:
    """Each validation's page, as the site wrote it (a page that failed to render is left out)."""
    pages = []
    for identifier, validation in result.run_results.items():
        path = validation_page(data_docs_dir, identifier)
        if path.is_file():
            statistics = validation.statistics or {}
            pages.append(
                ValidationPage(
                    suite=validation.suite_name,
                    success=bool(validation.success),
                    path=path,
                    evaluated=int(statistics.get("evaluated_expectations") or 0),
                    failed=int(statistics.get("unsuccessful_expectations") or 0),
                )
            )
    return pages


def _outcomes(result: Any, suites: list[SuiteSpec]) -> list[ExpectationOutcome]:
    outcomes = []
    for validation in result.run_results.values():
        suite = validation.suite_name
        for item in validation.results:
            config = item.expectation_config
            meta = config.meta or {}
            details = item.result or {}
            count = details.get("unexpected_count", details.get("observed_value"))
            if not isinstance(count, int) or isinstance(count, bool):
                count = None
            note_parts = [f"rule {meta['rule_id']}"] if meta.get("rule_id") else []
            if meta.get("max_failing_rate"):
                note_parts.append(f"threshold {meta['max_failing_rate']:.2%}")
            if meta.get("note"):
                note_parts.append(str(meta["note"]))
            if item.exception_info and item.exception_info.get("raised_exception"):
                # The exception's text can quote a value; its class name cannot.
                note_parts.append("error evaluating the expectation (see Data Docs)")
            outcomes.append(
                ExpectationOutcome(
                    suite=suite,
                    expectation=config.type,
                    column=meta.get("column"),
                    success=bool(item.success),
                    unexpected_count=count,
                    unexpected_percent=details.get("unexpected_percent"),
                    element_count=details.get("element_count"),
                    note="; ".join(note_parts) or None,
                )
            )
    return outcomes
