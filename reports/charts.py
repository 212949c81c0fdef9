"""Charts of the KPI marts: pure ``plot_<metric>(df, *, grain, period, run_id) -> Figure`` functions.

Each function draws one chart's published cells: its mart added up to the chart's grain and suppressed together
with the mart's extract (reports/views.py). ``grain`` says which grain that is, why, and what suppression hides
there; the subtitle says it too. A suppressed cell is drawn as a hatched grey mark (artist gid "suppressed"):
a full-height bar, a shaded period or a cross on the series' line, never a zero or a silent gap. A chart with
nothing publishable says so in its place. Totals and rates are computed from the chart's own aggregate, never by
summing cells another table suppressed. Figures use the Agg canvas, never pyplot (no global state); colours are
the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl
import matplotlib.dates as mdates
import matplotlib.transforms as mtransforms
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from reports.deidentify import SUPPRESSED_COLUMN
from reports.grains import (
    DAY_COUNT,
    OTHER,
    PERIOD_END,
    PERIOD_START,
    Grain,
    GrainNote,
    Merge,
    OtherRule,
    period_label,
    share_text,
)

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
SUPPRESSED_COLOUR = "#BBBBBB"
SUPPRESSED_GID = "suppressed"
NOTHING_GID = "nothing-publishable"
HATCH = "///"
SUPPRESSED_LABEL = "Suppressed (1-10, or hidden so that one cannot be derived)"
#: Series drawn one by one (hospitals, payers); the rest are merged into "Other" by the chart's grain.
MAX_SERIES = 6
TOP_N = 12
UNIT_NAMES = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "half": "half-year",
              "year": "year", "period": "whole period"}  # fmt: skip


PlotFunction = Callable[..., Figure]


@dataclass(frozen=True)
class ChartSpec:
    """One chart: the mart it reads, how it is drawn, and the grains it may be drawn at (finest first)."""

    mart: str
    plot: PlotFunction
    grains: tuple[Grain, ...]
    #: The count the chart's values rest on (its "mass"): the hidden share is the share of it in suppressed cells.
    mass: str
    mass_label: str
    #: The column the chart draws; a cell is hidden when it is suppressed.
    measure: str
    #: The KPI tile of the same KPI (reports/kpis.py), drawn as the chart's reference.
    tile: str | None = None


# --------------------------------------------------------------------------------------------------- helpers


def _figure(title: str, period: str, run_id: str, grain: GrainNote, *, size: tuple[float, float] = (8.0, 4.4),
            rows: int = 1) -> Figure:  # fmt: skip
    """A figure on the Agg canvas with the title and a subtitle: period, run, grain and what suppression hides."""
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=12, fontweight="bold")
    figure.subplots(rows, 1, sharex=True, squeeze=False)
    figure.axes[0].set_title(subtitle(period, run_id, grain), fontsize=7.5, color="#333333")
    return figure


def subtitle(period: str, run_id: str, grain: GrainNote) -> str:
    """The subtitle's three lines: period and run; the grain and why; what suppression hides at that grain."""
    mass = grain.mass_label
    if grain.within_limit:
        why = (
            "the finest"
            if grain.position == 0
            else f"the finest at which suppression hides ≤ {grain.limit:.0%} of {mass}"
        )
    else:
        why = f"hides least of {grain.ladder} grains tried; more than {grain.limit:.0%} of {mass} stays hidden"
    if grain.cells == 0:
        status = "No data in this period"
    elif grain.hidden_cells:
        status = (f"{grain.hidden_cells} of {grain.cells} cells suppressed (counts of 1-10 and their complements): "
                  f"{share_text(grain.hidden_share)} of {mass}, marked 'suppressed'")  # fmt: skip
    else:
        status = f"No cell suppressed at this grain ({grain.cells} cells; counts of 1-10 would be)"
    lines = [f"Period {period} · run {run_id}", f"Grain: {grain.grain.label} ({why})", status]
    return "\n".join(textwrap.fill(line, 115) for line in lines)


def _nothing(axes, grain: GrainNote) -> None:
    """Say in the chart's place that nothing can be published."""
    text = (
        "No data in this period"
        if grain.cells == 0
        else f"Nothing publishable: every cell holds 1-10 {grain.mass_label}\n"
        "or is hidden so that one cannot be derived"
    )
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, fontsize=10, gid=NOTHING_GID)
    axes.tick_params(labelleft=False, labelbottom=False, left=False, bottom=False)


def hidden(df: pd.DataFrame, column: str) -> np.ndarray:
    """Rows whose ``column`` was suppressed (not: null for another reason, such as a zero denominator)."""
    if SUPPRESSED_COLUMN not in df:
        return df[column].isna().to_numpy() if column in df else np.zeros(len(df), dtype=bool)
    names = df[SUPPRESSED_COLUMN].astype("string").fillna("").str.split(",")
    return np.array([column in row for row in names], dtype=bool)


def _values(df: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(df[column], errors="coerce").astype(float).to_numpy()


def _suppressed_handle() -> Patch:
    return Patch(facecolor="white", hatch=HATCH, edgecolor=SUPPRESSED_COLOUR, label=SUPPRESSED_LABEL)


def _suppressed_bar(axes, position: float, extent: float, *, width: float = 0.8, horizontal: bool = False,
                    start: float = 0.0) -> None:  # fmt: skip
    """A hatched bar over the whole value axis with the word "suppressed": it shows no value at all."""
    style = {"color": "none", "hatch": HATCH, "edgecolor": SUPPRESSED_COLOUR, "linewidth": 0.6, "gid": SUPPRESSED_GID}
    if horizontal:
        axes.barh(position, extent, left=start, height=width, **style)
        axes.text(start + extent / 2, position, "suppressed", ha="center", va="center", fontsize=6.5,
                  color="#555555", bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})  # fmt: skip
    else:
        axes.bar(position, extent, bottom=start, width=width, **style)
        axes.text(position, start + extent * 0.06, "suppressed", ha="center", va="bottom", fontsize=7,
                  color="#444444", bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.8})  # fmt: skip


def _wrap(label: object, width: int = 38) -> str:
    """A category label on at most two lines, shortened at a word boundary (never cut mid-word)."""
    lines = textwrap.wrap(str(label), width) or [""]
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder=" …")]
    return "\n".join(lines)


def _midpoints(df: pd.DataFrame) -> pd.Series:
    """The middle of each period (where its point is drawn)."""
    start = pd.to_datetime(df[PERIOD_START])
    end = pd.to_datetime(df[PERIOD_END]) + pd.Timedelta(days=1)
    return start + (end - start) / 2


def _period_span(axes, start: pd.Timestamp, end: pd.Timestamp) -> None:
    """A hatched band over one suppressed period."""
    axes.axvspan(pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1), facecolor="none", hatch=HATCH,
                 edgecolor=SUPPRESSED_COLOUR, linewidth=0, gid=SUPPRESSED_GID, zorder=0)  # fmt: skip


def _time_axis(axes, df: pd.DataFrame, unit: str | None) -> None:
    """Period labels at the periods' middles (every n-th when many), or a date axis for days and weeks."""
    if unit in ("day", "week") or df.empty:
        locator = mdates.AutoDateLocator(maxticks=10)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        return
    periods = df[[PERIOD_START, PERIOD_END]].drop_duplicates().sort_values(PERIOD_START)
    middles = list(_midpoints(periods))
    labels = [period_label(s, unit, e) for s, e in zip(periods[PERIOD_START], periods[PERIOD_END], strict=True)]
    step = max(1, -(-len(middles) // 12))
    axes.set_xticks(middles[::step], labels[::step])
    axes.tick_params(axis="x", labelsize=7, rotation=45 if len(middles[::step]) > 6 else 0)
    if len(middles) == 1:
        start, end = periods.iloc[0][PERIOD_START], periods.iloc[0][PERIOD_END]
        axes.set_xlim(pd.Timestamp(start), pd.Timestamp(end) + pd.Timedelta(days=1))


def _series(df: pd.DataFrame, column: str | None, everything: str) -> list[tuple[str, pd.DataFrame]]:
    """The chart's series: one per value of ``column`` (the "Other" one last), or one named ``everything``."""
    if column is None or column not in df:
        return [(everything, df)]
    labels = sorted(df[column].astype(str).unique(), key=lambda value: (value.startswith(OTHER), value))
    return [(label, df[df[column].astype(str) == label]) for label in labels]


def _lines(axes, df: pd.DataFrame, column: str, series: str | None, everything: str, scale: float = 1.0) -> list:
    """One line per series over the periods. A suppressed point: a hatched band (one series) or a cross on a
    strip at the top of the chart in the series' colour (several). Returns the legend handles."""
    handles = []
    groups = _series(df, series, everything)
    strip = mtransforms.blended_transform_factory(axes.transData, axes.transAxes)
    for index, (label, group) in enumerate(groups):
        colour = OKABE_ITO[index % len(OKABE_ITO)]
        group = group.sort_values(PERIOD_START)
        x, values = _midpoints(group), _values(group, column) * scale
        (line,) = axes.plot(x, values, marker="o", markersize=3.5, color=colour, label=label)
        handles.append(line)
        for row in np.flatnonzero(hidden(group, column)):
            if len(groups) == 1:
                _period_span(axes, group[PERIOD_START].iloc[row], group[PERIOD_END].iloc[row])
            else:
                # One row of the strip per series, so that crosses of the same period do not hide each other.
                axes.plot([x.iloc[row]], [0.97 - 0.035 * index], transform=strip, marker="X", markersize=6,
                          color=colour, markeredgecolor="white", linestyle="none", gid=SUPPRESSED_GID,
                          clip_on=False)  # fmt: skip
    if hidden(df, column).any():
        if len(groups) == 1:
            handles.append(_suppressed_handle())
        else:
            handles.append(Line2D([], [], marker="X", color=SUPPRESSED_COLOUR, linestyle="none",
                                  label="Suppressed (1-10, or hidden so that one cannot be derived)"))  # fmt: skip
    return handles


def _reference_line(axes, value: float | None, text: str | None, *, horizontal: bool = True, scale: float = 1.0):
    """The KPI tile's whole-period value as a dashed line, labelled as the tile."""
    if value is None:
        return None
    draw = axes.axhline if horizontal else axes.axvline
    return draw(value * scale, color="#000000", linestyle="--", linewidth=1, label=f"Whole period: {text} (KPI tile)")


def _legend(axes, handles: list) -> None:
    """The chart's legend below its plot area, where it cannot cover a bar, a line or a suppressed mark."""
    handles = [h for h in handles if h is not None]
    if handles:
        axes.figure.legend(handles=handles, fontsize=7, loc="outside lower center", ncols=min(4, len(handles)))


def _top_margin(axes, values: list[float], extra: float = 1.25, floor: float = 1.0) -> float:
    """An upper axis limit leaving room above the largest value drawn (and the strip of suppressed markers)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    top = max([*finite, floor]) * extra
    axes.set_ylim(0, top)
    return top


# ------------------------------------------------------------------------------------------ time-series charts


def plot_admissions_trend(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Admissions per period, per hospital or for the network (mart_admissions_monthly)."""
    figure = _figure("Admissions", period, run_id, grain)
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    unit = grain.grain.time
    handles = _lines(axes, df, "admission_count", "hospital_id", "All hospitals")
    _top_margin(axes, list(_values(df, "admission_count")), extra=1.3)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    total = f"; period total {grain.reference_text} admissions (KPI tile)" if grain.reference_text else ""
    axes.set(xlabel=f"Admission {UNIT_NAMES[unit]} (hospital local calendar){total}",
             ylabel=f"Admissions (count per {UNIT_NAMES[unit]})")  # fmt: skip
    _time_axis(axes, df, unit)
    _legend(axes, handles)
    return figure


def plot_readmission_rate(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """30-day readmission rate per period of index discharge (mart_readmissions_monthly)."""
    figure = _figure("30-day readmission rate", period, run_id, grain)
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    unit = grain.grain.time
    handles = _lines(axes, df, "readmission_rate", None, "Readmission rate", scale=100)
    handles.append(_reference_line(axes, grain.reference, grain.reference_text, scale=100))
    values = [*(_values(df, "readmission_rate") * 100), 100 * (grain.reference or 0)]
    top = _top_margin(axes, values, extra=1.35)
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=1 if top < 5 else 0))
    for x, value in zip(_midpoints(df), _values(df, "readmission_rate") * 100, strict=True):
        if np.isfinite(value) and len(df) <= 12:
            axes.annotate(f"{value:.1f}%", (x, value), textcoords="offset points", xytext=(0, 5), ha="center",
                          fontsize=7)  # fmt: skip
    axes.set(xlabel=f"{UNIT_NAMES[unit].capitalize()} of index discharge",
             ylabel="Readmitted within 30 days (% of index stays)")  # fmt: skip
    _time_axis(axes, df, unit)
    _legend(axes, handles)
    return figure


def plot_bed_occupancy(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Average midnight census against staffed beds per period, one panel per hospital (mart_bed_occupancy_daily)."""
    panels = _series(df, "hospital_id", "All hospitals")
    if "hospital_id" in df:
        beds = {label: float(np.nanmax(_values(g, "staffed_beds") / _values(g, DAY_COUNT))) for label, g in panels}
        panels.sort(key=lambda item: (item[0].startswith(OTHER), -beds[item[0]], item[0]))
    figure = _figure("Bed occupancy: average midnight census against staffed beds", period, run_id, grain,
                     size=(8.0, 2.0 * max(1, len(panels)) + 1.4), rows=max(1, len(panels)))  # fmt: skip
    if grain.nothing_publishable:
        _nothing(figure.axes[0], grain)
        return figure
    unit = grain.grain.time
    for axes, (label, group) in zip(figure.axes, panels, strict=False):
        group = group.sort_values(PERIOD_START)
        days = _values(group, DAY_COUNT)
        x = pd.to_datetime(group[PERIOD_START]) if unit == "day" else _midpoints(group)
        census = _values(group, "midnight_census") / days
        axes.plot(x, census, color=OKABE_ITO[0], linewidth=1, marker="o" if len(group) <= 60 else None,
                  markersize=2.5)  # fmt: skip
        axes.plot(x, _values(group, "staffed_beds") / days, color=OKABE_ITO[3], linestyle="--", linewidth=1)
        for row in np.flatnonzero(hidden(group, "midnight_census")):
            _period_span(axes, group[PERIOD_START].iloc[row], group[PERIOD_END].iloc[row])
        _top_margin(axes, list(_values(group, "staffed_beds") / days), extra=1.15)
        axes.set_ylabel(f"{_wrap(label, 18)}\n(patients per night)", fontsize=8)
    census = "Midnight census" if unit == "day" else f"Midnight census (average per {UNIT_NAMES[unit]})"
    handles = [Line2D([], [], color=OKABE_ITO[0], label=census),
               Line2D([], [], color=OKABE_ITO[3], linestyle="--", label="Staffed beds")]  # fmt: skip
    if hidden(df, "midnight_census").any():
        handles.append(_suppressed_handle())
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=7)
    occupancy = f"; occupancy over the period {grain.reference_text} (KPI tile)" if grain.reference_text else ""
    figure.axes[-1].set_xlabel(f"Census date (hospital local calendar){occupancy}")
    _time_axis(figure.axes[-1], df, unit)
    return figure


def plot_denial_rate(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Initial denial rate per payer (or all payers) and period of first submission (mart_claim_denials)."""
    figure = _figure("Claim denial rate by payer", period, run_id, grain)
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    unit = grain.grain.time
    handles = _lines(axes, df, "initial_denial_rate", "payer_id", "All payers", scale=100)
    handles.append(_reference_line(axes, grain.reference, grain.reference_text, scale=100))
    _top_margin(axes, [*(_values(df, "initial_denial_rate") * 100), 100 * (grain.reference or 0)], extra=1.4)
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.set(xlabel=f"{UNIT_NAMES[unit].capitalize()} of first submission (hospital local calendar)",
             ylabel="Denied on first adjudication (% of claims)")  # fmt: skip
    _time_axis(axes, df, unit)
    _legend(axes, handles)
    return figure


def plot_payer_mix(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Share of admissions per payer type and period, stacked to 100% (mart_payer_mix)."""
    figure = _figure("Payer mix of admissions", period, run_id, grain)
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    unit = grain.grain.time
    known = ["medicare", "medicaid", "commercial", "self_pay", "unknown"]
    types = sorted(df["payer_type"].astype(str).unique(), key=lambda t: (known.index(t) if t in known else 99, t))
    periods = df[[PERIOD_START, PERIOD_END]].drop_duplicates().sort_values(PERIOD_START).reset_index(drop=True)
    labels = [period_label(s, unit, e) for s, e in zip(periods[PERIOD_START], periods[PERIOD_END], strict=True)]
    positions = np.arange(len(periods))
    bottom = np.zeros(len(periods))
    for index, payer_type in enumerate(types):
        rows = df[df["payer_type"].astype(str) == payer_type].set_index(PERIOD_START)
        shares = pd.to_numeric(rows["admission_share"], errors="coerce").reindex(periods[PERIOD_START]).to_numpy()
        values = np.nan_to_num(shares.astype(float)) * 100
        axes.bar(positions, values, bottom=bottom, color=OKABE_ITO[index % len(OKABE_ITO)], label=payer_type)
        bottom += values
    hidden_by_period = df.assign(_hidden=hidden(df, "admission_share")).groupby(PERIOD_START)["_hidden"].any()
    for position, start in enumerate(periods[PERIOD_START]):
        if hidden_by_period.get(start, False):
            # The period's published shares leave exactly the suppressed cells' share: drawn as one segment.
            axes.bar(position, max(0.0, 100 - bottom[position]), bottom=bottom[position], color="none", hatch=HATCH,
                     edgecolor=SUPPRESSED_COLOUR, linewidth=0.6, gid=SUPPRESSED_GID)  # fmt: skip
    handles, _ = axes.get_legend_handles_labels()
    if hidden_by_period.any():
        handles.append(_suppressed_handle())
    axes.set_xticks(positions, labels)
    axes.tick_params(axis="x", labelsize=7, rotation=45 if len(labels) > 6 else 0)
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.set_ylim(0, 100)
    axes.set(xlabel=f"Admission {UNIT_NAMES[unit]}", ylabel=f"Admissions (% of the {UNIT_NAMES[unit]})")
    axes.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


# -------------------------------------------------------------------------------------------- category charts


def _bars(axes, labels: list[str], values: np.ndarray, suppressed: np.ndarray, colour: str, *,
          horizontal: bool, scale: float = 1.0) -> float:  # fmt: skip
    """Published values as bars and suppressed ones as hatched full-length bars; returns the value axis' extent."""
    shown = values[~suppressed] * scale
    extent = (float(np.nanmax(shown)) if shown.size and np.isfinite(shown).any() else 1.0) * 1.12 or 1.0
    positions = np.arange(len(labels))
    draw = axes.barh if horizontal else axes.bar
    draw(positions[~suppressed], np.nan_to_num(shown), color=colour)
    for position in positions[suppressed]:
        _suppressed_bar(axes, position, extent, horizontal=horizontal)
    if horizontal:
        axes.set_yticks(positions, labels, fontsize=7)
        axes.set_xlim(0, extent)
    else:
        axes.set_xticks(positions, labels, fontsize=8)
        axes.set_ylim(0, extent)
    return extent


def _order(df: pd.DataFrame, label: pd.Series, column: str, measure: str) -> pd.DataFrame:
    """Rows bottom to top for a horizontal bar chart: suppressed ones, then "Other", then by ``column``."""
    frame = df.assign(_label=label.to_numpy(), _hidden=hidden(df, measure))
    frame = frame.assign(_other=frame["_label"].astype(str).str.contains(rf"(?:^|· ){OTHER} \(", regex=True))
    frame = frame.assign(_value=pd.to_numeric(frame[column], errors="coerce").astype(float))
    return frame.sort_values(["_hidden", "_other", "_value"], ascending=[False, False, True], na_position="first")


def _bar_chart_size(bars: int) -> tuple[float, float]:
    """Width and height of a horizontal bar chart with ``bars`` bars."""
    return 8.0, max(3.2, 0.36 * bars + 2.0)


def plot_sex_distribution(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Inpatients by sex, from the sex totals themselves (mart_patient_demographics added up over age bands)."""
    figure = _figure("Inpatients by sex", period, run_id, grain, size=(6.4, 4.2))
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    order = {"F": 0, "M": 1, "U": 2}
    frame = df.assign(_order=df["sex"].map(order).fillna(9)).sort_values("_order")
    names = {"F": "Female", "M": "Male", "U": "Unknown"}
    labels = [names.get(code, str(code)) for code in frame["sex"]]
    values, suppressed = _values(frame, "patient_count"), hidden(frame, "patient_count")
    _bars(axes, labels, values, suppressed, OKABE_ITO[0], horizontal=False)
    for position, (value, is_hidden) in enumerate(zip(values, suppressed, strict=True)):
        if not is_hidden and np.isfinite(value):
            axes.annotate(f"{value:,.0f}", (position, value), textcoords="offset points", xytext=(0, 3),
                          ha="center", fontsize=8)  # fmt: skip
    axes.set(xlabel="Sex (patient record)", ylabel="Inpatients (count, each patient once)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    if suppressed.any():
        _legend(axes, [_suppressed_handle()])
    return figure


def _band_key(band: str) -> tuple[int, str]:
    digits = re.match(r"\d+", str(band))
    return (int(digits.group()) if digits else 999, str(band))


def plot_age_pyramid(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Inpatients by age band at first admission, women left and men right (mart_patient_demographics)."""
    figure = _figure("Age pyramid of inpatients", period, run_id, grain, size=(7.2, 4.4))
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    bands = sorted(df["age_band"].astype(str).unique(), key=_band_key)
    positions = {band: index for index, band in enumerate(bands)}
    drawn = df[df["sex"].isin(["F", "M"])]
    extent = float(np.nanmax(np.append(_values(drawn, "patient_count"), 1.0))) * 1.12
    for sex, sign, colour, name in (("F", -1, OKABE_ITO[1], "Female"), ("M", 1, OKABE_ITO[0], "Male")):
        rows = drawn[drawn["sex"] == sex]
        shown = ~hidden(rows, "patient_count")
        axes.barh([positions[b] for b in rows["age_band"].astype(str)[shown]],
                  sign * _values(rows, "patient_count")[shown], color=colour, label=name)  # fmt: skip
        for band in rows["age_band"].astype(str)[~shown]:
            _suppressed_bar(axes, positions[band], extent, horizontal=True, start=-extent if sign < 0 else 0.0)
    axes.set_xlim(-extent, extent)
    axes.set_yticks(range(len(bands)), bands)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):,.0f}"))
    axes.axvline(0, color="#000000", linewidth=0.8)
    unknown = df[df["sex"] == "U"]
    note = ""
    if len(unknown):
        hidden_unknown = int(hidden(unknown, "patient_count").sum())
        shown_unknown = _values(unknown, "patient_count")[~hidden(unknown, "patient_count")]
        parts = [f"{np.nansum(shown_unknown):,.0f} in published bands"] if len(shown_unknown) else []
        parts += [f"{hidden_unknown} band cell(s) suppressed"] if hidden_unknown else []
        note = f"\nSex unknown, not drawn: {', '.join(parts)}"
    axes.set(xlabel=f"Inpatients (count; women left, men right){note}", ylabel="Age band at first admission (years)")
    handles, _ = axes.get_legend_handles_labels()
    if hidden(drawn, "patient_count").any():
        handles.append(_suppressed_handle())
    _legend(axes, handles)
    return figure


def _length_of_stay(df: pd.DataFrame, labels: pd.Series, title: str, ylabel: str, grain: GrainNote, period: str,
                    run_id: str) -> Figure:  # fmt: skip
    frame = _order(df, labels, "average_length_of_stay_nights", "average_length_of_stay_nights")
    figure = _figure(title, period, run_id, grain, size=_bar_chart_size(len(frame)))
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    positions = np.arange(len(frame))
    suppressed = frame["_hidden"].to_numpy()
    columns = [("average_length_of_stay_nights", OKABE_ITO[0], "Average")]
    if "median_length_of_stay_nights" in frame and frame["median_length_of_stay_nights"].notna().any():
        columns.append(("median_length_of_stay_nights", OKABE_ITO[1], "Median"))
    height = 0.8 / len(columns)
    shown_values = []
    for index, (column, colour, name) in enumerate(columns):
        values = _values(frame, column)
        offset = (index - (len(columns) - 1) / 2) * height
        axes.barh(positions[~suppressed] + offset, np.nan_to_num(values[~suppressed]), height=height, color=colour,
                  label=name)  # fmt: skip
        shown_values += list(values[~suppressed])
    extent = max([v for v in shown_values if np.isfinite(v)] + [grain.reference or 0, 1.0]) * 1.12
    for position in positions[suppressed]:
        _suppressed_bar(axes, position, extent, horizontal=True)
    handles, _ = axes.get_legend_handles_labels()
    handles.append(_reference_line(axes, grain.reference, grain.reference_text, horizontal=False))
    if suppressed.any():
        handles.append(_suppressed_handle())
    axes.set_xlim(0, extent)
    axes.set_yticks(positions, [_wrap(label) for label in frame["_label"]], fontsize=7)
    axes.set(xlabel="Length of stay (nights)", ylabel=ylabel)
    _legend(axes, handles)
    return figure


def plot_length_of_stay_by_department(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Average (and median) length of stay per inpatient department (mart_length_of_stay_by_department)."""
    if "hospital_id" in df:
        labels = df["hospital_id"].astype(str) + " · " + df["department_name"].astype(str)
        ylabel = "Department (hospital · unit)"
    else:
        labels, ylabel = df["department_name"].astype(str), "Department (all hospitals)"
    return _length_of_stay(df, labels, "Length of stay by department", ylabel, grain, period, run_id)


def plot_length_of_stay_by_diagnosis_chapter(df: pd.DataFrame, *, grain: GrainNote, period: str,
                                             run_id: str) -> Figure:  # fmt: skip
    """Average (and median) length of stay per ICD-10-CM chapter (mart_length_of_stay_by_diagnosis_chapter)."""
    numbers = pd.to_numeric(df["diagnosis_chapter_number"], errors="coerce")
    prefix = [("" if pd.isna(n) else f"{int(n)} ") for n in numbers]
    labels = pd.Series([p + str(t) for p, t in zip(prefix, df["diagnosis_chapter_title"], strict=True)],
                       index=df.index, dtype=object)  # fmt: skip
    return _length_of_stay(df, labels, "Length of stay by diagnosis chapter",
                           "ICD-10-CM chapter of the principal diagnosis", grain, period, run_id)  # fmt: skip


def _rate_bars(df: pd.DataFrame, labels: list[str], title: str, xlabel: str, grain: GrainNote, period: str,
               run_id: str) -> Figure:  # fmt: skip
    figure = _figure(title, period, run_id, grain, size=(7.2, 4.4))
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    values, suppressed = _values(df, "no_show_rate") * 100, hidden(df, "no_show_rate")
    extent = _bars(axes, labels, values, suppressed, OKABE_ITO[4], horizontal=False)
    line = _reference_line(axes, grain.reference, grain.reference_text, scale=100)
    axes.set_ylim(0, max(extent, 100 * (grain.reference or 0) * 1.3))
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.set(xlabel=xlabel, ylabel="No-shows (% of appointments)")
    _legend(axes, [line, _suppressed_handle() if suppressed.any() else None])
    return figure


def plot_no_show_rate_by_weekday(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Appointment no-show rate per weekday of the visit (mart_no_shows_by_weekday)."""
    frame = df.sort_values("iso_day_of_week")
    weekdays = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    absent = [day for day in weekdays if "weekday_name" in frame and not frame["weekday_name"].str.contains(day).any()]
    extra = f" (no appointments on {', '.join(absent)})" if absent else ""
    return _rate_bars(frame, list(frame["weekday_name"].astype(str)), "No-show rate by weekday",
                      f"Weekday of the appointment{extra}", grain, period, run_id)  # fmt: skip


def plot_no_show_rate_by_lead_time(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Appointment no-show rate per booking lead time band (mart_no_shows_by_lead_time)."""
    frame = df.sort_values("lead_time_band_order")
    return _rate_bars(frame, list(frame["lead_time_band"].astype(str)), "No-show rate by booking lead time",
                      "Lead time from booking to appointment", grain, period, run_id)  # fmt: skip


def _total_bars(df: pd.DataFrame, labels: pd.Series, column: str, title: str, xlabel: str, ylabel: str,
                grain: GrainNote, period: str, run_id: str, colour: str, scale: float = 1.0) -> Figure:  # fmt: skip
    frame = _order(df, labels, column, column)
    figure = _figure(title, period, run_id, grain, size=_bar_chart_size(len(frame)))
    axes = figure.axes[0]
    if grain.nothing_publishable:
        _nothing(axes, grain)
        return figure
    suppressed = frame["_hidden"].to_numpy()
    _bars(axes, [_wrap(label, 45) for label in frame["_label"]], _values(frame, column), suppressed, colour,
          horizontal=True, scale=scale)  # fmt: skip
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.set(xlabel=xlabel, ylabel=ylabel)
    if suppressed.any():
        _legend(axes, [_suppressed_handle()])
    return figure


def plot_top_denial_reasons(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Initially denied claims per denial reason (CARC) over the period, most frequent first (mart_denial_reasons)."""
    description = df["denial_reason_description"].astype("string").fillna("")
    labels = (df["denial_reason_code"].astype(str) + " " + description).str.strip()
    return _total_bars(df, labels, "denied_claim_count", "Top claim denial reasons",
                       "Initially denied claims (count over the period)", "Denial reason (CARC)", grain, period,
                       run_id, OKABE_ITO[5])  # fmt: skip


def plot_revenue_by_department(df: pd.DataFrame, *, grain: GrainNote, period: str, run_id: str) -> Figure:
    """Gross charges per department over the period, largest first (mart_revenue_by_department)."""
    names = df["department_name"].astype("string").fillna("(no department)")
    labels = df["hospital_id"].astype(str) + " · " + names if "hospital_id" in df else names
    total = f"; all departments {grain.reference_text} (KPI tile)" if grain.reference_text else ""
    return _total_bars(df, labels, "charge_amount_usd", "Revenue (charges) by department",
                       f"Charges (thousand USD over the period{total})",
                       "Department (hospital · department)" if "hospital_id" in df else "Department (all hospitals)",
                       grain, period, run_id, OKABE_ITO[2], scale=1 / 1000)  # fmt: skip


# ----------------------------------------------------------------------------------------------- the ladders

_HOSPITALS = OtherRule("hospital_id", top=MAX_SERIES, noun="hospitals")
_PAYERS = OtherRule("payer_id", top=MAX_SERIES, noun="payers")


def _time_ladder(per: tuple[str, ...], label: str, units: tuple[str, ...], network: tuple[str, ...],
                 everything: str, other: OtherRule | None = None) -> tuple[Grain, ...]:  # fmt: skip
    """Time grains per category (finest first), then time grains over all categories."""
    names = {**UNIT_NAMES, "half": "half-year"}
    return tuple(Grain(f"{names[u]} × {label}", per, u, other=other) for u in units) + tuple(
        Grain(f"{names[u]}, {everything}", (), u) for u in network
    )


_AGE_WIDE = Merge("age_band", (("0-44", ("0-17", "18-44")), ("65-84", ("65-74", "75-84")), ("85+", ("85-89", "90+"))))
_AGE_TWO = Merge("age_band", (("0-64", ("0-17", "18-44", "45-64")), ("65+", ("65-74", "75-84", "85-89", "90+"))))
_WEEKEND = Merge("weekday_name", (("Saturday-Sunday", ("Saturday", "Sunday")),))
_WORKWEEK = Merge("weekday_name", (("Monday-Friday", ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")),
                                   ("Saturday-Sunday", ("Saturday", "Sunday"))))  # fmt: skip
_LEAD_WIDE = Merge("lead_time_band", (("0-7 days", ("0 days", "1-7 days")), ("8-30 days", ("8-14 days", "15-30 days")),
                                      ("31+ days", ("31-60 days", "61+ days"))))  # fmt: skip
_LEAD_TWO = Merge("lead_time_band", (("0-30 days", ("0 days", "1-7 days", "8-14 days", "15-30 days")),
                                     ("31+ days", ("31-60 days", "61+ days"))))  # fmt: skip
_PERIODS = ("month", "quarter", "half", "year", "period")

#: Chart name -> what it reads, how it is drawn and its grains. The report shows them in this order.
CHARTS: dict[str, ChartSpec] = {
    "admissions_trend": ChartSpec(
        "mart_admissions_monthly", plot_admissions_trend,
        _time_ladder(("hospital_id",), "hospital", ("month", "quarter"), ("month", "quarter", "half", "year"),
                     "all hospitals", _HOSPITALS),
        "admission_count", "admissions", "admission_count", "admissions",
    ),
    "sex_distribution": ChartSpec(
        "mart_patient_demographics", plot_sex_distribution, (Grain("sex", ("sex",)),),
        "patient_count", "inpatients", "patient_count",
    ),
    "age_pyramid": ChartSpec(
        "mart_patient_demographics", plot_age_pyramid,
        (Grain("sex × age band", ("sex", "age_band")),
         Grain("sex × wider age band (0-44, 45-64, 65-84, 85+)", ("sex", "age_band"), merges=(_AGE_WIDE,)),
         Grain("sex × age 0-64 / 65+", ("sex", "age_band"), merges=(_AGE_TWO,))),
        "patient_count", "inpatients", "patient_count",
    ),
    "length_of_stay_by_department": ChartSpec(
        "mart_length_of_stay_by_department", plot_length_of_stay_by_department,
        (Grain("department × hospital", ("hospital_id", "department_id"),
               other=OtherRule("department_id", top=24, noun="departments")),
         Grain("department, all hospitals", ("department_name",),
               other=OtherRule("department_name", top=24, noun="departments")),
         Grain("department, all hospitals; suppressed departments merged", ("department_name",),
               other=OtherRule("department_name", top=24, suppressed=True, noun="departments"))),
        "discharge_count", "discharges", "average_length_of_stay_nights", "alos",
    ),
    "length_of_stay_by_diagnosis_chapter": ChartSpec(
        "mart_length_of_stay_by_diagnosis_chapter", plot_length_of_stay_by_diagnosis_chapter,
        (Grain("ICD-10-CM chapter", ("diagnosis_chapter_title",)),
         Grain("ICD-10-CM chapter; suppressed chapters merged", ("diagnosis_chapter_title",),
               other=OtherRule("diagnosis_chapter_title", suppressed=True, noun="chapters"))),
        "discharge_count", "discharges", "average_length_of_stay_nights",
    ),
    "readmission_rate": ChartSpec(
        "mart_readmissions_monthly", plot_readmission_rate,
        tuple(Grain({"half": "half-year"}.get(u, UNIT_NAMES[u]), (), u) for u in _PERIODS),
        "index_discharge_count", "index stays", "readmission_rate", "readmission_rate",
    ),
    "bed_occupancy": ChartSpec(
        "mart_bed_occupancy_daily", plot_bed_occupancy,
        _time_ladder(("hospital_id",), "hospital", ("day", "week", "month"), ("day", "week", "month", "quarter"),
                     "all hospitals", _HOSPITALS),
        "midnight_census", "patient-days", "midnight_census", "occupancy",
    ),
    "no_show_rate_by_weekday": ChartSpec(
        "mart_no_shows_by_weekday", plot_no_show_rate_by_weekday,
        (Grain("weekday", ("weekday_name",)),
         Grain("weekday; Saturday and Sunday together", ("weekday_name",), merges=(_WEEKEND,)),
         Grain("Monday-Friday / Saturday-Sunday", ("weekday_name",), merges=(_WORKWEEK,))),
        "appointment_count", "appointments", "no_show_rate", "no_show_rate",
    ),
    "no_show_rate_by_lead_time": ChartSpec(
        "mart_no_shows_by_lead_time", plot_no_show_rate_by_lead_time,
        (Grain("lead-time band", ("lead_time_band",)),
         Grain("wider lead-time band (0-7, 8-30, 31+ days)", ("lead_time_band",), merges=(_LEAD_WIDE,)),
         Grain("lead time 0-30 / 31+ days", ("lead_time_band",), merges=(_LEAD_TWO,))),
        "appointment_count", "appointments", "no_show_rate",
    ),
    "payer_mix": ChartSpec(
        "mart_payer_mix", plot_payer_mix,
        tuple(Grain(f"{({'half': 'half-year'}).get(u, UNIT_NAMES[u])} × payer type", ("payer_type",), u)
              for u in _PERIODS),
        "admission_count", "admissions", "admission_share",
    ),
    "denial_rate": ChartSpec(
        "mart_claim_denials", plot_denial_rate,
        _time_ladder(("payer_id",), "payer", ("month", "quarter"), ("month", "quarter", "half", "year"),
                     "all payers", _PAYERS),
        "claim_count", "claims", "initial_denial_rate", "denial_rate",
    ),
    "top_denial_reasons": ChartSpec(
        "mart_denial_reasons", plot_top_denial_reasons,
        (Grain("denial reason over the period", ("denial_reason_code",),
               other=OtherRule("denial_reason_code", top=TOP_N, noun="reasons")),
         Grain("denial reason over the period; suppressed reasons merged", ("denial_reason_code",),
               other=OtherRule("denial_reason_code", top=TOP_N, suppressed=True, noun="reasons"))),
        "denied_claim_count", "denied claims", "denied_claim_count",
    ),
    "revenue_by_department": ChartSpec(
        "mart_revenue_by_department", plot_revenue_by_department,
        (Grain("department × hospital over the period", ("hospital_id", "department_id"),
               other=OtherRule("department_id", top=TOP_N, noun="departments")),
         Grain("department × hospital over the period; suppressed departments merged",
               ("hospital_id", "department_id"),
               other=OtherRule("department_id", top=TOP_N, suppressed=True, noun="departments")),
         Grain("department, all hospitals, over the period", ("department_name",),
               other=OtherRule("department_name", top=TOP_N, suppressed=True, noun="departments"))),
        "charge_amount_usd", "charges (USD)", "charge_amount_usd", "revenue",
    ),
}  # fmt: skip


def save_chart(figure: Figure, directory: Path, name: str) -> tuple[Path, Path]:
    """Write one figure as PNG and SVG with no metadata but its title (no software stamp, no date)."""
    directory.mkdir(parents=True, exist_ok=True)
    png, svg = directory / f"{name}.png", directory / f"{name}.svg"
    with mpl.rc_context({"svg.hashsalt": name, "svg.fonttype": "none", "hatch.linewidth": 0.6}):
        figure.savefig(png, dpi=96, metadata={"Software": None, "Title": name})
        # The layout is computed by the first save; freezing it halves the second save's work.
        engine = figure.get_layout_engine()
        figure.set_layout_engine("none")
        figure.savefig(svg, metadata={"Date": None, "Creator": None, "Title": name})
        figure.set_layout_engine(engine)
    return png, svg
