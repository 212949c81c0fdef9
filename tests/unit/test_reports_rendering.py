"""Charts drawn in a second process (reports/rendering.py) are the charts drawn here, byte for byte; a worker that
dies or cannot draw only moves the drawing back here, and a chart's own error still stops the publication."""

from __future__ import annotations

import os
import signal
from concurrent.futures import BrokenExecutor
from pathlib import Path

import numpy as np
import pytest

from reports.html import format_period, period_of
from reports.rendering import ChartJob, ChartPainter, cpu_ticks, idle_cores, usable_cores, worker_processes
from reports.samples import sample_marts
from reports.views import publish_marts

pytestmark = pytest.mark.unit

RUN_ID = "run-7"


@pytest.fixture(scope="module")
def jobs() -> list[ChartJob]:
    """Five charts of a seeded 2,000-patient network (lines, bars, a pyramid, shares; every third of the 13), as
    the publication queues them (tests/integration/test_reports_publish.py compares all 13 in a publication)."""
    publication = publish_marts(sample_marts(np.random.default_rng(11), months=12, patients=2_000))
    period = format_period(period_of(publication.tables))
    views = list(publication.views.items())[::3]
    return [ChartJob(name, view.frame, view.note, period, RUN_ID) for name, view in views]


@pytest.fixture(scope="module")
def drawn_here(jobs, tmp_path_factory) -> Path:
    """Every chart drawn in this process only (``processes=0``)."""
    directory = tmp_path_factory.mktemp("here")
    with ChartPainter(0) as painter:
        painter.submit(jobs, directory)
        drawn = painter.drawn()
    assert list(drawn) == [job.name for job in jobs]
    return directory


def files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_charts_drawn_by_a_worker_process_are_byte_identical_to_charts_drawn_here(jobs, drawn_here, tmp_path):
    with ChartPainter(1) as painter:
        painter.submit(jobs, tmp_path)
        painter._queued[0][2].result(timeout=120)  # the worker has drawn the first chart before this one starts
        drawn = painter.drawn()
    assert list(drawn) == [job.name for job in jobs]  # the order the page shows them in
    processes = {chart.pid for chart in drawn.values()}
    assert os.getpid() in processes and len(processes) == 2  # drawn here and in the worker
    assert all(chart.title for chart in drawn.values())  # the page's alt text
    here = files(drawn_here)
    assert len(here) == 2 * len(jobs)  # a PNG and an SVG per chart
    assert files(tmp_path) == here


def test_a_worker_that_dies_only_moves_the_drawing_here(jobs, drawn_here, tmp_path):
    with ChartPainter(1) as painter:
        # Queue one chart, wait until the worker process exists, kill it, then queue the rest.
        painter.submit(jobs[:1], tmp_path)
        workers = list(painter._pool._processes.values())
        assert workers
        for worker in workers:
            os.kill(worker.pid, signal.SIGKILL)
        assert isinstance(painter._queued[0][2].exception(timeout=60), BrokenExecutor)  # the pool knows it broke
        painter.submit(jobs[1:], tmp_path)
        drawn = painter.drawn()
    assert list(drawn) == [job.name for job in jobs]
    assert files(tmp_path) == files(drawn_here)


def test_a_chart_that_fails_in_the_worker_fails_the_publication(jobs, tmp_path):
    broken = ChartJob("no_such_chart", jobs[0].frame, jobs[0].note, jobs[0].period, RUN_ID)
    with ChartPainter(1) as painter, pytest.raises(KeyError, match="no_such_chart"):
        painter.submit([broken, *jobs[:2]], tmp_path)
        painter.drawn()


@pytest.mark.parametrize(
    ("charts", "idle", "workers"),
    [
        (13, 1.0, 1),  # a core was idle while the marts were read: a worker draws half the charts
        (13, 0.1, 0),  # every core busy (other work, or a parallel test run): its start-up would only add load
        (13, None, 1),  # no /proc/stat: a machine with two cores gets one
        (2, 1.0, 0),  # two charts are drawn here sooner than a worker starts
    ],
)
def test_a_worker_is_started_only_for_enough_charts_and_an_idle_core(charts, idle, workers, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    # Two cores over 100 ticks each: ``idle`` core-equivalents of them idle.
    since, now = ((0, 0), (round(idle * 100), 200)) if idle is not None else (None, None)
    assert worker_processes(charts, since, now) == workers


def test_idle_cores_are_measured_from_the_machine_s_cpu_ticks():
    since = cpu_ticks()
    assert since is not None and since[1] >= since[0] > 0  # Linux: /proc/stat
    sum(range(3_000_000))  # some work, so that ticks pass
    idle = idle_cores(since)
    assert idle is None or 0.0 <= idle <= os.cpu_count()


def test_a_machine_without_cpu_affinity_counts_its_cores(monkeypatch):
    # macOS and Windows have no os.sched_getaffinity: the publication must not fail there.
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert usable_cores() == 2
    assert worker_processes(13, None) == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert worker_processes(13, None) == 0
