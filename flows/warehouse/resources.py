"""Resource exhaustion in words: which file system is full, how much is free, what was kept.

Backend-neutral: a backend maps its driver's error to ``StorageFullError`` or ``MemoryLimitError`` with these
helpers, and the loader fails the batch with that one message (no traceback).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from flows.warehouse.errors import MemoryLimitError, StorageFullError

_FULL_TEXT = ("no space left on device", "disk quota exceeded", "disk full", "file too large")
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_WRITING = re.compile(r'(?:write|writing|create|creating|open|opening)(?: to)?(?: temporary)? file "([^"]+)"', re.I)
KEPT = (
    "Nothing of the batch was loaded: the transaction was rolled back and the warehouse is unchanged. "
    "Free space there (or move the data home to a larger file system), then re-run the load: it loads the "
    "batch exactly as a first attempt would"
)


def is_storage_full(exc: BaseException) -> bool:
    """True when ``exc`` says a write failed for lack of space (ENOSPC, a quota, a file size limit)."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    text = str(exc).lower()
    return any(marker in text for marker in _FULL_TEXT)


def written_file(exc: BaseException) -> Path | None:
    """The file a driver error says it could not write (DuckDB names it), if it names one."""
    if isinstance(exc, OSError) and exc.filename:
        return Path(os.fsdecode(exc.filename))
    match = _WRITING.search(str(exc))
    return Path(match.group(1)) if match else None


def describe_storage(path: Path) -> str:
    """'the file system of <folder> (mounted at <mount>; 3 MB free of 20 MB)' for a file or folder."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    mount = folder.resolve()
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        info = os.statvfs(folder)
    except OSError:
        return f"the file system of {folder}"
    free, total = info.f_bavail * info.f_frsize, info.f_blocks * info.f_frsize
    return f"the file system of {folder} (mounted at {mount}; {_mb(free)} free of {_mb(total)})"


def storage_full(exc: BaseException, fallback: Path, what: str) -> StorageFullError:
    """The ``StorageFullError`` for a failed write: which file, which file system, what was kept."""
    target = written_file(exc) or fallback
    return StorageFullError(f"no space left on {describe_storage(target)}: could not write {target} ({what}). {KEPT}")


def memory_exhausted(limit: str, temp: Path, what: str) -> MemoryLimitError:
    """The ``MemoryLimitError`` when the warehouse could neither keep data in memory nor spill it."""
    return MemoryLimitError(
        f"the warehouse ran out of memory ({what}): it may use {limit} and spills the rest to {temp}, which "
        f"failed. Nothing of the batch was loaded and the warehouse is unchanged. Check free space on "
        f"{describe_storage(temp)} and the machine's free memory, then re-run the load"
    )


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB" if size >= 1e6 else f"{size / 1e3:,.0f} kB"
