"""Which failures are worth a retry: transient faults (a locked warehouse, a dropped Snowflake connection) are;
data faults (a failed quality gate, a batch the loader refused, a failed dbt test) never are.

Tasks use ``retry_transient`` as their ``retry_condition_fn`` together with ``TRANSIENT_RETRY_DELAYS``.
"""

from __future__ import annotations

from typing import Any

from flows.warehouse.errors import LoadError, WarehouseBusyError

#: Seconds before the 1st, 2nd and 3rd retry: backoff, so a run holding the lock has time to finish.
TRANSIENT_RETRY_DELAYS = [5, 20, 60]
#: Random spread of each delay (share of it), so two waiting processes do not retry in step.
RETRY_JITTER_FACTOR = 0.5

# Text of the errors that mean "try again later". DuckDB: another process holds the file's write lock.
# Snowflake connector: the session or the network went away (errno 250001-250003, 254007, 390114 token expired).
_TRANSIENT_TEXT = (
    "could not set lock on file",
    "conflicting lock is held",
    "connection reset by peer",
    "connection aborted",
    "connection is closed",
    "failed to connect to db",
    "could not connect to snowflake backend",
    "authentication token has expired",
    "remote end closed connection",
    "read timed out",
)
_SNOWFLAKE_TRANSIENT_ERRNOS = {250001, 250002, 250003, 254007, 390114}


class TransientWarehouseError(RuntimeError):
    """A warehouse fault that is expected to go away by itself (lock, dropped connection); the task retries."""


def is_transient(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it was raised from) is a transient fault worth a retry.

    Data faults are decided first and never retried, even when a lock error is somewhere in their chain.
    """
    seen: set[int] = set()
    chain: list[BaseException] = []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    for error in chain:
        if isinstance(error, WarehouseBusyError | TransientWarehouseError):
            return True
        if _is_data_fault(error):
            return False
    return any(_looks_transient(error) for error in chain)


def _is_data_fault(error: BaseException) -> bool:
    if isinstance(error, LoadError):
        return True
    # Imported lazily: the gate package may not be installed where only loading runs.
    try:
        from flows.contracts.quality import QualityGateFailed
    except ImportError:  # pragma: no cover - the contract module is part of the repository
        return False
    return isinstance(error, QualityGateFailed)


def _looks_transient(error: BaseException) -> bool:
    errno = getattr(error, "errno", None)
    module = type(error).__module__ or ""
    if module.startswith("snowflake.connector") and errno in _SNOWFLAKE_TRANSIENT_ERRNOS:
        return True
    text = str(error).lower()
    return any(marker in text for marker in _TRANSIENT_TEXT)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task only when its exception is a transient fault."""
    data = getattr(state, "data", None)
    if not isinstance(data, BaseException):
        try:
            data = state.result(raise_on_failure=False)
        except Exception:  # the result could not be read: do not retry blindly
            return False
    return is_transient(data if isinstance(data, BaseException) else None)
