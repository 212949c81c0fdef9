"""KPI tiles and the period of the HTML report."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from reports.html import format_period, kpi_tiles, period_of
from reports.samples import sample_marts

pytestmark = pytest.mark.unit


@pytest.fixture
def marts() -> dict[str, pd.DataFrame]:
    return sample_marts(np.random.default_rng(2))


def tiles_by_key(marts: dict[str, pd.DataFrame]) -> dict[str, str]:
    return {tile.key: tile.value for tile in kpi_tiles(marts)}


def test_tiles_are_the_period_totals_and_ratios_of_the_marts(marts) -> None:
    tiles = tiles_by_key(marts)
    admissions = marts["mart_admissions_monthly"]
    assert tiles["admissions"] == f"{admissions['admission_count'].sum():,}"
    # The average stay is the length-of-stay chart's: discharge-weighted over the departments' averages.
    stays = marts["mart_length_of_stay_by_department"]
    nights = (stays["discharge_count"] * stays["average_length_of_stay_nights"]).sum()
    assert tiles["alos"] == f"{nights / stays['discharge_count'].sum():,.2f} nights"
    beds = marts["mart_bed_occupancy_daily"]
    assert tiles["occupancy"] == f"{beds['midnight_census'].sum() / beds['staffed_beds'].sum():.1%}"
    charges = marts["mart_revenue_by_department"]["charge_amount_usd"].sum()
    assert tiles["revenue"] == (f"${charges / 1e6:,.2f}M" if charges >= 1e6 else f"${charges:,.0f}")
    readmissions = marts["mart_readmissions_monthly"]
    rate = readmissions["readmission_count"].sum() / readmissions["index_discharge_count"].sum()
    assert tiles["readmission_rate"] == f"{rate:.1%}"
    weekday = marts["mart_no_shows_by_weekday"]
    assert tiles["no_show_rate"] == f"{weekday['no_show_count'].sum() / weekday['appointment_count'].sum():.1%}"
    assert set(tiles) == {"admissions", "alos", "readmission_rate", "occupancy", "no_show_rate", "denial_rate",
                          "revenue"}  # fmt: skip


def test_a_tile_resting_on_a_count_from_one_to_ten_is_suppressed(marts) -> None:
    marts["mart_readmissions_monthly"] = marts["mart_readmissions_monthly"].assign(readmission_count=0)
    marts["mart_readmissions_monthly"].loc[0, "readmission_count"] = 7
    assert tiles_by_key(marts)["readmission_rate"] == "suppressed"


def test_a_tile_of_a_missing_mart_says_not_available(marts) -> None:
    del marts["mart_revenue_by_department"]
    assert tiles_by_key(marts)["revenue"] == "n/a"


def test_period_runs_from_the_first_month_to_the_end_of_the_last(marts) -> None:
    period = period_of(marts)
    assert period == (dt.date(2024, 1, 1), dt.date(2024, 6, 30))
    assert format_period(period) == "2024-01-01 to 2024-06-30"
    assert format_period(period_of({})) == "no dated data"


def _beds(census_per_night: int, beds_per_night: int, nights: int = 30) -> pd.DataFrame:
    days = pd.date_range("2024-01-01", periods=nights, freq="D")
    return pd.DataFrame({"census_date": list(days) * 2, "hospital_id": ["H1"] * nights + ["H2"] * nights,
                         "midnight_census": [census_per_night / 2] * nights * 2,
                         "staffed_beds": [beds_per_night / 2] * nights * 2,
                         "occupancy_rate": [census_per_night / beds_per_night] * nights * 2})  # fmt: skip


def test_a_small_networks_occupancy_tile_says_why_it_is_low_and_a_large_ones_does_not() -> None:
    from reports.html import SMALL_NETWORK_NOTE, kpi_tiles

    small = {t.key: t for t in kpi_tiles({"mart_bed_occupancy_daily": _beds(4, 10)})}["occupancy"]
    large = {t.key: t for t in kpi_tiles({"mart_bed_occupancy_daily": _beds(80, 110)})}["occupancy"]
    assert small.value == "40.0%" and small.note.endswith(SMALL_NETWORK_NOTE)
    assert large.value == "72.7%" and SMALL_NETWORK_NOTE not in large.note
