"""Reading landing files without a warehouse: fingerprints, headers, line positions and the column plan."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from flows.contracts.registry import Source
from flows.warehouse.batchdir import OpenedFile
from flows.warehouse.errors import FileFormatError, SchemaDriftError
from flows.warehouse.model import FileFacts, ReadColumn

_CHUNK = 8 * 1024 * 1024
_STRAY_CR = re.compile(rb"\r(?!\n)")
_MAX_HEADER = 1024 * 1024
_ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
}
_COMMON_DELIMITERS = [",", ";", "|", "\t", "~", "^", ":"]


def normalize_encoding(source: Source) -> str:
    """The source's encoding as the loader names it (``utf-8`` or ``latin-1``); others are refused."""
    encoding = _ENCODINGS.get(source.encoding.strip().lower())
    if encoding is None:
        raise FileFormatError(
            f"source {source.name}: encoding {source.encoding!r} is not supported by the loader; "
            "use utf-8 or latin-1 in the registry (or convert the files)"
        )
    return encoding


def fingerprint(file: Path | OpenedFile) -> FileFacts:
    """Hash a file, count its lines and classify its line endings, in one pass over its bytes.

    ``hashlib`` releases the GIL on large chunks. Line endings: ``lf``, ``crlf``, ``mixed`` (CRLF and LF, every
    CR before a LF), ``cr`` (CR alone, no LF at all), ``stray-cr`` (a CR that ends no line in a file of LF or
    CRLF lines; the first one's line is kept) or ``none`` (no line break).
    """
    digest = hashlib.sha256()
    size = lf = cr = crlf = 0
    first_stray: int | None = None
    pending, last = b"", b""
    with file.open("rb") if isinstance(file, Path) else file.reader() as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            last = chunk[-1:]
            data = pending + chunk if pending else chunk
            pending = b"\r" if data.endswith(b"\r") else b""  # a CR at the end may start a CRLF
            if pending:
                data = data[:-1]
            crs = data.count(b"\r")
            if crs:
                pairs = data.count(b"\r\n")
                if first_stray is None and pairs != crs:
                    stray = _STRAY_CR.search(data)
                    first_stray = lf + data.count(b"\n", 0, stray.start()) + 1 if stray else None
                cr, crlf = cr + crs, crlf + pairs
            lf += data.count(b"\n")
    if pending:  # the file ends with a CR
        cr += 1
        first_stray = lf + 1 if first_stray is None else first_stray
    endings = _endings(lf, cr, crlf)
    breaks, end = (cr, b"\r") if endings == "cr" else (lf, b"\n")
    ends_with_newline = last == end
    return FileFacts(
        sha256=digest.hexdigest(),
        size=size,
        lines=breaks + (1 if size and not ends_with_newline else 0),
        ends_with_newline=ends_with_newline,
        line_endings=endings,
        first_stray_cr_line=first_stray if endings == "stray-cr" else None,
    )


def _endings(lf: int, cr: int, crlf: int) -> str:
    if not cr:
        return "lf" if lf else "none"
    if cr == crlf:
        return "crlf" if lf == crlf else "mixed"
    return "cr" if not lf else "stray-cr"


def read_header(path: Path, source: Source, *, name: str | None = None, endings: str = "lf") -> list[str]:
    """The header fields of a delimited file, decoded in the source's encoding (a UTF-8 BOM is dropped).

    ``name`` is the file's name in messages (``path`` may be a descriptor's path); ``endings`` as
    ``fingerprint`` classifies them (a ``cr`` file's first line ends at its first CR).
    """
    name = name or path.name
    with path.open("rb") as handle:
        head = handle.read(_MAX_HEADER)
    if not head:
        raise FileFormatError(
            f"{name}: the file is empty (0 bytes); a header line was expected. "
            "The extract probably failed: ask the sender to re-send the file",
            file=name,
        )
    end = head.find(b"\r" if endings == "cr" else b"\n")
    if end < 0 and len(head) == _MAX_HEADER:
        raise FileFormatError(
            f"{name}: no line break in the first {_MAX_HEADER} bytes; is this a delimited text file of "
            f"source {source.name}?",
            file=name,
        )
    raw = head if end < 0 else head[:end]
    encoding = normalize_encoding(source)
    try:
        text = raw.decode("utf-8-sig" if encoding == "utf-8" else encoding).rstrip("\r")
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{name} line 1 (header): byte {exc.start + 1} is not valid {encoding}; "
            f"fix the file or the encoding of source {source.name} in the registry",
            file=name,
        ) from exc
    try:
        return next(csv.reader([text], strict=True, **csv_dialect(source)))
    except csv.Error as exc:
        what = "a carriage return (\\r) that ends no line" if "\r" in text else f"a quoting error ({exc})"
        raise FileFormatError(
            f"{name} line 1 (header): the header cannot be read: it holds {what}. Fix the header line",
            file=name,
        ) from exc


def csv_dialect(source: Source) -> dict[str, object]:
    """Keyword arguments for Python's ``csv.reader`` matching the source's delimiter and quoting."""
    if len(source.delimiter) != 1:
        raise FileFormatError(f"source {source.name}: delimiter {source.delimiter!r} must be a single character")
    if not source.quote:
        return {"delimiter": source.delimiter, "quoting": csv.QUOTE_NONE, "escapechar": source.escape or None}
    dialect: dict[str, object] = {"delimiter": source.delimiter, "quotechar": source.quote}
    if source.escape and source.escape != source.quote:
        dialect.update(escapechar=source.escape, doublequote=False)
    return dialect


def normalize_name(name: str) -> str:
    """A warehouse-safe column name for an unexpected column: lower case letters, digits and underscores."""
    cleaned = re.sub(r"[^0-9a-z_]+", "_", name.strip().lower()).strip("_")
    return cleaned if cleaned and not cleaned[0].isdigit() else f"col_{cleaned}"


def plan_columns(
    file: str, source: Source, found: Sequence[str], *, kind: str = "header"
) -> tuple[tuple[ReadColumn, ...], list[str]]:
    """Match a file's column names (in file order) to the registry and apply the unexpected-column policy.

    Returns the columns in file order and notes for the summary. Raises ``SchemaDriftError`` naming the
    missing or refused columns.
    """
    expected = {column.name.lower(): column for column in source.columns}
    if kind == "header" and len(found) == 1:
        others = [d for d in _COMMON_DELIMITERS if d != source.delimiter and d in found[0]]
        if others:
            raise SchemaDriftError(
                f"{file}: wrong delimiter: the header is a single field when split on {source.delimiter!r} "
                f"(the delimiter of source {source.name}) but contains {others[0]!r}; the file looks written "
                f"with delimiter {others[0]!r}. Ask for the agreed delimiter, or change the registry",
                file=file,
            )
    if found and not any(name.strip().lower() in expected for name in found):
        # Nothing matches: this is probably a data row (missing header) or another source's file, so the
        # fields are not quoted back (they may be patient data).
        raise SchemaDriftError(
            f"{file}: none of the {len(found)} names in the {kind} is a column of source {source.name}; "
            "the header is missing, or the file belongs to another source. Fix the file or the registry",
            file=file,
        )
    seen: dict[str, str] = {}
    columns: list[ReadColumn] = []
    unexpected: list[str] = []
    for position, raw_name in enumerate(found, start=1):
        name = raw_name.strip()
        key = name.lower()
        if key in seen:
            raise SchemaDriftError(
                f"{file}: {kind} names column {name!r} twice (fields {seen[key]} and {position}); "
                "column names must be unique",
                file=file,
            )
        seen[key] = str(position)
        if key in expected:
            column = expected[key]
            columns.append(ReadColumn(column.name, column.type, True, raw_name))
        else:
            unexpected.append(name)
            columns.append(ReadColumn(normalize_name(name) if name else f"col_{position}", "varchar", False, raw_name))
    missing = [column.name for column in source.columns if column.name.lower() not in seen]
    if missing:
        raise SchemaDriftError(_missing_message(file, source, missing, unexpected, kind), file=file)
    notes: list[str] = []
    if unexpected:
        names = ", ".join(repr(name) for name in unexpected)
        if source.unexpected_columns == "fail":
            raise SchemaDriftError(
                f"{file}: unexpected column(s) {names} not in the registry for source {source.name}; "
                "policy unexpected_columns=fail stops the batch. Add the column(s) to the registry, or set "
                "unexpected_columns: load to keep them as varchar",
                file=file,
            )
        _check_unique(file, columns)
        notes.append(f"unexpected column(s) {names} loaded as varchar (policy unexpected_columns=load)")
    return tuple(columns), notes


def _check_unique(file: str, columns: Iterable[ReadColumn]) -> None:
    names = [column.name for column in columns]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise SchemaDriftError(
            f"{file}: unexpected columns normalise to names already used: {', '.join(clashes)}; "
            "rename the columns in the file or add them to the registry",
            file=file,
        )


def _missing_message(file: str, source: Source, missing: list[str], unexpected: list[str], kind: str) -> str:
    shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    message = f"{file}: expected column(s) {shown} of source {source.name} missing from the {kind}"
    if unexpected:
        extra = ", ".join(repr(u) for u in unexpected[:5]) + (" …" if len(unexpected) > 5 else "")
        message += f"; found unexpected column(s) {extra} (renamed?)"
    return message + ". Fix the file, or update the registry entry, then re-run the load"
