"""`hospital generate`: defaults into the data home, and clear errors with exit code 2 that write nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

pytestmark = pytest.mark.integration
runner = CliRunner()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_generate_writes_a_batch_under_the_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOSPITAL_HOME", str(tmp_path / "home"))
    result = runner.invoke(app, ["generate", "--patients", "2000", "--start", "2024-01-01", "--end", "2024-02-29"])
    assert result.exit_code == 0, result.output
    batch = tmp_path / "home" / "landing" / "initial-20240101-20240229"
    manifest = json.loads((batch / "manifest.json").read_text())
    assert manifest["network"] == {"seed": 42, "patients": 2000, "start_date": "2024-01-01"}
    assert "initial-20240101-20240229" in result.output
    daily = runner.invoke(app, ["generate", "--patients", "2000", "--start", "2024-01-01", "--as-of", "2024-03-01"])
    assert daily.exit_code == 0, daily.output
    assert (tmp_path / "home" / "landing" / "daily-20240301" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--patients", "0"], "--patients: input should be greater than 0 (got 0)"),
        (["--patients", "-5"], "--patients: input should be greater than 0 (got -5)"),
        (["--start", "2024-05-01", "--end", "2024-01-01"], "is before start date"),
        (["--end", "2024-02-01", "--as-of", "2024-03-01"], "not both"),
        (["--as-of", "2023-12-01"], "must be after the network's start date"),
        (["--source", "radiology__images"], "unknown sources"),
        (["--defect-rate", "0.9"], "--defect-rate: input should be less than or equal to 0.5"),
    ],
)
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, arguments, message):
    out = tmp_path / "landing"
    result = runner.invoke(app, ["generate", "--out", str(out), "--patients", "1000", "--start", "2024-01-01",
                                 *arguments])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert _files(out) == []


def test_an_unwritable_output_folder_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["generate", "--out", str(blocker / "landing"), "--patients", "500"])
    assert result.exit_code == 2
    assert "choose a writable --out" in result.output


@pytest.mark.parametrize(
    ("extra", "exit_code", "message"),
    [([], 2, "already exists"), (["--skip-existing"], 0, "already landed")],
)
def test_an_existing_batch_is_kept_refused_or_skipped(tmp_path, extra, exit_code, message):
    arguments = [
        "generate",
        "--out",
        str(tmp_path),
        "--patients",
        "500",
        "--start",
        "2024-01-01",
        "--end",
        "2024-01-31",
    ]
    assert runner.invoke(app, arguments).exit_code == 0
    before = {p: p.read_bytes() for p in _files(tmp_path) if p.is_file()}
    again = runner.invoke(app, [*arguments, *extra])
    assert again.exit_code == exit_code
    assert message in again.output
    assert {p: p.read_bytes() for p in _files(tmp_path) if p.is_file()} == before


def test_the_installed_console_script_runs(tmp_path):
    script = Path(sys.executable).with_name("hospital")
    completed = subprocess.run(
        [str(script), "generate", "--out", str(tmp_path), "--patients", "500", "--end", "2024-01-15"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "initial-20240101-20240115" / "manifest.json").exists()
