"""Drawing the charts on two cores: a second process draws charts while this one writes the extracts.

Drawing the 13 charts (PNG and SVG) is most of a publication's CPU time, and it is the same whatever changed: in
a daily batch every KPI mart changes, and every chart's subtitle names the run. matplotlib holds the GIL while it
draws and its ``rc_context`` is process-global (two threads saving SVGs at once write different bytes), so the
second core is used by a second *process*. It is started (``spawn``: a fresh interpreter, no state forked from a
Prefect process with threads) right after the marts are read, when a core was idle meanwhile
(``worker_processes``), so that its imports overlap the suppression. Every chart is queued to it; this process
takes the charts the worker has not started yet (``Future.cancel()`` succeeds only for a call still pending) once
its own work is done, so a slow or busy worker costs nothing, and a worker that fails to start or dies only moves
the drawing back here. The figures are drawn by the same pure functions from the same cells in a fresh
interpreter: the files are byte-identical to drawing them here (tests/unit/test_reports_rendering.py).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterable
from concurrent.futures import BrokenExecutor, CancelledError, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reports.grains import GrainNote

#: A worker costs ~1.7 s of CPU to start (a fresh interpreter importing pandas and matplotlib): worth it from
#: this many charts (a chart is 0.2-0.4 s to draw), and only with an idle core to run on.
MIN_CHARTS_FOR_WORKER = 6
#: Idle core-equivalents (over a moment of the publication, ``cpu_ticks``) from which a worker is started.
MIN_IDLE_CORES = 0.6


def cpu_ticks() -> tuple[int, int] | None:
    """The machine's (idle, total) CPU time so far in clock ticks (Linux ``/proc/stat``; None elsewhere)."""
    try:
        with Path("/proc/stat").open(encoding="ascii") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    return fields[3] + fields[4], sum(fields[:8])


def idle_cores(since: tuple[int, int] | None, now: tuple[int, int] | None = None) -> float | None:
    """How many cores were idle on average since ``since`` (``cpu_ticks()``); None when unknown."""
    now = now if now is not None else cpu_ticks()
    if since is None or now is None or now[1] <= since[1]:
        return None
    return (now[0] - since[0]) / (now[1] - since[1]) * (os.cpu_count() or 1)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one, as on Linux; else the machine's)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


def worker_processes(charts: int, since: tuple[int, int] | None, now: tuple[int, int] | None = None) -> int:
    """Chart-drawing processes to start besides this one: one when there are ``MIN_CHARTS_FOR_WORKER`` charts
    or more and a core was idle since ``since`` (while the marts were read; on a machine whose cores are all busy
    a worker only adds its start-up to their load), else none."""
    if charts < MIN_CHARTS_FOR_WORKER or usable_cores() < 2:
        return 0
    idle = idle_cores(since, now)
    return 1 if idle is None or idle >= MIN_IDLE_CORES else 0


@dataclass(frozen=True)
class ChartJob:
    """What one chart is drawn from: its published cells, what its grain hides, the period and the run."""

    name: str
    frame: pd.DataFrame
    note: GrainNote
    period: str
    run_id: str


@dataclass(frozen=True)
class DrawnChart:
    """One chart's files, its title (the page's alt text) and the process that drew it."""

    name: str
    png: Path
    svg: Path
    title: str
    pid: int


def draw_chart(job: ChartJob, directory: Path) -> DrawnChart:
    """Draw one chart and write it as PNG and SVG into ``directory`` (in whichever process calls it)."""
    from reports.charts import CHARTS, save_chart

    figure = CHARTS[job.name].plot(job.frame, grain=job.note, period=job.period, run_id=job.run_id)
    png, svg = save_chart(figure, directory, job.name)
    return DrawnChart(job.name, png, svg, figure.get_suptitle(), os.getpid())


def _worker_started() -> None:
    """In the worker: Ctrl-C is for the publishing process, which stops the worker (no second traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ready() -> bool:
    """The worker's first call: importing matplotlib and the chart code before the first chart arrives."""
    import reports.charts  # noqa: F401 - imported for its cost, while the parent suppresses the marts

    return True


class ChartPainter:
    """Draws charts in up to ``processes`` worker processes and in the calling one (``processes=0``: here only).

    Start it before the suppression (``with ChartPainter(1) as painter:``), ``submit()`` the charts, do the
    other work, then ``drawn()`` returns every chart, drawing here each one no worker has started.
    """

    def __init__(self, processes: int) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._queued: list[tuple[ChartJob, Path, Future | None]] = []
        if processes > 0:
            try:
                self._pool = ProcessPoolExecutor(
                    processes, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_started
                )
                self._pool.submit(_ready)
            except (OSError, RuntimeError, BrokenExecutor):  # no process can be started here: draw in this one
                self._pool = None

    def __enter__(self) -> ChartPainter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (a chart still queued is dropped: its caller has failed already)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def submit(self, jobs: Iterable[ChartJob], directory: Path) -> None:
        """Queue charts to be drawn into ``directory``."""
        for job in jobs:
            future = None
            if self._pool is not None:
                try:
                    future = self._pool.submit(draw_chart, job, directory)
                except (BrokenExecutor, RuntimeError):
                    future = None
            self._queued.append((job, directory, future))

    def drawn(self) -> dict[str, DrawnChart]:
        """Every submitted chart, in the order submitted: the last queued ones that no worker has started are
        drawn here first (taken from the end of the queue, where the worker reaches last), then the workers'
        are awaited. A worker's failure to draw is raised as this process's would be; a worker that died is
        replaced by drawing here."""
        results: dict[str, DrawnChart] = {}
        for job, directory, future in reversed(self._queued):
            if future is None or future.cancel():
                results[job.name] = draw_chart(job, directory)
        for job, directory, future in self._queued:
            if job.name in results:
                continue
            try:
                results[job.name] = future.result()
            except (BrokenExecutor, CancelledError):
                results[job.name] = draw_chart(job, directory)
        order, self._queued = [job.name for job, _, _ in self._queued], []
        return {name: results[name] for name in order}
