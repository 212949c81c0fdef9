"""Backend-neutral batch planning: batch ids, manifest.json, which file belongs to which source."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.registry import Registry, Source
from flows.warehouse.batchdir import BatchDir, refusal
from flows.warehouse.errors import (
    BatchIdError,
    BatchNotFoundError,
    ChecksumMismatchError,
    ManifestError,
)
from flows.warehouse.model import FileFacts, PlannedFile

BATCH_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,254}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MANIFEST = "manifest.json"
NO_MANIFEST_NOTE = (
    "no manifest.json: files were matched to sources by the registry's patterns; "
    "their row counts and checksums were not checked against a sender's manifest"
)


@dataclass
class BatchPlan:
    """The files of one batch in load order, and notes for the summary."""

    batch_id: str
    folder: Path
    files: list[PlannedFile]
    has_manifest: bool
    notes: list[str] = field(default_factory=list)


def validate_batch_id(batch_id: str) -> str:
    """Return ``batch_id`` if it is a plain folder name; raise ``BatchIdError`` otherwise (before any I/O)."""
    if not isinstance(batch_id, str) or not BATCH_ID_RE.fullmatch(batch_id) or ".." in batch_id:
        raise BatchIdError(
            f"batch id {batch_id!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no path separators or '..')"
        )
    return batch_id


def batch_folder(landing: Path, batch_id: str) -> Path:
    """The landing folder of a batch id, refusing anything that would resolve outside ``landing``."""
    folder = landing / validate_batch_id(batch_id)
    if folder.resolve().parent != landing.resolve():
        raise BatchIdError(f"batch id {batch_id!r} resolves outside the landing folder {landing}")
    if folder.is_symlink():
        raise BatchIdError(f"batch {batch_id}: {folder} is a symbolic link; a batch folder must be a real folder")
    if not folder.is_dir():
        raise BatchNotFoundError(f"batch {batch_id}: no folder {folder}; land the batch first (hospital generate)")
    return folder


def plan_batch(folder: Path, registry: Registry, batch_id: str, directory: BatchDir | None = None) -> BatchPlan:
    """List the batch's files with their sources: from manifest.json, or else by the registry's patterns.

    Every listed file must be a regular file of the folder (checked with ``lstat``, before anything is opened):
    links, even to files inside the folder, FIFOs, devices and folders are refused, naming the entry.
    """
    if directory is None:
        with BatchDir(folder) as opened:
            return plan_batch(folder, registry, batch_id, opened)
    kind = directory.kind(MANIFEST)
    if kind is None:
        return _plan_from_patterns(directory, registry, batch_id)
    if kind != "regular file":
        raise refusal(MANIFEST, kind)
    return _plan_from_manifest(directory, registry, batch_id, _read_manifest(directory))


def verify_against_manifest(planned: PlannedFile, facts: FileFacts) -> None:
    """Raise ``ChecksumMismatchError`` when a file's size or sha256 differs from its manifest entry."""
    if planned.declared_size is not None and planned.declared_size != facts.size:
        raise ChecksumMismatchError(
            f"{planned.name}: the manifest declares {planned.declared_size} bytes, the file {facts.size}; "
            "it was truncated or changed in transit: ask the sender to re-send it",
            file=planned.name,
        )
    if planned.declared_sha256 is not None and planned.declared_sha256 != facts.sha256:
        raise ChecksumMismatchError(
            f"{planned.name}: sha256 differs from the manifest (manifest {planned.declared_sha256[:12]}…, "
            f"file {facts.sha256[:12]}…); the file changed after the manifest was written: "
            "ask the sender to re-send it",
            file=planned.name,
        )


def _read_manifest(directory: BatchDir) -> dict[str, Any]:
    where = f"{directory.path / MANIFEST}"
    try:
        data = directory.read_small(MANIFEST)
    except OSError as exc:
        raise ManifestError(
            f"{where}: manifest.json cannot be read ({exc.strerror}); check its permissions and re-run", file=MANIFEST
        ) from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(data[: exc.start].decode("utf-8", errors="replace"), len(data[: exc.start]))
        raise ManifestError(
            f"{where} line {line} column {column}: byte {exc.start + 1} is not valid UTF-8; manifest.json must "
            "be UTF-8 JSON. Ask the sender to re-send the batch, or fix the manifest",
            file=MANIFEST,
        ) from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"{where} line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg}). Ask the sender to "
            "re-send the batch, or fix the manifest at that place and re-run",
            file=MANIFEST,
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("files"), list):
        raise ManifestError(f"{where}: manifest.json must be an object with a 'files' list", file=MANIFEST)
    return document


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _plan_from_manifest(directory: BatchDir, registry: Registry, batch_id: str, manifest: dict[str, Any]) -> BatchPlan:
    folder = directory.path
    declared_id = manifest.get("batch_id")
    if declared_id is not None and declared_id != batch_id:
        raise ManifestError(
            f"batch {batch_id}: manifest.json declares batch_id {declared_id!r}; "
            "the folder name and the manifest must agree",
            file=MANIFEST,
        )
    files: list[PlannedFile] = []
    for position, entry in enumerate(manifest["files"], start=1):
        files.append(_planned_from_entry(folder, registry, entry, position))
    names = [planned.name for planned in files]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ManifestError(f"manifest.json lists {', '.join(duplicates)} more than once", file=duplicates[0])
    missing = [planned.name for planned in files if directory.kind(planned.name) is None]
    if missing:
        raise ManifestError(
            f"{missing[0]}: listed in manifest.json but missing from the batch folder"
            + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else "")
            + "; ask the sender to deliver it, or correct the manifest",
            file=missing[0],
        )
    for planned in files:
        directory.require_regular(planned.name)
    ignored = {MANIFEST}
    ground_truth = manifest.get("ground_truth")
    if isinstance(ground_truth, dict):  # {"file": ...} as well as a plain name
        ground_truth = ground_truth.get("file")
    if isinstance(ground_truth, str):  # the defects' answer key: not data, never opened
        ignored.add(_plain_name(ground_truth, "ground_truth"))
    undeclared = [name for name in directory.names() if name not in ignored and name not in names]
    if undeclared:
        raise ManifestError(
            f"{undeclared[0]}: present in the batch folder but not listed in manifest.json"
            + (f" (also: {', '.join(undeclared[1:])})" if undeclared[1:] else "")
            + "; add it to the manifest or remove it from the folder",
            file=undeclared[0],
        )
    return BatchPlan(batch_id, folder, files, has_manifest=True)


def _planned_from_entry(folder: Path, registry: Registry, entry: object, position: int) -> PlannedFile:
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise ManifestError(f"manifest.json files[{position}] has no 'file' name", file=MANIFEST)
    name = _plain_name(entry["file"], f"files[{position}]")
    source = _source_for_entry(registry, name, entry.get("source"))
    sha = entry.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha)):
        raise ManifestError(f"{name}: manifest sha256 is not 64 lower-case hex digits", file=name)
    return PlannedFile(
        name=name,
        path=folder / name,
        source=source,
        declared_rows=_count(entry, "rows", name),
        declared_size=_count(entry, "bytes", name),
        declared_sha256=sha,
    )


def _count(entry: dict[str, Any], key: str, name: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"{name}: manifest '{key}' must be a non-negative integer", file=name)
    return value


def _plain_name(name: str, where: str) -> str:
    if not _FILE_NAME_RE.fullmatch(name) or ".." in name:
        raise ManifestError(
            f"manifest.json {where}: {name!r} is not a plain file name (no folders, no '..')", file=MANIFEST
        )
    return name


def _source_for_entry(registry: Registry, name: str, source_name: object) -> Source:
    if source_name is None:
        return _match_source(registry, name)
    if not isinstance(source_name, str) or source_name not in registry.sources:
        raise ManifestError(
            f"{name}: manifest source {source_name!r} is not in the registry {registry.path.name}; "
            "add the source to the registry",
            file=name,
        )
    source = registry[source_name]
    if not fnmatch.fnmatchcase(name, source.pattern):
        raise ManifestError(
            f"{name}: declared as source {source.name} but does not match its pattern {source.pattern!r}",
            file=name,
        )
    return source


def _match_source(registry: Registry, name: str) -> Source:
    matches = [s for s in registry.sources.values() if fnmatch.fnmatchcase(name, s.pattern)]
    if not matches:
        raise ManifestError(
            f"{name}: no source in the registry {registry.path.name} matches this file name; "
            "add a source for it or remove the file from the batch",
            file=name,
        )
    if len(matches) > 1:
        raise ManifestError(
            f"{name}: matches the patterns of several sources ({', '.join(s.name for s in matches)}); "
            "make the registry patterns distinct or add a manifest.json naming the source",
            file=name,
        )
    return matches[0]


def _plan_from_patterns(directory: BatchDir, registry: Registry, batch_id: str) -> BatchPlan:
    files = []
    for name in directory.names():
        if not _FILE_NAME_RE.fullmatch(name) or ".." in name:
            raise ManifestError(
                f"{name!r}: not a plain file name (letters, digits, '.', '_', '-', ' '); rename or remove it",
                file=name,
            )
        directory.require_regular(name)
        files.append(PlannedFile(name=name, path=directory.path / name, source=_match_source(registry, name)))
    if not files:
        raise ManifestError(f"batch {batch_id}: the folder {directory.path} is empty", file=MANIFEST)
    return BatchPlan(batch_id, directory.path, files, has_manifest=False, notes=[NO_MANIFEST_NOTE])
