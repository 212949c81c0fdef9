"""Quality-gate benchmark: the raw and marts checkpoints as SQL pushdown on DuckDB vs the same suites on pandas.

Generates and loads one initial batch into a temporary data home (timing both stages), builds the dbt models once
(timed), then in one run times:

* the full checkpoints as the pipeline runs them (``run_checkpoint``: every rule, Data Docs built), and right
  after, the same checkpoints with GX's stock parts (``--compare``, the default): ``UpdateDataDocsAction`` (the site
  rebuilt per validation), ``SUMMARY`` results and ``UnexpectedRowsExpectation`` (each SQL rule's query run twice);
* the rules GX can run on both engines (its own expectations; the SQL rules — references, reconciliation,
  NPI check digit, coverage, totals — exist only as pushdown) on DuckDB pushdown and on pandas frames read from
  the same queries (read time included, as the pandas path has to pay it).

    .venv/bin/python benchmarks/gx_bench.py --patients 100000 --months 12
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe

from expectations import checkpoints, rules, run_checkpoint
from expectations.checkpoints import RESULT_FORMAT
from expectations.duckdb_support import duckdb_connection_string
from expectations.marts_suites import DEFAULT_MARTS_RULES, load_marts_rules, marts_suites
from expectations.raw_suites import DEFAULT_RAW_RULES, load_raw_rules, raw_suites, read_manifest
from expectations.rules import DEFAULT_THRESHOLDS, SuiteSpec, load_thresholds
from flows.contracts.registry import load_registry
from flows.warehouse import load_batch, open_warehouse
from flows.warehouse.resource import DuckDBResource
from generators.batch import NetworkSpec, generate_initial

ROOT = Path(__file__).resolve().parents[1]
SALT = "bench-salt-" + "0123456789abcdef" * 2


@contextmanager
def stock_gx() -> Iterator[None]:
    """The checkpoints as GX's stock parts run them (what this project did before the speed-ups)."""

    def unexpected_rows(*, unexpected_rows_query: str, max_failing_rate: float, **kwargs: Any) -> Any:
        return gxe.UnexpectedRowsExpectation(unexpected_rows_query=unexpected_rows_query, **kwargs)

    summary = {**RESULT_FORMAT, "result_format": "SUMMARY"}
    with (
        mock.patch.object(checkpoints, "UpdateDataDocsOnceAction", checkpoints.UpdateDataDocsAction),
        mock.patch.object(checkpoints, "RESULT_FORMAT", summary),
        mock.patch.object(rules, "ExpectNoFailingRows", unexpected_rows),
    ):
        yield


def _specs(kind: str, warehouse: Path, batch_id: str, landing: Path) -> list[SuiteSpec]:
    thresholds = load_thresholds(DEFAULT_THRESHOLDS, kind)
    with DuckDBResource(warehouse).session() as session:  # what run_checkpoint reads through the resource
        tables, columns = session.tables("raw"), session.columns()
    if kind == "raw":
        registry = load_registry()
        tables = {table for _, table in tables}
        rules = load_raw_rules(DEFAULT_RAW_RULES, registry)
        return raw_suites(registry, batch_id, thresholds, rules, read_manifest(landing), tables)
    return marts_suites(load_marts_rules(DEFAULT_MARTS_RULES), thresholds, columns, timezone=load_registry().timezone)


def _portable(spec: SuiteSpec) -> list:
    return [r.expectation for r in spec.rules if not isinstance(r.expectation, gxe.UnexpectedRowsExpectation)]


def time_pushdown(kind: str, warehouse: Path, batch_id: str, landing: Path) -> tuple[float, int]:
    """GX's own expectations of every suite, validated by SQL in DuckDB."""
    specs = _specs(kind, warehouse, batch_id, landing)  # before GX opens the file (DuckDB: one configuration)
    started = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.enable_analytics(False)
    source = context.data_sources.add_duckdb(
        "w", connection_string=duckdb_connection_string(str(warehouse)), kwargs={"connect_args": {"read_only": True}}
    )
    count = 0
    for spec in specs:
        expectations = _portable(spec)
        batch = source.add_query_asset(spec.name, query=spec.query).add_batch_definition_whole_table("b").get_batch()
        batch.validate(gx.ExpectationSuite(name=spec.name, expectations=expectations), result_format=RESULT_FORMAT)
        count += len(expectations)
    source.close()
    return time.perf_counter() - started, count


def time_pandas(kind: str, warehouse: Path, batch_id: str, landing: Path) -> tuple[float, float, int]:
    """The same expectations on pandas frames read from the same queries; returns (total, read, count)."""
    started, reading = time.perf_counter(), 0.0
    context = gx.get_context(mode="ephemeral")
    context.enable_analytics(False)
    source = context.data_sources.add_pandas("frames")
    count = 0
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for spec in _specs(kind, warehouse, batch_id, landing):
            expectations = _portable(spec)
            read_started = time.perf_counter()
            frame = connection.execute(spec.query).df()
            reading += time.perf_counter() - read_started
            definition = source.add_dataframe_asset(spec.name).add_batch_definition_whole_dataframe("b")
            batch = definition.get_batch(batch_parameters={"dataframe": frame})
            batch.validate(gx.ExpectationSuite(name=spec.name, expectations=expectations), result_format=RESULT_FORMAT)
            count += len(expectations)
    return time.perf_counter() - started, reading, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--skip-dbt", action="store_true", help="raw checkpoint only")
    parser.add_argument("--no-compare", action="store_true", help="skip the stock-GX checkpoints and pandas")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="gx_bench_"))
    stages: dict[str, float] = {}
    try:
        network = NetworkSpec(seed=1, patients=args.patients, start_date=dt.date(2024, 1, 1))
        end = dt.date(2024, 1, 1) + dt.timedelta(days=round(args.months * 30.44) - 1)
        started = time.perf_counter()
        batch = generate_initial(home / "landing", network, end, registry=load_registry())
        stages["generate"] = time.perf_counter() - started
        warehouse = home / "warehouse.duckdb"
        started = time.perf_counter()
        with open_warehouse("duckdb", duckdb_path=warehouse) as handle:
            load_batch(batch.path, load_registry(), handle)
        stages["load"] = time.perf_counter() - started
        print(f"generate {stages['generate']:.1f} s, load {stages['load']:.1f} s", flush=True)
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            rows = connection.execute(
                "select sum(rows_loaded) from ledger.load_ledger where batch_id = ?", [batch.batch_id]
            ).fetchone()[0]
        kinds = ["raw"]
        if not args.skip_dbt:
            stages["dbt build"] = _dbt_build(home, warehouse)
            print(f"dbt build {stages['dbt build']:.1f} s", flush=True)
            kinds.append("marts")
        print(f"{args.patients:,} patients, {args.months} months, {rows:,} raw rows; home {home}")
        results, stock = {}, {}
        for kind in kinds:
            outcome, full = _timed_checkpoint(kind, home, warehouse, batch)
            stages[f"checkpoint {kind}"] = full
            print(f"checkpoint {kind}: {outcome.evaluated} rules, passed {outcome.success}, {full:.1f} s", flush=True)
            if args.no_compare:
                continue
            with stock_gx():
                stock_outcome, stock[kind] = _timed_checkpoint(kind, home, warehouse, batch)
            print(f"  stock GX: {stock_outcome.evaluated} rules, passed {stock_outcome.success}, {stock[kind]:.1f} s")
            pushdown, count = time_pushdown(kind, warehouse, batch.batch_id, batch.path)
            frames, reading, _ = time_pandas(kind, warehouse, batch.batch_id, batch.path)
            results[kind] = (outcome.evaluated, outcome.success, full, count, pushdown, frames, reading)
        print("\nstage                 seconds")
        for stage, seconds in stages.items():
            print(f"{stage:<20} {seconds:8.1f}")
        total = sum(stages.values())
        validation = sum(v for k, v in stages.items() if k.startswith("checkpoint"))
        print(f"{'total':<20} {total:8.1f}   validation share {validation / total:.1%}")
        if stock:
            stock_total = total - validation + sum(stock.values())
            print(
                f"with stock GX: validation {sum(stock.values()):.1f} s, share {sum(stock.values()) / stock_total:.1%}"
            )
        print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print("\ncheckpoint  rules  passed  full(s)  stock(s) | GX rules  pushdown(s)  pandas(s) (of which read)")
        for kind, (evaluated, success, full, count, pushdown, frames, reading) in results.items():
            print(
                f"{kind:<10} {evaluated:6d}  {success!s:>6}  {full:7.1f}  {stock[kind]:8.1f} | {count:8d}"
                f"  {pushdown:11.1f}  {frames:9.1f} ({reading:.1f})"
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _timed_checkpoint(kind: str, home: Path, warehouse: Path, batch: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    outcome = run_checkpoint(
        kind, warehouse_path=warehouse, data_docs_dir=home / "data_docs", batch_id=batch.batch_id,
        landing_dir=batch.path, raise_on_failure=False,
    )  # fmt: skip
    return outcome, time.perf_counter() - started


def _dbt_build(home: Path, warehouse: Path) -> float:
    from dbt.cli.main import dbtRunner

    project = home / "dbt_project"
    shutil.copytree(ROOT / "dbt_project", project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    os.environ["HOSPITAL_WAREHOUSE_PATH"] = str(warehouse)
    os.environ["DBT_TARGET"] = "duckdb"
    started = time.perf_counter()
    result = dbtRunner().invoke(
        [
            "build",
            "--select",
            "lists",
            "staging+",
            "int_surrogate_salt_generated",
            "dim_dates",
            "--indirect-selection",
            "cautious",
            "--vars",
            f"{{defect_severity: error, surrogate_salt: {SALT}}}",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--log-path",
            str(home / "logs"),
            "--target-path",
            str(home / "target"),
            "--quiet",
        ]
    )
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    if DuckDBConnectionManager._ENV is not None:
        DuckDBConnectionManager._ENV.close()
    DuckDBConnectionManager.close_all_connections()
    if not result.success:
        raise SystemExit("dbt build failed; see the logs under the temporary home")
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
