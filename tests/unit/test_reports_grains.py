"""Grains: periods, adding a mart up to a coarser grain from its own counts, and the totals a reader can know."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from reports.deidentify import margin_groupings
from reports.grains import (
    DAY_COUNT,
    PERIOD_END,
    PERIOD_START,
    Grain,
    Merge,
    OtherRule,
    period_label,
    period_start,
    rollup,
    share_text,
)
from reports.marts import CATALOGUE
from reports.samples import sample_marts

pytestmark = pytest.mark.unit

DATES = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-29", "2024-06-30", "2024-07-01", "2024-12-31"]))


@pytest.mark.parametrize(
    ("unit", "starts"),
    [
        ("day", ["2024-01-01", "2024-02-29", "2024-06-30", "2024-07-01", "2024-12-31"]),
        ("week", ["2024-01-01", "2024-02-26", "2024-06-24", "2024-07-01", "2024-12-30"]),
        ("month", ["2024-01-01", "2024-02-01", "2024-06-01", "2024-07-01", "2024-12-01"]),
        ("quarter", ["2024-01-01", "2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01"]),
        ("half", ["2024-01-01", "2024-01-01", "2024-01-01", "2024-07-01", "2024-07-01"]),
        ("year", ["2024-01-01"] * 5),
        ("period", ["2024-01-01"] * 5),
    ],
)
def test_period_start_is_the_first_day_of_the_period(unit, starts) -> None:
    assert list(period_start(DATES, unit)) == list(pd.to_datetime(starts))


def test_an_unknown_time_unit_is_refused_with_the_units_it_knows() -> None:
    with pytest.raises(ValueError, match="day, week, month"):
        period_start(DATES, "fortnight")


@pytest.mark.parametrize(("unit", "label"), [("week", "2024-W27"), ("month", "2024-07"), ("quarter", "2024-Q3"),
                                             ("half", "2024-H2"), ("year", "2024")])  # fmt: skip
def test_periods_are_labelled_as_a_reader_expects(unit, label) -> None:
    assert period_label(pd.Timestamp("2024-07-01"), unit) == label


@pytest.mark.parametrize(("share", "text"), [(0, "0%"), (0.0004, "< 1%"), (0.0099, "< 1%"), (0.046, "5%"),
                                             (0.5, "50%")])  # fmt: skip
def test_hidden_shares_are_printed_coarsely(share, text) -> None:
    assert share_text(share) == text


@pytest.fixture(scope="module")
def marts() -> dict[str, pd.DataFrame]:
    return sample_marts(np.random.default_rng(4), months=12, patients=10_000)


def test_a_quarter_adds_up_its_months_and_recomputes_the_rate_from_the_sums(marts) -> None:
    frame, spec = marts["mart_readmissions_monthly"], CATALOGUE["mart_readmissions_monthly"]
    rolled = rollup(frame, spec, Grain("quarter", (), "quarter"))
    assert len(rolled.frame) == 4
    first = frame[pd.to_datetime(frame["month_date"]) < "2024-04-01"]
    row = rolled.frame.iloc[0]
    assert row["index_discharge_count"] == first["index_discharge_count"].sum()
    assert row["readmission_count"] == first["readmission_count"].sum()
    # The rate of the sums, not the mean of the monthly rates.
    assert row["readmission_rate"] == pytest.approx(first["readmission_count"].sum()
                                                    / first["index_discharge_count"].sum())  # fmt: skip
    assert row[PERIOD_START] == pd.Timestamp("2024-01-01") and row[PERIOD_END] == pd.Timestamp("2024-03-31")
    # Every month went into the row of its quarter.
    assert list(rolled.rows) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_averages_are_weighted_by_their_counts_and_medians_are_not_invented(marts) -> None:
    frame, spec = marts["mart_length_of_stay_by_department"], CATALOGUE["mart_length_of_stay_by_department"]
    rolled = rollup(frame, spec, Grain("department, all hospitals", ("department_name",))).frame
    medicine = frame[frame["department_name"] == "Internal Medicine"]
    nights = (medicine["discharge_count"] * medicine["average_length_of_stay_nights"]).sum()
    row = rolled.set_index("department_name").loc["Internal Medicine"]
    assert row["average_length_of_stay_nights"] == pytest.approx(nights / medicine["discharge_count"].sum())
    assert "median_length_of_stay_nights" not in rolled  # a median of medians would be made up
    same = rollup(frame, spec, Grain("department × hospital", ("hospital_id", "department_id"))).frame
    medians = same.set_index("department_id")["median_length_of_stay_nights"]
    assert medians.to_dict() == frame.set_index("department_id")["median_length_of_stay_nights"].to_dict()


def test_shares_are_recomputed_within_the_coarser_period(marts) -> None:
    frame, spec = marts["mart_payer_mix"], CATALOGUE["mart_payer_mix"]
    rolled = rollup(frame, spec, Grain("year × payer type", ("payer_type",), "year")).frame
    assert rolled["admission_share"].sum() == pytest.approx(1.0)
    medicare = frame.loc[frame["payer_type"] == "medicare", "admission_count"].sum()
    assert rolled.set_index("payer_type").loc["medicare", "admission_share"] == pytest.approx(
        medicare / frame["admission_count"].sum()
    )


def test_daily_census_adds_up_to_patient_days_with_the_days_it_covers(marts) -> None:
    frame, spec = marts["mart_bed_occupancy_daily"], CATALOGUE["mart_bed_occupancy_daily"]
    rolled = rollup(frame, spec, Grain("week × hospital", ("hospital_id",), "week")).frame
    first = rolled.iloc[0]
    days = frame[(frame["hospital_id"] == first["hospital_id"]) & (pd.to_datetime(frame["census_date"]) <=
                                                                    pd.Timestamp("2024-01-07"))]  # fmt: skip
    assert first[DAY_COUNT] == 7 == len(days)
    assert first["midnight_census"] == days["midnight_census"].sum()
    assert first["occupancy_rate"] == pytest.approx(days["midnight_census"].sum() / days["staffed_beds"].sum())


def test_merged_age_bands_add_up_the_bands_they_hold(marts) -> None:
    frame, spec = marts["mart_patient_demographics"], CATALOGUE["mart_patient_demographics"]
    merge = Merge("age_band", (("85+", ("85-89", "90+")),))
    rolled = rollup(frame, spec, Grain("merged", ("sex", "age_band"), merges=(merge,))).frame.set_index(
        ["sex", "age_band"]
    )
    women = frame[frame["sex"] == "F"].set_index("age_band")["patient_count"]
    assert rolled.loc[("F", "85+"), "patient_count"] == women["85-89"] + women["90+"]
    assert ("F", "90+") not in rolled.index


def test_values_beyond_the_top_are_merged_into_one_labelled_other_row_per_group(marts) -> None:
    frame, spec = marts["mart_revenue_by_department"], CATALOGUE["mart_revenue_by_department"]
    grain = Grain("top", ("hospital_id", "department_id"), other=OtherRule("department_id", noun="departments"))
    small = {"H001-ONC", "H001-ICU", "H002-ICU"}
    rolled = rollup(frame, spec, grain, other=small).frame
    others = rolled[rolled["department_id"].str.startswith("Other")]
    assert sorted(others["department_id"]) == ["Other (1 departments)", "Other (2 departments)"]
    assert (others["department_name"] == others["department_id"]).all()
    assert rolled["charge_amount_usd"].sum() == pytest.approx(frame["charge_amount_usd"].sum())
    assert rolled["charge_count"].sum() == frame["charge_count"].sum()


def test_a_coarser_grain_keeps_the_totals_its_mart_treats_as_known() -> None:
    spec = CATALOGUE["mart_admissions_monthly"]
    frame = sample_marts(np.random.default_rng(1), months=6)["mart_admissions_monthly"]
    by_quarter = rollup(frame, spec, Grain("q", ("hospital_id",), "quarter")).spec
    assert set(margin_groupings(by_quarter)) == {(), ("hospital_id",), (PERIOD_START,)}
    network = rollup(frame, spec, Grain("n", (), "month")).spec
    assert margin_groupings(network) == [()]
    # Demographics: no total is published but the charts' own cells, so the sex chart's cells have no known total.
    demographics = CATALOGUE["mart_patient_demographics"]
    sexes = rollup(sample_marts(np.random.default_rng(1))["mart_patient_demographics"], demographics,
                   Grain("sex", ("sex",))).spec  # fmt: skip
    assert margin_groupings(sexes) == []


def test_a_mart_without_a_time_column_cannot_be_cut_into_periods(marts) -> None:
    with pytest.raises(ValueError, match="has no time column"):
        rollup(marts["mart_patient_demographics"], CATALOGUE["mart_patient_demographics"], Grain("m", (), "month"))


def test_rollup_leaves_its_input_unchanged(marts) -> None:
    frame = marts["mart_admissions_monthly"]
    before = frame.copy()
    rollup(frame, CATALOGUE["mart_admissions_monthly"], Grain("q", (), "quarter"))
    pd.testing.assert_frame_equal(frame, before)
    assert isinstance(before["month_date"].iloc[0], dt.date)
