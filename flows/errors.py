"""The platform's own errors, and the one message of any error that is safe to record and show.

The platform's own errors (the loader's, the gates', dbt's stage errors, publishing's, the lock's, these) say what
failed and what to do, and never quote a data value; any other error is named by its type only, because a library's
message can quote a value from the data (patient data). A full disk anywhere in an error's chain is named as such.
No Prefect import here: the CLI uses this before anything is started.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path


class PipelineConfigError(ValueError):
    """The run cannot start with these parameters; the message says what to change."""


class PipelineStageError(RuntimeError):
    """A stage failed with an error that is not the platform's own: raised in its place, from it, with a message
    that names the error's type, the stage and what to do, so the run's state (the UI, notifications, Prefect
    Cloud) never carries a library's message, which could quote a value from the data."""


def own_types() -> tuple[type[BaseException], ...]:
    from flows.dbt_runner import DbtStageError
    from flows.land_batch import BatchMismatchError
    from flows.locking import WarehouseLockTimeout
    from flows.transform import DbtVarsError
    from flows.warehouse.errors import LoadError

    own: list[type[BaseException]] = [LoadError, DbtStageError, WarehouseLockTimeout, PipelineConfigError,
                                      PipelineStageError, BatchMismatchError, DbtVarsError]  # fmt: skip
    try:  # the gate and report packages are imported lazily: a broken install must not hide the real error
        from expectations.results import QualityGateFailed
        from reports import PublishError

        own += [QualityGateFailed, PublishError]
    except ImportError:
        pass
    return tuple(own)


def own_error(error: BaseException) -> bool:
    """True for the platform's own errors: their messages say what failed and what to do, and quote no value."""
    return isinstance(error, own_types()) or disk_full(error) is not None


def disk_full(error: BaseException) -> OSError | None:
    """The "no space left on device" error in ``error``'s chain, if any (also DuckDB's, which is not an OSError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return current
        if "no space left on device" in str(current).lower():
            return OSError(errno.ENOSPC, "No space left on device")
        current = current.__cause__ or current.__context__
    return None


def safe_message(error: BaseException, *, stage: str | None = None, home: Path | None = None) -> str:
    """The error's message when it is one of the platform's own (they never quote data values), else its type.

    A full disk anywhere in the error's chain is named as such, with the file system and what was kept."""
    from flows.warehouse.errors import LoadError

    full = disk_full(error)
    if full is not None and not isinstance(error, LoadError):  # the loader names the full file system itself
        where = f" on the file system of {home}" if home is not None else ""
        free = ""
        if home is not None and home.exists():
            free = f" ({shutil.disk_usage(home).free / 1e6:,.0f} MB free now)"
        return (
            f"No space left on device{where}{free} during stage {stage or 'unknown'}. Nothing of this run was "
            "published: the warehouse keeps its last committed state and the last report stays the latest. Free "
            "space (`hospital status` lists runs; older history is pruned by HOSPITAL_RETENTION_DAYS), then run the "
            "batch again: every stage is safe to repeat"
        )
    if isinstance(error, own_types()):
        return str(error)
    during = f" during stage {stage}" if stage else ""
    return f"{type(error).__name__}{during} (details in the flow run's logs)"
