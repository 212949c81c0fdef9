"""Publishing on a full disk: one clear error naming the full file system, nothing partial, the last report still the
latest, and an exact publication once space is freed.

The reports folder is a small tmpfs (mounted for the test: root only, as CI runs), sized to hold one publication and
not a second: a real ENOSPC in the middle of writing, not a simulated exception.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from expectations.results import CheckpointOutcome, ExpectationOutcome
from flows.errors import disk_full, safe_message
from reports import PublishError, publish
from reports.samples import sample_marts, write_sample_warehouse

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 23)
PASSED = [
    CheckpointOutcome(name, True, "run", "batch-1", None, (ExpectationOutcome("s", "e", None, True, 0),))
    for name in ("raw", "marts")
]


def _mount(folder: Path, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)


@pytest.fixture
def small_reports_disk(tmp_path):
    """A reports folder on its own tmpfs, large enough for one publication of the sample warehouse."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for the full-disk test needs root (CI runs as root)")
    frames = sample_marts(np.random.default_rng(9))
    kept = {name: frames[name] for name in ("mart_admissions_monthly", "mart_claim_denials", "dim_hospitals")}
    warehouse = write_sample_warehouse(tmp_path / "warehouse.duckdb", kept)  # two charts: quick to publish
    probe = tmp_path / "probe"
    publish(warehouse, probe, "probe", DAY, PASSED)
    one = sum(p.stat().st_size for p in probe.rglob("*") if p.is_file() and not p.is_symlink())
    reports = tmp_path / "home" / "reports"
    _mount(reports, int(one * 1.5) // 4096 * 4096)
    try:
        yield warehouse, reports, one
    finally:
        subprocess.run(["umount", str(reports)], check=False)


def test_a_full_disk_during_publish_leaves_the_last_report_and_nothing_partial(small_reports_disk):
    warehouse, reports, one = small_reports_disk
    first = publish(warehouse, reports, "run-1", DAY, PASSED)
    before = {p.relative_to(reports).as_posix(): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    with pytest.raises(PublishError) as caught:
        publish(warehouse, reports, "run-2", DAY + dt.timedelta(days=1), PASSED)
    assert disk_full(caught.value) is not None  # a real ENOSPC, kept in the chain
    message = safe_message(caught.value, stage="publish", home=reports.parent)
    assert message.startswith(f"No space left on device on the file system of {reports.parent}")
    assert "during stage publish" in message and "the last report stays the latest" in message
    assert (reports / "latest").resolve() == first.run_dir.resolve()
    assert not list(reports.glob(".staging-*"))  # nothing half-written stays
    after = {p.relative_to(reports).as_posix(): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    assert after == before

    subprocess.run(["mount", "-o", f"remount,size={one * 4 // 4096 * 4096}", str(reports)], check=True)  # space freed
    second = publish(warehouse, reports, "run-2", DAY + dt.timedelta(days=1), PASSED)
    assert (reports / "latest").resolve() == second.run_dir.resolve()
    assert sorted(p.name for p in (reports / "runs").iterdir()) == sorted([first.run_dir.name, second.run_dir.name])
