"""The KPIs of the report's tiles, each computed once from its mart's whole-period aggregate.

A tile and the chart of the same KPI read the same mart and the same aggregate (`whole_period`, the grain
"whole period" of reports/grains.py): the chart draws the tile's value as its reference line, so the two cannot
disagree. Values come from the unsuppressed marts: a tile is a grand total, or a ratio of two, which
complementary suppression already treats as known; a tile resting on a count from 1 to 10 is suppressed itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from reports.deidentify import MAX_SUPPRESSED, MIN_CELL
from reports.grains import Grain, rollup
from reports.marts import CATALOGUE

WHOLE_PERIOD = Grain("whole period")


@dataclass(frozen=True)
class KpiDefinition:
    """Which mart and column a KPI is, and which counts it rests on."""

    key: str
    label: str
    mart: str
    column: str
    style: str  # count, nights, rate or usd
    rests_on: tuple[str, ...]
    note: str


@dataclass(frozen=True)
class Kpi:
    """One KPI over the whole period: its value (None when the mart is missing or empty) and whether it is shown."""

    definition: KpiDefinition
    value: float | None
    suppressed: bool


DEFINITIONS: tuple[KpiDefinition, ...] = (
    KpiDefinition("admissions", "Admissions", "mart_admissions_monthly", "admission_count", "count",
                  ("admission_count",), "admissions in the period"),
    KpiDefinition("alos", "Average length of stay", "mart_length_of_stay_by_department",
                  "average_length_of_stay_nights", "nights", ("discharge_count",), "over discharges"),
    KpiDefinition("readmission_rate", "30-day readmission rate", "mart_readmissions_monthly", "readmission_rate",
                  "rate", ("readmission_count", "index_discharge_count"), "readmissions / eligible index stays"),
    KpiDefinition("occupancy", "Bed occupancy", "mart_bed_occupancy_daily", "occupancy_rate", "rate",
                  ("midnight_census",), "midnight census / staffed beds"),
    KpiDefinition("no_show_rate", "No-show rate", "mart_no_shows_by_weekday", "no_show_rate", "rate",
                  ("no_show_count", "appointment_count"), "no-shows / appointments"),
    KpiDefinition("denial_rate", "Claim denial rate", "mart_claim_denials", "initial_denial_rate", "rate",
                  ("initially_denied_count", "claim_count"), "initial denials / claims submitted"),
    KpiDefinition("revenue", "Revenue (charges)", "mart_revenue_by_department", "charge_amount_usd", "usd",
                  ("charge_count",), "charges posted"),
)  # fmt: skip
BY_KEY = {definition.key: definition for definition in DEFINITIONS}


def whole_period(frame: pd.DataFrame, mart: str) -> pd.Series | None:
    """The mart's cells added up over every key and the whole period (None for an empty mart)."""
    if frame is None or frame.empty:
        return None
    return rollup(frame, CATALOGUE[mart], WHOLE_PERIOD).frame.iloc[0]


def is_small(value: float | None) -> bool:
    """Whether a total lies in the suppressed range 1..10."""
    return value is not None and pd.notna(value) and MIN_CELL <= float(value) <= MAX_SUPPRESSED


def kpi(definition: KpiDefinition, marts: dict[str, pd.DataFrame]) -> Kpi:
    """One KPI from the unsuppressed marts."""
    totals = whole_period(marts.get(definition.mart), definition.mart)
    if totals is None or pd.isna(totals.get(definition.column)):
        return Kpi(definition, None, False)
    rests = [float(totals[column]) for column in definition.rests_on]
    return Kpi(definition, float(totals[definition.column]), any(is_small(count) for count in rests))


def kpis(marts: dict[str, pd.DataFrame]) -> dict[str, Kpi]:
    """Every KPI of the tiles, by key."""
    return {definition.key: kpi(definition, marts) for definition in DEFINITIONS}


def show(value: float, style: str) -> str:
    """A KPI value as the tile and the chart's reference line print it."""
    if style == "count":
        return f"{value:,.0f}"
    if style == "nights":
        return f"{value:,.2f} nights"
    if style == "rate":
        return f"{value:.1%}"
    return f"${value / 1e6:,.2f}M" if value >= 1e6 else f"${value:,.0f}"
