"""``hospital load``: through typer's CliRunner and through the installed ``hospital`` script."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flows.load_cli import EXIT_BAD_ARGUMENTS, EXIT_DATA_FAULT, load

pytestmark = pytest.mark.integration

_KIT = Path(__file__).resolve().parents[1] / "fixtures" / "loader" / "batchkit.py"
_spec = importlib.util.spec_from_file_location("batchkit", _KIT)
kit = importlib.util.module_from_spec(_spec)
sys.modules["batchkit"] = kit
_spec.loader.exec_module(kit)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("hospital")
PATIENTS = kit.REGISTRY["registration__patients"]

app = typer.Typer()
app.command("load")(load)


@app.callback()
def _main() -> None:
    """Keep ``load`` a sub-command, as in the real ``hospital`` app."""


def _home_with_batch(tmp_path: Path, batch_id: str = "b1", rows: int = 8) -> Path:
    home = tmp_path / "home"
    name = kit.file_name(PATIENTS, "20250101")
    data = kit.file_bytes(PATIENTS, kit.rows_for(PATIENTS, rows))
    kit.write_batch(home / "landing", batch_id, {name: ("registration__patients", data, rows)})
    return home


def test_loader_cli_loads_batch_and_prints_summary(tmp_path: Path) -> None:
    home = _home_with_batch(tmp_path)
    result = CliRunner().invoke(app, ["load", "b1", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "patients_20250101.csv" in result.output and "8 rows loaded" in result.output
    again = CliRunner().invoke(app, ["load", "b1", "--home", str(home)])
    assert again.exit_code == 0 and "skipped" in again.output
    assert (home / "warehouse.duckdb").exists()


def test_loader_cli_exits_1_when_the_batch_fails(tmp_path: Path) -> None:
    home = _home_with_batch(tmp_path)
    (home / "landing" / "b1" / "stray.csv").write_text("x")
    result = CliRunner().invoke(app, ["load", "b1", "--home", str(home)])
    assert result.exit_code == EXIT_DATA_FAULT
    assert "stray.csv" in result.output and "failed" in result.output


@pytest.mark.parametrize("args", [["../landing/b1"], ["nope"], [], ["b1", "--dir", "."]])
def test_loader_cli_exits_2_on_bad_arguments(args: list[str], tmp_path: Path) -> None:
    home = _home_with_batch(tmp_path)
    result = CliRunner().invoke(app, ["load", *args, "--home", str(home)])
    assert result.exit_code == EXIT_BAD_ARGUMENTS, result.output
    assert not (home / "warehouse.duckdb").exists()


def test_loader_cli_loads_a_folder_given_by_path(tmp_path: Path) -> None:
    home = _home_with_batch(tmp_path)
    folder = home / "landing" / "b1"
    (folder / "manifest.json").unlink()
    result = CliRunner().invoke(app, ["load", "--dir", str(folder), "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "no manifest.json" in result.output


def _script_prefix() -> list[str]:
    """``hospital load`` once other commands exist; ``hospital`` alone while load is the only command."""
    usage = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    return [str(SCRIPT)] if "[batch]" in usage.splitlines()[1] else [str(SCRIPT), "load"]


@pytest.mark.skipif(not SCRIPT.exists(), reason="the hospital script is not installed (run make install)")
def test_loader_installed_script_loads_and_fails_with_exit_codes(tmp_path: Path) -> None:
    home = _home_with_batch(tmp_path)
    env = {**os.environ, "HOSPITAL_HOME": str(home)}
    ok = subprocess.run([*_script_prefix(), "b1"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "8 rows loaded" in ok.stdout
    bad = subprocess.run([*_script_prefix(), "../b1"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == EXIT_BAD_ARGUMENTS and "not valid" in bad.stderr
