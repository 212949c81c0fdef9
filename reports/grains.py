"""Grains of a chart: how a mart's cells add up to a coarser grain, recomputed from the mart's own counts.

A grain keeps some key columns of a mart (hospital, department, sex...), possibly with their values merged (age
bands into wider bands, small categories into "Other"), and cuts the mart's time axis into periods (day, week,
month, quarter, half-year, year or the whole period). `rollup` adds the mart's counts up to the grain and
recomputes every value a chart draws (rates, weighted averages, shares) from the sums, never from published
(suppressed) cells; it also says which row of the aggregate each mart row went into, so that suppression can
treat the aggregate and the mart as the linked tables they are (reports/deidentify.py, `suppress_linked`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.deidentify import margin_groupings
from reports.marts import MartSpec

#: Time units from the finest to the coarsest; "period" is the whole period covered, as one cell.
TIME_UNITS = ("day", "week", "month", "quarter", "half", "year", "period")
PERIOD_START = "period_start"
PERIOD_END = "period_end"
#: For marts with one row per day: the number of days a cell covers (average daily census = patient-days / days).
DAY_COUNT = "days_in_period"
OTHER = "Other"


@dataclass(frozen=True)
class Merge:
    """Values of one key column merged into coarser ones (e.g. age bands into wider bands)."""

    column: str
    #: (merged value, the values it holds); values not listed keep their own value.
    groups: tuple[tuple[str, tuple[str, ...]], ...]

    def mapping(self) -> dict[str, str]:
        """Value -> merged value."""
        return {member: merged for merged, members in self.groups for member in members}


@dataclass(frozen=True)
class OtherRule:
    """Which values of a category column are merged into one "Other" row."""

    column: str
    #: Keep the ``top`` values with the most mass (over the period); the rest are merged. None: keep all.
    top: int | None = None
    #: Also merge the values whose cell would be suppressed at this grain (a grain of its own on the ladder).
    suppressed: bool = False
    #: What the values are, for the "Other" row's label ("Other (3 departments)").
    noun: str = "categories"


@dataclass(frozen=True)
class Grain:
    """One grain a chart can be drawn at."""

    #: How the chart's subtitle names it, e.g. "quarter × hospital".
    label: str
    #: Key columns kept (with merged values where ``merges`` say so); every other key is summed over.
    keys: tuple[str, ...] = ()
    #: Time unit of the periods (one of TIME_UNITS), or None when the chart has no time axis (the whole period).
    time: str | None = None
    merges: tuple[Merge, ...] = ()
    other: OtherRule | None = None


@dataclass(frozen=True)
class Rollup:
    """A mart added up to a grain: the aggregate and, per mart row, the index of the aggregate row holding it."""

    frame: pd.DataFrame
    rows: np.ndarray
    spec: MartSpec


def period_start(dates: pd.Series, unit: str) -> pd.Series:
    """The first day of the period of each date (weeks start on Monday; "period" is the first date of all)."""
    if unit not in TIME_UNITS:
        raise ValueError(f"Unknown time unit {unit!r}: use one of {', '.join(TIME_UNITS)}.")
    values = pd.to_datetime(dates).dt.normalize()
    if unit == "day":
        return values
    if unit == "period":
        return pd.Series(values.min(), index=values.index)
    if unit == "half":
        halves = pd.DataFrame({"year": values.dt.year, "month": np.where(values.dt.month <= 6, 1, 7), "day": 1})
        return pd.to_datetime(halves).set_axis(values.index)
    frequency = {"week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}[unit]
    return values.dt.to_period(frequency).dt.start_time


def native_end(dates: pd.Series, unit: str) -> pd.Series:
    """The last day a mart's time value covers: the day itself, or the last day of its month."""
    values = pd.to_datetime(dates).dt.normalize()
    return values + pd.offsets.MonthEnd(0) if unit == "month" else values


def period_label(start: pd.Timestamp, unit: str | None, end: pd.Timestamp | None = None) -> str:
    """How a period is written on an axis: 2024-03-18, 2024-W12, 2024-03, 2024-Q1, 2024-H1, 2024 or a span."""
    start = pd.Timestamp(start)
    if unit == "day":
        return f"{start:%Y-%m-%d}"
    if unit == "week":
        iso = start.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if unit == "month":
        return f"{start:%Y-%m}"
    if unit == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if unit == "half":
        return f"{start.year}-H{1 if start.month <= 6 else 2}"
    if unit == "year":
        return f"{start.year}"
    return f"{start:%Y-%m-%d} to {pd.Timestamp(end):%Y-%m-%d}" if end is not None else f"from {start:%Y-%m-%d}"


def other_label(count: int, noun: str) -> str:
    """The label of the row other values were merged into."""
    return f"{OTHER} ({count} {noun})"


def _keyed(frame: pd.DataFrame, spec: MartSpec, grain: Grain, other: Collection) -> tuple[pd.DataFrame, list[str]]:
    """The mart with the grain's key columns computed (periods, merged values, Other), and those columns."""
    work = frame.reset_index(drop=True).copy()
    group_columns: list[str] = []
    if grain.time is not None:
        if spec.time is None:
            raise ValueError(f"{spec.name} has no time column: grain {grain.label!r} cannot cut it into periods.")
        column, unit = spec.time
        work[PERIOD_START] = period_start(work[column], grain.time)
        # A period ends on the last day the mart covers in it (the same for every row of the period).
        work[PERIOD_END] = native_end(work[column], unit).groupby(work[PERIOD_START]).transform("max")
        group_columns.append(PERIOD_START)
    for merge in grain.merges:
        mapping = merge.mapping()
        work[merge.column] = work[merge.column].map(lambda value, m=mapping: m.get(value, value))
    if grain.other is not None and len(other):
        column = grain.other.column
        merged = work[column].astype(str).isin({str(value) for value in other})
        # One "Other" row per value of the grain's other keys (per hospital...), labelled with what it holds.
        within = [key for key in grain.keys if key != column]
        members = work.loc[merged, column].astype(str)
        if within:
            by = [work.loc[merged, key] for key in within]
            counts = members.groupby(by, dropna=False).transform("nunique")
        else:
            counts = pd.Series(members.nunique(), index=members.index)
        labels = pd.Series(pd.NA, index=work.index, dtype=object)
        labels[merged] = [other_label(int(count), grain.other.noun) for count in counts]
        work[column] = work[column].astype(object).where(~merged, labels)
        for dependent in spec.labels.get(column, ()):
            if dependent in work:
                numeric = pd.api.types.is_numeric_dtype(work[dependent])
                work[dependent] = (
                    work[dependent].astype(float if numeric else object).where(~merged, np.nan if numeric else labels)
                )
    return work, group_columns + list(grain.keys)


def rollup(frame: pd.DataFrame, spec: MartSpec, grain: Grain, *, other: Collection = (), name: str = "") -> Rollup:
    """Add a mart's rows up to ``grain`` and recompute its rates, averages and shares from the sums.

    ``other`` lists the values of ``grain.other.column`` merged into the "Other" row. Columns that cannot be
    recomputed from sums (medians) are kept only when every aggregate row is one mart row. Returns the aggregate
    (sorted by its keys), the aggregate row of every mart row, and the aggregate's own `MartSpec` (its keys, its
    counts and derived columns, and the totals a reader can know, mapped from the mart's).
    """
    work, group_columns = _keyed(frame, spec, grain, other)
    counts = [c for c in spec.counts if c in work]
    additive = [c for c in spec.additive if c in work]
    for column, weight in spec.weighted.items():
        if column in work:
            known = work[column].notna()
            work[f"__sum_{column}"] = (work[column].astype(float) * work[weight].astype(float)).where(known, 0.0)
            work[f"__weight_{column}"] = work[weight].astype(float).where(known, 0.0)
    labels = [c for key in grain.keys for c in spec.labels.get(key, ()) if c in work]
    sums = counts + additive + [c for c in work if c.startswith("__")]
    if group_columns:
        grouped = work.groupby(group_columns, dropna=False, sort=True)
        rows = grouped.ngroup().to_numpy()
        result = grouped[sums].sum()
        firsts = grouped[labels].first() if labels else None
        result = result.join(firsts) if firsts is not None else result
        if PERIOD_END in work:
            result[PERIOD_END] = grouped[PERIOD_END].max()
        result = result.reset_index()
    else:
        rows = np.zeros(len(work), dtype=np.int64)
        result = work[sums].sum().to_frame().T
        if PERIOD_END in work:
            result[PERIOD_END] = work[PERIOD_END].max()
    if grain.time is not None and spec.time is not None and spec.time[1] == "day":
        result[DAY_COUNT] = pd.Series(rows).groupby(rows).size().reindex(range(len(result))).to_numpy()
    identity = bool(len(work)) and np.bincount(rows, minlength=len(result)).max(initial=0) <= 1
    identity = identity and not grain.merges and not (grain.other is not None and len(other))
    for column in counts:
        result[column] = result[column].astype("int64")
    for column, (numerator, denominator) in spec.ratios.items():
        if numerator in result and denominator in result:
            den = result[denominator].astype(float)
            result[column] = (result[numerator].astype(float) / den.where(den > 0)).astype(float)
    for column in spec.weighted:
        if f"__sum_{column}" in result:
            weight = result.pop(f"__weight_{column}").astype(float)
            result[column] = result.pop(f"__sum_{column}").astype(float) / weight.where(weight > 0)
    for column, (count, within) in spec.shares.items():
        if count in result:
            keys = [PERIOD_START] if grain.time is not None and spec.time and spec.time[0] in within else []
            totals = result.groupby(keys)[count].transform("sum") if keys else result[count].sum()
            result[column] = result[count].astype(float) / pd.Series(totals, index=result.index).astype(float)
    if identity:
        # One mart row per aggregate row: values that do not add up (medians) are still exact.
        order = np.argsort(rows, kind="stable")
        for column in spec.columns:
            if column not in result and column in work and (spec.time is None or column != spec.time[0]):
                result[column] = work[column].to_numpy()[order]
    result = result[_ordered(result, spec, group_columns, labels)]
    return Rollup(result.reset_index(drop=True), rows, view_spec(spec, grain, list(result.columns), name))


def _ordered(result: pd.DataFrame, spec: MartSpec, keys: list[str], labels: list[str]) -> list[str]:
    time = [c for c in (PERIOD_START, PERIOD_END, DAY_COUNT) if c in result]
    head = time + [c for c in keys if c not in time] + labels
    rest = [c for c in spec.columns if c in result and c not in head]
    return head + rest + [c for c in result if c not in head and c not in rest]


def view_spec(spec: MartSpec, grain: Grain, columns: list[str], name: str = "") -> MartSpec:
    """The `MartSpec` of an aggregate: its keys, counts and derived columns, and the totals a reader can know.

    A total the mart's readers can know (a grouping of the mart) stays known after aggregation, over the
    aggregate's columns: the time column becomes the period, kept keys stay (merged values are sums of known
    totals), keys summed over drop out.
    """
    keys = ((PERIOD_START,) if grain.time is not None else ()) + grain.keys
    mapped: list[tuple[str, ...]] = []
    for grouping in margin_groupings(spec):
        columns_of = []
        for column in grouping:
            if spec.time is not None and column == spec.time[0]:
                if grain.time is not None:
                    columns_of.append(PERIOD_START)
            elif column in grain.keys:
                columns_of.append(column)
        candidate = tuple(columns_of)
        if set(candidate) != set(keys) and candidate not in mapped:
            mapped.append(candidate)
    return MartSpec(
        name or f"{spec.name} by {grain.label}",
        tuple(columns),
        margins=keys,
        groupings=tuple(mapped),
        counts=tuple(c for c in spec.counts if c in columns),
        derived={c: s for c, s in spec.derived.items() if c in columns},
        order_by=keys,
    )


@dataclass(frozen=True)
class GrainNote:
    """What a chart says about the grain it was drawn at and what suppression hides there."""

    grain: Grain
    #: Position of the grain on the chart's ladder (0 = finest) and the ladder's length.
    position: int
    ladder: int
    #: What the chart's mass counts ("admissions"), its cells at this grain and how many are suppressed.
    mass_label: str
    cells: int
    hidden_cells: int
    #: Share of the chart's mass in suppressed cells (0..1), and the most a grain may hide.
    hidden_share: float
    limit: float
    #: The whole-period value of the chart's KPI as its tile shows it (None: no tile, or the tile is suppressed).
    reference: float | None = None
    reference_text: str | None = None

    @property
    def within_limit(self) -> bool:
        """Whether suppression hides at most ``limit`` of the mass at this grain."""
        return self.hidden_share <= self.limit

    @property
    def nothing_publishable(self) -> bool:
        """Whether every cell is suppressed (or there is none)."""
        return self.cells == 0 or self.hidden_cells >= self.cells


def share_text(share: float) -> str:
    """A hidden share as a chart prints it: whole percent, "< 1%" below one (never precise enough to give a
    suppressed total away)."""
    if share <= 0:
        return "0%"
    return "< 1%" if share < 0.01 else f"{round(share * 100):d}%"
