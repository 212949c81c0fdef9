"""The nightly cost: `hospital run` on the initial history, then on the next daily batch, side by side per size.

    python benchmarks/run_bench.py                    # 10,000 and 100,000 patients (2 years of history each)
    python benchmarks/run_bench.py --scale 10k        # the quick pair while developing
    python benchmarks/run_bench.py --scale 1m         # 1,000,000 patients: full and daily (needs ~25 GB of disk)
    python benchmarks/run_bench.py --scale 100k --node-tasks   # dbt nodes as Prefect tasks, as the deployments

For each size it makes a fresh data home and PREFECT_HOME and runs what a user runs, as a subprocess:
`hospital run --patients N` (lands and publishes the initial batch HOSPITAL_START_DATE..HOSPITAL_END_DATE, on a
temporary Prefect server), then `hospital run --batch next` (the next daily batch, on a new temporary server, as
the nightly schedule would). Per run it prints the process's wall time, the flow's own time (what `hospital run`
reports as "published in"), the stages as the run printed them, the overhead (wall minus flow: interpreter,
imports, the temporary server) and the peak RSS of the process tree (the CLI, its Prefect server and every
child, sampled every 0.2 s; summed RSS counts pages shared between processes once per process). The machine line
(cores, CPU, load average before and after) is printed first and last, and the targets of issue 17 are checked
(PASS/FAIL) on what was measured. Exit code 0 even when a target is missed (``--check``: 1).

The machine may be shared: run it alone for figures to compare (the lead's quiet-machine runs); a 10k pair takes
about 3 minutes, a 100k pair about 4, the 1m pair about 25.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOSPITAL = Path(sys.executable).with_name("hospital")
SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
START, END = "2024-01-01", "2025-12-31"
_STAGE = re.compile(r"^  (\S.*?)\s+([\d.]+) s  (.*)$")
_PUBLISHED = re.compile(r"^Batch (\S+) published in ([\d.]+) s\.")


@dataclass
class RunFigures:
    """One `hospital run`: what it printed and what was measured around it."""

    patients: int
    run: str
    batch: str = ""
    ok: bool = False
    wall_seconds: float = 0.0
    flow_seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    load_before: float = 0.0
    load_after: float = 0.0
    error: str = ""

    @property
    def overhead_seconds(self) -> float:
        """Wall time outside the flow: interpreter, imports, the temporary Prefect server."""
        return round(self.wall_seconds - self.flow_seconds, 1)


def machine_line() -> str:
    """Cores, CPU model, memory and load average."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GB RAM, load average {load} (1/5/15 min)"


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.peak = 0
        self._pid, self._interval = pid, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        try:
            root = psutil.Process(self._pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total = 0
            try:
                for process in [root, *root.children(recursive=True)]:
                    try:
                        total += process.memory_info().rss
                    except psutil.Error:
                        continue
            except psutil.Error:
                break
            self.peak = max(self.peak, total)
            self._stop.wait(self._interval)

    def stop(self) -> int:
        """Stop sampling; the peak seen."""
        self._stop.set()
        self._thread.join()
        return self.peak


def hospital_run(home: Path, patients: int, run: str, extra: list[str], log: Path) -> RunFigures:
    """One `hospital run` in a subprocess, with its output kept in ``log``."""
    env = {**os.environ, "HOSPITAL_HOME": str(home), "HOSPITAL_PATIENTS": str(patients),
           "HOSPITAL_START_DATE": START, "HOSPITAL_END_DATE": END, "PREFECT_HOME": str(home.parent / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TQDM_DISABLE": "1"}  # fmt: skip
    env.pop("PREFECT_API_URL", None)  # a temporary server, as on a fresh clone
    command = [str(HOSPITAL), "run", *(["--batch", "next"] if run == "daily" else []), *extra]
    figures = RunFigures(patients, run, load_before=os.getloadavg()[0])
    began = time.perf_counter()
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=output, text=True)
        memory = TreeMemory(process.pid)
        printed, _ = process.communicate()
        figures.peak_rss_mb = round(memory.stop() / 1e6)
        output.write(printed)
    figures.wall_seconds = round(time.perf_counter() - began, 1)
    figures.load_after = os.getloadavg()[0]
    in_stages = False
    for line in printed.splitlines():
        if published := _PUBLISHED.match(line):
            figures.batch, figures.flow_seconds, figures.ok = published.group(1), float(published.group(2)), True
        elif line.strip() == "Stages":
            in_stages = True
        elif in_stages and (stage := _STAGE.match(line)):
            figures.stages[stage.group(1)] = float(stage.group(2))
            figures.outcomes[stage.group(1)] = stage.group(3)
        elif in_stages and not line.strip():
            in_stages = False
    if process.returncode != 0 or not figures.ok:
        figures.ok = False
        figures.error = f"exit {process.returncode}; see {log}"
    elif not figures.stages:  # published, but the "Stages" block was not found: the CLI's output changed
        figures.ok = False
        figures.error = f"no stage times in the run's output (has `hospital run`'s 'Stages' block changed?); see {log}"
    return figures


def targets(results: list[RunFigures]) -> list[tuple[str, str, str, bool]]:
    """Issue 17's targets on what was measured: (target, measured, required, met)."""
    by = {(r.patients, r.run): r for r in results if r.ok}
    checks: list[tuple[str, str, str, bool]] = []
    for patients in sorted({r.patients for r in results}):
        full, daily = by.get((patients, "full")), by.get((patients, "daily"))
        if full and daily and patients >= 100_000:
            share = daily.flow_seconds / full.flow_seconds
            checks.append((f"daily / full flow time at {patients:,}", f"{share:.0%}", "<= 15%", share <= 0.15))
        if daily and patients == 100_000:
            checks.append(("daily flow time at 100,000", f"{daily.flow_seconds:.1f} s", "<= 20 s",
                           daily.flow_seconds <= 20))  # fmt: skip
        if full and patients == 100_000:
            checks.append(("full flow time at 100,000", f"{full.flow_seconds:.1f} s", "<= 60 s",
                           full.flow_seconds <= 60))  # fmt: skip
        if daily and patients == 1_000_000:
            checks.append(("daily flow time at 1,000,000", f"{daily.flow_seconds:.1f} s", "<= 60 s",
                           daily.flow_seconds <= 60))  # fmt: skip
        if full and patients == 1_000_000:
            checks.append(("full wall at 1,000,000", f"{full.wall_seconds:.0f} s", "<= 600 s",
                           full.wall_seconds <= 600))  # fmt: skip
            checks.append(("full peak RSS at 1,000,000", f"{full.peak_rss_mb / 1000:.1f} GB", "<= 6 GB",
                           full.peak_rss_mb <= 6000))  # fmt: skip
    return checks


def print_table(results: list[RunFigures]) -> None:
    """One Markdown row per run, stages as columns in the order the runs printed them."""
    stages = list(dict.fromkeys(stage for r in results for stage in r.stages))
    print("| patients | run | ok | wall s | flow s | overhead s | " + "".join(f"{s} | " for s in stages)
          + "peak RSS MB | load |")  # fmt: skip
    print("|---:|---|---|---:|---:|---:|" + "---:|" * len(stages) + "---:|---|")
    for r in results:
        cells = "".join(f"{r.stages.get(stage, '')} | " for stage in stages)
        print(f"| {r.patients:,} | {r.run} | {r.ok} | {r.wall_seconds} | {r.flow_seconds} | {r.overhead_seconds} | "
              f"{cells}{r.peak_rss_mb:,.0f} | {r.load_before:.1f}->{r.load_after:.1f} |")  # fmt: skip
    for r in results:
        if r.run == "daily" and r.ok:
            full = next((f for f in results if f.patients == r.patients and f.run == "full" and f.ok), None)
            if full:
                print(f"  {r.patients:,}: the daily run took {r.flow_seconds / full.flow_seconds:.0%} of the full "
                      f"run's flow time ({r.outcomes.get('load', '')})")  # fmt: skip
        if r.error:
            print(f"  {r.patients:,} {r.run}: FAILED ({r.error})")


def main() -> None:
    """Parse arguments, run each size's pair, print the table, the targets and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", nargs="+", choices=sorted(SCALES), default=["10k", "100k"])
    parser.add_argument("--node-tasks", action="store_true", help="dbt nodes as Prefect tasks (the deployments')")
    parser.add_argument("--work", type=Path, default=None, help="keep the data homes and logs here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    arguments = parser.parse_args()
    extra = ["--dbt-node-tasks"] if arguments.node_tasks else ["--no-dbt-node-tasks"]
    root = arguments.work or Path(tempfile.mkdtemp(prefix="hospital-run-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    print(
        f"run_bench: {machine_line()}; Python {platform.python_version()}; commit {commit.stdout.strip()}; "
        f"history {START}..{END}; dbt node tasks {'on' if arguments.node_tasks else 'off'}",
        flush=True,
    )
    results: list[RunFigures] = []
    try:
        for scale in sorted(arguments.scale, key=SCALES.get):
            patients = SCALES[scale]
            home = root / scale / "home"
            shutil.rmtree(root / scale, ignore_errors=True)
            home.mkdir(parents=True)
            for run in ("full", "daily"):
                figures = hospital_run(home, patients, run, extra, root / scale / f"{run}.log")
                results.append(figures)
                print(f"  {patients:,} {run}: {'published' if figures.ok else 'FAILED'} {figures.batch} in "
                      f"{figures.flow_seconds} s of flow, {figures.wall_seconds} s wall, peak RSS "
                      f"{figures.peak_rss_mb:,.0f} MB", flush=True)  # fmt: skip
                if not figures.ok:
                    break
            if arguments.work is None:
                shutil.rmtree(root / scale, ignore_errors=True)
    finally:
        if arguments.work is None:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print_table(results)
    checks = targets(results)
    for name, measured, required, met in checks:
        print(f"  {'PASS' if met else 'FAIL'}  {name}: {measured} (target {required})")
    print(f"after: {machine_line()}")
    print(json.dumps([{**asdict(r), "overhead_seconds": r.overhead_seconds} for r in results], indent=2))
    if arguments.check and not all(met for *_, met in checks):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
