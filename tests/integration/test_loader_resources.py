"""Resource exhaustion: a full disk under the warehouse ends a load with one clear message, exit 1, nothing
partial, and an exact re-run once space is freed; the loader's DuckDB runs with a bounded memory limit.

The full-disk tests mount a small tmpfs as the data home, which needs root (as in CI and the dev container);
elsewhere they skip, saying so.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from flows.load_cli import EXIT_DATA_FAULT, load
from flows.warehouse import load_batch, open_warehouse
from flows.warehouse.duckdb_backend import MEMORY_LIMIT

pytestmark = pytest.mark.integration

_KIT = Path(__file__).resolve().parents[1] / "fixtures" / "loader" / "batchkit.py"
_spec = importlib.util.spec_from_file_location("batchkit", _KIT)
kit = importlib.util.module_from_spec(_spec)
sys.modules["batchkit"] = kit
_spec.loader.exec_module(kit)

SCRIPT = Path(sys.executable).with_name("hospital")
PATIENTS = kit.REGISTRY["registration__patients"]
CHARGES = kit.REGISTRY["billing__charges"]
DISK_MB = 40

app = typer.Typer()
app.command("load")(load)
app.callback()(lambda: None)


def _mount(point: Path, megabytes: int) -> None:
    point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs to fill ({done.stderr.strip() or done.returncode}); needs CAP_SYS_ADMIN")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A {DISK_MB} MB file system (tmpfs) to use as the data home; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("filling a disk needs a small file system of its own: mounting a tmpfs needs root")
    point = tmp_path / "home"
    _mount(point, DISK_MB)
    try:
        yield point
    finally:
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def fill(home: Path, leave: int) -> Path:
    """Fill the file system of ``home`` until ``leave`` bytes are free; return the filler file."""
    filler = home / "filler.bin"
    info = os.statvfs(home)
    free = info.f_bavail * info.f_frsize
    with filler.open("wb") as handle:
        remaining = max(free - leave, 0)
        block = b"\0" * (1 << 20)
        while remaining > 0:
            handle.write(block[: min(len(block), remaining)])
            remaining -= min(len(block), remaining)
    return filler


@functools.cache
def charges(rows: int) -> bytes:
    return kit.file_bytes(CHARGES, kit.rows_for(CHARGES, rows, start=1_000_000))


def big_batch(landing: Path, batch_id: str, rows: int) -> Path:
    """A batch of charges that does not fit in a few MB of free space (from 122,880 rows, a row group, DuckDB
    writes rows to the database file before the commit; fewer go to the write-ahead log at the commit)."""
    data = charges(rows)
    return kit.write_batch(landing, batch_id, {kit.file_name(CHARGES, batch_id): ("billing__charges", data, rows)})


def raw_state(database: Path) -> dict[str, list[tuple]]:
    """The raw tables and rejects, and the ledger rows of loaded files (a failed attempt's rows aside)."""
    state = kit.snapshot(database)
    ledger = [row for row in state.pop("ledger.load_ledger", []) if "loaded" in row]
    return {**state, "loaded files": ledger}


@pytest.mark.parametrize(
    ("free_kb", "rows", "stage"),
    [
        (0, 40_000, "committing the batch to the write-ahead log"),
        (512, 40_000, "committing the batch to the write-ahead log"),
        (1024, 150_000, "loading charges_b2.csv"),
    ],
    ids=["nothing-free", "log-full", "rows-do-not-fit"],
)
def test_loader_on_a_full_disk_fails_with_one_message_and_reruns_exactly(
    small_disk: Path, tmp_path: Path, free_kb: int, rows: int, stage: str
) -> None:
    """Whatever stage the disk fills at (writing rows into the database file, committing the log), the load
    ends with exit 1 and one message naming the full file system and the stage; the warehouse is as before;
    a re-run once space is freed equals a load that never failed."""
    landing = tmp_path / "landing"
    first = kit.write_batch(landing, "b1", kit.standard_files("20250101", n=20))
    second = big_batch(landing, "b2", rows)
    runner = CliRunner()
    assert runner.invoke(app, ["load", "--dir", str(first), "--home", str(small_disk)]).exit_code == 0
    before = raw_state(small_disk / "warehouse.duckdb")
    filler = fill(small_disk, free_kb * 1024)

    failed = runner.invoke(app, ["load", "--dir", str(second), "--home", str(small_disk)])

    assert failed.exit_code == EXIT_DATA_FAULT, failed.output
    assert isinstance(failed.exception, SystemExit), failed.exception  # a message, not a traceback
    assert "no space left on the file system of" in failed.output
    assert f"mounted at {small_disk.resolve()}" in failed.output
    assert "Nothing of the batch was loaded" in failed.output
    assert f"({stage})" in failed.output
    filler.unlink()  # space is freed
    assert raw_state(small_disk / "warehouse.duckdb") == before  # nothing partial
    again = runner.invoke(app, ["load", "--dir", str(second), "--home", str(small_disk)])
    assert again.exit_code == 0, again.output
    clean = tmp_path / "clean.duckdb"
    for folder in (first, second):
        with open_warehouse("duckdb", duckdb_path=clean) as warehouse:
            assert load_batch(folder, kit.REGISTRY, warehouse).outcome == "loaded"
    assert raw_state(small_disk / "warehouse.duckdb") == raw_state(clean)


@pytest.mark.skipif(not SCRIPT.exists(), reason="the hospital script is not installed (run make install)")
def test_loader_script_on_a_full_disk_prints_no_traceback(small_disk: Path, tmp_path: Path) -> None:
    second = big_batch(tmp_path / "landing", "b2", 40_000)
    fill(small_disk, 512 * 1024)
    done = subprocess.run(
        [str(SCRIPT), "load", "--dir", str(second), "--home", str(small_disk)],
        capture_output=True,
        text=True,
        env={**os.environ, "HOSPITAL_HOME": str(small_disk)},
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_DATA_FAULT, output
    assert "Traceback" not in output
    assert "no space left on the file system of" in output and str(small_disk.resolve()) in output
    assert output.count("no space left on the file system of") <= 3  # one message (summary line and batch line)


def test_loader_connection_runs_with_a_memory_limit_and_a_spill_folder(tmp_path: Path) -> None:
    reference = duckdb.connect()
    reference.execute(f"set memory_limit = '{MEMORY_LIMIT}'")
    (expected,) = reference.execute("select current_setting('memory_limit')").fetchall()[0]
    reference.close()
    folder = kit.write_batch(tmp_path / "landing", "b1", kit.standard_files("20250101", n=5))
    with open_warehouse("duckdb", duckdb_path=tmp_path / "w.duckdb") as warehouse:
        assert load_batch(folder, kit.REGISTRY, warehouse).outcome == "loaded"
        limit, temp = warehouse.con.execute(
            "select current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchall()[0]
    assert (limit, temp) == (expected, str(tmp_path / "w.duckdb.tmp"))
    assert not (tmp_path / "w.duckdb.scratch").exists()  # scratch copies of landing files are removed


def test_loader_commits_when_only_the_checkpoint_finds_the_disk_full(small_disk: Path, tmp_path: Path) -> None:
    """Free space that holds the write-ahead log but not the checkpoint after it: the batch is committed (exit
    0) and the summary says the checkpoint waits; once space is freed, the warehouse holds exactly the batch.

    The window is found by a sweep of free space (the log of this batch is ~11 MB, the checkpoint ~2.4 MB more
    in DuckDB 2.0); every size must end in one of the three outcomes, and one size must end in this one."""
    landing = tmp_path / "landing"
    first = kit.write_batch(landing, "b1", kit.standard_files("20250101", n=20))
    second = big_batch(landing, "b2", 40_000)
    clean = tmp_path / "clean.duckdb"
    for folder in (first, second):
        with open_warehouse("duckdb", duckdb_path=clean) as warehouse:
            assert load_batch(folder, kit.REGISTRY, warehouse).outcome == "loaded"
    expected = raw_state(clean)
    runner = CliRunner()
    seen = set()
    for free_mb in range(9, 16):
        home = small_disk / f"try-{free_mb}"
        home.mkdir()
        assert runner.invoke(app, ["load", "--dir", str(first), "--home", str(home)]).exit_code == 0
        before = raw_state(home / "warehouse.duckdb")
        filler = fill(small_disk, free_mb * 1024 * 1024)
        result = runner.invoke(app, ["load", "--dir", str(second), "--home", str(home)])
        filler.unlink()
        assert isinstance(result.exception, SystemExit | None), result.exception
        if result.exit_code == EXIT_DATA_FAULT:
            assert "no space left on the file system of" in result.output
            assert raw_state(home / "warehouse.duckdb") == before
            seen.add("failed")
        else:
            assert result.exit_code == 0, result.output
            postponed = "is committed in the write-ahead log" in result.output
            seen.add("committed, checkpoint postponed" if postponed else "loaded")
            assert raw_state(home / "warehouse.duckdb") == expected  # replayed from the log if need be
        shutil.rmtree(home)
        if "committed, checkpoint postponed" in seen:
            break
    assert "committed, checkpoint postponed" in seen, f"no free size in 9-15 MB hit the checkpoint: {seen}"
