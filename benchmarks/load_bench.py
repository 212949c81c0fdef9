"""Benchmark: the loader's speed against DuckDB's bare ``read_csv``, and its peak memory on generated batches.

Speed (default): writes a batch of >= 5,000,000 rows across four registry sources in their own delimiters
(vectorized with numpy and pyarrow), then times (a) ``load_batch`` into a fresh DuckDB file (checksums,
manifest checks, typed parse with rejects, UTC conversion, audit columns, ledger, one transaction) and (b) a
bare ``create table as select * from read_csv(file)`` of every file into another fresh file. Rounds
alternate the two and which goes first (each after an ``os.sync``), so background load hits both alike; the
best round of each is compared, and the per-round ratios are printed too. Target: ratio <= 1.5.

Memory (``--memory N [N ...]``): for each network size, ``hospital generate --patients N`` lands the initial
batch in a scratch folder, then ``hospital load --dir`` runs as the user runs it, into a fresh warehouse,
while a sampler reads the resident memory of its process tree (psutil, every 50 ms); prints the batch's
size, the load's time and peak resident memory, and the peak size of DuckDB's spill folder. Target: peak
<= 2 GB whatever the batch size. ``--reference DIR`` loads the same batch with an older ``flows/`` too
(alternating which goes first), for a side-by-side figure. The scratch folder (about 4 GB of landing files
at 1,000,000 patients, and up to 3.3 GB of spill) is deleted afterwards unless ``--keep``.

    .venv/bin/python benchmarks/load_bench.py [--rows 5000000] [--rounds 2] [--work DIR]
    .venv/bin/python benchmarks/load_bench.py --memory 100000 1000000 [--work /tmp/load-mem] [--keep]
    git archive <commit> flows generators | tar -x -C /tmp/before   # the code before, for --reference
    .venv/bin/python benchmarks/load_bench.py --memory 100000 --reference /tmp/before --rounds-memory 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from flows.contracts.registry import Source, load_registry
from flows.warehouse import load_batch, open_warehouse
from flows.warehouse.duckdb_backend import MEMORY_LIMIT

HOSPITAL = Path(sys.executable).with_name("hospital")
TARGET_PEAK_MB = 2000

SHARES = {  # source -> share of the rows
    "registration__patients": 0.2,
    "scheduling__appointments": 0.3,
    "adt__admissions": 0.2,
    "billing__charges": 0.3,
}
START = np.datetime64("2024-01-01T00:00:00", "s")


def column(kind: str, name: str, n: int, rng: np.random.Generator) -> pa.Array:
    """A column of ``n`` plausible values of a registry type (10% nulls where the registry allows)."""
    if kind.startswith("decimal"):
        return pa.array(np.round(rng.uniform(1, 5000, n), 2))
    if kind in ("integer", "bigint"):
        return pa.array(rng.integers(0, 240, n, dtype=np.int32))
    if kind == "date":
        return pa.array(np.datetime64("1940-01-01") + rng.integers(0, 30000, n).astype("timedelta64[D]"))
    if kind == "timestamp":
        return pa.array(START + rng.integers(0, 2 * 365 * 86400, n).astype("timedelta64[s]"))
    if kind == "boolean":
        return pa.array(rng.random(n) < 0.5)
    ids = pa.array(rng.integers(0, 10_000_000, n)).cast(pa.string())
    return pc.binary_join_element_wise(pa.scalar(name[:8] + "-"), ids, "")


def source_table(source: Source, n: int, rng: np.random.Generator) -> pa.Table:
    """``n`` rows of a source, columns in registry order."""
    arrays = {}
    for col in source.columns:
        values = column(col.type, col.name, n, rng)
        if col.nullable:
            values = pc.if_else(pa.array(rng.random(n) < 0.1), pa.nulls(n, values.type), values)
        arrays[col.name] = values
    return pa.table(arrays)


def write_batch(folder: Path, rows: int, seed: int) -> int:
    """Write the benchmark batch with its manifest; return the number of data rows."""
    registry = load_registry()
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    entries, total = [], 0
    for name, share in SHARES.items():
        source = registry[name]
        n = int(rows * share)
        path = folder / source.pattern.replace("*", "bench")
        options = pa_csv.WriteOptions(delimiter=source.delimiter, quoting_style="needed", batch_size=65536)
        for start in range(0, n, 1_000_000):  # in slices, to bound memory
            part = source_table(source, min(1_000_000, n - start), rng)
            with path.open("ab") as handle:
                opts = options if start == 0 else pa_csv.WriteOptions(**{**_kw(options), "include_header": False})
                pa_csv.write_csv(part, handle, opts)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entries.append({"file": path.name, "source": name, "rows": n, "bytes": path.stat().st_size, "sha256": digest})
        total += n
    manifest = {"batch_id": folder.name, "batch_type": "benchmark", "files": entries, "ground_truth": None}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return total


def _kw(options: pa_csv.WriteOptions) -> dict:
    return {"delimiter": options.delimiter, "quoting_style": "needed", "batch_size": options.batch_size}


def time_loader(folder: Path, database: Path) -> float:
    """Seconds for the platform loader, fresh warehouse."""
    registry = load_registry()
    started = time.perf_counter()
    with open_warehouse("duckdb", duckdb_path=database) as warehouse:
        result = load_batch(folder, registry, warehouse)
    elapsed = time.perf_counter() - started
    if result.outcome != "loaded":
        raise SystemExit(f"loader failed: {result.message}")
    return elapsed


def time_bare(folder: Path, database: Path) -> float:
    """Seconds for DuckDB's bare read_csv (auto-detected dialect and types) of the same files."""
    registry = load_registry()
    started = time.perf_counter()
    con = duckdb.connect(str(database))
    for name in SHARES:
        source = registry[name]
        path = folder / source.pattern.replace("*", "bench")
        con.execute(f"create table {source.table} as select * from read_csv('{path}', header = true)")
    con.close()
    return time.perf_counter() - started


class TreeSampler:
    """Peak resident memory of a process and its children, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, watch: Path | None = None, interval: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self._watch = watch
        self._interval = interval
        self.peak_rss = 0
        self.peak_spill = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                tree = [self._process, *self._process.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in tree)
            except psutil.Error:
                rss = 0
            self.peak_rss = max(self.peak_rss, rss)
            if self._watch is not None and self._watch.is_dir():
                spill = sum(f.stat().st_size for f in self._watch.iterdir() if f.is_file())
                self.peak_spill = max(self.peak_spill, spill)
            time.sleep(self._interval)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def generate(patients: int, work: Path, seed: int) -> tuple[Path, int, int, float]:
    """Land the initial batch of a network of ``patients``; return its folder, rows, bytes and the seconds."""
    landing = work / f"landing-{patients}"
    shutil.rmtree(landing, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [str(HOSPITAL), "generate", "--patients", str(patients), "--seed", str(seed), "--out", str(landing)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    (batch,) = [p for p in landing.iterdir() if p.is_dir()]
    manifest = json.loads((batch / "manifest.json").read_text())
    return batch, sum(e["rows"] for e in manifest["files"]), sum(e["bytes"] for e in manifest["files"]), seconds


def measure_load(batch: Path, home: Path, code: Path | None = None) -> dict:
    """Run ``hospital load --dir batch`` into a fresh warehouse in ``home``, sampling its memory; ``code``
    puts another checkout's ``flows`` first on the path (the code before a change, for a side-by-side run)."""
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "HOSPITAL_HOME": str(home)}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    os.sync()
    started = time.perf_counter()
    load = subprocess.Popen(
        [str(HOSPITAL), "load", "--dir", str(batch), "--home", str(home)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with TreeSampler(load.pid, watch=home / "warehouse.duckdb.tmp") as sampler:
        output, _ = load.communicate()
    elapsed = time.perf_counter() - started
    lines = [line for line in output.strip().splitlines() if line.startswith("batch ")]
    figures = {
        "load_s": elapsed,
        "peak_rss": sampler.peak_rss,
        "peak_spill": sampler.peak_spill,
        "exit": load.returncode,
        "summary": lines[-1] if lines else output.strip().splitlines()[-1:],
    }
    shutil.rmtree(home, ignore_errors=True)
    return figures


def memory_main(args: argparse.Namespace) -> None:
    """Measure ``hospital load``'s peak memory at each network size and print the figures."""
    work = args.work or Path(tempfile.mkdtemp(prefix="load_mem_"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{_total_memory_gb():.0f} GB RAM, duckdb {duckdb.__version__}, python {platform.python_version()}, "
        f"loader memory_limit {MEMORY_LIMIT}"
    )
    failed = False
    try:
        for patients in args.memory:
            batch, rows, size, seconds = generate(patients, work, args.seed)
            print(f"{patients:>9,} patients: {rows:,} rows, {size / 1e6:,.0f} MB landed (generated in {seconds:.0f} s)")
            runs = [("this code", None)] + ([("reference", args.reference)] if args.reference else [])
            for round_ in range(1, args.rounds_memory + 1):
                for label, code in runs if round_ % 2 else reversed(runs):  # alternate who goes first
                    figures = measure_load(batch, work / "home", code)
                    peak_mb = figures["peak_rss"] / 1e6
                    if code is None:
                        failed |= peak_mb > TARGET_PEAK_MB or figures["exit"] != 0
                    verdict = "PASS" if peak_mb <= TARGET_PEAK_MB else "FAIL"
                    print(
                        f"  round {round_} {label:9s}: exit {figures['exit']}, load {figures['load_s']:.0f} s "
                        f"({rows / figures['load_s'] / 1e3:,.0f} k rows/s), peak RSS {peak_mb:,.0f} MB "
                        f"[{verdict} <= {TARGET_PEAK_MB} MB], peak spill {figures['peak_spill'] / 1e6:,.0f} MB "
                        f"| {figures['summary']}"
                    )
            if not args.keep:
                shutil.rmtree(batch.parent, ignore_errors=True)
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        raise SystemExit(1)


def _total_memory_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / 2**30


def main() -> None:
    """Write the batch, run the rounds, print the figures (or measure memory with --memory)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--memory", type=int, nargs="+", metavar="PATIENTS", help="measure peak memory instead")
    parser.add_argument("--keep", action="store_true", help="keep the landed batches (--memory)")
    parser.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="--memory: also load with the flows/ of this folder (e.g. `git archive <commit> flows generators`)",
    )
    parser.add_argument("--rounds-memory", type=int, default=1, help="--memory: loads per size (and per code)")
    args = parser.parse_args()
    if args.memory:
        memory_main(args)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="load_bench_"))
    folder = work / "landing" / "bench-load"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    rows = write_batch(folder, args.rows, args.seed)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(
        f"batch: {rows:,} rows in {len(SHARES)} files, {size / 1e6:,.0f} MB, "
        f"written in {time.perf_counter() - started:.1f} s"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"duckdb {duckdb.__version__}, python {platform.python_version()}"
    )
    loader, bare = [], []
    for round_ in range(1, args.rounds + 1):
        pair = [("loader", time_loader, loader), ("bare read_csv", time_bare, bare)]
        for label, timer, times in pair if round_ % 2 else reversed(pair):  # alternate who goes first
            database = work / f"{label.split()[0]}_{round_}.duckdb"
            database.unlink(missing_ok=True)
            os.sync()  # flush earlier writes so that write-back does not land in the next timing
            times.append(timer(folder, database))
            database.unlink(missing_ok=True)
            print(f"round {round_}: {label:14s} {times[-1]:6.2f} s  ({rows / times[-1] / 1e6:.2f} M rows/s)")
    ratios = sorted(a / b for a, b in zip(loader, bare, strict=True))
    print(f"per-round ratios: {', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})")
    best_loader, best_bare = min(loader), min(bare)
    print(f"best: loader {best_loader:.2f} s, bare read_csv {best_bare:.2f} s, ratio {best_loader / best_bare:.2f}x")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
