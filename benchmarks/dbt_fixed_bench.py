"""Benchmark: dbt's fixed cost of a daily build, before and after, on the same warehouse and the same day.

    .venv/bin/python benchmarks/dbt_fixed_bench.py WAREHOUSE BATCH_ID [--before DIR] [--rounds 2]

WAREHOUSE is a DuckDB file holding a built history plus a loaded, not yet built daily batch BATCH_ID (for example
``dbt_tasks_bench.py --work DIR`` leaves ``DIR/start-daily.duckdb``; its batch id is in ``start-daily.batch``).
Each mode works on its own copy of it and its own target folder, warms up once (so each is in its steady state:
partial parse saved, failure tables as its materialization leaves them, the lists stamped) and then runs the
daily build command ``--rounds`` times, alternating the modes:

- ``after``: this checkout's project and command, as ``flows.transform.dbt_build`` runs it (the scope instant in
  the environment, the lists left out when loaded).
- ``before`` (with ``--before DIR``, a checkout of the previous commit, e.g. ``git archive main | tar -x -C DIR``):
  that checkout's ``dbt_project`` with the command the flow ran then: ``build --exclude resource_type:snapshot
  --vars '{tests_loaded_after: ...}'`` (the instant in ``--vars``, the seeds included); with ``--before-command
  current``, with this checkout's command (two projects, one command: e.g. the per-rule tests against ``checks``).

Per run it prints the wall seconds, dbt's execution seconds (``run_results.json`` elapsed), so parse + setup =
wall - execution, the nodes and node-seconds by resource type, and whether dbt re-parsed the whole project.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run_build(mode: str, project: Path, warehouse: Path, target: Path, args: list[str], env: dict[str, str]) -> dict:
    """One dbt command in-process; wall, execution and node-seconds by resource type."""
    from dbt.cli.main import dbtRunner

    from flows.dbt_runner import release_warehouse

    events: list[str] = []
    common = ["--project-dir", str(project), "--profiles-dir", str(project), "--target-path", str(target),
              "--log-path", str(target.parent / "logs"), "--quiet"]  # fmt: skip
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    began = time.perf_counter()
    try:
        result = dbtRunner(callbacks=[lambda event: events.append(event.info.name)]).invoke([*args, *common])
    finally:
        release_warehouse()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    wall = time.perf_counter() - began
    if not result.success:
        raise SystemExit(f"{mode}: the daily build failed: {result.exception}")
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
    count: collections.Counter[str] = collections.Counter()
    seconds: collections.Counter[str] = collections.Counter()
    for node in results["results"]:
        kind = node["unique_id"].split(".", 1)[0]
        count[kind] += 1
        seconds[kind] += node["execution_time"]
    return {"mode": mode, "wall": wall, "execution": results["elapsed_time"], "count": dict(count),
            "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "full_parse": "UnableToPartialParse" in events or "PartialParsingNotEnabled" in events}  # fmt: skip


def main() -> None:
    """Parse arguments, prepare the copies, warm up, run the rounds alternating and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("batch_id")
    parser.add_argument("--before", type=Path, default=None, help="a checkout of the previous commit")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--before-command", choices=("vars", "current"), default="vars",
        help="the before checkout's command: 'vars' (the instant in --vars, seeds included: before the fixed-cost "
        "changes) or 'current' (this checkout's command: compare two projects)",
    )  # fmt: skip
    arguments = parser.parse_args()

    from flows.transform import (
        LISTS_STAMP,
        batch_loaded_after,
        build_args,
        lists_fingerprint,
        lists_loaded,
        scope_environment,
        transform_vars,
    )

    loaded_after = batch_loaded_after(arguments.warehouse, arguments.batch_id)
    vars_yaml = transform_vars("daily", full_refresh=False, loaded_after=loaded_after)
    work = Path(tempfile.mkdtemp(prefix="dbt_fixed_bench_"))
    os.environ["DBT_TARGET"] = "duckdb"
    modes: dict[str, tuple[Path, Path, Path]] = {}
    projects = {"after": REPO / "dbt_project"} | (
        {"before": arguments.before / "dbt_project"} if arguments.before else {}
    )
    for mode, project in projects.items():
        copy = work / mode / "warehouse.duckdb"
        copy.parent.mkdir(parents=True)
        shutil.copyfile(arguments.warehouse, copy)
        modes[mode] = (project, copy, work / mode / "target")

    shifts = iter(range(1, 1000))

    def command(mode: str) -> tuple[list[str], dict[str, str]]:
        project, copy, target = modes[mode]
        base = {"HOSPITAL_WAREHOUSE_PATH": str(copy)}
        if mode == "before" and arguments.before_command == "vars":
            # a new instant each run, as each day brings (one second earlier: the same rows)
            instant = loaded_after - dt.timedelta(seconds=next(shifts))
            shifted = transform_vars("daily", full_refresh=False, loaded_after=instant)
            return ["build", "--exclude", "resource_type:snapshot", "--vars", shifted], base
        dbt_vars, scope = scope_environment(vars_yaml)
        lists = not lists_loaded(project, target, copy)
        return build_args(full_refresh=False, vars_yaml=dbt_vars, lists=lists), {**base, **scope}

    print(f"daily build of {arguments.batch_id} (scope {vars_yaml}); load average {os.getloadavg()[0]:.1f}")
    for mode, (project, copy, target) in modes.items():  # warm-up: each mode reaches its steady state
        args, env = command(mode)
        run_build(mode, project, copy, target, args, env)
        if mode == "after" or arguments.before_command == "current":
            (target / LISTS_STAMP).write_text(lists_fingerprint(project), encoding="utf-8")
    runs = []
    for round_no in range(arguments.rounds):
        order = list(modes) if round_no % 2 == 0 else list(modes)[::-1]
        for mode in order:
            project, copy, target = modes[mode]
            args, env = command(mode)
            figures = run_build(mode, project, copy, target, args, env)
            runs.append(figures)
            print(f"{mode:>6}: wall {figures['wall']:5.1f} s, execution {figures['execution']:5.1f} s, parse+setup "
                  f"{figures['wall'] - figures['execution']:4.1f} s, full parse {figures['full_parse']}, nodes "
                  f"{figures['count']}, node-seconds {figures['seconds']}; load {os.getloadavg()[0]:.1f}",
                  flush=True)  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
