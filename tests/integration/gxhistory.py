"""A year of Data Docs history made from one real checkpoint run: its results and pages cloned into daily runs."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

CLONED_SUITES = ("raw.payers__payers", "raw.payers__plans")
RUN_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


def clone_history(source: Path, home: Path, first_run: dt.datetime, days: int) -> list[tuple[str, dt.datetime]]:
    """One run a day for ``days`` days up to ``first_run``, of the cloned suites, as the checkpoint stores them."""
    results, docs = source / "gx_results", source / "data_docs"
    originals = [p for p in results.rglob("*.json") if ".".join(p.relative_to(results).parts[:-3]) in CLONED_SUITES]
    assert len(originals) == len(CLONED_SUITES)
    runs = []
    for back in range(days, 0, -1):
        when = first_run - dt.timedelta(days=back)
        run_name = f"raw daily-{when:%Y%m%d}"
        for original in originals:
            parts = original.relative_to(results).parts
            data = json.loads(original.read_text(encoding="utf-8"))
            data["meta"]["run_id"] = {"run_name": run_name, "run_time": when.isoformat()}
            target = home.joinpath("gx_results", *parts[:-3], run_name, when.strftime(RUN_TIME_FORMAT), parts[-1])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(data), encoding="utf-8")
            page = docs.joinpath("validations", *parts[:-1], original.stem + ".html")
            page_target = home.joinpath("data_docs", "validations", *target.relative_to(home / "gx_results").parts)
            page_target = page_target.with_name(original.stem + ".html")
            page_target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, page_target)
        runs.append((run_name, when))
    return runs
