"""A batch's ``manifest.json``: written by whoever delivers the batch (the generator), parsed here and only here.

The loader plans the batch from it (which file is which source, rows, bytes, sha256), the landing stage checks the
network it was generated for, and the raw gate reconciles each source's rows with it. Parsing is strict and every
error names the file, the entry and, for malformed JSON, the line and column: a manifest that half-parses must
never let a check silently drop out.

Reading the bytes is the caller's business (the loader reads through the batch folder's own descriptor, refusing
links); ``read_manifest`` is the plain-path convenience for everyone else.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The manifest's file name inside a batch folder.
MANIFEST = "manifest.json"
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,254}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class InvalidManifest(ValueError):  # noqa: N818 - reads as what it is
    """manifest.json cannot be read as a manifest; ``file`` names the landing file at fault (or the manifest)."""

    def __init__(self, message: str, *, file: str = MANIFEST) -> None:
        super().__init__(message)
        self.file = file


@dataclass(frozen=True)
class ManifestFile:
    """One listed file: its plain name, its source (None: match by the registry's patterns) and what the sender
    declares about it (each None when not declared)."""

    file: str
    source: str | None = None
    rows: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    #: The entry as the sender wrote it, descriptive fields included (system, entity, format, delimiter, ...).
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The entry as written in manifest.json (the sender's fields, in the sender's order)."""
        return dict(self.raw) or {"file": self.file, "source": self.source, "rows": self.rows, "bytes": self.bytes,
                                  "sha256": self.sha256}  # fmt: skip


@dataclass(frozen=True)
class Network:
    """The simulated network a generated batch belongs to."""

    seed: int
    patients: int
    start_date: dt.date


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest.json."""

    files: tuple[ManifestFile, ...]
    batch_id: str | None = None
    batch_type: str | None = None
    schema_version: int | None = None
    network: Network | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    #: The defects' answer key (``{"file", "rows", ...}``): never loaded, never data.
    ground_truth: dict[str, Any] | None = None

    @property
    def rows(self) -> int:
        """Rows declared over all files (0 when none declares rows)."""
        return sum(entry.rows or 0 for entry in self.files)

    def rows_by_source(self) -> dict[str, list[tuple[str, int]]]:
        """(file, declared rows) of each source's files: what the raw gate reconciles."""
        found: dict[str, list[tuple[str, int]]] = {}
        for entry in self.files:
            if entry.source is not None and entry.rows is not None:
                found.setdefault(entry.source, []).append((entry.file, entry.rows))
        return found

    @property
    def ground_truth_file(self) -> str | None:
        """The answer key's file name, if the batch carries defects."""
        return self.ground_truth.get("file") if self.ground_truth else None

    def to_dict(self) -> dict[str, Any]:
        """The manifest as written in manifest.json."""
        network = asdict(self.network) if self.network else None
        if network:
            network["start_date"] = network["start_date"].isoformat()
        period = None
        if self.period_end is not None:
            period = {"start": self.period_start.isoformat() if self.period_start else None,
                      "end": self.period_end.isoformat()}  # fmt: skip
        return {"batch_id": self.batch_id, "batch_type": self.batch_type, "schema_version": self.schema_version,
                "network": network, "period": period, "files": [entry.to_dict() for entry in self.files],
                "ground_truth": self.ground_truth}  # fmt: skip

    def write(self, folder: Path) -> Path:
        """Write ``folder/manifest.json`` (indented, UTF-8, one trailing newline)."""
        path = folder / MANIFEST
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def is_plain_name(name: object) -> bool:
    """True for a plain file name of a batch folder: letters, digits, '.', '_', '-', ' '; no folders, no '..'."""
    return isinstance(name, str) and bool(_FILE_NAME_RE.fullmatch(name)) and ".." not in name


def plain_name(name: object, where: str) -> str:
    """``name`` if it is a plain file name of a batch folder (no folders, no '..'); else ``InvalidManifest``."""
    if not is_plain_name(name):
        raise InvalidManifest(f"manifest.json {where}: {name!r} is not a plain file name (no folders, no '..')")
    return name


def _count(entry: dict[str, Any], key: str, name: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidManifest(f"{name}: manifest '{key}' must be a non-negative integer", file=name)
    return value


def _date(value: object, where: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidManifest(f"manifest.json {where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _entry(raw: object, position: int) -> ManifestFile:
    if not isinstance(raw, dict) or not isinstance(raw.get("file"), str):
        raise InvalidManifest(f"manifest.json files[{position}] has no 'file' name")
    name = plain_name(raw["file"], f"files[{position}]")
    source = raw.get("source")
    if source is not None and not isinstance(source, str):
        raise InvalidManifest(f"{name}: manifest source {source!r} is not a source name", file=name)
    sha = raw.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha)):
        raise InvalidManifest(f"{name}: manifest sha256 is not 64 lower-case hex digits", file=name)
    return ManifestFile(name, source, _count(raw, "rows", name), _count(raw, "bytes", name), sha, dict(raw))


def manifest_file(entry: dict[str, Any]) -> ManifestFile:
    """A ``ManifestFile`` from an entry as a sender builds it (checked as the parser checks it)."""
    return _entry(entry, 1)


def parse_manifest(data: bytes, where: str = MANIFEST) -> Manifest:
    """Parse manifest.json's bytes (``where`` names it in errors); raises ``InvalidManifest`` with line and column
    for malformed JSON, naming the entry for an invalid one."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(data[: exc.start].decode("utf-8", errors="replace"), len(data[: exc.start]))
        raise InvalidManifest(
            f"{where} line {line} column {column}: byte {exc.start + 1} is not valid UTF-8; manifest.json must "
            "be UTF-8 JSON. Ask the sender to re-send the batch, or fix the manifest"
        ) from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidManifest(
            f"{where} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}). Ask the sender to "
            "re-send the batch, or fix the manifest at that place and re-run"
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise InvalidManifest(f"{where}: manifest.json must be an object with a 'files' list")
    files = tuple(_entry(raw, position) for position, raw in enumerate(document["files"], start=1))
    names = [entry.file for entry in files]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidManifest(f"manifest.json lists {', '.join(duplicates)} more than once", file=duplicates[0])
    network = document.get("network")
    parsed_network = None
    if isinstance(network, dict) and {"seed", "patients", "start_date"} <= set(network):
        parsed_network = Network(network["seed"], network["patients"],
                                 _date(network["start_date"], "network.start_date"))  # fmt: skip
    period = document.get("period") if isinstance(document.get("period"), dict) else {}
    truth = document.get("ground_truth")
    if isinstance(truth, str):  # a plain name as well as {"file": ...}
        truth = {"file": truth}
    if truth is not None and not (isinstance(truth, dict) and isinstance(truth.get("file"), str)):
        raise InvalidManifest(f"{where}: 'ground_truth' must name a file")
    if truth is not None:
        plain_name(truth["file"], "ground_truth")
    declared = document.get("batch_id")
    return Manifest(
        files=files,
        batch_id=declared if isinstance(declared, str) else None,
        batch_type=document.get("batch_type"),
        schema_version=document.get("schema_version"),
        network=parsed_network,
        period_start=_date(period.get("start"), "period.start"),
        period_end=_date(period.get("end"), "period.end"),
        ground_truth=truth,
    )


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest of the batch folder ``folder``, or None when it has none (a delivered batch may not)."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidManifest(f"{path}: manifest.json cannot be read ({exc.strerror}); check its permissions") from exc
    return parse_manifest(data, str(path))
