"""A batch is read from its own folder only: links, FIFOs, devices and folders are refused before anything is
opened, and a file swapped for a link between the plan and the load cannot escape (O_NOFOLLOW)."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path

import pytest

from flows.warehouse import load_batch, open_warehouse
from flows.warehouse import loader as loader_module

pytestmark = pytest.mark.integration

_KIT = Path(__file__).resolve().parents[1] / "fixtures" / "loader" / "batchkit.py"
_spec = importlib.util.spec_from_file_location("batchkit", _KIT)
kit = importlib.util.module_from_spec(_spec)
sys.modules["batchkit"] = kit
_spec.loader.exec_module(kit)

PATIENTS = kit.REGISTRY["registration__patients"]
NAME = kit.file_name(PATIENTS, "20250101")
ROWS = 12


def run(folder: Path, database: Path):
    with open_warehouse("duckdb", duckdb_path=database) as warehouse:
        return load_batch(folder, kit.REGISTRY, warehouse)


def patients_bytes(start: int = 1) -> bytes:
    return kit.file_bytes(PATIENTS, kit.rows_for(PATIENTS, ROWS, start))


def batch(tmp_path: Path, *, manifest: bool) -> Path:
    """A one-file batch of patients (with or without manifest) in tmp_path/landing/b1."""
    return kit.write_batch(
        tmp_path / "landing", "b1", {NAME: ("registration__patients", patients_bytes(), ROWS)}, manifest=manifest
    )


def outside_file(tmp_path: Path) -> Path:
    """A valid patients file outside the batch folder (a link target)."""
    target = tmp_path / "elsewhere" / "patients_outside.csv"
    target.parent.mkdir()
    target.write_bytes(patients_bytes(start=500))
    return target


def assert_refused(result, database: Path, *fragments: str) -> None:
    assert result.outcome == "failed", result.message
    for fragment in fragments:
        assert fragment in result.message
    assert all(rows == [] for name, rows in kit.snapshot(database).items() if name.startswith("raw."))


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_loader_refuses_a_listed_file_that_links_outside_the_batch(tmp_path: Path, manifest: bool) -> None:
    folder = batch(tmp_path, manifest=manifest)
    (folder / NAME).unlink()
    (folder / NAME).symlink_to(outside_file(tmp_path))
    result = run(folder, tmp_path / "w.duckdb")
    assert_refused(result, tmp_path / "w.duckdb", NAME, "symbolic link", "own folder")


def test_loader_refuses_a_link_to_etc_passwd_without_opening_it(tmp_path: Path) -> None:
    folder = batch(tmp_path, manifest=False)
    (folder / "patients_passwd.csv").symlink_to("/etc/passwd")
    result = run(folder, tmp_path / "w.duckdb")
    assert_refused(result, tmp_path / "w.duckdb", "patients_passwd.csv", "symbolic link")
    assert "delimiter" not in result.message  # refused as a link, not after reading it


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_loader_refuses_links_even_to_files_inside_the_batch(tmp_path: Path, manifest: bool) -> None:
    sibling = kit.file_name(PATIENTS, "20250102")
    files = {
        NAME: ("registration__patients", patients_bytes(), ROWS),
        sibling: ("registration__patients", patients_bytes(start=100), ROWS),
    }
    folder = kit.write_batch(tmp_path / "landing", "b1", files, manifest=manifest)
    (folder / NAME).unlink()
    (folder / NAME).symlink_to(sibling)  # relative, inside the folder
    result = run(folder, tmp_path / "w.duckdb")
    assert_refused(result, tmp_path / "w.duckdb", NAME, "symbolic link")


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_loader_says_a_folder_under_a_listed_name_is_not_a_regular_file(tmp_path: Path, manifest: bool) -> None:
    folder = batch(tmp_path, manifest=manifest)
    (folder / NAME).unlink()
    (folder / NAME).mkdir()
    result = run(folder, tmp_path / "w.duckdb")
    assert_refused(result, tmp_path / "w.duckdb", NAME, "not a regular file", "folder")
    assert "missing" not in result.message


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
def test_loader_refuses_a_fifo_without_blocking_on_it(tmp_path: Path, manifest: bool) -> None:
    folder = batch(tmp_path, manifest=manifest)
    (folder / NAME).unlink()
    os.mkfifo(folder / NAME)
    results = []
    worker = threading.Thread(target=lambda: results.append(run(folder, tmp_path / "w.duckdb")), daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # the loader opened the FIFO and waits for a writer: release it, then fail
        os.close(os.open(folder / NAME, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=10)
        pytest.fail("the loader blocked opening a FIFO")
    assert_refused(results[0], tmp_path / "w.duckdb", NAME, "FIFO")


def test_loader_refuses_a_device_file(tmp_path: Path) -> None:
    folder = batch(tmp_path, manifest=False)
    (folder / "patients_null.csv").symlink_to("/dev/null")  # a link first: refused as a link
    assert_refused(run(folder, tmp_path / "w.duckdb"), tmp_path / "w.duckdb", "patients_null.csv", "symbolic link")
    (folder / "patients_null.csv").unlink()
    try:
        os.mknod(folder / "patients_null.csv", 0o600 | 0o020000, os.makedev(1, 3))  # a character device
    except PermissionError:
        pytest.skip("creating a device node needs root (CAP_MKNOD)")
    result = run(folder, tmp_path / "w2.duckdb")
    assert_refused(result, tmp_path / "w2.duckdb", "patients_null.csv", "device")


def test_loader_refuses_a_manifest_that_is_a_link(tmp_path: Path) -> None:
    folder = batch(tmp_path, manifest=True)
    real = tmp_path / "manifest_elsewhere.json"
    (folder / "manifest.json").rename(real)
    (folder / "manifest.json").symlink_to(real)
    result = run(folder, tmp_path / "w.duckdb")
    assert_refused(result, tmp_path / "w.duckdb", "manifest.json", "symbolic link")


def test_loader_refuses_a_batch_folder_that_is_a_link(tmp_path: Path) -> None:
    folder = batch(tmp_path, manifest=True)
    link = tmp_path / "landing" / "b2"
    link.symlink_to(folder)
    result = run(link, tmp_path / "w.duckdb")
    assert_refused(result, tmp_path / "w.duckdb", "symbolic link")


def test_loader_does_not_follow_a_file_swapped_for_a_link_after_planning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan sees a regular file; a link put in its place before the load opens it is refused (O_NOFOLLOW)."""
    folder = batch(tmp_path, manifest=False)
    target = outside_file(tmp_path)
    real_plan = loader_module.plan_batch

    def plan_then_swap(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        (folder / NAME).unlink()
        (folder / NAME).symlink_to(target)
        return plan

    monkeypatch.setattr(loader_module, "plan_batch", plan_then_swap)
    result = run(folder, tmp_path / "w.duckdb")
    assert_refused(result, tmp_path / "w.duckdb", NAME, "symbolic link")
