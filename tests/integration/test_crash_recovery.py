"""Real ``hospital run`` processes killed at several stages, with SIGKILL, SIGTERM and Ctrl-C (SIGINT): each leaves
nothing that blocks or misleads the next run (the warehouse lock, the temporary Prefect server, the run's record),
and the next run proceeds at once; the last one publishes, with every landed row loaded exactly once.

One module fixture walks the sequence on one data home (500 patients, two weeks of January 2024), so each kill
finds the state the previous one left: that is the user's path (a run killed, then the next scheduled or manual run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psutil
import pytest

from flows import runs
from flows.locking import current_holder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSPITAL = str(Path(sys.executable).parent / "hospital")
BATCH = "initial-20240101-20240114"
STAGE_TIMEOUT = 600


@dataclass
class Killed:
    """One run killed at a stage: how it ended and what it left."""

    stage: str
    signal: int
    returncode: int
    seconds_to_exit: float
    server_pids: list[int]
    stderr: str
    status_after: str


def _environment(root: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HOSPITAL_", "PREFECT_"))}
    env.update({"HOSPITAL_HOME": str(root / "home"), "PREFECT_HOME": str(root / "prefect"),
                "HOSPITAL_PATIENTS": "500", "HOSPITAL_SEED": "5", "HOSPITAL_END_DATE": "2024-01-14",
                "HOSPITAL_LOCK_TIMEOUT_SECONDS": "30", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})  # fmt: skip
    return env


def _servers_of(pid: int) -> list[int]:
    """The temporary Prefect servers a command started (its uvicorn children)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c.pid for c in children if "uvicorn" in " ".join(c.cmdline())]


def _run_and_kill(root: Path, marker: str, sig: int, delay: float) -> Killed:
    """Start ``hospital run``, wait for ``marker`` in its log, wait ``delay`` s, send ``sig``; collect the aftermath."""
    env = _environment(root)
    log = root / f"run-{len(list(root.glob('run-*.err')))}.err"
    with log.open("w") as stderr:
        process = subprocess.Popen([HOSPITAL, "run"], env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=root)
        deadline = time.monotonic() + STAGE_TIMEOUT
        while marker not in log.read_text():
            assert process.poll() is None, f"the run ended before {marker!r}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {marker!r} within {STAGE_TIMEOUT} s"
            time.sleep(0.2)
        time.sleep(delay)
        servers = _servers_of(process.pid)
        sent = time.monotonic()
        process.send_signal(sig)
        returncode = process.wait(120)
        seconds = time.monotonic() - sent
    for pid in servers:  # the kernel (parent-death signal) or the command itself stops the server
        try:
            psutil.Process(pid).wait(15)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            pytest.fail(f"the temporary server {pid} outlived the run killed at {marker!r} by 15 s")
    status = subprocess.run([HOSPITAL, "status"], env=env, capture_output=True, text=True, timeout=120, cwd=root)
    assert status.returncode == 0, status.stderr
    return Killed(marker, sig, returncode, seconds, servers, log.read_text(), status.stdout)


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    """Kill four runs of the same batch at different stages, then let a fifth publish. (The stages after dbt cost a
    whole dbt build each, so one kill there is enough; Ctrl-C is tried before dbt.)"""
    root = tmp_path_factory.mktemp("crash")
    killed = [
        _run_and_kill(root, "Beginning subflow run 'land'", signal.SIGKILL, 0.3),
        _run_and_kill(root, "Beginning subflow run 'gate-raw'", signal.SIGINT, 1.0),
        _run_and_kill(root, "Beginning subflow run 'dbt-build'", signal.SIGTERM, 4.0),
        _run_and_kill(root, "Beginning subflow run 'publish'", signal.SIGKILL, 2.0),
    ]
    began = time.monotonic()
    final = subprocess.run([HOSPITAL, "run"], env=_environment(root), capture_output=True, text=True,
                           timeout=STAGE_TIMEOUT, cwd=root)  # fmt: skip
    return root, killed, final, time.monotonic() - began


def test_every_killed_run_stops_its_server_and_ends_as_its_signal_says(sequence):
    _, killed, _, _ = sequence
    for kill in killed:
        assert kill.server_pids, f"no temporary server seen for the run killed at {kill.stage}"
        if kill.signal == signal.SIGKILL:
            assert kill.returncode == -signal.SIGKILL
        else:  # SIGTERM and Ctrl-C end the run cleanly, with the shell's code and one explanation
            assert kill.returncode == 128 + kill.signal, kill.stderr[-2000:]
            assert kill.seconds_to_exit < 60
            assert kill.stderr.count("the run was recorded as interrupted") == 1
            assert "Traceback" not in kill.stderr


def test_status_never_shows_a_dead_run_as_running(sequence):
    _, killed, _, _ = sequence
    for kill in killed[1:]:  # from the second kill on, the warehouse holds the runs ledger
        listed = [line for line in kill.status_after.splitlines() if BATCH in line and "stage=" in line]
        assert listed, kill.status_after
        assert "interrupted" in listed[0] and "running" not in kill.status_after, kill.status_after


def test_the_next_run_proceeds_at_once_and_publishes_every_row_once(sequence):
    root, killed, final, _ = sequence
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"Batch {BATCH} published" in final.stdout
    assert "waiting for the warehouse" not in final.stderr + "".join(k.stderr for k in killed)
    assert current_holder(root / "home" / "warehouse.duckdb") is None
    warehouse = root / "home" / "warehouse.duckdb"
    history = runs.last_runs(warehouse, 20)
    assert [r.status for r in history] == ["published"] + ["interrupted"] * (len(history) - 1)
    assert all(r.message for r in history[1:])
    manifest = json.loads((root / "home" / "landing" / BATCH / "manifest.json").read_text())
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for entry in manifest["files"]:
            loaded = connection.execute(f'select count(*) from raw."{entry["source"]}" where _batch_id = ?',
                                        [BATCH]).fetchone()[0]  # fmt: skip
            assert loaded == entry["rows"], entry["source"]
    assert not list((root / "home" / "reports").glob(".staging-*"))  # the publish killed mid-way left nothing
    assert not list((root / "home" / "landing").glob(".*.partial-*"))
