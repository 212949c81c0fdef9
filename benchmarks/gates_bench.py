"""The two quality gates of a daily run, before and after, side by side: per-gate seconds per round.

    .venv/bin/python benchmarks/gates_bench.py --home /tmp/lead/rb10k/10k/home --batch daily-20260101
    .venv/bin/python benchmarks/gates_bench.py --home HOME --batch BATCH --before /tmp/h10-before --rounds 5

``--home`` is a data home whose warehouse holds the batch ``--batch`` loaded and the marts built (e.g. after
``hospital run --batch next``); it is only read. ``--before`` is a tree of the code to compare with (default: ``git
archive main`` of this repository into a temporary folder); "after" is this checkout. Each round runs both, in
alternating order, each in a fresh Python process on a fresh copy of the home's warehouse, Data Docs and results
(so both build their pages onto the same history), and times what a pipeline process pays for the gates:

* ``import``: importing the gates' modules (GX); the pipeline now imports them in the background while the batch
  lands and loads (``flows.validate.warm_up_gates``), so a run pays this only where landing is shorter;
* ``raw`` and ``marts``: each checkpoint as the gate's task runs it (``run_checkpoint`` with Data Docs, then
  ``release_engines``), raw first, marts second, as in a run.

Both sides must reach the same verdicts: the rounds stop with an error if the checkpoints' outcomes (suites,
expectations, columns, success, counts) differ. Prints the machine line (cores, load average before and after),
one line per round and side, and the medians.
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
started = time.perf_counter()
from expectations import run_checkpoint
from flows.validate import release_engines
figures = {"import": time.perf_counter() - started, "outcomes": {}}
for kind in ("raw", "marts"):
    started = time.perf_counter()
    outcome = run_checkpoint(
        kind, warehouse_path=home / "warehouse.duckdb", data_docs_dir=home / "data_docs",
        batch_id=batch if kind == "raw" else None,
        landing_dir=home / "landing" / batch if kind == "raw" else None, raise_on_failure=False,
    )
    release_engines(home / "warehouse.duckdb")
    figures[kind] = time.perf_counter() - started
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


def run_side(tree: Path, home: Path, batch: str, work: Path) -> dict:
    """One side's gates in a fresh process on a fresh copy of the home."""
    shutil.rmtree(work, ignore_errors=True)
    copy_home(home, batch, work)
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    process = subprocess.run(
        [sys.executable, "-c", DRIVER, str(work), batch], cwd=tree, env=environment, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    line = next((x for x in process.stdout.splitlines() if x.startswith("GATES ")), None)
    if process.returncode != 0 or line is None:
        raise SystemExit(f"{tree}: the gates did not run (exit {process.returncode}):\n{process.stderr[-3000:]}")
    return json.loads(line.removeprefix("GATES "))


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
                print(f"round {round_number} {name:<6}  import {result['import']:5.2f} s  raw {result['raw']:5.2f} s"
                      f"  marts {result['marts']:5.2f} s  (load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
            if figures["before"][-1]["outcomes"] != figures["after"][-1]["outcomes"]:
                raise SystemExit("the two sides' checkpoint outcomes differ: the comparison is void")
        print("\nmedians    import     raw   marts   gates (raw + marts)")
        for name, results in figures.items():
            medians = {key: statistics.median(r[key] for r in results) for key in ("import", "raw", "marts")}
            print(f"{name:<8} {medians['import']:7.2f} {medians['raw']:7.2f} {medians['marts']:7.2f}"
                  f" {medians['raw'] + medians['marts']:9.2f}")  # fmt: skip
        print("same verdicts and counts on both sides: yes")
        print(machine_line())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
