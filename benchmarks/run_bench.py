"""End-to-end time of the pipeline (what `hospital run` runs) on a fresh data home, split into stages and
orchestration overhead.

    python benchmarks/run_bench.py --patients 10000                 # dbt nodes as Prefect tasks (the default)
    python benchmarks/run_bench.py --patients 10000 --no-node-tasks  # plain dbt inside the stage

Each run uses a new temporary data home and PREFECT_HOME, so the temporary Prefect server starts from scratch as on
a fresh clone. Overhead = wall time of the whole run minus the sum of the stage times (interpreter and imports,
the temporary server, flow-run bookkeeping, the lock, the ledger, artifacts). Prints a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import json, sys, time
began = time.perf_counter()
from flows.pipeline import pipeline
imported = time.perf_counter() - began
state = pipeline(batch_id=sys.argv[1], dbt_node_tasks=sys.argv[2] == "1", return_state=True)
result = state.result(raise_on_failure=False)
if not isinstance(result, dict):
    from flows import runs
    from flows.settings import Settings
    last = runs.last_runs(Settings().paths.warehouse, 1)
    result = {"error": type(result).__name__, "failed_stage": last[0].stage if last else None,
              "message": chr(10).join((last[0].message or "").splitlines()[:6]) if last else None,
              "seconds_to_failure": time.perf_counter() - began}
print("BENCH " + json.dumps({"ok": state.is_completed(), "imports": imported, "result": result}), flush=True)
"""


def run_once(patients: int, node_tasks: bool, start: str, end: str, keep: Path | None) -> dict:
    """One pipeline run in a fresh process on a fresh data home; returns wall time and the stage times."""
    root = Path(tempfile.mkdtemp(prefix="hospital-bench-"))
    env = {
        **os.environ,
        "HOSPITAL_HOME": str(root / "home"),
        "HOSPITAL_PATIENTS": str(patients),
        "HOSPITAL_START_DATE": start,
        "HOSPITAL_END_DATE": end,
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
        "TQDM_DISABLE": "1",
    }
    env.pop("PREFECT_API_URL", None)
    batch = f"initial-{start.replace('-', '')}-{end.replace('-', '')}"
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, batch, "1" if node_tasks else "0"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - began
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise SystemExit(f"run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(line[6:])
    if keep is not None:
        shutil.copytree(root / "home" / "reports", keep / f"reports-{patients}", dirs_exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    result = report["result"]
    stages = result.get("stage_seconds", {})
    return {
        "patients": patients,
        "node_tasks": node_tasks,
        "ok": report["ok"] and result.get("status") == "published",
        "wall_seconds": round(wall, 1),
        "stage_seconds": stages,
        "overhead_seconds": round(wall - sum(stages.values()), 1),
        "imports_seconds": round(report["imports"], 1),
        "rows_landed": result.get("rows_landed"),
        "rows_loaded": result.get("rows_loaded"),
        "mart_rows": result.get("mart_rows"),
        "error": result.get("error"),
        "failed_stage": result.get("failed_stage"),
        "message": result.get("message"),
    }


def main() -> None:
    """Parse arguments, run, print a Markdown table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="+", default=[10_000])
    parser.add_argument("--node-tasks", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--keep-reports", type=Path, default=None)
    args = parser.parse_args()
    results = [run_once(n, args.node_tasks, args.start, args.end, args.keep_reports) for n in args.patients]
    stages = list(dict.fromkeys(stage for r in results for stage in r["stage_seconds"]))
    print("| patients | dbt node tasks | ok | wall s | overhead s | " + " | ".join(stages) + " |")
    print("|---|---|---|---|---|" + "---|" * len(stages))
    for r in results:
        cells = [str(r["stage_seconds"].get(stage, "")) for stage in stages]
        print(f"| {r['patients']:,} | {r['node_tasks']} | {r['ok']} | {r['wall_seconds']} | {r['overhead_seconds']} | "
              + " | ".join(cells) + " |")  # fmt: skip
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
