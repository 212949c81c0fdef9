"""Benchmark of the synthetic hospital-network generator (``make bench``).

In one process: the vectorized generator at ``--patients`` (throughput per source and in total), then both the
vectorized generator and the row-by-row Faker + pandas reference (``benchmarks/reference_generator.py``) at
``--reference-patients`` with the same sources and row counts (the speed-up), then the generator in a child
process at ``--memory-patients`` (its peak RSS). Each figure is printed next to its target; ``--check`` makes
a missed target exit non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.reference_generator import generate_reference  # noqa: E402
from flows.contracts.registry import Registry, load_registry  # noqa: E402

TARGET_ROWS_PER_SECOND = 1_000_000
TARGET_SPEEDUP = 60.0
TARGET_PEAK_RSS_BYTES = 2_000_000_000  # 2 GB
START_DATE = dt.date(2024, 1, 1)
MB = 1_000_000


@dataclass(frozen=True)
class SourceStat:
    """Rows, bytes and seconds spent on one source."""

    source: str
    rows: int
    bytes: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")

    @property
    def mb_per_second(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class Run:
    """One generator run: per-source figures and the wall-clock total around the whole call."""

    label: str
    stats: list[SourceStat]
    wall_seconds: float
    reported_seconds: float | None = None  # the generator's own seconds_total

    @property
    def total(self) -> SourceStat:
        return SourceStat(
            "total",
            sum(stat.rows for stat in self.stats),
            sum(stat.bytes for stat in self.stats),
            self.wall_seconds,
        )

    @property
    def row_counts(self) -> dict[str, int]:
        return {stat.source: stat.rows for stat in self.stats}


def end_date(start: dt.date, years: int) -> dt.date:
    """The last day of ``years`` years of history from ``start``."""
    return start.replace(year=start.year + years) - dt.timedelta(days=1)


def _source_name(registry: Registry, entry: Mapping[str, object]) -> str:
    source = str(entry.get("source", ""))
    if source in registry.sources:
        return source
    return registry.by_entity[str(entry["entity"])].name


def run_vectorized(landing_root: Path, patients: int, years: int, seed: int, workers: int, registry: Registry) -> Run:
    """Run ``generators.batch.generate_initial`` once and collect its per-source figures from the manifest."""
    from generators.batch import NetworkSpec, generate_initial

    network = NetworkSpec(seed=seed, patients=patients, start_date=START_DATE)
    began = time.perf_counter()
    result = generate_initial(
        landing_root,
        network,
        end=end_date(START_DATE, years),
        registry=registry,
        defect_rate=0.0,
        workers=workers,
    )
    wall = time.perf_counter() - began
    rows: dict[str, int] = {}
    size: dict[str, int] = {}
    for entry in result.manifest["files"]:
        name = _source_name(registry, entry)
        rows[name] = rows.get(name, 0) + int(entry["rows"])
        size[name] = size.get(name, 0) + int(entry["bytes"])
    stats = [
        SourceStat(name, rows[name], size[name], float(result.seconds_by_source.get(name, float("nan"))))
        for name in registry.sources
        if name in rows
    ]
    label = f"vectorized, {patients:,} patients x {years} years, {workers} worker(s)"
    return Run(label, stats, wall, float(result.seconds_total))


def run_reference(
    out_dir: Path, row_counts: Mapping[str, int], years: int, seed: int, registry: Registry, patients: int
) -> Run:
    """Run the row-by-row reference for exactly ``row_counts`` and collect its figures."""
    began = time.perf_counter()
    results = generate_reference(
        out_dir, row_counts, registry, seed=seed, start=START_DATE, end=end_date(START_DATE, years)
    )
    wall = time.perf_counter() - began
    stats = [SourceStat(name, r.rows, r.bytes, r.seconds) for name, r in results.items()]
    return Run(f"reference (Faker row by row -> pandas), rows of {patients:,} patients", stats, wall)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table with padded columns (first column left-aligned, the others right-aligned)."""
    body = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in body) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        cells = [cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(body[0]), rule, *(line(row) for row in body[1:])])


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def throughput_table(run: Run) -> str:
    """Per-source rows, MB, seconds, rows/s and MB/s, then the total (wall clock around the whole run)."""

    def cells(stat: SourceStat) -> list[str]:
        return [
            stat.source,
            f"{stat.rows:,}",
            f"{stat.bytes / MB:,.1f}",
            f"{stat.seconds:.2f}",
            _rate(stat.rows_per_second),
            f"{stat.mb_per_second:,.1f}",
        ]

    total = cells(run.total)
    total[0] = "**total (wall)**"
    return format_table(["source", "rows", "MB", "seconds", "rows/s", "MB/s"], [*map(cells, run.stats), total])


def timing_note(run: Run) -> str:
    """How the per-source seconds relate to the wall clock of the run."""
    per_source = sum(stat.seconds for stat in run.stats)
    note = (
        f"Per-source seconds are the generator's own (BatchResult.seconds_by_source): {per_source:.2f} s in all; "
        f"seconds_total {run.reported_seconds:.2f} s; wall {run.wall_seconds:.2f} s."
    )
    if per_source > run.wall_seconds * 1.05:
        note += " They overlap (workers run in parallel), so per-source rows/s understate the throughput."
    return note + "\n"


def speedup_table(vectorized: Run, reference: Run) -> str:
    """Per-source and total rows/s of both generators on the same rows, and their ratio."""
    by_source = {stat.source: stat for stat in reference.stats}
    rows = []
    for stat in [*vectorized.stats, vectorized.total]:
        ref = reference.total if stat.source == "total" else by_source[stat.source]
        rows.append(
            [
                "**total (wall)**" if stat.source == "total" else stat.source,
                f"{stat.rows:,}",
                _rate(stat.rows_per_second),
                _rate(ref.rows_per_second),
                f"{stat.rows_per_second / ref.rows_per_second:,.1f}x",
            ]
        )
    return format_table(["source", "rows", "vectorized rows/s", "reference rows/s", "speed-up"], rows)


def machine_description() -> list[str]:
    """Cores, CPU, memory and the versions that matter for the figures."""
    import faker
    import numpy
    import pandas
    import pyarrow

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if "model name" in ln]
        cpu = models[0] if models else cpu
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    git = ["git", "-C", str(REPO_ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "generators"], capture_output=True, text=True).stdout
    return [
        f"date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {len(os.sched_getaffinity(0))} usable cores ({os.cpu_count()} logical), {cpu}, "
        f"{memory_gb:.1f} GB RAM, {platform.system()} {platform.release()}, "
        f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())} (other work on the machine skews timings)",
        f"python {platform.python_version()}, numpy {numpy.__version__}, pyarrow {pyarrow.__version__}, "
        f"pandas {pandas.__version__}, faker {faker.VERSION}",
        f"generator: commit {commit or 'unknown'}{' with uncommitted changes in generators/' if dirty else ''}",
    ]


def _tree_memory(process: psutil.Process) -> tuple[int, int]:
    """RSS and PSS summed over a process and its descendants.

    Forked workers share the parent's pages copy-on-write: the RSS sum counts such a page once per process,
    the PSS sum (each page divided among the processes sharing it) counts it once.
    """
    rss = pss = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
        except psutil.Error:  # a worker ended between listing and reading
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def measure_memory(patients: int, years: int, seed: int, workers: int, tmp_root: Path) -> dict:
    """Run the generator in a child process; return its peak RSS (kernel high-water mark and polled tree)."""
    result_file = tmp_root / "memory_result.json"
    command = [
        sys.executable, str(Path(__file__).resolve()), "--memory-child", "--patients", str(patients),
        "--years", str(years), "--seed", str(seed), "--workers", str(workers),
        "--out", str(tmp_root / "landing"), "--result-file", str(result_file),
    ]  # fmt: skip
    began = time.perf_counter()
    sys.stdout.flush()  # the child shares stdout: keep the tables printed so far in order
    child = subprocess.Popen(command)
    rss_peak = pss_peak = 0
    watched = psutil.Process(child.pid)
    while child.poll() is None:
        with contextlib.suppress(psutil.Error):  # the child ended between poll() and sampling
            rss, pss = _tree_memory(watched)
            rss_peak, pss_peak = max(rss_peak, rss), max(pss_peak, pss)
        time.sleep(0.05)
    wall = time.perf_counter() - began
    if child.returncode != 0:
        raise RuntimeError(f"memory run failed with exit code {child.returncode}: {' '.join(command)}")
    report = json.loads(result_file.read_text())
    report.update(wall_seconds=wall, tree_rss_peak_bytes=rss_peak, tree_pss_peak_bytes=pss_peak)
    # Checked: the largest single process (kernel high-water mark) or the tree's sampled PSS, whichever is higher.
    candidates = [report["maxrss_self_bytes"], report["maxrss_workers_bytes"], pss_peak]
    report["peak_bytes"] = max(value for value in candidates if value is not None)
    return report


def own_peak_rss() -> int:
    """This process's peak RSS in bytes: the kernel's high-water mark, so no peak is missed between samples.

    Linux's VmHWM belongs to the process image; ru_maxrss also carries the peak of the process that forked
    this one before its exec (the benchmark itself, large after the reference run), so it is the fallback only.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def memory_child(args: argparse.Namespace) -> None:
    """Body of the child process of the memory check: generate, then report rows and peak RSS."""
    registry = load_registry()
    run = run_vectorized(Path(args.out), args.patients, args.years, args.seed, args.workers, registry)
    total = run.total
    report = {
        "patients": args.patients,
        "years": args.years,
        "rows": total.rows,
        "bytes": total.bytes,
        "seconds": run.wall_seconds,
        "maxrss_self_bytes": own_peak_rss(),
        "maxrss_workers_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 or None,
    }
    Path(args.result_file).write_text(json.dumps(report))


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100_000, help="scale of the throughput run")
    parser.add_argument("--years", type=int, default=2, help="years of history from 2024-01-01")
    parser.add_argument(
        "--reference-patients", type=int, default=5_000, help="scale at which both generators are compared"
    )
    parser.add_argument(
        "--reference-at-scale",
        action="store_true",
        help="also run the reference on the throughput run's rows (--patients; ~70 s at 100,000) and check the "
        "60x target on that ratio",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="throughput runs (the first in a fresh process, then warm); the target is checked on the median run",
    )
    parser.add_argument("--memory-patients", type=int, default=1_000_000, help="scale of the peak-RSS check")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-RSS check")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="generator worker processes (default 1, as `hospital generate`; the reference uses one core)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where to write (default: system temp)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; return the exit code."""
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args)
        return 0
    registry = load_registry()
    print("# Generator benchmark\n")
    print("\n".join(machine_description()) + "\n")

    runs = []
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-large-", dir=args.tmp_dir) as tmp:
            runs.append(run_vectorized(Path(tmp), args.patients, args.years, args.seed, args.workers, registry))
        print(f"throughput run {attempt + 1} of {args.repeat}: {runs[-1].wall_seconds:.2f} s wall, load average "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
    large = sorted(runs, key=lambda run: run.wall_seconds)[(len(runs) - 1) // 2]  # the median run (lower middle)
    label = "the median of " if len(runs) > 1 else ""
    print(f"\n## Throughput: {large.label} ({label}{len(runs)} run{'s' if len(runs) > 1 else ''})\n")
    print(f"{throughput_table(large)}\n")
    print(timing_note(large))

    with tempfile.TemporaryDirectory(prefix="bench-small-", dir=args.tmp_dir) as tmp:
        small = run_vectorized(
            Path(tmp) / "vectorized", args.reference_patients, args.years, args.seed, args.workers, registry
        )
        reference = run_reference(
            Path(tmp) / "reference",
            small.row_counts,
            args.years,
            args.seed,
            registry,
            args.reference_patients,
        )
    if reference.row_counts != small.row_counts:
        raise RuntimeError(f"row counts differ: {reference.row_counts} != {small.row_counts}")
    print(f"## Same scale: {small.label}\n\n{throughput_table(small)}\n")
    print(timing_note(small))
    print(f"## Same scale: {reference.label}\n\n{throughput_table(reference)}\n")
    print(f"## Speed-up on the same rows ({args.reference_patients:,} patients)\n")
    print(speedup_table(small, reference) + "\n")

    same_scale = small.total.rows_per_second / reference.total.rows_per_second
    large_scale = large.total.rows_per_second / reference.total.rows_per_second
    targets = [
        [
            f"total rows/s, vectorized at {args.patients:,} patients",
            _rate(large.total.rows_per_second),
            f">= {TARGET_ROWS_PER_SECOND:,}",
            _verdict(large.total.rows_per_second >= TARGET_ROWS_PER_SECOND),
        ],
        [
            f"speed-up vs reference, both at {args.reference_patients:,} patients",
            f"{same_scale:,.1f}x",
            f">= {TARGET_SPEEDUP:.0f}x",
            _verdict(same_scale >= TARGET_SPEEDUP),
        ],
    ]
    if args.reference_at_scale:
        with tempfile.TemporaryDirectory(prefix="bench-reference-", dir=args.tmp_dir) as tmp:
            reference_large = run_reference(Path(tmp), large.row_counts, args.years, args.seed, registry, args.patients)
        if reference_large.row_counts != large.row_counts:
            raise RuntimeError(f"row counts differ: {reference_large.row_counts} != {large.row_counts}")
        print(f"## At scale: {reference_large.label}\n\n{throughput_table(reference_large)}\n")
        print(f"## Speed-up on the same rows ({args.patients:,} patients)\n")
        print(speedup_table(large, reference_large) + "\n")
        at_scale = large.total.rows_per_second / reference_large.total.rows_per_second
        targets.append(
            [
                f"speed-up vs reference, both at {args.patients:,} patients",
                f"{at_scale:,.1f}x",
                f">= {TARGET_SPEEDUP:.0f}x",
                _verdict(at_scale >= TARGET_SPEEDUP),
            ]
        )
    targets.append(
        [
            f"speed-up, vectorized at {args.patients:,} vs reference at {args.reference_patients:,} patients",
            f"{large_scale:,.1f}x",
            "(for information)",
            "-",
        ]
    )

    if args.skip_memory:
        targets.append([f"peak memory at {args.memory_patients:,} patients", "not run", "< 2,000 MB", "SKIPPED"])
    else:
        with tempfile.TemporaryDirectory(prefix="bench-memory-", dir=args.tmp_dir) as tmp:
            memory = measure_memory(args.memory_patients, args.years, args.seed, args.workers, Path(tmp))
        print(f"## Memory: {args.memory_patients:,} patients x {args.years} years, {args.workers} worker(s)\n")
        lines = [
            f"rows {memory['rows']:,}, {memory['bytes'] / MB:,.0f} MB written in {memory['seconds']:.1f} s "
            f"({memory['rows'] / memory['seconds']:,.0f} rows/s)",
            f"peak RSS of the generator process (VmHWM): {memory['maxrss_self_bytes'] / MB:,.0f} MB",
        ]
        if memory["maxrss_workers_bytes"]:
            lines.append(f"largest worker process (ru_maxrss): {memory['maxrss_workers_bytes'] / MB:,.0f} MB")
        lines.append(
            f"process tree, sampled every 50 ms: peak PSS sum {memory['tree_pss_peak_bytes'] / MB:,.0f} MB, "
            f"peak RSS sum {memory['tree_rss_peak_bytes'] / MB:,.0f} MB (counts pages shared with forked workers "
            "once per process)"
        )
        lines.append("checked against the target: the highest of the process high-water marks and the tree's PSS sum")
        print("\n".join(lines) + "\n")
        targets.append(
            [
                f"peak memory at {args.memory_patients:,} patients x {args.years} years",
                f"{memory['peak_bytes'] / MB:,.0f} MB",
                f"< {TARGET_PEAK_RSS_BYTES / MB:,.0f} MB",
                _verdict(memory["peak_bytes"] < TARGET_PEAK_RSS_BYTES),
            ]
        )

    print("## Targets\n")
    print(format_table(["target", "measured", "required", "result"], targets))
    failed = [row[0] for row in targets if row[3] == "FAIL"]
    if failed:
        print(f"\nmissed: {'; '.join(failed)}")
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
