"""The two quality gates of a daily run, before and after, side by side: per-gate seconds per round.

    .venv/bin/python benchmarks/gates_bench.py --home /tmp/lead/rb10k/10k/home --batch daily-20260101
    .venv/bin/python benchmarks/gates_bench.py --home HOME --batch BATCH --before /tmp/h10-before --rounds 5

``--home`` is a data home whose warehouse holds the batch ``--batch`` loaded and the marts built (e.g. after
``hospital run --batch next``); it is only read. ``--before`` is a tree of the code to compare with (default: ``git
archive main`` of this repository into a temporary folder); "after" is this checkout. Each round runs both, in
alternating order, on a fresh copy of the home's warehouse, Data Docs and results (so both build their pages onto
the same history); each side runs both gates once untimed (its code then left the home as after any run of it),
then again in a fresh Python process, timed, which is what a pipeline process pays for the gates:

* ``import``: importing the gates' modules (GX); ``hospital run`` now imports them while its temporary Prefect server
  starts (``flows.run_cli.import_stage_modules``), so a run with a lasting server pays this in its raw gate;
* ``raw`` and ``marts``: each checkpoint as the gate's task runs it (``run_checkpoint`` with Data Docs, then
  ``release_engines``), raw first, marts second, as in a run.

Each figure is wall time and, in brackets, the process's CPU time (all its threads, DuckDB's included), which a
shared machine's load disturbs much less. Both sides must reach the same verdicts: the rounds stop with an error if
the checkpoints' outcomes (suites, expectations, columns, success, counts) differ. Prints the machine line (cores,
load average before and after), one line per round and side, and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Runs in the side's own process, with the side's tree first on sys.path; prints one JSON line.
DRIVER = r"""
import json, sys, time
from pathlib import Path
home, batch = Path(sys.argv[1]), sys.argv[2]
wall, cpu = time.perf_counter(), time.process_time()
from expectations import run_checkpoint
from flows.validate import release_engines
figures = {"import": time.perf_counter() - wall, "import_cpu": time.process_time() - cpu, "outcomes": {}}
for kind in ("raw", "marts"):
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = run_checkpoint(
        kind, warehouse_path=home / "warehouse.duckdb", data_docs_dir=home / "data_docs",
        batch_id=batch if kind == "raw" else None,
        landing_dir=home / "landing" / batch if kind == "raw" else None, raise_on_failure=False,
    )
    release_engines(home / "warehouse.duckdb")
    figures[kind], figures[kind + "_cpu"] = time.perf_counter() - wall, time.process_time() - cpu
    figures["outcomes"][kind] = sorted(
        [o.suite, o.expectation, o.column or "", o.success, o.unexpected_count, o.element_count, o.note or ""]
        for o in outcome.outcomes
    ) + [outcome.success]
print("GATES " + json.dumps(figures))
"""


def machine_line() -> str:
    """Cores, CPU and the load average (1, 5, 15 min) now."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    cpu = platform.processor() or platform.machine()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}; load average {load}"


def copy_home(home: Path, batch: str, target: Path) -> None:
    """What the gates read and write: the warehouse, Data Docs, kept results and the batch's landing folder."""
    target.mkdir(parents=True)
    shutil.copy2(home / "warehouse.duckdb", target / "warehouse.duckdb")
    for folder in ("data_docs", "gx_results"):
        if (home / folder).is_dir():
            shutil.copytree(home / folder, target / folder)
    shutil.copytree(home / "landing" / batch, target / "landing" / batch)


def gates_process(tree: Path, work: Path, batch: str) -> dict:
    """Both gates in a fresh process running the code of ``tree`` on the home ``work``; their figures."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    process = subprocess.run(
        [sys.executable, "-c", DRIVER, str(work), batch], cwd=tree, env=environment, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    line = next((x for x in process.stdout.splitlines() if x.startswith("GATES ")), None)
    if process.returncode != 0 or line is None:
        raise SystemExit(f"{tree}: the gates did not run (exit {process.returncode}):\n{process.stderr[-3000:]}")
    return json.loads(line.removeprefix("GATES "))


def run_side(tree: Path, home: Path, batch: str, work: Path) -> dict:
    """One side's gates on a fresh copy of the home, timed in the second of two processes.

    The first (untimed) leaves the home as that side's code leaves it after a run (Data Docs summary, pages), so the
    timed one is a run like every later day's, not the first run of the code in a home.
    """
    shutil.rmtree(work, ignore_errors=True)
    copy_home(home, batch, work)
    gates_process(tree, work, batch)
    return gates_process(tree, work, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a data home with the batch loaded, marts built")
    parser.add_argument("--batch", required=True, help="the batch id the raw gate validates")
    parser.add_argument("--before", type=Path, help="the code to compare with (default: git archive main)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="gates_bench_"))
    try:
        before = args.before
        if before is None:
            before = scratch / "before"
            before.mkdir()
            archive = subprocess.run(["git", "archive", "main"], cwd=REPO, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        sides = {"before": before, "after": REPO}
        print(machine_line(), flush=True)
        print(f"home {args.home}, batch {args.batch}; before {before}, after {REPO}", flush=True)
        figures: dict[str, list[dict]] = {name: [] for name in sides}
        for round_number in range(1, args.rounds + 1):
            order = list(sides) if round_number % 2 else list(sides)[::-1]
            for name in order:
                result = run_side(sides[name], args.home, args.batch, scratch / name)
                figures[name].append(result)
                print(f"round {round_number} {name:<6}  wall (cpu) s:  import {result['import']:5.2f} "
                      f"({result['import_cpu']:5.2f})  raw {result['raw']:5.2f} ({result['raw_cpu']:5.2f})"
                      f"  marts {result['marts']:5.2f} ({result['marts_cpu']:5.2f})  load {os.getloadavg()[0]:.2f}",
                      flush=True)  # fmt: skip
            if figures["before"][-1]["outcomes"] != figures["after"][-1]["outcomes"]:
                raise SystemExit("the two sides' checkpoint outcomes differ: the comparison is void")
        keys = ("import", "raw", "marts", "import_cpu", "raw_cpu", "marts_cpu")
        print("\nmedians, s   import     raw   marts  raw+marts | CPU: import     raw   marts  raw+marts")
        for name, results in figures.items():
            m = {key: statistics.median(r[key] for r in results) for key in keys}
            print(f"{name:<10} {m['import']:7.2f} {m['raw']:7.2f} {m['marts']:7.2f} {m['raw'] + m['marts']:10.2f} |"
                  f"      {m['import_cpu']:7.2f} {m['raw_cpu']:7.2f} {m['marts_cpu']:7.2f}"
                  f" {m['raw_cpu'] + m['marts_cpu']:10.2f}")  # fmt: skip
        print("same verdicts and counts on both sides: yes")
        print(machine_line())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
