"""Backend-neutral batch planning: batch ids, manifest.json, which file belongs to which source."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from flows.contracts.batch_ids import InvalidBatchId
from flows.contracts.batch_ids import validate_batch_id as contract_validate
from flows.contracts.manifest import MANIFEST, InvalidManifest, Manifest, is_plain_name, parse_manifest
from flows.contracts.registry import Registry, Source
from flows.warehouse.batchdir import BatchDir, refusal
from flows.warehouse.errors import (
    BatchIdError,
    BatchNotFoundError,
    ChecksumMismatchError,
    ManifestError,
)
from flows.warehouse.model import FileFacts, PlannedFile

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
    """Return ``batch_id`` if it is a valid batch id (``flows.contracts.batch_ids``); raise ``BatchIdError``
    otherwise (before any I/O)."""
    try:
        return contract_validate(batch_id)
    except InvalidBatchId as exc:
        raise BatchIdError(str(exc)) from None


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


def _read_manifest(directory: BatchDir) -> Manifest:
    where = f"{directory.path / MANIFEST}"
    try:
        data = directory.read_small(MANIFEST)
    except OSError as exc:
        raise ManifestError(
            f"{where}: manifest.json cannot be read ({exc.strerror}); check its permissions and re-run", file=MANIFEST
        ) from exc
    try:
        return parse_manifest(data, where)
    except InvalidManifest as exc:
        raise ManifestError(str(exc), file=exc.file) from exc


def _plan_from_manifest(directory: BatchDir, registry: Registry, batch_id: str, manifest: Manifest) -> BatchPlan:
    folder = directory.path
    if manifest.batch_id is not None and manifest.batch_id != batch_id:
        raise ManifestError(
            f"batch {batch_id}: manifest.json declares batch_id {manifest.batch_id!r}; "
            "the folder name and the manifest must agree",
            file=MANIFEST,
        )
    files = [
        PlannedFile(
            name=entry.file,
            path=folder / entry.file,
            source=_source_for_entry(registry, entry.file, entry.source),
            declared_rows=entry.rows,
            declared_size=entry.bytes,
            declared_sha256=entry.sha256,
        )
        for entry in manifest.files
    ]
    names = [planned.name for planned in files]
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
    if manifest.ground_truth_file is not None:  # the defects' answer key: not data, never opened
        ignored.add(manifest.ground_truth_file)
    undeclared = [name for name in directory.names() if name not in ignored and name not in names]
    if undeclared:
        raise ManifestError(
            f"{undeclared[0]}: present in the batch folder but not listed in manifest.json"
            + (f" (also: {', '.join(undeclared[1:])})" if undeclared[1:] else "")
            + "; add it to the manifest or remove it from the folder",
            file=undeclared[0],
        )
    return BatchPlan(batch_id, folder, files, has_manifest=True)


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
        if not is_plain_name(name):
            raise ManifestError(
                f"{name!r}: not a plain file name (letters, digits, '.', '_', '-', ' '); rename or remove it",
                file=name,
            )
        directory.require_regular(name)
        files.append(PlannedFile(name=name, path=directory.path / name, source=_match_source(registry, name)))
    if not files:
        raise ManifestError(f"batch {batch_id}: the folder {directory.path} is empty", file=MANIFEST)
    return BatchPlan(batch_id, directory.path, files, has_manifest=False, notes=[NO_MANIFEST_NOTE])
