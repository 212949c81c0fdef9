"""Exceptions of the loader. Messages name batch, file, line, column and rule, and what to do; no values."""

from __future__ import annotations


class LoadError(Exception):
    """A batch could not be loaded. ``file`` names the landing file at fault, when there is one."""

    def __init__(self, message: str, *, file: str | None = None) -> None:
        super().__init__(message)
        self.file = file


class BatchIdError(LoadError, ValueError):
    """A batch id is not a plain folder name (e.g. it tries path traversal)."""


class BatchNotFoundError(LoadError):
    """The batch folder does not exist."""


class ManifestError(LoadError):
    """manifest.json is unreadable, incomplete or disagrees with the folder (missing or undeclared files)."""


class ChecksumMismatchError(LoadError):
    """A file's sha256 or size differs from what the manifest declares."""


class ContentConflictError(LoadError):
    """A file name that was loaded before arrived again with different content."""


class SchemaDriftError(LoadError):
    """A file's columns differ from the registry: an expected one is missing, or an unexpected one refused."""


class FileFormatError(LoadError):
    """A file cannot be read at all (empty, no header, not a JSON array, unsupported encoding)."""


class RowCountMismatchError(LoadError):
    """Rows read plus rows rejected do not add up to the rows (or lines) of the file."""


class RejectThresholdError(LoadError):
    """A file's share of rejected rows exceeds its source's ``max_reject_rate``."""


class WarehouseBusyError(LoadError):
    """The warehouse is locked by another process."""


class WarehouseLoadError(LoadError):
    """The warehouse refused a statement while loading a file (the batch is rolled back)."""


class WarehouseConfigError(LoadError):
    """The warehouse is not configured (missing credentials, unknown kind); the message says what to set."""


class FileKindError(LoadError):
    """A batch entry is not a regular file of the batch folder (a link, a FIFO, a device, a folder)."""


class FileChangedError(LoadError):
    """A landing file was written to or replaced while it was being loaded."""


class StorageFullError(LoadError):
    """A file system the load writes to (the warehouse, its write-ahead log, its temporary folder) is full."""


class MemoryLimitError(LoadError):
    """The warehouse ran out of the memory it may use, and could not spill to its temporary folder."""
