"""Stages 4 and 5: dbt build (staging, integration, marts and their tests) and the snapshots, via prefect-dbt.

With node tasks on, each dbt model, seed and snapshot shows as a Prefect task run with its tests summarised
(``flows.dbt_runner.NodeTaskReporter``). The build leaves snapshots to their own stage
so a failed model or test stops the run before history is written. Incremental facts and snapshots make both
stages safe to repeat: a resumed run rewrites what it must and adds no duplicate rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task

from flows.dbt_runner import DbtOutcome, project_digest, run_dbt
from flows.faults import RETRY_JITTER_FACTOR, TRANSIENT_RETRY_DELAYS, retry_transient
from flows.warehouse.resource import WarehouseResource, as_resource

_RETRY = {
    "retries": len(TRANSIENT_RETRY_DELAYS),
    "retry_delay_seconds": TRANSIENT_RETRY_DELAYS,
    "retry_jitter_factor": RETRY_JITTER_FACTOR,
    "retry_condition_fn": retry_transient,
}


class DbtVarsError(ValueError):
    """The dbt vars given to the pipeline are not a YAML mapping; the message says what to pass."""


#: dbt's var for the daily test scope (dbt_project/macros/tests/daily_scope.sql, docs/dbt.md "Daily builds").
TESTS_LOADED_AFTER = "tests_loaded_after"
#: How the flow hands dbt that scope: an environment variable the project reads at execution only, so the instant,
#: new every day, does not make dbt re-parse the whole project as a changed ``--vars`` does (docs/dbt.md).
SCOPE_ENV = "DBT_TESTS_LOADED_AFTER"


def batch_loaded_after(warehouse: Path | WarehouseResource, batch_id: str) -> dt.datetime | None:
    """When the batch's first load started (UTC, ``min(loaded_at)`` of ``ledger.load_ledger``); None when the
    warehouse, the ledger or a ledger row of the batch is missing. Reads through the warehouse resource."""
    resource = as_resource(warehouse)
    if not resource.exists():
        return None
    with resource.session() as session:
        if not session.has_table("ledger", "load_ledger"):
            return None
        (first,) = session.one("select min(loaded_at) from ledger.load_ledger where batch_id = ?", [batch_id])
    if first is None:
        return None
    # The session runs in UTC; an instant without a zone (a Snowflake NTZ, DuckDB's plain timestamp) is UTC.
    return first.astimezone(dt.UTC) if first.tzinfo is not None else first.replace(tzinfo=dt.UTC)


def scope_instant(loaded_at: dt.datetime) -> str:
    """The daily scope's instant for a batch first loaded at ``loaded_at``: the last whole UTC second strictly
    before it, as 'YYYY-MM-DD HH:MM:SS'. The scoped tests keep rows with ``_loaded_at > instant`` and the
    batch's rows carry exactly ``loaded_at``, so rounding down alone would drop them when it has no fraction."""
    if loaded_at.tzinfo is None:
        raise ValueError(f"loaded_at {loaded_at} has no time zone; pass the ledger's UTC instant")
    before = loaded_at.astimezone(dt.UTC) - dt.timedelta(microseconds=1)
    return f"{before:%Y-%m-%d %H:%M:%S}"


def dbt_vars_mapping(vars_yaml: str | None) -> dict:
    """The dbt vars a YAML string holds (``{}`` for None or blank); ``DbtVarsError`` when it is not a mapping."""
    import yaml

    if not vars_yaml or not vars_yaml.strip():
        return {}
    try:
        given = yaml.safe_load(vars_yaml)
    except yaml.YAMLError:
        given = None
    if not isinstance(given, dict):
        raise DbtVarsError(
            f"dbt vars {vars_yaml!r} are not a YAML mapping; pass them as '{{name: value, other: value}}'"
        )
    return given


def transform_vars(
    kind: str, *, full_refresh: bool, loaded_after: dt.datetime | None, vars_yaml: str | None = None
) -> str | None:
    """The ``--vars`` value of a run's dbt commands: ``vars_yaml`` (the caller's vars) plus, for a daily batch
    that is not a full refresh, ``tests_loaded_after`` = ``scope_instant(loaded_after)`` so the large models'
    tests check the rows loaded from this batch on. Initial and delivered batches, full refreshes and a batch
    without a ledger row (``loaded_after`` None) test every row: the caller's vars pass through unchanged. A
    ``tests_loaded_after`` in the caller's vars wins (``null`` tests every row)."""
    import yaml

    given = dbt_vars_mapping(vars_yaml)
    if kind != "daily" or full_refresh or loaded_after is None or TESTS_LOADED_AFTER in given:
        return vars_yaml or None
    merged = {**given, TESTS_LOADED_AFTER: scope_instant(loaded_after)}
    # Flow style starts with "{": run_dbt leaves such arguments out of the command names it logs.
    return yaml.safe_dump(merged, default_flow_style=True, sort_keys=False, width=10_000).strip()


def scope_environment(vars_yaml: str | None) -> tuple[str | None, dict[str, str]]:
    """Split a run's vars into the ``--vars`` dbt gets and the environment that carries ``tests_loaded_after``
    (``SCOPE_ENV``; empty when unset or null: every row is tested). The ``--vars`` left are the caller's own, the
    same every day, so dbt's partial parsing stays on; they are passed through unchanged when they hold no scope."""
    import yaml

    given = dbt_vars_mapping(vars_yaml)
    if TESTS_LOADED_AFTER not in given:
        return vars_yaml or None, {SCOPE_ENV: ""}
    instant = given.pop(TESTS_LOADED_AFTER)
    rest = yaml.safe_dump(given, default_flow_style=True, sort_keys=False, width=10_000).strip() if given else None
    return rest, {SCOPE_ENV: "" if instant is None else str(instant)}


#: Written into dbt's target folder after a build that loaded the lists: their fingerprint (``lists_fingerprint``).
LISTS_STAMP = "lists.sha256"


def lists_fingerprint(project_dir: Path) -> str:
    """SHA-256 over the lists (every file under ``seeds/``, by path and content) and ``dbt_project.yml`` (their
    config): what any change to a list, or to how the project builds it, changes."""
    import hashlib

    digest = hashlib.sha256()
    for path in [*sorted((project_dir / "seeds").rglob("*")), project_dir / "dbt_project.yml"]:
        if path.is_file():
            digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


#: Written into dbt's target folder after a build whose unit tests all ran and passed: ``unit_tests_fingerprint``.
UNIT_TESTS_STAMP = "unit_tests.sha256"
#: dbt's selector of the unit tests.
UNIT_TESTS = "resource_type:unit_test"


def unit_tests_fingerprint(project_dir: Path, resource: WarehouseResource) -> str:
    """What a unit test's verdict depends on: every file of the project (the models' SQL, macros, the YAML holding
    the unit tests and their fixture rows, seeds, config), the versions of dbt and its adapters, and dbt's target.
    Not the warehouse's data: a unit test runs on its own fixture rows."""
    from importlib.metadata import PackageNotFoundError, version

    header = f"target {resource.dbt_target}\n"
    for package in ("dbt-core", "dbt-duckdb", "dbt-snowflake"):
        try:
            header += f"{package} {version(package)}\n"
        except PackageNotFoundError:
            header += f"{package} -\n"
    return project_digest(project_dir, header)


def _stamped(path: Path, fingerprint: str) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8").strip() == fingerprint


def lists_loaded(project_dir: Path, target: Path, warehouse: Path | WarehouseResource | dict) -> bool:
    """True when the warehouse holds the lists as the project has them now: the last build that loaded them
    stamped this fingerprint, and every seed's table exists (a warehouse restored or rebuilt elsewhere reloads).
    Always False when dbt's target is not the DuckDB file (``DBT_TARGET``): only that file can be checked."""
    import os

    resource = as_resource(warehouse)
    if resource.kind != "duckdb" or os.environ.get("DBT_TARGET", "duckdb") != "duckdb":
        return False
    if not _stamped(target / LISTS_STAMP, lists_fingerprint(project_dir)):
        return False
    seeds = {path.stem for path in (project_dir / "seeds").rglob("*.csv")}
    if not resource.exists():
        return False
    with resource.session() as session:
        tables = {name for _, name in session.tables("lists")}
    return seeds <= tables


def build_args(
    *, full_refresh: bool, vars_yaml: str | None = None, lists: bool = True, exclude: tuple[str, ...] = ()
) -> list[str]:
    """``dbt build`` arguments: everything but snapshots and their tests; ``--full-refresh`` rebuilds incremental
    facts (the surrogate-key salt is ``full_refresh: false`` and survives). ``lists=False`` leaves the seeds and
    the tests on seeds alone out (``cautious``: a test from a model to a list still runs); ``exclude`` adds what
    the warehouse cannot run (``WarehouseResource.dbt_excludes``: the emulator's gaps)."""
    args = ["build", "--exclude", "resource_type:snapshot", *exclude]
    if not lists:
        args += ["resource_type:seed", "--indirect-selection", "cautious"]
    if full_refresh:
        args.append("--full-refresh")
    if vars_yaml:
        args += ["--vars", vars_yaml]
    return args


def _dbt_call(
    args: list[str], project_dir: str, warehouse: str | dict, target: str, logs: str, node_tasks: bool,
    environment: dict[str, str],
) -> DbtOutcome:  # fmt: skip
    return run_dbt(
        args,
        project_dir=Path(project_dir),
        warehouse=as_resource(warehouse),
        target_path=Path(target),
        log_path=Path(logs),
        node_tasks=node_tasks,
        environment=environment,
    )


@flow(name="transform", flow_run_name="dbt-build")
def transform(
    project_dir: str,
    warehouse_path: str | dict[str, str | None],
    target_path: str,
    log_path: str,
    full_refresh: bool = False,
    snapshots: bool = True,
    vars_yaml: str | None = None,
    node_tasks: bool = True,
) -> dict:
    """``dbt build`` (all but snapshots), then the snapshots; fails naming every errored or failed node.

    ``node_tasks`` shows each dbt model, seed and snapshot as a Prefect task run with its tests summarised in it
    (about the cost of plain dbt, docs/dbt.md "Node tasks"); off, dbt runs without task runs of its own.
    ``warehouse_path`` is a DuckDB file, or a warehouse resource's ``ref()`` (the pipeline's: dbt then runs on that
    warehouse's target, ``snowflake`` included).
    """
    logger = get_run_logger()
    build = dbt_build(project_dir, warehouse_path, target_path, log_path, full_refresh, vars_yaml, node_tasks)
    logger.info("%s", build.describe())
    result = {"build": {"statuses": build.statuses, "seconds": build.seconds}}
    if snapshots:
        snapshot = dbt_snapshot(project_dir, warehouse_path, target_path, log_path, vars_yaml, node_tasks)
        logger.info("%s", snapshot.describe())
        result["snapshot"] = {"statuses": snapshot.statuses, "seconds": snapshot.seconds}
    return result


@task(name="dbt-build", task_run_name="dbt-build", **_RETRY)
def dbt_build(
    project_dir: str, warehouse: str | dict, target: str, logs: str, full_refresh: bool, vars_yaml: str | None,
    node_tasks: bool = True,
) -> DbtOutcome:  # fmt: skip
    """Run ``dbt build``; its nodes appear as tasks nested under this one. A daily build (one with the daily test
    scope) leaves out what only the project can change when it is unchanged: the lists when the warehouse holds
    them as they are (``lists_loaded``), and the unit tests when they passed on this very project, dbt and target
    (``unit_tests_fingerprint``; they test the SQL on fixture rows, not the day's data). A changed list, model or
    macro brings them back on the next run; a full build always runs them."""
    dbt_vars, environment = scope_environment(vars_yaml)
    project, resource = Path(project_dir), as_resource(warehouse)
    daily = bool(environment[SCOPE_ENV])
    lists = not daily or not lists_loaded(project, Path(target), warehouse)
    units_fingerprint = unit_tests_fingerprint(project, resource)
    passed_before = daily and _stamped(Path(target) / UNIT_TESTS_STAMP, units_fingerprint)
    unit_tests = UNIT_TESTS not in resource.dbt_excludes and not passed_before
    exclude = (*resource.dbt_excludes, UNIT_TESTS) if passed_before else resource.dbt_excludes
    args = build_args(full_refresh=full_refresh, vars_yaml=dbt_vars, lists=lists, exclude=exclude)
    fingerprint = lists_fingerprint(project)
    outcome = _dbt_call(args, project_dir, warehouse, target, logs, node_tasks, environment)
    # Every node passed (else run_dbt raised): stamp what this build loaded and tested.
    if lists:
        (Path(target) / LISTS_STAMP).write_text(fingerprint, encoding="utf-8")
    if unit_tests:
        (Path(target) / UNIT_TESTS_STAMP).write_text(units_fingerprint, encoding="utf-8")
    return outcome


@task(name="dbt-snapshot", task_run_name="dbt-snapshot", **_RETRY)
def dbt_snapshot(
    project_dir: str, warehouse: str | dict, target: str, logs: str, vars_yaml: str | None, node_tasks: bool = True
) -> DbtOutcome:
    """Build the snapshots (type-2 history of patients with coverage, claims, physicians) and run their tests."""
    dbt_vars, environment = scope_environment(vars_yaml)
    args = ["build", "--select", "resource_type:snapshot"] + (["--vars", dbt_vars] if dbt_vars else [])
    return _dbt_call(args, project_dir, warehouse, target, logs, node_tasks, environment)
