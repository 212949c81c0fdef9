"""Retention: the run history a data home keeps is bounded by ``HOSPITAL_RETENTION_DAYS`` (default 90).

Every pipeline run ends by pruning, while it still holds the warehouse's lock (so no other run is writing):

- report runs (``reports/runs/<run date>_<run id>/``) published more than the retention ago, and the dated links
  (``reports/<run date>``) that pointed at them; ``latest`` and the run it points to are never removed;
- Great Expectations' stored results and their Data Docs validation pages older than the retention, except the
  validations of the run behind the latest report (``ledger.pipeline_runs.checkpoint_runs``); the Data Docs index is
  rebuilt from what is kept (``expectations.datadocs.prune``);
- dbt's files that no run rewrote within the retention (compiled SQL of models since removed) and its rotated
  log files;
- leftovers of runs that died: report staging folders and half-generated landing batches (``.<batch>.partial-*``).

Age is wall-clock age (file modification time, or the UTC time stamp of a GX run), not the batch's date: a backfill
of 2024 published today is today's history. Landed batches themselves are source data and are never pruned here.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from expectations.datadocs import prune
from flows.settings import Settings


@dataclass
class Pruned:
    """What one retention pass removed, by kind (counts of files or folders) and the bytes freed."""

    counts: dict[str, int] = field(default_factory=dict)
    freed_bytes: int = 0

    def add(self, kind: str, path: Path) -> None:
        """Remove ``path`` (a file, link or folder) and count it under ``kind``."""
        size = _size(path)
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.freed_bytes += size

    @property
    def total(self) -> int:
        """How many things were removed."""
        return sum(self.counts.values())

    def describe(self) -> str:
        """One line: what was removed and how much space it freed."""
        parts = ", ".join(f"{count} {kind}" for kind, count in sorted(self.counts.items()))
        return f"removed {parts or 'nothing'} ({self.freed_bytes / 1e6:,.1f} MB)"


def _size(path: Path) -> int:
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _modified(path: Path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.lstat().st_mtime, dt.UTC)


def prune_reports(reports_dir: Path, cutoff: dt.datetime, pruned: Pruned) -> set[Path]:
    """Remove report runs published before ``cutoff`` and dated links to them; returns the kept run folders.

    The target of ``latest`` is always kept, whatever its age (it is what readers see).
    """
    runs_dir = reports_dir / "runs"
    if not runs_dir.is_dir():
        return set()
    latest = reports_dir / "latest"
    protected = {latest.resolve()} if latest.is_symlink() else set()
    kept: set[Path] = set()
    for run in sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        if run.resolve() in protected or _modified(run) >= cutoff:
            kept.add(run.resolve())
        else:
            pruned.add("report runs", run)
    for link in reports_dir.iterdir():
        if link.is_symlink() and link.name != "latest" and not link.exists():
            pruned.add("dated report links", link)  # its run was pruned: a dangling link misleads
    for leftover in reports_dir.glob(".staging-*"):  # the caller holds the warehouse lock: no run is publishing
        pruned.add("abandoned report stagings", leftover)
    return kept


def prune_dbt(dbt_dir: Path, cutoff: dt.datetime, pruned: Pruned) -> None:
    """Remove dbt target files no build rewrote since ``cutoff`` (models removed since) and old rotated logs."""
    target = dbt_dir / "target"
    for sub in ("compiled", "run"):
        folder = target / sub
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.is_file() and _modified(path) < cutoff:
                pruned.add("stale dbt target files", path)
    logs = dbt_dir / "logs"
    if logs.is_dir():
        for path in logs.glob("dbt.log.*"):  # rotated files; dbt.log itself is dbt's current log
            if _modified(path) < cutoff:
                pruned.add("rotated dbt logs", path)


def prune_landing_leftovers(landing: Path, pruned: Pruned) -> None:
    """Remove half-written batches of generator runs that died (``.<batch id>.partial-<pid>`` whose process is gone:
    ``hospital generate`` does not take the warehouse lock, so a live one may be writing)."""
    if not landing.is_dir():
        return
    for partial in landing.glob(".*.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if partial.is_dir() and pid.isdigit() and not _alive(int(pid)):
            pruned.add("abandoned partial batches", partial)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def latest_report_runs(warehouse: Path) -> list[tuple[str, str | None]]:
    """The (run name, run time) of the GX runs behind the latest published report: its Data Docs pages are kept."""
    from flows import runs

    published = runs.last_published(warehouse)
    return published.checkpoint_keys() if published is not None else []


def apply_retention(settings: Settings, now: dt.datetime | None = None) -> Pruned:
    """Prune the data home's history older than ``settings.retention_days``; returns what was removed."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=settings.retention_days)
    paths = settings.paths
    pruned = Pruned()
    prune_reports(paths.reports, cutoff, pruned)
    prune_dbt(paths.dbt_target.parent, cutoff, pruned)
    prune_landing_leftovers(paths.landing, pruned)
    gx = prune(paths.data_docs, paths.root / "gx_results", keep_days=settings.retention_days, now=now,
               keep_runs=latest_report_runs(paths.warehouse))  # fmt: skip
    for kind, count in (("GX results", gx.removed_results), ("Data Docs pages", gx.removed_pages)):
        if count:
            pruned.counts[kind] = count
    pruned.freed_bytes += gx.freed_bytes
    return pruned
