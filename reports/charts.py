"""Charts of the KPI marts: pure ``plot_<metric>(df, *, period, run_id) -> Figure`` functions.

Each function reads one published (already de-identified) mart frame and returns a new figure; nothing global is
touched (figures are built with the Agg canvas, never through pyplot). A suppressed cell is a null and is left
out: lines have a gap, bars are missing, and totals over cells say they cover the published cells only. Colours
are the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
SUPPRESSION_NOTE = "Cells of 1-10 suppressed (CMS cell-size rule) and left out"
MAX_PANELS = 6
TOP_N = 12


def _figure(title: str, period: str, run_id: str, *, size: tuple[float, float] = (8.0, 4.2), rows: int = 1) -> Figure:
    """A figure on the Agg canvas with the title, and the period, run id and suppression rule as its subtitle."""
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, fontsize=12, fontweight="bold")
    figure.subplots(rows, 1, sharex=True, squeeze=False)
    figure.axes[0].set_title(f"Period {period} · run {run_id}\n{SUPPRESSION_NOTE}", fontsize=7.5, color="#333333")
    return figure


def _top_totals(frame: pd.DataFrame, labels: pd.Series, column: str) -> pd.Series:
    """The ``TOP_N`` largest totals of ``column`` per label, smallest first (for a horizontal bar chart);
    labels whose cells are all suppressed are left out."""
    return frame[column].groupby(labels).sum(min_count=1).dropna().sort_values().tail(TOP_N)


def _bar_chart_size(bars: int) -> tuple[float, float]:
    """Width and height of a horizontal bar chart with ``bars`` bars."""
    return 8.0, max(3.0, 0.35 * bars + 1.6)


def _note_missing(axes, frame: pd.DataFrame, columns: list[str]) -> None:
    """Say on the chart how many of its cells were suppressed, or that there is nothing to show."""
    values = frame[columns] if not frame.empty else pd.DataFrame()
    if values.empty or values.isna().to_numpy().all():
        text = "No data in this period" if values.empty else "Every cell of this chart is suppressed (counts 1-10)"
        axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, fontsize=9)
        axes.tick_params(labelleft=False, labelbottom=False, left=False, bottom=False)
        return
    suppressed = int(values.isna().to_numpy().sum())
    if suppressed:
        axes.text(
            0.99, 0.98, f"{suppressed} suppressed cell(s) not shown", ha="right", va="top", fontsize=7,
            transform=axes.transAxes, color="#444444",
        )  # fmt: skip


def _months(axes, months: pd.Series) -> None:
    """One tick per month (every n-th when there are many), labelled YYYY-MM."""
    ticks = sorted(pd.to_datetime(months.dropna()).unique())
    step = max(1, len(ticks) // 12 + (len(ticks) % 12 > 0))
    axes.set_xticks(ticks[::step])
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    axes.tick_params(axis="x", labelsize=7, rotation=45 if len(ticks[::step]) > 6 else 0)


def _lines_by(axes, frame: pd.DataFrame, x: str, y: str, by: str, scale: float = 1.0) -> None:
    for index, (label, group) in enumerate(frame.groupby(by, sort=True)):
        values = pd.to_numeric(group[y], errors="coerce").astype(float) * scale
        axes.plot(
            pd.to_datetime(group[x]), values, marker="o", markersize=4, color=OKABE_ITO[index % len(OKABE_ITO)],
            label=str(label),
        )  # fmt: skip
    if frame[by].nunique() > 1:
        axes.legend(fontsize=7, ncols=min(4, frame[by].nunique()), loc="upper left")


def plot_admissions_trend(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Monthly admissions per hospital (mart_admissions_monthly)."""
    figure = _figure("Monthly admissions", period, run_id)
    axes = figure.axes[0]
    _lines_by(axes, df, "month_date", "admission_count", "hospital_id")
    axes.set(xlabel="Admission month (hospital local calendar)", ylabel="Admissions (count per month)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0)
    _months(axes, df["month_date"])
    _note_missing(axes, df, ["admission_count"])
    return figure


def _sex_label(code: str) -> str:
    return {"F": "Female", "M": "Male", "U": "Unknown"}.get(code, str(code))


def plot_sex_distribution(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Inpatients by sex, summed over age bands (mart_patient_demographics)."""
    figure = _figure("Inpatients by sex", period, run_id, size=(6.0, 4.0))
    axes = figure.axes[0]
    totals = df.groupby("sex", sort=True)["patient_count"].sum(min_count=1).dropna()
    labels = [_sex_label(code) for code in totals.index]
    axes.bar(labels, totals.to_numpy(dtype=float), color=OKABE_ITO[: len(totals)])
    axes.set(xlabel="Sex", ylabel="Inpatients (count, published cells)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    _note_missing(axes, df, ["patient_count"])
    return figure


def plot_age_pyramid(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Inpatients by age band at first admission, women left and men right (mart_patient_demographics)."""
    from reports.deidentify import AGE_BANDS

    figure = _figure("Age pyramid of inpatients", period, run_id, size=(7.0, 4.2))
    axes = figure.axes[0]
    bands = [band for band in AGE_BANDS if band in set(df["age_band"])]
    table = df.pivot_table(index="age_band", columns="sex", values="patient_count", aggfunc="sum").reindex(bands)
    positions = np.arange(len(bands))
    for sex, sign, colour in (("F", -1, OKABE_ITO[1]), ("M", 1, OKABE_ITO[0])):
        values = table[sex].astype(float).to_numpy() if sex in table else np.full(len(bands), np.nan)
        axes.barh(positions, sign * np.nan_to_num(values), color=colour, label=_sex_label(sex))
    axes.set_yticks(positions, bands)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):,.0f}"))
    axes.axvline(0, color="#000000", linewidth=0.8)
    axes.set(xlabel="Inpatients (count; women left, men right)", ylabel="Age band at first admission (years)")
    axes.legend(fontsize=7, loc="lower right")
    _note_missing(axes, df, ["patient_count"])
    return figure


def _length_of_stay(df: pd.DataFrame, labels: pd.Series, title: str, ylabel: str, period: str, run_id: str) -> Figure:
    frame = df.assign(label=labels.to_numpy()).sort_values("average_length_of_stay_nights", na_position="first")
    figure = _figure(title, period, run_id, size=(8.0, max(3.5, 0.32 * len(frame) + 1.6)))
    axes = figure.axes[0]
    positions = np.arange(len(frame))
    for offset, column, colour, name in (
        (-0.2, "average_length_of_stay_nights", OKABE_ITO[0], "Average"),
        (0.2, "median_length_of_stay_nights", OKABE_ITO[1], "Median"),
    ):
        values = pd.to_numeric(frame[column], errors="coerce").astype(float).to_numpy()
        axes.barh(positions + offset, np.nan_to_num(values), height=0.4, color=colour, label=name)
    axes.set_yticks(positions, [str(label)[:40] for label in frame["label"]], fontsize=7)
    axes.set(xlabel="Length of stay (nights)", ylabel=ylabel)
    axes.legend(fontsize=7, loc="lower right")
    _note_missing(axes, df, ["average_length_of_stay_nights"])
    return figure


def plot_length_of_stay_by_department(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Average and median length of stay per inpatient department (mart_length_of_stay_by_department)."""
    labels = df["hospital_id"].astype(str) + " · " + df["department_name"].astype(str)
    return _length_of_stay(df, labels, "Length of stay by department", "Department (hospital · unit)", period, run_id)


def plot_length_of_stay_by_diagnosis_chapter(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Average and median length of stay per ICD-10-CM chapter (mart_length_of_stay_by_diagnosis_chapter)."""
    labels = df["diagnosis_chapter_number"].astype(str) + " " + df["diagnosis_chapter_title"].astype(str)
    return _length_of_stay(
        df, labels, "Length of stay by diagnosis chapter", "ICD-10-CM chapter of the principal diagnosis", period,
        run_id,
    )  # fmt: skip


def plot_readmission_rate(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """30-day readmission rate per month of index discharge (mart_readmissions_monthly)."""
    figure = _figure("30-day readmission rate", period, run_id)
    axes = figure.axes[0]
    values = pd.to_numeric(df["readmission_rate"], errors="coerce").astype(float) * 100
    axes.plot(pd.to_datetime(df["month_date"]), values, marker="o", color=OKABE_ITO[3])
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    axes.set(xlabel="Month of index discharge", ylabel="Readmitted within 30 days (% of index stays)")
    axes.set_ylim(bottom=0)
    _months(axes, df["month_date"])
    _note_missing(axes, df, ["readmission_rate"])
    return figure


def plot_bed_occupancy(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Daily midnight census against staffed beds, one panel per hospital (mart_bed_occupancy_daily)."""
    beds = df.groupby("hospital_id")["staffed_beds"].max().sort_values(ascending=False)
    hospitals = list(beds.index[:MAX_PANELS])
    figure = _figure(
        "Daily bed occupancy against staffed beds", period, run_id, size=(8.0, 1.9 * max(1, len(hospitals)) + 1),
        rows=max(1, len(hospitals)),
    )  # fmt: skip
    for axes, hospital in zip(figure.axes, hospitals, strict=False):
        group = df[df["hospital_id"] == hospital]
        days = pd.to_datetime(group["census_date"])
        census = pd.to_numeric(group["midnight_census"], errors="coerce").astype(float)
        axes.plot(days, census, color=OKABE_ITO[0], linewidth=1, label="Midnight census")
        axes.step(days, group["staffed_beds"].astype(float), where="post", color=OKABE_ITO[3], linestyle="--",
                  label="Staffed beds")  # fmt: skip
        axes.set_ylim(bottom=0)
        axes.set_ylabel(f"{hospital}\n(patients)", fontsize=8)
        _note_missing(axes, group, ["midnight_census"])
    figure.axes[0].legend(fontsize=7, loc="lower left", ncols=2)
    locator = mdates.AutoDateLocator(maxticks=10)
    figure.axes[-1].xaxis.set_major_locator(locator)
    figure.axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    others = len(beds) - len(hospitals)
    extra = f"; {others} smaller hospital(s) in the extract only" if others > 0 else ""
    figure.axes[-1].set_xlabel(f"Census date (hospital local calendar){extra}")
    if df.empty:
        _note_missing(figure.axes[0], df, ["midnight_census"])
    return figure


def _rate_bars(df: pd.DataFrame, labels: pd.Series, title: str, xlabel: str, period: str, run_id: str) -> Figure:
    figure = _figure(title, period, run_id, size=(7.0, 4.0))
    axes = figure.axes[0]
    values = pd.to_numeric(df["no_show_rate"], errors="coerce").astype(float).to_numpy() * 100
    axes.bar([str(label) for label in labels], np.nan_to_num(values), color=OKABE_ITO[4], edgecolor=OKABE_ITO[0])
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.set(xlabel=xlabel, ylabel="No-shows (% of appointments)")
    axes.tick_params(axis="x", labelsize=8)
    _note_missing(axes, df, ["no_show_rate"])
    return figure


def plot_no_show_rate_by_weekday(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Appointment no-show rate per weekday of the appointment (mart_no_shows_by_weekday)."""
    frame = df.sort_values("iso_day_of_week")
    return _rate_bars(frame, frame["weekday_name"], "No-show rate by weekday", "Weekday of the appointment",
                      period, run_id)  # fmt: skip


def plot_no_show_rate_by_lead_time(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Appointment no-show rate per booking lead time band (mart_no_shows_by_lead_time)."""
    frame = df.sort_values("lead_time_band_order")
    return _rate_bars(frame, frame["lead_time_band"], "No-show rate by booking lead time",
                      "Lead time from booking to appointment (days)", period, run_id)  # fmt: skip


def plot_payer_mix(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Share of admissions per payer type and month, stacked (mart_payer_mix)."""
    figure = _figure("Payer mix of admissions", period, run_id)
    axes = figure.axes[0]
    table = df.pivot_table(index="month_date", columns="payer_type", values="admission_share", aggfunc="sum")
    months = [pd.Timestamp(month).strftime("%Y-%m") for month in table.index]
    bottom = np.zeros(len(table))
    for index, payer_type in enumerate(table.columns):
        values = np.nan_to_num(table[payer_type].astype(float).to_numpy()) * 100
        axes.bar(months, values, bottom=bottom, color=OKABE_ITO[index % len(OKABE_ITO)], label=str(payer_type))
        bottom += values
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.set(xlabel="Admission month", ylabel="Admissions (% of the month)")
    axes.set_ylim(0, 100)
    axes.tick_params(axis="x", labelsize=7, rotation=45)
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _note_missing(axes, df, ["admission_share"])
    return figure


def plot_denial_rate(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Initial denial rate per payer and submission month, payers with most claims first (mart_claim_denials)."""
    figure = _figure("Claim denial rate by payer", period, run_id)
    axes = figure.axes[0]
    largest = df.groupby("payer_id")["claim_count"].sum().sort_values(ascending=False).index[: len(OKABE_ITO)]
    _lines_by(axes, df[df["payer_id"].isin(largest)], "submission_month", "initial_denial_rate", "payer_id", 100)
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.set(xlabel="Month of first submission (local time)", ylabel="Denied on first adjudication (% of claims)")
    axes.set_ylim(bottom=0)
    _months(axes, df["submission_month"])
    _note_missing(axes, df, ["initial_denial_rate"])
    return figure


def plot_top_denial_reasons(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """The most frequent denial reasons (CARC) over the period (mart_denial_reasons)."""
    labels = df["denial_reason_code"].astype(str) + " " + df["denial_reason_description"].astype(str)
    totals = _top_totals(df, labels, "denied_claim_count")
    figure = _figure("Top claim denial reasons", period, run_id, size=_bar_chart_size(len(totals)))
    axes = figure.axes[0]
    axes.barh([label[:55] for label in totals.index], totals.to_numpy(dtype=float), color=OKABE_ITO[5])
    axes.set(xlabel="Denied claims (count, published cells)", ylabel="Denial reason (CARC)")
    axes.tick_params(axis="y", labelsize=7)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    _note_missing(axes, df, ["denied_claim_count"])
    return figure


def plot_revenue_by_department(df: pd.DataFrame, *, period: str, run_id: str) -> Figure:
    """Charges per department over the period, largest first (mart_revenue_by_department)."""
    labels = df["hospital_id"].astype(str) + " · " + df["department_name"].astype(str)
    totals = _top_totals(df, labels, "charge_amount_usd")
    figure = _figure("Revenue (charges) by department", period, run_id, size=_bar_chart_size(len(totals)))
    axes = figure.axes[0]
    axes.barh([label[:45] for label in totals.index], totals.to_numpy(dtype=float) / 1000, color=OKABE_ITO[2])
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.set(xlabel="Charges (thousand USD, published cells)", ylabel="Department (hospital · department)")
    axes.tick_params(axis="y", labelsize=7)
    _note_missing(axes, df, ["charge_amount_usd"])
    return figure


PlotFunction = Callable[..., Figure]

#: Chart name -> (the mart it reads, the plot function). The report shows them in this order.
CHARTS: dict[str, tuple[str, PlotFunction]] = {
    "admissions_trend": ("mart_admissions_monthly", plot_admissions_trend),
    "sex_distribution": ("mart_patient_demographics", plot_sex_distribution),
    "age_pyramid": ("mart_patient_demographics", plot_age_pyramid),
    "length_of_stay_by_department": ("mart_length_of_stay_by_department", plot_length_of_stay_by_department),
    "length_of_stay_by_diagnosis_chapter": (
        "mart_length_of_stay_by_diagnosis_chapter",
        plot_length_of_stay_by_diagnosis_chapter,
    ),
    "readmission_rate": ("mart_readmissions_monthly", plot_readmission_rate),
    "bed_occupancy": ("mart_bed_occupancy_daily", plot_bed_occupancy),
    "no_show_rate_by_weekday": ("mart_no_shows_by_weekday", plot_no_show_rate_by_weekday),
    "no_show_rate_by_lead_time": ("mart_no_shows_by_lead_time", plot_no_show_rate_by_lead_time),
    "payer_mix": ("mart_payer_mix", plot_payer_mix),
    "denial_rate": ("mart_claim_denials", plot_denial_rate),
    "top_denial_reasons": ("mart_denial_reasons", plot_top_denial_reasons),
    "revenue_by_department": ("mart_revenue_by_department", plot_revenue_by_department),
}


def save_chart(figure: Figure, directory: Path, name: str) -> tuple[Path, Path]:
    """Write one figure as PNG and SVG with no metadata but its title (no software stamp, no date)."""
    directory.mkdir(parents=True, exist_ok=True)
    png, svg = directory / f"{name}.png", directory / f"{name}.svg"
    with mpl.rc_context({"svg.hashsalt": name, "svg.fonttype": "none"}):
        figure.savefig(png, dpi=96, metadata={"Software": None, "Title": name})
        # The layout is computed by the first save; freezing it halves the second save's work.
        engine = figure.get_layout_engine()
        figure.set_layout_engine("none")
        figure.savefig(svg, metadata={"Date": None, "Creator": None, "Title": name})
        figure.set_layout_engine(engine)
    return png, svg
