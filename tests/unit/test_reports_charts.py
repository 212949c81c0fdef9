"""The plot functions: pure, labelled, colour-blind-safe, written as PNG and SVG without metadata."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from reports.charts import CHARTS, OKABE_ITO, save_chart
from reports.deidentify import publishable
from reports.marts import CATALOGUE
from reports.publish import png_text_keys
from reports.samples import sample_marts

pytestmark = pytest.mark.unit

PERIOD = "2024-01-01 to 2024-06-30"
RUN_ID = "run-42"


@pytest.fixture(scope="module")
def published_marts() -> dict[str, pd.DataFrame]:
    """The sample marts as they are published (suppressed), which is what the charts receive."""
    frames = sample_marts(np.random.default_rng(11))
    return {name: publishable(frame, CATALOGUE[name])[0] for name, frame in frames.items()}


@pytest.fixture(scope="module")
def figures(published_marts) -> dict[str, Figure]:
    return {name: plot(published_marts[mart], period=PERIOD, run_id=RUN_ID) for name, (mart, plot) in CHARTS.items()}


def test_every_chart_of_the_issue_has_a_plot_function() -> None:
    assert set(CHARTS) == {
        "admissions_trend", "sex_distribution", "age_pyramid", "length_of_stay_by_department",
        "length_of_stay_by_diagnosis_chapter", "readmission_rate", "bed_occupancy", "no_show_rate_by_weekday",
        "no_show_rate_by_lead_time", "payer_mix", "denial_rate", "top_denial_reasons", "revenue_by_department",
    }  # fmt: skip
    assert all(mart in CATALOGUE for mart, _ in CHARTS.values())


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_has_title_axis_labels_with_units_period_and_run_id(figures, name) -> None:
    figure = figures[name]
    assert isinstance(figure, Figure)
    assert figure.get_suptitle()
    subtitle = figure.axes[0].get_title()
    assert PERIOD in subtitle and RUN_ID in subtitle
    assert any(axes.get_xlabel() for axes in figure.axes)
    assert all(axes.get_ylabel() for axes in figure.axes)
    labels = " ".join(axes.get_xlabel() + " " + axes.get_ylabel() for axes in figure.axes)
    # Units or the counted thing are named in parentheses: (count...), (%...), (nights), (USD...), (days)...
    assert "(" in labels and ")" in labels


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_draws_only_okabe_ito_colours(figures, name) -> None:
    palette = {mcolors.to_hex(colour) for colour in OKABE_ITO}
    for axes in figures[name].axes:
        bars = [patch for patch in axes.patches if patch.get_width() and patch.get_height()]
        lines = [line for line in axes.lines if np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any()]
        assert bars or lines, "nothing drawn"
        drawn = [patch.get_facecolor() for patch in bars] + [line.get_color() for line in lines]
        assert {mcolors.to_hex(colour) for colour in drawn} <= palette | {"#000000"}


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_plot_function_leaves_its_input_frame_unchanged(published_marts, name) -> None:
    mart, plot = CHARTS[name]
    frame = published_marts[mart]
    before = frame.copy()
    plot(frame, period=PERIOD, run_id=RUN_ID)
    pd.testing.assert_frame_equal(frame, before)


def test_charts_never_register_with_pyplot(figures) -> None:
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_a_chart_whose_cells_are_all_suppressed_says_so() -> None:
    _, plot = CHARTS["length_of_stay_by_department"]
    frame = pd.DataFrame({"hospital_id": ["H1"], "department_id": ["D1"], "department_name": ["Unit"],
                          "discharge_count": pd.array([None], dtype="Int64"),
                          "average_length_of_stay_nights": pd.array([None], dtype="Float64"),
                          "median_length_of_stay_nights": pd.array([None], dtype="Float64")})  # fmt: skip
    figure = plot(frame, period=PERIOD, run_id=RUN_ID)
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert any("suppressed" in text for text in texts)


def test_suppressed_cells_are_counted_on_the_chart(published_marts) -> None:
    occupancy = published_marts["mart_bed_occupancy_daily"]
    hidden = int(occupancy["midnight_census"].isna().sum())
    assert hidden > 0
    figure = CHARTS["bed_occupancy"][1](occupancy, period=PERIOD, run_id=RUN_ID)
    notes = " ".join(text.get_text() for axes in figure.axes for text in axes.texts)
    assert "suppressed" in notes


def test_saved_chart_is_a_png_and_an_svg_without_software_or_date_metadata(figures, tmp_path) -> None:
    png, svg = save_chart(figures["admissions_trend"], tmp_path, "admissions_trend")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_text_keys(png) == [b"Title"]
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "Monthly admissions" in text  # text is kept as text (searchable, accessible)
    assert "<dc:date>" not in text and "Matplotlib" not in text
