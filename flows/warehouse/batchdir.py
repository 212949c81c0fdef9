"""Reading a batch from its own folder only: no links, no special files, no swap between a check and an open.

The folder is opened once (``O_DIRECTORY | O_NOFOLLOW``) and every file is looked up and opened relative to
it with ``O_NOFOLLOW | O_NONBLOCK`` (a link fails with ``ELOOP``, a FIFO does not block), then checked with
``fstat`` on the open descriptor: what is read is what was checked. Readers that need a path (DuckDB, numpy)
get ``/proc/self/fd/<n>``, which re-opens that same file, never whatever the name points at by then.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flows.warehouse.errors import BatchNotFoundError, FileChangedError, FileKindError

_PROC_FD = Path("/proc/self/fd")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
LINK_ADVICE = (
    "a batch is read only from its own folder, so links are refused (even to files inside it): "
    "copy the file into the batch folder instead of linking it"
)


def kind_of(mode: int) -> str:
    """What a file mode describes, in words: 'regular file', 'symbolic link', 'folder', 'FIFO (named pipe)'…"""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def refusal(name: str, kind: str) -> FileKindError:
    """The error for a batch entry that is not a regular file."""
    if kind == "symbolic link":
        return FileKindError(f"{name}: is a symbolic link; {LINK_ADVICE}", file=name)
    return FileKindError(
        f"{name}: is not a regular file (it is a {kind}); a batch folder holds regular files only: "
        "remove it or replace it with the file itself",
        file=name,
    )


class BatchDir:
    """An open batch folder: entries are looked up (``lstat``) and opened relative to its descriptor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.fd = os.open(path, _DIR_FLAGS)
        except OSError as exc:
            if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and path.is_symlink()):
                raise BatchNotFoundError(
                    f"batch folder {path} is a symbolic link; give the real folder (a batch is read only "
                    "from its own folder)"
                ) from exc
            raise BatchNotFoundError(f"batch folder {path} cannot be opened ({exc.strerror})") from exc

    def names(self) -> list[str]:
        """The entries of the folder, sorted (no ``.``/``..``)."""
        return sorted(os.listdir(self.fd))  # noqa: PTH208 - a descriptor, not a path

    def kind(self, name: str) -> str | None:
        """What ``name`` is (without following a link), or None when there is no such entry."""
        try:
            return kind_of(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return None

    def require_regular(self, name: str) -> None:
        """Raise ``FileKindError`` unless ``name`` is a regular file (checked without opening it)."""
        kind = self.kind(name)
        if kind is not None and kind != "regular file":
            raise refusal(name, kind)

    def open(self, name: str) -> OpenedFile:
        """Open ``name`` for reading without following a link; refuse anything but a regular file."""
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise refusal(name, "symbolic link") from exc
            if exc.errno == errno.ENOENT:
                raise FileKindError(f"{name}: disappeared from the batch folder before it was read", file=name) from exc
            raise FileKindError(f"{name}: cannot be opened ({exc.strerror}); check its permissions", file=name) from exc
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise refusal(name, kind_of(info.st_mode))
        os.set_blocking(fd, True)
        return OpenedFile(name, self.path / name, fd, info)

    def read_small(self, name: str, limit: int = 64 * 1024 * 1024) -> bytes:
        """The bytes of a small regular file of the folder (the manifest), opened as ``open`` does."""
        opened = self.open(name)
        try:
            with opened.reader() as handle:
                return handle.read(limit)
        finally:
            opened.close()

    def close(self) -> None:
        """Close the folder's descriptor."""
        os.close(self.fd)

    def __enter__(self) -> BatchDir:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class OpenedFile:
    """A regular file of a batch, open read-only; ``path`` names it in messages, ``read_path`` is for readers."""

    name: str
    path: Path
    fd: int
    info: os.stat_result

    @property
    def read_path(self) -> Path:
        """A path that opens this very file: ``/proc/self/fd/<n>`` on Linux, else the name (checked after)."""
        return _PROC_FD / str(self.fd) if _PROC_FD.is_dir() else self.path

    def reader(self) -> BinaryIO:
        """A new binary reader of the file from its start, with an offset of its own (threads may read)."""
        if _PROC_FD.is_dir():
            return (_PROC_FD / str(self.fd)).open("rb")
        handle = open(os.dup(self.fd), "rb", closefd=True)  # noqa: PTH123, SIM115 - a descriptor; shared offset
        handle.seek(0)
        return handle

    def verify_unchanged(self) -> None:
        """Raise ``FileChangedError`` if the file was written to, or replaced by name, since it was opened."""
        now = os.fstat(self.fd)
        if (now.st_size, now.st_mtime_ns) != (self.info.st_size, self.info.st_mtime_ns):
            raise FileChangedError(
                f"{self.name}: changed while it was being loaded (size or modification time); nothing was "
                "loaded. Re-run the load once the sender has finished writing the batch",
                file=self.name,
            )
        if self.read_path == self.path:  # no /proc: the readers opened the name; it must still be this file
            try:
                named = self.path.lstat()
            except FileNotFoundError:
                named = None
            if named is None or (named.st_dev, named.st_ino) != (self.info.st_dev, self.info.st_ino):
                raise FileChangedError(
                    f"{self.name}: was replaced while it was being loaded; nothing was loaded. Re-run the load",
                    file=self.name,
                )

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
