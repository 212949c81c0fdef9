"""What each chart draws: the grain it is drawn at and the published (suppressed) cells at that grain.

Every mart with charts is published together with the aggregates its charts draw: the extract and the charts'
cells are suppressed as linked tables (reports/deidentify.py, `suppress_linked`), so no chart total gives away a
cell the extract hides, and no extract cell gives away a chart cell. A chart walks its ladder of grains (finest
first: day -> week -> month -> quarter, hospital -> network, age bands merged, small categories into "Other") and
keeps the first grain at which suppression hides at most `MAX_HIDDEN_SHARE` of its mass (the count its values
rest on: admissions, discharges, patient-days...); when no grain does, the one hiding least. The hidden share is
what the published cells leave out of the chart's own grand total, the total its KPI tile shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.charts import CHARTS, ChartSpec
from reports.deidentify import SUPPRESSED_COLUMN, prepare, publishable, suppress_linked
from reports.grains import OTHER, Grain, GrainNote, Rollup, rollup
from reports.kpis import BY_KEY, kpis, show
from reports.marts import CATALOGUE, MartSpec

MAX_HIDDEN_SHARE = 0.05


@dataclass(frozen=True)
class ChartView:
    """One chart's published cells at its grain, and what the chart says about them."""

    chart: str
    mart: str
    frame: pd.DataFrame
    note: GrainNote
    spec: MartSpec


@dataclass(frozen=True)
class Publication:
    """The published form of every mart (the extracts) and every chart's view."""

    tables: dict[str, pd.DataFrame]
    views: dict[str, ChartView]
    #: Suppressed cells of the extracts, and of the charts' own aggregates.
    suppressed_cells: int
    chart_suppressed_cells: int


@dataclass(frozen=True)
class _Candidate:
    grain: Grain
    position: int
    rolled: Rollup
    published: pd.DataFrame
    hidden_share: float
    hidden_cells: int


def hidden_rows(published: pd.DataFrame, measure: str) -> np.ndarray:
    """Rows of a published table whose ``measure`` was suppressed (a null from a zero denominator is not)."""
    names = published[SUPPRESSED_COLUMN].fillna("").str.split(",")
    return np.array([measure in row for row in names], dtype=bool)


def hidden_share(rolled: pd.DataFrame, published: pd.DataFrame, chart: ChartSpec) -> tuple[float, int]:
    """Share of the chart's mass in its suppressed cells, and how many cells are suppressed."""
    hidden = hidden_rows(published, chart.measure)
    mass = pd.to_numeric(rolled[chart.mass], errors="coerce").fillna(0).to_numpy(dtype=float)
    total = float(mass.sum())
    return (float(mass[hidden].sum()) / total if total > 0 else 0.0), int(hidden.sum())


def top_other(frame: pd.DataFrame, grain: Grain, mass: str) -> set:
    """Values of the grain's "Other" column beyond its ``top`` (by mass over the period), merged into "Other"."""
    rule = grain.other
    if rule is None or rule.top is None or rule.column not in frame:
        return set()
    totals = pd.to_numeric(frame[mass], errors="coerce").fillna(0).groupby(frame[rule.column].astype(str)).sum()
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    rest = [value for value, _ in ordered[rule.top :]]
    # Merging a single value into "Other" would only rename it.
    return set(rest) if len(rest) > 1 else set()


def _triple(rolled: Rollup) -> tuple[pd.DataFrame, MartSpec, np.ndarray]:
    return rolled.frame, rolled.spec, rolled.rows


def _evaluate(
    frame: pd.DataFrame, spec: MartSpec, chart: ChartSpec, name: str, grain: Grain, position: int,
    fixed: Sequence[Rollup],
) -> _Candidate:  # fmt: skip
    """One grain of a chart: its aggregate, suppressed with the mart and the mart's other charts' aggregates."""
    other = top_other(frame, grain, chart.mass)
    rolled = rollup(frame, spec, grain, other=other, name=f"chart_{name}")
    published = suppress_linked(frame, spec, [*(_triple(r) for r in fixed), _triple(rolled)])[-1][0]
    if grain.other is not None and grain.other.suppressed:
        column = grain.other.column
        hidden = published.loc[hidden_rows(published, chart.measure), column].astype(str)
        extra = {value for value in hidden if not value.startswith(OTHER)} - other
        if extra:
            rolled = rollup(frame, spec, grain, other=other | extra, name=f"chart_{name}")
            published = suppress_linked(frame, spec, [*(_triple(r) for r in fixed), _triple(rolled)])[-1][0]
    share, cells = hidden_share(rolled.frame, published, chart)
    return _Candidate(grain, position, rolled, published, share, cells)


def choose_grain(
    frame: pd.DataFrame, spec: MartSpec, name: str, chart: ChartSpec, fixed: Sequence[Rollup] = (),
    limit: float = MAX_HIDDEN_SHARE,
) -> tuple[Grain, int, Rollup, float]:  # fmt: skip
    """The finest grain of the chart's ladder at which suppression hides at most ``limit`` of its mass (else the
    grain hiding least, the finer on a tie), with its aggregate and hidden share. Pure: ``frame`` is the mart
    before suppression, ``fixed`` the aggregates of other charts of the same mart already chosen."""
    candidates = []
    for position, grain in enumerate(chart.grains):
        candidate = _evaluate(frame, spec, chart, name, grain, position, fixed)
        if candidate.hidden_share <= limit:
            return candidate.grain, candidate.position, candidate.rolled, candidate.hidden_share
        candidates.append(candidate)
    best = min(candidates, key=lambda c: (c.hidden_share, c.position))
    return best.grain, best.position, best.rolled, best.hidden_share


def _note(chart: ChartSpec, grain: Grain, position: int, rolled: Rollup, published: pd.DataFrame,
          references: dict) -> GrainNote:  # fmt: skip
    share, cells = hidden_share(rolled.frame, published, chart)
    value, text = references.get(chart.tile, (None, None)) if chart.tile else (None, None)
    return GrainNote(
        grain=grain, position=position, ladder=len(chart.grains), mass_label=chart.mass_label, cells=len(published),
        hidden_cells=cells, hidden_share=share, limit=MAX_HIDDEN_SHARE, reference=value, reference_text=text,
    )  # fmt: skip


def publish_mart(frame: pd.DataFrame, spec: MartSpec, references: dict | None = None
                 ) -> tuple[pd.DataFrame, int, dict[str, ChartView], int]:  # fmt: skip
    """One mart's extract and its charts' views, suppressed together. Returns the extract, its suppressed cells,
    the views and the views' suppressed cells."""
    references = references or {}
    base = prepare(frame, spec)
    charts = {name: chart for name, chart in CHARTS.items() if chart.mart == spec.name}
    if not charts or not spec.counts:
        published, cells = publishable(frame, spec)
        return published, cells, {}, 0
    chosen: dict[str, tuple[Grain, int, Rollup]] = {}
    for name, chart in charts.items():
        fixed = [rolled for _, _, rolled in chosen.values()]
        grain, position, rolled, _ = choose_grain(base, spec, name, chart, fixed)
        chosen[name] = (grain, position, rolled)
    results = suppress_linked(base, spec, [_triple(rolled) for _, _, rolled in chosen.values()])
    (published, cells), chart_results = results[0], results[1:]
    views = {}
    chart_cells = 0
    for (name, (grain, position, rolled)), (view, view_cells) in zip(chosen.items(), chart_results, strict=True):
        note = _note(charts[name], grain, position, rolled, view, references)
        views[name] = ChartView(name, spec.name, view.reset_index(drop=True), note, rolled.spec)
        chart_cells += view_cells
    return published.reset_index(drop=True), cells, views, chart_cells


def references_of(frames: dict[str, pd.DataFrame]) -> dict[str, tuple[float, str]]:
    """Each shown KPI tile's value and text, by tile key (a suppressed or unavailable tile has none)."""
    shown = {}
    for key, value in kpis(frames).items():
        if value.value is not None and not value.suppressed:
            shown[key] = (value.value, show(value.value, BY_KEY[key].style))
    return shown


def publish_marts(frames: dict[str, pd.DataFrame]) -> Publication:
    """The published extract of every mart read, and every chart's view of the marts it reads."""
    references = references_of(frames)
    tables: dict[str, pd.DataFrame] = {}
    views: dict[str, ChartView] = {}
    cells = chart_cells = 0
    for name, frame in frames.items():
        tables[name], table_cells, mart_views, view_cells = publish_mart(frame, CATALOGUE[name], references)
        views.update(mart_views)
        cells += table_cells
        chart_cells += view_cells
    ordered = {name: views[name] for name in CHARTS if name in views}
    return Publication(tables, ordered, cells, chart_cells)
