"""One pipeline run per warehouse file: an exclusive lock the operating system releases when the holder dies.

DuckDB allows one writing process per file, and a run writes it in several stages (load, dbt, ledger), each opening
and closing it; two runs on the same file (a scheduled run and a manual one, two workers) would interleave and fail
half-way. So a run holds ``<warehouse>.lock`` with ``flock`` from start to end. The kernel releases it the moment the
holding process ends, however it ends: a run killed with SIGKILL, or by the out-of-memory killer, blocks nothing.
(The earlier Prefect global concurrency limit did: its slot stayed taken after a kill until someone freed it by
hand, and on the temporary server its lease lived in the memory of a server that died with the run.)

The lock file also says who holds it (process id, host, flow run id, batch, since when), for the message of a run
that waits and for ``hospital status``; it is advisory text, the ``flock`` is the lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from flows.warehouse.resource import WarehouseResource, as_resource


class WarehouseLockTimeout(RuntimeError):  # noqa: N818 - reads as what happened
    """Another pipeline run held the warehouse file for longer than the run was willing to wait."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a warehouse's lock (written into the lock file; names and ids only)."""

    pid: int
    host: str
    run_id: str | None
    batch_id: str | None
    since: str

    def describe(self) -> str:
        """One line: the run, its batch, its process and since when."""
        run = f"run {self.run_id}" if self.run_id else "a run"
        batch = f" of batch {self.batch_id}" if self.batch_id else ""
        return f"{run}{batch} (process {self.pid} on {self.host}, since {self.since} UTC)"


def lock_path(warehouse: Path | WarehouseResource) -> Path:
    """The lock file beside the warehouse file (a Snowflake warehouse's is in the data home)."""
    return as_resource(warehouse).lock_path


def _read_holder(handle: int) -> LockHolder | None:
    os.lseek(handle, 0, os.SEEK_SET)
    text = os.read(handle, 4096).decode("utf-8", errors="replace").strip()
    try:
        return LockHolder(**json.loads(text)) if text else None
    except (ValueError, TypeError):
        return None


def current_holder(warehouse: Path | WarehouseResource) -> LockHolder | None:
    """The live holder of the warehouse's lock, or None when no process holds it (whatever the file says)."""
    path = lock_path(warehouse)
    if not path.exists():
        return None
    handle = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # someone holds it exclusively: the file says who
            return _read_holder(handle) or LockHolder(0, "?", None, None, "?")
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None
    finally:
        os.close(handle)


@contextlib.contextmanager
def warehouse_lock(
    warehouse: Path | WarehouseResource,
    *,
    timeout_seconds: float,
    run_id: str | None = None,
    batch_id: str | None = None,
    on_wait=None,
    poll_seconds: float = 0.5,
) -> Iterator[LockHolder]:
    """Hold the warehouse's lock for the block; yields what was written as its holder.

    Waits up to ``timeout_seconds`` for another run to finish (``on_wait(holder)`` is called once when it starts
    waiting), then raises ``WarehouseLockTimeout`` naming the file and the holder.
    """
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_seconds
        waited = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(handle)
                if not waited and on_wait is not None:
                    on_wait(holder)
                waited = True
                if time.monotonic() >= deadline:
                    who = holder.describe() if holder else "another run"
                    raise WarehouseLockTimeout(
                        f"warehouse {as_resource(warehouse).label} is in use by {who}; waited {timeout_seconds:.0f}"
                        " s. Wait for that run to finish (`hospital status`), or raise HOSPITAL_LOCK_TIMEOUT_SECONDS."
                        " The lock is released by the system when that process ends, so a killed run never holds it"
                    ) from None
                time.sleep(poll_seconds)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat(sep=" ")
        me = LockHolder(os.getpid(), socket.gethostname(), run_id, batch_id, now)
        os.ftruncate(handle, 0)
        os.pwrite(handle, (json.dumps(asdict(me)) + "\n").encode("utf-8"), 0)
        try:
            yield me
        finally:
            os.ftruncate(handle, 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)
