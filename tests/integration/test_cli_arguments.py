"""Every ``hospital`` command with a bad argument: exit code 2, one line on stderr naming the argument, and nothing
created (no data home, no warehouse, no Prefect database, so no flow run or server either)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

HOSPITAL = str(Path(sys.executable).parent / "hospital")

# (arguments, extra environment, what the one line must say)
CASES = [
    (["generate", "--patients", "-5"], {}, "--patients: input should be greater than 0"),
    (["generate", "--patients", "0"], {}, "--patients"),
    (["generate", "--start", "2024-13-01"], {}, "'2024-13-01' does not match"),
    (["generate", "--start", "2024-02-01", "--end", "2024-01-01"], {}, "before"),
    (["generate", "--defect-rate", "0.9"], {}, "--defect-rate"),
    (["generate", "--workers", "0"], {}, "--workers"),
    (["generate", "--source", "no__such_source"], {}, "no__such_source"),
    (["generate", "--as-of", "2026-01-01", "--end", "2025-12-31"], {}, "not both"),
    (["generate"], {"HOSPITAL_TIMEZONE": "Mars/Olympus"}, "HOSPITAL_TIMEZONE: unknown time zone 'Mars/Olympus'"),
    (["load", "x/../y"], {}, "batch id 'x/../y' is not valid"),
    (["load", "never-landed"], {}, "never-landed"),
    (["load", "never-landed", "--max-reject-rate", "2"], {}, "--max-reject-rate"),
    (["load"], {}, "give either a batch id or --dir"),
    (["run", "--patients", "-5"], {}, "--patients: input should be greater than 0"),
    (["run", "--seed", "-1"], {}, "--seed"),
    (["run", "--defect-rate", "7"], {}, "--defect-rate"),
    (["run", "--batch", "x/../y"], {}, "--batch: batch id 'x/../y' is not valid"),
    (["run", "--batch", "daily-20241340"], {}, "impossible date"),
    (["run", "--batch", "initial-20230101-20231231"], {}, "the network starts on 2024-01-01"),
    (["run", "--batch", "hms-extract-7"], {}, "has not landed"),
    (["run"], {"HOSPITAL_PATIENTS": "-5"}, "HOSPITAL_PATIENTS: input should be greater than 0"),
    (["run"], {"HOSPITAL_TIMEZONE": "Mars/Olympus"}, "HOSPITAL_TIMEZONE"),
    (["run"], {"HOSPITAL_DEFECT_RATE": "x"}, "HOSPITAL_DEFECT_RATE"),
    (["run"], {"PREFECT_HOME": "/nonexistent-parent-dir/prefect"}, "PREFECT_HOME /nonexistent-parent-dir/prefect"),
    (["backfill", "--start", "2026-01-07", "--end", "2026-01-01"], {}, "--end 2026-01-01 is before --start"),
    (["backfill", "--start", "2026-13-01", "--end", "2026-01-01"], {}, "--start"),
    (["backfill", "--start", "2025-06-01", "--end", "2025-06-02"], {}, "inside the initial history"),
    (["backfill", "--end", "2026-01-01"], {}, "--start"),
    (["backfill", "--start", "2026-01-01", "--end", "2026-01-02", "--patients", "-1"], {}, "--patients"),
    (["status", "--limit", "0"], {}, "--limit"),
    (["docs"], {"HOSPITAL_DOCS_URL": "ftp://example"}, "HOSPITAL_DOCS_URL"),
    (["serve", "--timezone", "Mars/Olympus"], {}, "--timezone: unknown time zone 'Mars/Olympus'"),
    (["no-such-command"], {}, "No such command"),
    (["run", "--no-such-option"], {}, "No such option"),
]


@pytest.mark.parametrize(("args", "env", "says"), CASES, ids=[" ".join(c[0]) + str(c[1]) for c in CASES])
def test_a_bad_argument_exits_2_with_one_line_and_creates_nothing(tmp_path, args, env, says):
    home, prefect_home = tmp_path / "home", tmp_path / "prefect"
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("HOSPITAL_", "PREFECT_"))}
    environment.update({"HOSPITAL_HOME": str(home), "PREFECT_HOME": str(prefect_home), **env})
    done = subprocess.run([HOSPITAL, *args], capture_output=True, text=True, env=environment, cwd=tmp_path,
                          timeout=120)  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stdout[-1000:], done.stderr[-2000:])
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and says in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "something was created"
