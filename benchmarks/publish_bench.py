"""Publish stage, before and after, side by side: ``python benchmarks/publish_bench.py --home <data home>``.

Times ``reports.publish()`` (the publish stage without dbt docs, which are kept when the dbt project is unchanged)
on copies of one data home's warehouse, in a fresh interpreter per publication so that imports are counted, with
two code trees alternating round by round: ``before`` (``git archive <ref> reports flows``, main by default) and
``after`` (this checkout). Two cases per round: **daily**, a publication into a copy of the home's ``reports/``
(the previous day's publication is there: what a daily run finds), and **full**, into an empty ``reports/`` (the
first publication of a home). The source home is only read. Per part: import of reports/, reading the marts,
suppression, the extracts (Parquet/CSV), the Hyper file, charts drawn in the publishing process (and how many),
the page, the audit, the publication's wall time, and the CPU time of the whole process tree (interpreter, chart
worker, hyperd: far less sensitive to other load than wall time); parts that run at the same time (after: the
Hyper file in a thread, charts in a second process) do not add up to the wall time. Each round also checks that
both trees published the same bytes (every file but manifest.json's run fields and marts.hyper, which Hyper
writes differently every time).

Prints a machine line (cores, load, CPU, Python), one line per publication and the medians. Needs a quiet machine
for figures worth writing down; the load averages before and after are printed with them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("import", "read_marts", "suppress", "extracts", "hyper", "charts_here", "page", "audit", "publish", "cpu")

#: Run in a fresh interpreter with PYTHONPATH set to the tree under test: wraps the parts, publishes, prints JSON.
CHILD = r"""
import collections, datetime as dt, functools, importlib, inspect, json, sys, time
from pathlib import Path

def main():
    warehouse, reports_dir, dbt_docs, run_id, run_date, processes = sys.argv[1:7]
    started = time.perf_counter()
    publish_module = importlib.import_module("reports.publish")
    from flows.contracts.quality import CheckpointOutcome
    seconds = collections.defaultdict(float)
    counts = collections.Counter()
    seconds["import"] = time.perf_counter() - started

    def timed(module, name, part):
        function = getattr(module, name, None)
        if function is None:
            return
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[part] += time.perf_counter() - start
                counts[part] += 1
        setattr(module, name, wrapper)

    for name, part in (("read_marts", "read_marts"), ("publish_marts", "suppress"), ("write_extract", "extracts"),
                       ("write_hyper", "hyper"), ("save_chart", "charts_here"), ("render_report", "page"),
                       ("audit", "audit"), ("audit_early", "audit")):
        timed(publish_module, name, part)
    try:
        rendering = importlib.import_module("reports.rendering")
    except ImportError:
        rendering = None
    if rendering is not None:
        timed(rendering, "draw_chart", "charts_here")  # plot and save, in this process
    else:  # main: the plot functions (called through CHARTS) and save_chart, so that both count the same work
        import dataclasses
        charts = importlib.import_module("reports.charts")
        for name, spec in list(charts.CHARTS.items()):
            def plot(*args, _plot=spec.plot, **kwargs):
                start = time.perf_counter()
                try:
                    return _plot(*args, **kwargs)
                finally:
                    seconds["charts_here"] += time.perf_counter() - start
            charts.CHARTS[name] = dataclasses.replace(spec, plot=plot)
    # after: the Hyper file is written in a thread from reports.publish; before: also from reports.publish.
    checkpoints = [CheckpointOutcome(name, True, run_id, "bench", None, ()) for name in ("raw", "marts")]
    options = {"dbt_target_dir": Path(dbt_docs)}
    if processes != "auto" and "processes" in inspect.signature(publish_module.publish).parameters:
        options["processes"] = int(processes)
    start = time.perf_counter()
    result = publish_module.publish(Path(warehouse), Path(reports_dir), run_id, dt.date.fromisoformat(run_date),
                                    checkpoints, "../../data_docs/index.html", "../../dbt_docs/static_index.html",
                                    **options)
    seconds["publish"] = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "charts_here": counts["charts_here"], "files": len(result.files),
                      "run_dir": str(result.run_dir)}))

if __name__ == "__main__":
    main()
"""


def machine_line() -> str:
    """Cores, load averages, CPU model and Python version."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"machine: {os.cpu_count()} cores ({model}), load {load}, Python {platform.python_version()}"


def tree_of(ref: str, work: Path) -> Path:
    """``reports/`` and ``flows/`` of a git ref, extracted under ``work``."""
    target = work / f"tree-{ref.replace('/', '_')}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "reports", "flows"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def prepare(home: Path, place: Path, *, daily: bool) -> Path:
    """A copy of the home's warehouse and dbt docs (and, for a daily publication, of its reports/)."""
    place.mkdir(parents=True)
    shutil.copy2(home / "warehouse.duckdb", place / "warehouse.duckdb")
    shutil.copytree(home / "dbt_docs", place / "dbt_docs", symlinks=True)
    if daily and (home / "reports").exists():
        shutil.copytree(home / "reports", place / "reports", symlinks=True)
    else:
        (place / "reports").mkdir()
    return place


def publish_once(tree: Path, place: Path, script: Path, run_id: str, run_date: dt.date, processes: str) -> dict:
    """One publication in a fresh interpreter with ``tree`` first on the path; its parts' seconds."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    arguments = [place / "warehouse.duckdb", place / "reports", place / "dbt_docs", run_id, run_date.isoformat(),
                 processes]  # fmt: skip
    done = subprocess.run([sys.executable, str(script), *map(str, arguments)], env=environment, cwd=place,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"publication with {tree} failed:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # CPU time of the interpreter and every process it waited for (the chart worker, hyperd): on a shared
    # machine it varies far less with the load than the wall time does.
    result["seconds"]["cpu"] = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
    return result


def differences(before: Path, after: Path) -> list[str]:
    """Files whose bytes differ between two publications of the same marts (manifest.json's run fields and
    marts.hyper aside)."""
    names = {p.relative_to(before).as_posix() for p in before.rglob("*") if p.is_file()}
    names |= {p.relative_to(after).as_posix() for p in after.rglob("*") if p.is_file()}
    found = []
    for name in sorted(names):
        one, two = before / name, after / name
        if name.endswith(".hyper"):
            continue
        if not (one.exists() and two.exists()):
            found.append(f"{name}: only in {'after' if two.exists() else 'before'}")
        elif name == "manifest.json":
            first, second = json.loads(one.read_text()), json.loads(two.read_text())
            for manifest in (first, second):
                manifest["files"].pop("extracts/marts.hyper", None)
            if first != second:
                found.append(name)
        elif one.read_bytes() != two.read_bytes():
            found.append(name)
    return found


def main() -> None:
    """Alternate before/after publications round by round and print each one's parts and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="data home with warehouse.duckdb, dbt_docs/, reports/")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default="main", help="git ref of the 'before' code (default: main)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--cases", default="daily,full")
    parser.add_argument("--processes", default="auto",
                        help="chart worker processes of 'after': auto (its own decision), 0 or 1")  # fmt: skip
    options = parser.parse_args()
    work = options.work or Path(tempfile.mkdtemp(prefix="publish-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    script = work / "publish_child.py"
    script.write_text(CHILD, encoding="utf-8")
    trees = {"before": tree_of(options.before, work), "after": REPO}
    print(machine_line())
    print(
        f"home {options.home}; before = {options.before}, after = {REPO} (processes {options.processes}); "
        f"{options.rounds} rounds"
    )
    header = " ".join(f"{part:>11}" for part in PARTS)
    print(f"{'case':5} {'round':>5} {'code':6} {header}  charts here  same bytes")
    results: dict[tuple[str, str], list[dict]] = {}
    next_day = dt.date.today()
    manifest = options.home / "reports" / "latest" / "manifest.json"
    if manifest.exists():
        next_day = dt.date.fromisoformat(json.loads(manifest.read_text())["run_date"]) + dt.timedelta(days=1)
    for round_number in range(1, options.rounds + 1):
        for case in options.cases.split(","):
            order = ("before", "after") if round_number % 2 else ("after", "before")
            run_id = f"bench-{case}-{round_number}"
            done = {}
            for code in order:
                place = prepare(options.home, work / f"{case}-{round_number}-{code}", daily=case == "daily")
                started = time.perf_counter()
                done[code] = publish_once(trees[code], place, script, run_id, next_day, options.processes)
                done[code]["seconds"]["process"] = time.perf_counter() - started
                results.setdefault((case, code), []).append(done[code])
            same = differences(Path(done["before"]["run_dir"]), Path(done["after"]["run_dir"]))
            for code in ("before", "after"):
                seconds = done[code]["seconds"]
                print(
                    f"{case:5} {round_number:>5} {code:6} "
                    + " ".join(f"{seconds.get(p, 0):>10.2f}s" for p in PARTS)
                    + f"  {done[code]['charts_here']:>11}  {'yes' if not same else 'NO: ' + ', '.join(same[:5])}"
                )
            for code in order:
                shutil.rmtree(work / f"{case}-{round_number}-{code}")
    print("medians")
    for (case, code), runs in sorted(results.items()):
        medians = {p: statistics.median(r["seconds"].get(p, 0.0) for r in runs) for p in (*PARTS, "process")}
        print(
            f"{case:5} {'':>5} {code:6} "
            + " ".join(f"{medians[p]:>10.2f}s" for p in PARTS)
            + f"  (whole process {medians['process']:.2f}s)"
        )
    print(machine_line())


if __name__ == "__main__":
    main()
