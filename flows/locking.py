"""One writer per warehouse file: a strict Prefect global concurrency limit keyed by the file's path.

DuckDB allows one writing process per file. Two pipeline runs on the same file (a scheduled run and a manual one,
two workers) would otherwise fail half-way with a lock error; with the limit the second waits for the first, or
fails after ``timeout_seconds`` with a message that says which file and what to do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

LIMIT_PREFIX = "hospital-warehouse"


class WarehouseLockTimeout(RuntimeError):  # noqa: N818 - reads as what happened
    """Another pipeline run held the warehouse file for longer than the run was willing to wait."""


def warehouse_limit_name(warehouse: Path) -> str:
    """The concurrency limit's name for one warehouse file: readable stem plus a hash of the absolute path."""
    absolute = str(Path(warehouse).expanduser().resolve())
    stem = re.sub(r"[^a-z0-9]+", "-", Path(absolute).stem.lower()).strip("-") or "warehouse"
    digest = hashlib.sha256(absolute.encode("utf-8")).hexdigest()[:12]
    return f"{LIMIT_PREFIX}-{stem}-{digest}"


def ensure_limit(name: str) -> None:
    """Create the global concurrency limit ``name`` with one slot if the server does not have it yet."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        with suppress(ObjectAlreadyExists):  # another run created it a moment ago
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1, active=True))


@contextmanager
def warehouse_lock(warehouse: Path, *, timeout_seconds: float) -> Iterator[str]:
    """Hold the warehouse file's one slot for the block; yields the limit's name.

    Raises ``WarehouseLockTimeout`` when no slot came free within ``timeout_seconds``.
    """
    from prefect.concurrency.sync import concurrency

    name = warehouse_limit_name(warehouse)
    ensure_limit(name)
    acquired = False
    try:
        with concurrency(name, occupy=1, timeout_seconds=timeout_seconds, strict=True):
            acquired = True
            yield name
    except TimeoutError as exc:
        if acquired:  # a timeout inside the block is the block's own error
            raise
        raise WarehouseLockTimeout(
            f"warehouse {warehouse} is in use by another pipeline run (Prefect concurrency limit '{name}'); "
            f"waited {timeout_seconds:.0f} s. Wait for that run to finish (`hospital status`), or raise "
            "HOSPITAL_LOCK_TIMEOUT_SECONDS. If no run is active, free the slot: "
            f"`prefect gcl update {name} --active-slots 0`"
        ) from exc
