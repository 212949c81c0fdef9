"""Benchmark: the dbt stage with and without Prefect tasks for dbt nodes, on the same build, side by side.

    .venv/bin/python benchmarks/dbt_tasks_bench.py [--patients 10000] [--years 2] [--rounds 2] [--work DIR]
        [--kind daily|full]

It generates a network (``--years`` of history from 2024-01-01 and the next day), loads the history into a fresh
DuckDB warehouse and builds it once with plain dbt; then it loads the next day's batch and keeps that warehouse
as the starting point. On one temporary Prefect server (as ``hospital run`` starts), it runs the pipeline's dbt
stage (the ``transform`` flow: the build, then the snapshots) on a fresh copy of that warehouse, ``--rounds`` times
per mode, alternating the order: ``plain`` (``node_tasks=False``), ``tasks`` (``node_tasks=True``, what the
deployments use: a task run per model, seed and snapshot with its tests summarised, flows/dbt_runner.py) and,
with ``--stock``, ``stock`` (prefect-dbt's own runner making every node a task: what ``node_tasks=True`` did
before). ``--kind full`` times the whole build of the history instead (no daily batch).

Per run it prints the flow's wall seconds, the CPU seconds of this process (dbt runs in it) and of the Prefect
server, and the task runs the flow run left in the API (by name prefix: ``model``, ``seed``, ``snapshot``,
``test``...), so per-model visibility is checked, not assumed. The last lines give the medians and the ratio
tasks / plain of the wall and of the CPU. The machine may be shared: the load average is printed with each run.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
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
PROJECT = REPO / "dbt_project"
DBT = Path(sys.executable).with_name("dbt")
START = dt.date(2024, 1, 1)


def machine_line() -> str:
    """Cores, CPU model and load average: what the figures depend on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), load average {load}, Python {platform.python_version()}"


def prepare(work: Path, patients: int, years: int, kind: str) -> tuple[Path, str]:
    """The starting warehouse (reused when ``work`` holds one) and the batch the stage processes."""
    from flows.contracts.registry import load_registry
    from flows.warehouse import load_batch, open_warehouse
    from generators.batch import NetworkSpec, generate_daily, generate_initial

    start = work / f"start-{kind}.duckdb"
    batch_file = work / f"start-{kind}.batch"
    if start.exists() and batch_file.exists():
        return start, batch_file.read_text(encoding="utf-8").strip()
    registry = load_registry()
    network = NetworkSpec(seed=2024, patients=patients, start_date=START)
    end = START.replace(year=START.year + years) - dt.timedelta(days=1)
    initial = generate_initial(work / "landing", network, end, registry=registry, workers=2)
    warehouse = work / "building.duckdb"
    warehouse.unlink(missing_ok=True)
    with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
        load_batch(initial.path, registry, handle)
    batch = initial.batch_id
    if kind == "daily":
        environment = {**os.environ, "HOSPITAL_WAREHOUSE_PATH": str(warehouse), "DBT_TARGET": "duckdb"}
        subprocess.run([str(DBT), "build", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
                        "--target-path", str(work / "fixture-target"), "--log-path", str(work / "fixture-logs"),
                        "--quiet"], env=environment, check=True)  # fmt: skip
        daily = generate_daily(work / "landing", network, end + dt.timedelta(days=1), registry=registry)
        with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
            load_batch(daily.path, registry, handle)
        batch = daily.batch_id
    shutil.rmtree(work / "landing", ignore_errors=True)
    warehouse.rename(start)
    batch_file.write_text(batch, encoding="utf-8")
    return start, batch


def _server_process():
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            if any("uvicorn" in part for part in child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


def _cpu(process) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return times.user + times.system


def run_stage(start: Path, batch: str, work: Path, mode: str, round_no: int) -> dict:
    """The transform flow on a fresh copy of ``start``; wall, CPU and the task runs it left."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter

    from flows.transform import LISTS_STAMP, batch_loaded_after, lists_fingerprint, transform, transform_vars

    folder = work / f"{mode}-{round_no}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    warehouse = folder / "warehouse.duckdb"
    shutil.copyfile(start, warehouse)
    kind = "daily" if batch.startswith("daily-") else "initial"
    loaded_after = batch_loaded_after(warehouse, batch) if kind == "daily" else None
    vars_yaml = transform_vars(kind, full_refresh=False, loaded_after=loaded_after)  # what the pipeline passes
    if kind == "daily":  # the nightly steady state: the warehouse holds the lists as they are, the stamp says so
        (work / f"target-{mode}").mkdir(exist_ok=True)
        (work / f"target-{mode}" / LISTS_STAMP).write_text(lists_fingerprint(PROJECT), encoding="utf-8")
    server = _server_process()
    server_before = _cpu(server)
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    if mode == "stock":  # prefect-dbt's runner makes every node a task through Prefect's task engine
        import flows.dbt_runner

        original, flows.dbt_runner._reporter = flows.dbt_runner._reporter, lambda *_: None
    state = transform(str(PROJECT), str(warehouse), str(work / f"target-{mode}"), str(folder / "logs"), False, True,
                      vars_yaml, mode != "plain", return_state=True)  # fmt: skip
    if mode == "stock":
        flows.dbt_runner._reporter = original
    wall = time.perf_counter() - began
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (usage_after.ru_stime - usage_before.ru_stime)
    result = state.result(raise_on_failure=False)
    if not state.is_completed():
        raise SystemExit(f"the dbt stage failed ({mode}): {result}")
    time.sleep(2)  # let the events of the last task runs reach the server
    server_cpu = _cpu(server) - server_before
    kinds: collections.Counter[str] = collections.Counter()
    with get_client(sync_client=True) as client:
        flow_run_id = state.state_details.flow_run_id
        offset = 0
        while True:
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                task_run_filter=TaskRunFilter(),
                limit=200,
                offset=offset,
            )
            for task_run in page:
                kinds[task_run.name.split(" ", 1)[0] if " " in task_run.name else task_run.name] += 1
            if len(page) < 200:
                break
            offset += 200
    shutil.rmtree(folder, ignore_errors=True)
    nodes = sum(sum(facts["statuses"].values()) for facts in result.values())
    return {"mode": mode, "wall": wall, "cpu": cpu, "server_cpu": server_cpu, "nodes": nodes,
            "task_runs": dict(kinds), "load": os.getloadavg()[0]}  # fmt: skip


def main() -> None:
    """Parse arguments, prepare the warehouse, run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kind", choices=("daily", "full"), default="daily")
    parser.add_argument("--stock", action="store_true", help="also time prefect-dbt's runner with a task per node")
    parser.add_argument("--work", type=Path, default=None, help="work folder (kept, and reused when it has a start)")
    arguments = parser.parse_args()
    work = arguments.work or Path(tempfile.mkdtemp(prefix="dbt_tasks_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.pop("PREFECT_API_URL", None)
    print(machine_line(), flush=True)
    began = time.perf_counter()
    start, batch = prepare(work, arguments.patients, arguments.years, arguments.kind)
    print(f"prepared {start} (batch {batch}) in {time.perf_counter() - began:.0f} s", flush=True)

    from flows.server import temporary_server

    runs: list[dict] = []
    with temporary_server(work / "server.log"):
        for round_no in range(arguments.rounds):
            modes = ("plain", "tasks", "stock") if arguments.stock else ("plain", "tasks")
            modes = modes if round_no % 2 == 0 else modes[::-1]
            for mode in modes:
                figures = run_stage(start, batch, work, mode, round_no)
                runs.append(figures)
                shown = ", ".join(f"{count} {name}" for name, count in sorted(figures["task_runs"].items()))
                print(f"{mode:>5}: wall {figures['wall']:6.1f} s, cpu {figures['cpu']:6.1f} s, server cpu "
                      f"{figures['server_cpu']:5.1f} s, {figures['nodes']} dbt nodes, task runs: {shown}; "
                      f"load {figures['load']:.1f}", flush=True)  # fmt: skip
    medians = {}
    for mode in ("plain", "tasks", "stock"):
        chosen = [run for run in runs if run["mode"] == mode]
        if not chosen:
            continue
        medians[mode] = {key: statistics.median(run[key] for run in chosen) for key in ("wall", "cpu", "server_cpu")}
        print(f"median {mode:>5}: wall {medians[mode]['wall']:.1f} s, cpu {medians[mode]['cpu']:.1f} s, "
              f"server cpu {medians[mode]['server_cpu']:.1f} s", flush=True)  # fmt: skip
    plain, tasks = medians["plain"], medians["tasks"]
    print(
        f"tasks / plain: wall {tasks['wall'] / plain['wall']:.2f}x, cpu (dbt process + server) "
        f"{(tasks['cpu'] + tasks['server_cpu']) / (plain['cpu'] + plain['server_cpu']):.2f}x; {machine_line()}"
    )
    if arguments.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
