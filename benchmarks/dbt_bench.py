"""Benchmark: a full `dbt build` of the whole project and one daily incremental build, at several network sizes.

For each size: generate an initial batch (``--years`` of history) and the next day's batch, load the initial
batch into a fresh DuckDB warehouse, time ``dbt build`` (lists, staging, integration, marts, snapshots and every
test: what ``make run`` runs), load the daily batch and time the daily command (``dbt build`` of all but the
snapshots with the daily test scope; the incremental models narrowed to the day's keys, the rest rebuilt), then
the snapshots apart. The incremental models' own build seconds (from run_results.json)
are shown apart, and the daily build's costliest nodes are listed: what still scales with all the data shows
there. dbt runs as the CLI the pipeline calls (a subprocess), with its target and logs in the work
folder. Generation and loading are timed for context only. Prints one Markdown table.

    .venv/bin/python benchmarks/dbt_bench.py [--patients 10000 100000 1000000] [--years 1] [--work DIR]
        [--project DIR] [--full-daily-tests] [--compare-daily DIR]

The machine may be shared: the figures are wall-clock seconds of one run, not a best of several.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flows.contracts.registry import load_registry
from flows.warehouse import load_batch, open_warehouse
from generators.batch import NetworkSpec, generate_daily, generate_initial

PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")
START = dt.date(2024, 1, 1)
# The daily command (docs/dbt.md, "Daily builds"): everything but the snapshots, which run after it on their own,
# and the lists, loaded by the full build just before (the flow leaves them out while they are unchanged).
DAILY_BUILD = ("--exclude", "resource_type:snapshot", "resource_type:seed", "--indirect-selection", "cautious")
# What a project before the lists change and the scope in the environment ran (``--compare-daily``).
COMPARE_DAILY_BUILD = ("--exclude", "resource_type:snapshot")
INCREMENTAL_MODELS = (
    "fct_admissions", "fct_appointments", "fct_charges", "fct_claims", "dim_patients", "int_claims_pivoted",
    "int_encounters_unioned", "int_coverage_periods_sequenced", "int_patients_joined_to_coverage",
)  # fmt: skip


@dataclass
class Figures:
    """Timings and sizes of one network size."""

    patients: int
    raw_rows: int
    daily_rows: int
    generate_seconds: float
    load_seconds: float
    full_build_seconds: float
    daily_build_seconds: float
    full_facts_seconds: float
    daily_facts_seconds: float
    full_tests_seconds: float
    daily_tests_seconds: float
    fact_rows: int
    nodes: int
    snapshot_seconds: float = 0.0
    compare_daily_seconds: float | None = None
    compare_daily_tests_seconds: float | None = None


def node_seconds(work: Path) -> tuple[float, float]:
    """Node seconds of the last command (run_results.json): (incremental models built, data tests run)."""
    results = json.loads((work / "target" / "run_results.json").read_text(encoding="utf-8"))["results"]
    facts = sum(item["execution_time"] for item in results if item["unique_id"].split(".")[-1] in INCREMENTAL_MODELS)
    tests = sum(item["execution_time"] for item in results if item["unique_id"].startswith("test."))
    return facts, tests


def costliest_nodes(work: Path, count: int = 8) -> str:
    """The ``count`` slowest models and snapshots of the last command, as ``name seconds`` pairs."""
    results = json.loads((work / "target" / "run_results.json").read_text(encoding="utf-8"))["results"]
    built = [item for item in results if not item["unique_id"].startswith(("test.", "unit_test."))]
    slowest = sorted(built, key=lambda item: item["execution_time"], reverse=True)[:count]
    return ", ".join(f"{item['unique_id'].split('.')[-1]} {item['execution_time']:.1f}" for item in slowest)


def dbt_build(
    warehouse: Path, work: Path, project: Path, dbt_vars: str | None = None, selection: tuple[str, ...] = (),
    scope: str | None = None,
) -> tuple[float, int]:  # fmt: skip
    """Run ``dbt build`` (of ``selection``, e.g. ``--exclude ...``) on the warehouse; return (wall seconds, nodes
    run). ``scope``: the daily test scope's instant, in the environment as the flow passes it. Raises when dbt
    fails."""
    environment = {**os.environ, "HOSPITAL_WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb",
                   "DBT_TESTS_LOADED_AFTER": scope or ""}  # fmt: skip
    command = [str(DBT), "build", "--project-dir", str(project), "--profiles-dir", str(project),
               "--target-path", str(work / "target"), "--log-path", str(work / "logs")]  # fmt: skip
    command += list(selection)
    if dbt_vars:
        command += ["--vars", dbt_vars]
    started = time.perf_counter()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"dbt build failed on {warehouse} (see {work / 'logs'}):\n{completed.stdout[-3000:]}")
    summary = next(line for line in reversed(completed.stdout.splitlines()) if "TOTAL=" in line)
    return seconds, int(summary.rsplit("TOTAL=", 1)[1].split()[0])


def load(batch: Path, warehouse: Path) -> int:
    """Load one batch; return the rows loaded."""
    with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
        result = load_batch(batch, load_registry(), handle)
    return sum(file.rows_loaded for file in result.files)


def bench(
    patients: int, years: int, work: Path, project: Path, scoped_daily_tests: bool, compare: Path | None = None
) -> Figures:
    """Generate, load and build one network size in ``work``."""
    registry = load_registry()
    network = NetworkSpec(seed=2024, patients=patients, start_date=START)
    end = START.replace(year=START.year + years) - dt.timedelta(days=1)
    started = time.perf_counter()
    initial = generate_initial(work / "landing", network, end, registry=registry, workers=2)
    daily = generate_daily(work / "landing", network, end + dt.timedelta(days=1), registry=registry)
    generate_seconds = time.perf_counter() - started
    warehouse = work / "warehouse.duckdb"
    started = time.perf_counter()
    raw_rows = load(initial.path, warehouse)
    load_seconds = time.perf_counter() - started
    full_seconds, nodes = dbt_build(warehouse, work, project)
    full_facts, full_tests = node_seconds(work)
    # The daily command: tests of the large models limited to the rows loaded from now on (the daily batch).
    loaded_after = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    daily_rows = load(daily.path, warehouse)
    daily_vars = f"{{tests_loaded_after: '{loaded_after}'}}" if scoped_daily_tests else None
    scope = loaded_after if scoped_daily_tests else None
    compare_seconds = compare_tests = None
    if compare is not None:  # the same day on a copy of the same warehouse, built by the other project
        copy = work / "compare.duckdb"
        shutil.copyfile(warehouse, copy)
        compare_seconds, _ = dbt_build(copy, work, compare, daily_vars, COMPARE_DAILY_BUILD)
        _, compare_tests = node_seconds(work)
        print(f"  same day, other project, costliest nodes (s): {costliest_nodes(work)}", flush=True)
        copy.unlink()
    daily_seconds, _ = dbt_build(warehouse, work, project, None, DAILY_BUILD, scope)
    daily_facts, daily_tests = node_seconds(work)
    print(f"  daily build, costliest nodes (s): {costliest_nodes(work)}", flush=True)
    snapshot_seconds, _ = dbt_build(warehouse, work, project, None, ("--select", "resource_type:snapshot"), scope)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        (fact_rows,) = connection.execute(
            "select (select count(*) from marts.fct_admissions) + (select count(*) from marts.fct_appointments)"
            " + (select count(*) from marts.fct_charges) + (select count(*) from marts.fct_claims)"
        ).fetchone()
    return Figures(patients, raw_rows, daily_rows, generate_seconds, load_seconds, full_seconds, daily_seconds,
                   full_facts, daily_facts, full_tests, daily_tests, fact_rows, nodes,
                   snapshot_seconds=snapshot_seconds, compare_daily_seconds=compare_seconds,
                   compare_daily_tests_seconds=compare_tests)  # fmt: skip


def main() -> None:
    """Run the sizes given and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    parser.add_argument("--project", type=Path, default=PROJECT, help="dbt project to time (default: dbt_project/)")
    parser.add_argument("--full-daily-tests", action="store_true", help="daily build without tests_loaded_after")
    parser.add_argument("--compare-daily", type=Path, default=None, help="also time this project's daily build")
    arguments = parser.parse_args()
    root = arguments.work or Path(tempfile.mkdtemp(prefix="dbt_bench_"))
    print(f"dbt build benchmark: {arguments.years} year(s) of history from {START}; {platform.platform()}, "
          f"{os.cpu_count()} CPUs; DuckDB threads as profiles.yml (4); project {arguments.project}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    print("| patients | raw rows | daily rows | generate s | load s | dbt nodes | fact rows "
          "| full build s | daily incremental build s | incremental models, full s | incremental models, daily s "
          "| tests, full s "
          "| tests, daily s | load avg |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    try:
        for patients in arguments.patients:
            work = root / f"p{patients}"
            work.mkdir(parents=True)
            try:
                figures = bench(
                    patients,
                    arguments.years,
                    work,
                    arguments.project,
                    not arguments.full_daily_tests,
                    arguments.compare_daily,
                )
            finally:
                shutil.rmtree(work / "landing", ignore_errors=True)
            print(f"| {figures.patients:,} | {figures.raw_rows:,} | {figures.daily_rows:,} "
                  f"| {figures.generate_seconds:.1f} | {figures.load_seconds:.1f} | {figures.nodes} "
                  f"| {figures.fact_rows:,} | {figures.full_build_seconds:.1f} "
                  f"| {figures.daily_build_seconds:.1f} | {figures.full_facts_seconds:.1f} "
                  f"| {figures.daily_facts_seconds:.1f} | {figures.full_tests_seconds:.1f} "
                  f"| {figures.daily_tests_seconds:.1f} | {os.getloadavg()[0]:.1f} |", flush=True)  # fmt: skip
            print(f"  snapshots after the daily build: {figures.snapshot_seconds:.1f} s", flush=True)
            if figures.compare_daily_seconds is not None:
                print(f"  same day, project {arguments.compare_daily}: daily build {figures.compare_daily_seconds:.1f}"
                      f" s, tests {figures.compare_daily_tests_seconds:.1f} node s", flush=True)  # fmt: skip
            if arguments.work is None:
                shutil.rmtree(work, ignore_errors=True)
    finally:
        if arguments.work is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
