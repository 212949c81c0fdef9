"""dbt commands through prefect-dbt's ``PrefectDbtRunner``, gated on results, with dbt's nodes shown as Prefect tasks.

The runner is created with ``raise_on_failure=False`` so a failed node does not surface as an opaque exception;
``run_dbt`` then fails the stage itself, naming every errored or failed node. The DuckDB file dbt-duckdb keeps
open in this process is released after every command, so the loader, the gates and the ledger can open it.

With ``node_tasks`` (what the deployments use) every model, seed and snapshot becomes a task run, its tests and
unit tests summarised into it (``NodeTaskReporter``), in place of prefect-dbt's task per node (docs/dbt.md).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import queue
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.faults import TransientWarehouseError
from flows.warehouse.resource import WarehouseResource, as_resource

_FAILED = {"error", "fail", "runtime error"}
_LOCK_TEXT = "could not set lock on file"


class DbtStageError(RuntimeError):
    """A dbt command ended with errored or failed nodes (a data or model fault: not retried)."""


@dataclass(frozen=True)
class DbtOutcome:
    """What one dbt command did: node counts by status, the failed nodes' names and the seconds it took."""

    command: str
    statuses: dict[str, int] = field(default_factory=dict)
    failed_nodes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def nodes(self) -> int:
        """How many nodes ran (any status)."""
        return sum(self.statuses.values())

    def describe(self) -> str:
        """One line: the command and its node counts by status."""
        counts = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items()))
        return f"dbt {self.command}: {self.nodes} nodes ({counts or 'none'}) in {self.seconds:.1f} s"


@contextmanager
def _command_env(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of one command: dbt's target and what it reads (the DuckDB file,
    or the Snowflake connection's variables, the password only in ``DBT_ENV_SECRET_SNOWFLAKE_PASSWORD``, which dbt
    scrubs from its logs and artifacts), and the daily scope."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        environment.close()
        DuckDBConnectionManager._ENV = None
    DuckDBConnectionManager.close_all_connections()


class NameDbtLines(logging.Filter):
    """prefect-dbt logs dbt's progress lines (``50 of 617 PASS ...``) through a task logger whose task run it does
    not know, so they read ``Task run None``; name them ``dbt`` instead (the flow run's name stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "task_run_name", "") is None:
            record.task_run_name = "dbt"
        return True


def name_dbt_lines() -> None:
    """Install ``NameDbtLines`` on Prefect's task-run logger once."""
    logger = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, NameDbtLines) for f in logger.filters):
        logger.addFilter(NameDbtLines())


def run_dbt(
    args: list[str],
    *,
    project_dir: Path,
    warehouse: Path | WarehouseResource | dict,
    target_path: Path,
    log_path: Path,
    node_tasks: bool = True,
    environment: dict[str, str] | None = None,
) -> DbtOutcome:
    """Run one dbt command (``["build", ...]``, ``["snapshot"]``, ``["docs", "generate"]``) on ``warehouse``.

    ``environment`` is set for the command's duration (what the project reads with ``env_var()``).

    Raises ``TransientWarehouseError`` when dbt could not lock the warehouse file (retried by the caller's task
    policy), ``DbtStageError`` naming the errored and failed nodes otherwise. ``node_tasks=False`` runs the
    command without a Prefect task per node (``docs generate`` compiles every node; nothing worth a task each).
    """
    import time

    from prefect_dbt import PrefectDbtSettings

    name_dbt_lines()

    command = " ".join(arg for arg in args if not arg.startswith("{"))[:100]  # leave --vars values out
    settings = PrefectDbtSettings(project_dir=project_dir, profiles_dir=project_dir, target_path=target_path)
    reporter = _reporter(project_dir, target_path) if node_tasks else None
    runner = _runner_class()(
        settings=settings, raise_on_failure=False, disable_assets=True, _disable_callbacks=not node_tasks
    )
    runner.node_reporter = reporter
    began = time.perf_counter()
    try:
        values = {**(environment or {}), **as_resource(warehouse).dbt_env()}
        with _command_env(values), _signals_noted() as noted:
            # No colour codes: the lines go to Prefect's logs and to consoles that are often not terminals.
            result = runner.invoke([*args, "--log-path", str(log_path), "--no-use-colors"])
    except ValueError as exc:  # the runner wraps an exception raised by dbt itself (parse error, no connection)
        _raise_if_stopped(noted)  # Ctrl-C or SIGTERM while dbt ran: stop the run, it is not a dbt failure
        if _LOCK_TEXT in str(exc).lower():
            raise TransientWarehouseError(
                f"dbt {command}: the warehouse {as_resource(warehouse).label} is locked by another process; retrying"
            ) from None
        raise DbtStageError(f"dbt {command} could not run: {_first_line(str(exc))}") from None
    finally:
        if reporter is not None:
            reporter.close()
        release_warehouse()
    _raise_if_stopped(noted)
    seconds = time.perf_counter() - began
    statuses: dict[str, int] = {}
    failed: list[str] = []
    lock_failure = False
    for node_result in getattr(result.result, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status)).lower()
        statuses[status] = statuses.get(status, 0) + 1
        if status in _FAILED:
            rules = failing_rules(node_result.node, warehouse) if status == "fail" else ""
            failed.append(f"{node_result.node.resource_type} {node_result.node.name} ({status}{rules})")
            lock_failure = lock_failure or _LOCK_TEXT in str(node_result.message or "").lower()
    outcome = DbtOutcome(command, statuses, tuple(failed), seconds)
    if lock_failure:
        raise TransientWarehouseError(
            f"dbt {command}: the warehouse {as_resource(warehouse).label} is locked by another process"
        )
    if failed or not result.success:
        listed = "; ".join(failed[:20]) + (f"; ... and {len(failed) - 20} more" if len(failed) > 20 else "")
        raise DbtStageError(
            f"dbt {outcome.command} failed: {len(failed)} node(s) errored or failed: {listed or 'see the dbt log'}. "
            f"Details per node are in the run's dbt task logs and in {log_path}/dbt.log; fix the model or the data "
            "and re-run the batch"
        )
    return outcome


#: What a dbt project's outputs and caches are: not part of what it builds from.
_NOT_PROJECT = frozenset({"target", "logs", "dbt_packages", "__pycache__", ".user.yml"})


def project_digest(project_dir: Path, header: str) -> str:
    """SHA-256 over ``header`` and every file of the dbt project (models, macros, seeds, snapshots, tests, the
    generated sources, dbt_project.yml, profiles.yml) by path and content: what the docs (``docs_fingerprint``)
    and the unit tests' verdicts (``unit_tests_fingerprint``) are derived from, beside what ``header`` names."""
    import hashlib

    digest = hashlib.sha256(header.encode())
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if path.is_file() and not _NOT_PROJECT.intersection(relative.parts):
            digest.update(f"{relative.as_posix()}\n".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def failing_rules(node: Any, warehouse: Path | WarehouseResource | dict) -> str:
    """``": not_null(mrn) 3 rows; ..."`` for a failed ``checks`` test (dbt_project/macros/tests/checks.sql), read from
    the table its failure stored (rule names and counts, never a value); empty for any other node or when the
    table cannot be read (the node is still named)."""
    metadata = getattr(node, "test_metadata", None)
    relation = getattr(node, "relation_name", None)
    if getattr(metadata, "name", None) != "checks" or not relation:
        return ""
    try:
        with as_resource(warehouse).session() as session:
            # the relation is dbt's own rendering of the test's failures table (manifest), not user input
            rows = session.rows(f"select rule_name, failing_rows from {relation} order by rule_name")  # noqa: S608
    except Exception:  # naming the rules is a courtesy; the failure itself is already reported
        return ""
    return (": " + "; ".join(f"{name} {count} rows" for name, count in rows)) if rows else ""


def _reporter(project_dir: Path, target_path: Path) -> NodeTaskReporter | None:
    """A ``NodeTaskReporter`` when this runs inside a Prefect flow or task run (else there is nothing to report to)."""
    from prefect import get_run_logger
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return None
    target = target_path if target_path.is_absolute() else project_dir / target_path
    return NodeTaskReporter(target / "manifest.json", get_run_logger())


def _runner_class():
    """prefect-dbt's ``PrefectDbtRunner`` (it invokes dbt: settings, profiles, log levels, failure handling) with
    its per-node task machinery replaced by the ``NodeTaskReporter``'s callback when one is set.

    Relies on ``PrefectDbtRunner._create_unified_callback`` of the pinned prefect-dbt (0.7.25), the one place where
    it makes its callback; tests/unit/test_dbt_runner.py fails if that changes."""
    from prefect_dbt import PrefectDbtRunner

    class ReportingRunner(PrefectDbtRunner):
        node_reporter: NodeTaskReporter | None = None

        def _create_unified_callback(self, *args: Any, **kwargs: Any):
            if self.node_reporter is None:
                return super()._create_unified_callback(*args, **kwargs)
            return self.node_reporter.callback

    return ReportingRunner


@contextmanager
def _signals_noted() -> Iterator[list[int]]:
    """Note Ctrl-C and SIGTERM while dbt runs, passing each on to the handler in place (Prefect's, the CLI's).

    dbt catches what those handlers raise and prefect-dbt reports a failed command, in a ``ValueError`` that keeps
    neither the exception nor its class; the note lets ``run_dbt`` stop the run instead of reporting a dbt failure.
    """
    noted: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # signals are only delivered to the main thread
        yield noted
        return
    previous: dict[int, Any] = {}

    def note(signum: int, frame: Any) -> None:
        noted.append(signum)
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)
        raise KeyboardInterrupt if signum == signal.SIGINT else _termination(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, note)
    try:
        yield noted
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _termination(signum: int) -> BaseException:
    from prefect.exceptions import TerminationSignal

    return TerminationSignal(signum)


def _raise_if_stopped(noted: list[int]) -> None:
    if noted:
        raise KeyboardInterrupt("Ctrl-C while dbt ran") if noted[0] == signal.SIGINT else _termination(noted[0])


def interruption(error: BaseException | None) -> BaseException | None:
    """The Ctrl-C (``KeyboardInterrupt``) or SIGTERM (Prefect's ``TerminationSignal``) in ``error``'s chain: dbt
    catches them and reports a failed command, which must not hide that the run was asked to stop."""
    from prefect.exceptions import ExternalSignal

    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, KeyboardInterrupt | SystemExit | ExternalSignal):
            return error
        error = error.__cause__ or error.__context__
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no message"


#: Node types that get a Prefect task run of their own; tests and unit tests are summarised into their model's.
_TASK_TYPES = frozenset({"model", "seed", "snapshot"})
_TEST_TYPES = frozenset({"test", "unit_test"})
_LOG_LEVELS = {"info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
#: How a failing `checks` test's line starts (dbt_project/macros/policy/test_materialization.sql).
_RULES_LINE = "failing rules of "


def _dbt_node() -> None:
    """A dbt node: dbt runs it; ``NodeTaskReporter`` reports its task run (this function is never called)."""


@dataclass
class _NodeRun:
    """One model, seed or snapshot of the command, as its task run sees it."""

    name: str
    task_run_id: Any = None
    status: str | None = None
    tests: dict[str, tuple[str, int]] = field(default_factory=dict)  # test name -> (status, failing rows)
    rules: dict[str, str] = field(default_factory=dict)  # test name -> its failing rules (a `checks` test)
    done: bool = False


class NodeTaskReporter:
    """One Prefect task run per dbt model, seed and snapshot, each summarising its node's tests and unit tests.

    prefect-dbt's runner makes every node a task through Prefect's task engine (a ``Task``, a thread and an engine
    per node): 0.24 s a node here, 617 nodes a build of which 564 are tests, so a build took 4-5x as long as plain
    dbt. This reporter keeps the UI's per-model view (a task run per model named ``model <name>``, nested under
    the dbt task, with its upstream models as inputs, dbt's lines for the model, its final state) at a fraction
    of that: dbt's callback only queues the few events it needs; one background thread creates each task run
    through the API when the node starts and sets its final state when the node and all its tests have finished:
    Failed when the node or one of its tests failed or errored (the message names the tests and their failing row
    counts, never a value), Completed otherwise (warnings named in the message). A reporting problem is logged
    once and never fails the dbt command.
    """

    def __init__(self, manifest_path: Path, run_logger: Any) -> None:
        from prefect.context import FlowRunContext, TaskRunContext

        self._manifest_path = manifest_path
        self._run_logger = run_logger
        task_run = TaskRunContext.get()
        flow_run = FlowRunContext.get()
        self._flow_run_id = task_run.task_run.flow_run_id if task_run else flow_run.flow_run.id
        self._parent_task_run = task_run.task_run.id if task_run else None
        self._names = {"flow_run_name": flow_run.flow_run.name if flow_run else "<unknown>",
                       "flow_name": flow_run.flow.name if flow_run else "<unknown>"}  # fmt: skip
        self._key = uuid.uuid4().hex[:8]
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._runs: dict[str, _NodeRun] = {}
        self._expected: dict[str, set[str]] | None = None  # node -> its tests in the manifest
        self._parent_of: dict[str, str] = {}
        self._depends: dict[str, list[str]] = {}
        self._finished_tests: dict[str, set[str]] = {}
        self._warned = False
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._work,),
                                        name="dbt-node-tasks", daemon=True)  # fmt: skip
        self._thread.start()

    def callback(self, event: Any) -> None:
        """dbt's event callback (called from dbt's threads for every event): queue what the task runs need."""
        name = event.info.name
        if name in ("NodeStart", "NodeFinished") or event.info.level in _LOG_LEVELS:
            self._queue.put(event)

    def close(self, timeout: float = 60.0) -> None:
        """Process what is queued, finish every task run still open and stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    # -- the background thread ---------------------------------------------------------------------------------

    def _work(self) -> None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            self._client = client
            while (event := self._queue.get()) is not None:
                self._guarded(self._handle, event)
            for unique_id in list(self._runs):
                self._guarded(self._finish, unique_id, True)

    def _guarded(self, call, *args) -> None:
        try:
            call(*args)
        except Exception as exc:  # visibility must never fail the dbt command
            if not self._warned:
                self._warned = True
                self._run_logger.warning("dbt node task runs could not be reported (%s: %s); dbt goes on",
                                         type(exc).__name__, str(exc)[:200])  # fmt: skip

    def _handle(self, event: Any) -> None:
        name = event.info.name
        info = event.data.node_info if _has_node(event) else None
        if info is None or not info.unique_id:
            if name not in ("NodeStart", "NodeFinished"):
                self._run_logger.log(_LOG_LEVELS[event.info.level], "%s", event.info.msg)
            return
        unique_id, kind = info.unique_id, info.resource_type
        if name == "NodeStart" and kind in _TASK_TYPES:
            self._start(unique_id, f"{kind} {info.node_name}")
        elif name == "NodeFinished" and kind in _TASK_TYPES:
            self._runs.setdefault(unique_id, _NodeRun(f"{kind} {info.node_name}")).status = event.data.run_result.status
            self._finish(unique_id)
        elif name == "NodeFinished" and kind in _TEST_TYPES:
            parent = self._test_parent(unique_id)
            if parent is not None:
                run = self._run_of(parent)
                run.tests[info.node_name] = (event.data.run_result.status, event.data.run_result.num_failures)
                self._finished_tests.setdefault(parent, set()).add(unique_id)
                self._finish(parent)
        elif name not in ("NodeStart", "NodeFinished"):
            level = _LOG_LEVELS[event.info.level]
            if kind in _TASK_TYPES:
                self._logger(unique_id).log(level, "%s", event.info.msg)
            elif level > logging.INFO or event.info.msg.startswith(_RULES_LINE):
                # a test's warning, failure or failing rules: on its model's task run (else the command's)
                parent = self._test_parent(unique_id)
                if parent is not None and event.info.msg.startswith(_RULES_LINE):
                    self._run_of(parent).rules[info.node_name] = event.info.msg.split(": ", 1)[-1]
                (self._logger(parent) if parent in self._runs else self._run_logger).log(level, "%s", event.info.msg)

    def _run_of(self, unique_id: str) -> _NodeRun:
        """The node's run, made (named ``<kind> <name>``) when a test of it reports before the node started."""
        kind, name = unique_id.split(".", 1)[0], unique_id.rsplit(".", 1)[-1]
        return self._runs.setdefault(unique_id, _NodeRun(f"{kind} {name}"))

    def _load_manifest(self) -> None:
        manifest = json.loads(self._manifest_path.read_text(encoding="utf-8"))
        self._expected = {}
        for unique_id, node in manifest.get("nodes", {}).items():
            self._depends[unique_id] = node.get("depends_on", {}).get("nodes", [])
            if node.get("resource_type") == "test":
                parent = node.get("attached_node") or next(
                    (d for d in self._depends[unique_id] if d.split(".", 1)[0] in _TASK_TYPES), None)  # fmt: skip
                if parent:
                    self._parent_of[unique_id] = parent
        for unique_id, unit_test in manifest.get("unit_tests", {}).items():
            parent = next((d for d in unit_test.get("depends_on", {}).get("nodes", []) if d.startswith("model.")), None)
            if parent:
                self._parent_of[unique_id] = parent
        for test, parent in self._parent_of.items():
            self._expected.setdefault(parent, set()).add(test)

    def _test_parent(self, test_id: str) -> str | None:
        if self._expected is None:
            self._load_manifest()
        return self._parent_of.get(test_id)

    def _start(self, unique_id: str, name: str) -> None:
        from prefect.client.schemas.objects import TaskRunResult
        from prefect.states import Running

        if self._expected is None:
            self._load_manifest()
        run = self._runs.setdefault(unique_id, _NodeRun(name))
        upstream = [TaskRunResult(id=self._runs[d].task_run_id) for d in self._depends.get(unique_id, [])
                    if d in self._runs and self._runs[d].task_run_id is not None]  # fmt: skip
        inputs = {"wait_for": upstream}
        if self._parent_task_run is not None:
            inputs["__parents__"] = [TaskRunResult(id=self._parent_task_run)]
        created = self._client.create_task_run(_node_task(), self._flow_run_id, f"{unique_id}#{self._key}",
                                               name=name, state=Running(), task_inputs=inputs)  # fmt: skip
        run.task_run_id = created.id

    def _finish(self, unique_id: str, closing: bool = False) -> None:
        from prefect.states import Completed, Failed

        run = self._runs[unique_id]
        if run.done or (run.status is None and not closing):
            return
        pending = (self._expected or {}).get(unique_id, set()) - self._finished_tests.get(unique_id, set())
        if pending and not closing:
            return
        if run.task_run_id is None:
            if not any(status in _FAILED for status, _ in run.tests.values()):
                return  # a node that never ran (skipped after an upstream failure) and nothing of it failed
            self._start(unique_id, run.name)  # a model skipped because its unit tests failed: show why
        run.done = True
        message, failed = _summary(run, len(pending) if closing else 0)
        self._logger(unique_id).log(logging.ERROR if failed else logging.INFO, "%s", message)
        self._client.set_task_run_state(run.task_run_id, (Failed if failed else Completed)(message=message),
                                        force=True)  # fmt: skip

    def _logger(self, unique_id: str):
        from prefect.logging.loggers import PrefectLogAdapter, get_logger

        run = self._runs.get(unique_id)
        extra = {"task_run_id": run.task_run_id if run else None, "flow_run_id": str(self._flow_run_id),
                 "task_run_name": run.name if run else "dbt", "task_name": "dbt-node", **self._names}  # fmt: skip
        return PrefectLogAdapter(get_logger("prefect.task_runs"), extra=extra)


def _has_node(event: Any) -> bool:
    try:
        return event.data.HasField("node_info")
    except (AttributeError, ValueError):
        return False


_NODE_TASK = None


def _node_task():
    """The one ``Task`` every reported node's task run refers to (a Task is costly to make: made once)."""
    global _NODE_TASK
    if _NODE_TASK is None:
        from prefect import Task

        _NODE_TASK = Task(fn=_dbt_node, name="dbt-node")
    return _NODE_TASK


def _summary(run: _NodeRun, not_run: int) -> tuple[str, bool]:
    """The final state's message (names and counts only, never a value) and whether the task run failed."""
    own = run.status or "not finished"

    def rows(name: str, count: int) -> str:
        return f"{count} rows: {run.rules[name]}" if name in run.rules else f"{count} rows"

    failed_tests = [f"{name} ({rows(name, count)})" if status == "fail" else f"{name} ({status})"
                    for name, (status, count) in sorted(run.tests.items()) if status in _FAILED]  # fmt: skip
    warned = [f"{name} ({rows(name, count)})"
              for name, (status, count) in sorted(run.tests.items()) if status == "warn"]  # fmt: skip
    passed = sum(1 for status, _ in run.tests.values() if status in ("pass", "success"))
    parts = [f"{run.name}: {own}"]
    if run.tests:
        parts.append(f"{len(run.tests)} tests: {passed} passed")
    if warned:
        parts.append(f"{len(warned)} warned: {', '.join(warned[:10])}")
    if failed_tests:
        parts.append(f"{len(failed_tests)} failed: {', '.join(failed_tests[:10])}")
    if not_run:
        parts.append(f"{not_run} tests not run")
    failed = own in _FAILED or own == "not finished" or bool(failed_tests)
    return "; ".join(parts), failed
