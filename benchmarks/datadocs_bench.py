"""Data Docs benchmark: one run's Data Docs update as the stored history grows, GX's stock site vs the project's.

Runs the raw checkpoint once on a small generated batch (one real result and page per suite), then for each history
size clones that run into daily runs going back N days (results and pages, as the checkpoint writes them) and, in
one process, times one more run's Data Docs update (its pages and the index) with:

* **stock**: GX 1.24.1's ``SiteBuilder`` with ``DefaultSiteSectionBuilder`` and ``DefaultSiteIndexBuilder`` (what
  ``build_context`` configured before): the section builders list every stored result, the index builder lists and
  reads every one;
* **project**: ``expectations.datadocs`` (pages of the run only, index from the summary file).

Besides seconds it counts, with a Python audit hook, the files opened and the folders listed under the results
folder during the update: work that depends on the history, whatever the machine's load. Also prints the bytes a
run adds (results, pages) and what ``prune`` leaves of a year.

    .venv/bin/python benchmarks/datadocs_bench.py --days 30 100 400
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults
from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

from expectations import prune, run_checkpoint
from expectations.checkpoints import build_context
from expectations.datadocs import SITE_NAME, validation_page
from flows.contracts.registry import load_registry
from flows.warehouse import load_batch, open_warehouse
from generators.batch import NetworkSpec, generate_initial

RUN_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


class FileCounter:
    """Counts files opened and folders listed under ``root`` while ``active`` (a ``sys.addaudithook`` hook)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.active = False
        self.opened = 0
        self.listed = 0

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active or not args or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path = os.fsdecode(os.fspath(args[0]))
        if not path.startswith(self.root):
            return
        if event == "open":
            self.opened += 1
        elif event in ("os.listdir", "os.scandir"):
            self.listed += 1


def stock_context(data_docs: Path, results: Path) -> Any:
    """The GX context ``build_context`` made before: GX's own site builders and index builder."""
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False), analytics_enabled=False
    )
    config.stores[config.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(results)},
    }
    config.data_docs_sites = {
        SITE_NAME: {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    }
    return gx.get_context(project_config=config, mode="ephemeral")


def real_run(root: Path, patients: int) -> tuple[Path, Path]:
    """One raw checkpoint run on a generated, loaded batch; returns its results and Data Docs folders."""
    registry = load_registry()
    network = NetworkSpec(seed=5, patients=patients, start_date=dt.date(2024, 1, 1))
    batch = generate_initial(root / "landing", network, dt.date(2024, 1, 31), registry=registry)
    warehouse = root / "warehouse.duckdb"
    with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
        load_batch(batch.path, registry, handle)
    docs, results = root / "data_docs", root / "gx_results"
    run_checkpoint(
        "raw", warehouse_path=warehouse, data_docs_dir=docs, results_dir=results, batch_id=batch.batch_id,
        landing_dir=batch.path, raise_on_failure=False,
    )  # fmt: skip
    return results, docs


def clone_runs(source_results: Path, source_docs: Path, results: Path, docs: Path, days: list[dt.date]) -> list:
    """Copy the real run as one daily run per date (run ``raw daily-<date>`` at 02:15 UTC); returns the last keys."""
    originals = [p for p in source_results.rglob("*.json") if len(p.relative_to(source_results).parts) >= 4]
    keys = []
    for day in days:
        when = dt.datetime.combine(day, dt.time(2, 15), tzinfo=dt.UTC)
        run_name, folder = f"raw daily-{day:%Y%m%d}", when.strftime(RUN_TIME_FORMAT)
        keys = []
        for original in originals:
            suite_parts = original.relative_to(source_results).parts[:-3]
            data = json.loads(original.read_text(encoding="utf-8"))
            data["meta"]["run_id"] = {"run_name": run_name, "run_time": when.isoformat()}
            data["meta"]["validation_time"] = when.isoformat()
            target = results.joinpath(*suite_parts, run_name, folder, original.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(data), encoding="utf-8")
            page = source_docs.joinpath("validations", *original.relative_to(source_results).parts)
            page_target = docs.joinpath("validations", *suite_parts, run_name, folder, original.stem + ".html")
            page_target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page.with_name(original.stem + ".html"), page_target)
            keys.append(ValidationResultIdentifier.from_tuple((*suite_parts, run_name, folder, original.stem)))
    return keys


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure(kind: str, home: Path, history: int, source: tuple[Path, Path], today: dt.date, hook: FileCounter) -> dict:
    """One more run's Data Docs update on a home holding ``history`` daily runs."""
    results, docs = home / "gx_results", home / "data_docs"
    start = today - dt.timedelta(days=history)
    clone_runs(*source, results, docs, [start + dt.timedelta(days=d) for d in range(history)])
    context = stock_context(docs, results) if kind == "stock" else build_context(docs, results)
    if kind == "project":  # the summary exists once a home has run with this code; build it before timing
        context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[])
    keys = clone_runs(*source, results, docs, [today])  # today's results, as the checkpoint stores them
    for key in keys:  # today's pages are what the update renders
        validation_page(docs, key).unlink()
    hook.root, hook.opened, hook.listed = str(results), 0, 0
    hook.active = True
    began = time.perf_counter()
    context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=keys)
    seconds = time.perf_counter() - began
    hook.active = False
    pages = sum(validation_page(docs, key).stat().st_size for key in keys)
    return {
        "seconds": seconds, "opened": hook.opened, "listed": hook.listed, "stored": (history + 1) * len(keys),
        "page_kb": pages / 1e3, "index_kb": (docs / "index.html").stat().st_size / 1e3,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, nargs="+", default=[30, 100, 400], help="history sizes (daily runs)")
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--keep-days", type=int, default=30, help="retention for the prune figure")
    args = parser.parse_args()
    hook = FileCounter(Path("/nonexistent"))
    sys.addaudithook(hook)
    today = dt.date(2026, 1, 1)
    with tempfile.TemporaryDirectory(prefix="datadocs-bench-") as tmp:
        root = Path(tmp)
        source = real_run(root / "real", args.patients)
        results_bytes = folder_bytes(source[0])
        pages_bytes = folder_bytes(source[1] / "validations")
        suites = len(list(source[0].rglob("*.json")))
        print(f"one raw run: {suites} validations, results {results_bytes / 1e3:.0f} kB, "
              f"pages {pages_bytes / 1e3:.0f} kB, index {(source[1] / 'index.html').stat().st_size / 1e3:.0f} kB, "
              f"summary {(source[1] / 'index.json').stat().st_size / 1e3:.1f} kB")  # fmt: skip
        columns = f"{'opened':>7} {'listed':>7} {'pages kB':>9} {'index kB':>9}"
        print(f"\n{'daily runs':>10} {'stored':>7} | {'stock s':>8} {columns} | {'project s':>9} {columns}")
        for history in args.days:
            row = {}
            for kind in ("stock", "project"):
                row[kind] = measure(kind, root / f"{kind}-{history}", history, source, today, hook)
            stock = row["stock"]
            cells = [
                f"{row[kind]['seconds']:>{width}.2f} {row[kind]['opened']:>7} {row[kind]['listed']:>7} "
                f"{row[kind]['page_kb']:>9.0f} {row[kind]['index_kb']:>9.0f}"
                for kind, width in (("stock", 8), ("project", 9))
            ]
            print(f"{history:>10} {stock['stored']:>7} | {cells[0]} | {cells[1]}")
        largest = root / f"project-{max(args.days)}"
        before = folder_bytes(largest)
        now = dt.datetime.combine(today, dt.time(3), tzinfo=dt.UTC)
        report = prune(largest / "data_docs", largest / "gx_results", keep_days=args.keep_days, now=now)
        print(f"\nprune of {max(args.days)} days to {args.keep_days}: {before / 1e6:.1f} MB -> "
              f"{folder_bytes(largest) / 1e6:.1f} MB, removed {report.removed_results} results and "
              f"{report.removed_pages} pages, index lists {report.kept_pages} pages")  # fmt: skip


if __name__ == "__main__":
    main()
