"""dbt commands through prefect-dbt's ``PrefectDbtRunner`` (each dbt node becomes a Prefect task), gated on results.

The runner is created with ``raise_on_failure=False`` so a failed node does not surface as an opaque exception;
``run_dbt`` then fails the stage itself, naming every errored or failed node. The DuckDB file dbt-duckdb keeps
open in this process is released after every command, so the loader, the gates and the ledger can open it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.faults import TransientWarehouseError

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
    """Set environment variables for the duration of one command (the profile's warehouse path, the daily scope)."""
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
    warehouse: Path,
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

    from prefect_dbt import PrefectDbtRunner, PrefectDbtSettings

    name_dbt_lines()

    command = " ".join(arg for arg in args if not arg.startswith("{"))[:100]  # leave --vars values out
    settings = PrefectDbtSettings(project_dir=project_dir, profiles_dir=project_dir, target_path=target_path)
    runner = PrefectDbtRunner(
        settings=settings, raise_on_failure=False, disable_assets=True, _disable_callbacks=not node_tasks
    )
    began = time.perf_counter()
    try:
        values = {**(environment or {}), "HOSPITAL_WAREHOUSE_PATH": str(warehouse)}
        with _command_env(values), _signals_noted() as noted:
            # No colour codes: the lines go to Prefect's logs and to consoles that are often not terminals.
            result = runner.invoke([*args, "--log-path", str(log_path), "--no-use-colors"])
    except ValueError as exc:  # the runner wraps an exception raised by dbt itself (parse error, no connection)
        _raise_if_stopped(noted)  # Ctrl-C or SIGTERM while dbt ran: stop the run, it is not a dbt failure
        if _LOCK_TEXT in str(exc).lower():
            raise TransientWarehouseError(
                f"dbt {command}: the warehouse {warehouse} is locked by another process; retrying"
            ) from None
        raise DbtStageError(f"dbt {command} could not run: {_first_line(str(exc))}") from None
    finally:
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
            failed.append(f"{node_result.node.resource_type} {node_result.node.name} ({status})")
            lock_failure = lock_failure or _LOCK_TEXT in str(node_result.message or "").lower()
    outcome = DbtOutcome(command, statuses, tuple(failed), seconds)
    if lock_failure:
        raise TransientWarehouseError(f"dbt {command}: the warehouse {warehouse} is locked by another process")
    if failed or not result.success:
        listed = "; ".join(failed[:20]) + (f"; ... and {len(failed) - 20} more" if len(failed) > 20 else "")
        raise DbtStageError(
            f"dbt {outcome.command} failed: {len(failed)} node(s) errored or failed: {listed or 'see the dbt log'}. "
            f"Details per node are in the run's dbt task logs and in {log_path}/dbt.log; fix the model or the data "
            "and re-run the batch"
        )
    return outcome


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
