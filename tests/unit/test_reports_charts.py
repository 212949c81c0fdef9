"""The charts: pure, labelled, colour-blind-safe, and honest at every scale.

Seeded marts shaped like the simulated network's at 2,000, 10,000 and 100,000 patients over two years
(reports/samples.py) are published as the report publishes them (reports/views.py); each chart is then measured
on what it draws: the share of its mass suppression hides (from the mart's own total, not from anything the chart
says), its grain against the ladder, one "suppressed" mark per hidden cell and no bar or point for one, and the
KPI tile it shares with its chart.
"""

from __future__ import annotations

import re

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from reports.charts import CHARTS, NOTHING_GID, OKABE_ITO, SUPPRESSED_COLOUR, SUPPRESSED_GID, _wrap, save_chart
from reports.deidentify import suppress_linked
from reports.grains import GrainNote, rollup
from reports.html import kpi_tiles
from reports.marts import CATALOGUE
from reports.publish import png_text_keys
from reports.samples import sample_marts
from reports.views import publish_marts, top_other

pytestmark = pytest.mark.unit

PERIOD = "2024-01-01 to 2025-12-31"
RUN_ID = "run-42"
SCALES = (2_000, 10_000, 100_000)
#: The most of a chart's mass suppression may hide at the grain it is drawn at (issue 15).
MAX_HIDDEN_SHARE = 0.05


@pytest.fixture(scope="module")
def scaled() -> dict[int, tuple[dict, object, dict[str, Figure]]]:
    """Per scale: the marts, their publication and every chart drawn from it."""
    result = {}
    for patients in SCALES:
        marts = sample_marts(np.random.default_rng(patients + 1), months=24, patients=patients)
        publication = publish_marts(marts)
        figures = {name: CHARTS[name].plot(view.frame, grain=view.note, period=PERIOD, run_id=RUN_ID)
                   for name, view in publication.views.items()}  # fmt: skip
        result[patients] = (marts, publication, figures)
    return result


def marks(figure: Figure) -> int:
    """Artists drawn as "suppressed" marks."""
    return len(figure.findobj(lambda artist: artist.get_gid() == SUPPRESSED_GID))


def measured_hidden_share(marts: dict, name: str, frame: pd.DataFrame) -> float:
    """Share of a chart's mass its published cells leave out, measured from the mart's own total."""
    chart = CHARTS[name]
    total = float(pd.to_numeric(marts[chart.mart][chart.mass]).sum())
    shown = frame[chart.measure].notna().to_numpy()
    return 1 - float(pd.to_numeric(frame[chart.mass])[shown].sum()) / total if total else 0.0


def expected_marks(name: str, frame: pd.DataFrame) -> int:
    """How many suppressed marks the chart must draw for its hidden cells."""
    hidden = frame[CHARTS[name].measure].isna() & frame["suppressed_columns"].notna()
    if name == "payer_mix":  # one hatched segment per period: what the period's published shares leave
        return int(frame.assign(h=hidden).groupby("period_start")["h"].any().sum())
    if name == "age_pyramid":  # "sex unknown" is summarised in the axis label, not drawn
        return int((hidden & frame["sex"].isin(["F", "M"])).sum())
    return int(hidden.sum())


def test_every_chart_of_the_issue_has_a_plot_function_and_a_ladder() -> None:
    assert set(CHARTS) == {
        "admissions_trend", "sex_distribution", "age_pyramid", "length_of_stay_by_department",
        "length_of_stay_by_diagnosis_chapter", "readmission_rate", "bed_occupancy", "no_show_rate_by_weekday",
        "no_show_rate_by_lead_time", "payer_mix", "denial_rate", "top_denial_reasons", "revenue_by_department",
    }  # fmt: skip
    for chart in CHARTS.values():
        assert chart.mart in CATALOGUE and chart.grains
        assert chart.mass in CATALOGUE[chart.mart].columns and chart.measure in CATALOGUE[chart.mart].columns


def _rolled(marts: dict, name: str, view) -> tuple:
    """The aggregate a published view was suppressed as, rebuilt from the mart (its "Other" from the view's rows)."""
    grain = view.note.grain
    other = top_other(marts[view.mart], grain, CHARTS[name].mass)
    if grain.other is not None and grain.other.suppressed:
        shown = set(view.frame[grain.other.column].astype(str))
        other |= set(marts[view.mart][grain.other.column].astype(str)) - shown
    rolled = rollup(marts[view.mart], CATALOGUE[view.mart], grain, other=other)
    return rolled.frame, rolled.spec, rolled.rows


def share_at(marts: dict, publication, name: str, grain) -> float:
    """The hidden share of a chart at one grain, suppressed with the mart and the charts of the mart drawn before
    it, and with the categories that grain merges into "Other" merged (measured from the mart's own total)."""
    view, chart = publication.views[name], CHARTS[name]
    spec, mart = CATALOGUE[view.mart], marts[view.mart]
    before = [_rolled(marts, n, v) for n, v in publication.views.items()
              if v.mart == view.mart and list(CHARTS).index(n) < list(CHARTS).index(name)]  # fmt: skip
    other = top_other(mart, grain, chart.mass)
    rolled = rollup(mart, spec, grain, other=other)
    published = suppress_linked(mart, spec, [*before, (rolled.frame, rolled.spec, rolled.rows)])[-1][0]
    if grain.other is not None and grain.other.suppressed:
        hidden = published.loc[published[chart.measure].isna(), grain.other.column].astype(str)
        rolled = rollup(mart, spec, grain, other=other | {v for v in hidden if not v.startswith("Other")})
        published = suppress_linked(mart, spec, [*before, (rolled.frame, rolled.spec, rolled.rows)])[-1][0]
    return measured_hidden_share(marts, name, published)


@pytest.mark.parametrize("patients", SCALES)
@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_is_drawn_at_the_finest_grain_hiding_at_most_five_percent(scaled, patients, name) -> None:
    marts, publication, _ = scaled[patients]
    view = publication.views[name]
    share = measured_hidden_share(marts, name, view.frame)
    assert share == pytest.approx(view.note.hidden_share, abs=1e-9)
    ladder = CHARTS[name].grains
    assert ladder[view.note.position] == view.note.grain
    shares = [share_at(marts, publication, name, grain) for grain in ladder]
    if share <= MAX_HIDDEN_SHARE:
        # Every finer grain hides more than 5%.
        assert all(finer > MAX_HIDDEN_SHARE for finer in shares[: view.note.position]), shares
    else:
        # No grain of the ladder hides 5% or less, and none hides less than the one drawn.
        assert min(shares) > MAX_HIDDEN_SHARE and share <= min(shares) + 1e-9, shares


@pytest.mark.parametrize("patients", SCALES)
@pytest.mark.parametrize("name", sorted(CHARTS))
def test_each_suppressed_cell_is_drawn_as_a_suppressed_mark_never_as_zero(scaled, patients, name) -> None:
    _, publication, figures = scaled[patients]
    frame, figure = publication.views[name].frame, figures[name]
    assert marks(figure) == expected_marks(name, frame)
    hidden = frame["suppressed_columns"].fillna("").str.contains(CHARTS[name].measure).to_numpy()
    # No bar stands for a hidden cell: the data bars are exactly the published cells.
    bars = [p for axes in figure.axes for p in axes.patches if p.get_gid() != SUPPRESSED_GID and p.get_visible()
            and mcolors.to_hex(p.get_facecolor()) != "#ffffff"]  # fmt: skip
    if name in ("sex_distribution", "top_denial_reasons", "revenue_by_department", "no_show_rate_by_weekday",
                "no_show_rate_by_lead_time"):  # fmt: skip
        assert len(bars) == int((~hidden).sum())
    if name in ("admissions_trend", "readmission_rate", "denial_rate"):
        drawn = [line for line in figure.axes[0].lines if line.get_gid() != SUPPRESSED_GID and line.get_marker() == "o"]
        points = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in drawn])
        assert np.isfinite(points).sum() == int((~hidden).sum())


@pytest.mark.parametrize("patients", SCALES)
@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_subtitle_names_period_run_grain_and_what_suppression_hides(scaled, patients, name) -> None:
    _, publication, figures = scaled[patients]
    note = publication.views[name].note
    subtitle = figures[name].axes[0].get_title()
    assert PERIOD in subtitle and RUN_ID in subtitle
    assert f"Grain: {note.grain.label} (" in subtitle
    if note.hidden_cells:
        assert f"{note.hidden_cells} of {note.cells} cells suppressed" in subtitle
    else:
        assert "No cell suppressed" in subtitle


def test_sex_chart_draws_its_own_totals_not_the_pyramids_published_cells(scaled) -> None:
    marts, publication, figures = scaled[10_000]
    truth = marts["mart_patient_demographics"].groupby("sex")["patient_count"].sum()
    frame = publication.views["sex_distribution"].frame.set_index("sex")
    axes = figures["sex_distribution"].axes[0]
    heights = [patch.get_height() for patch in axes.patches if patch.get_gid() != SUPPRESSED_GID]
    assert sorted(heights) == sorted(truth[frame["patient_count"].notna()].astype(float))
    assert frame.loc["F", "patient_count"] > frame.loc["M", "patient_count"]  # the samples have ~56% women


def test_payer_mix_bars_always_reach_one_hundred_percent(scaled) -> None:
    for patients in SCALES:
        _, _, figures = scaled[patients]
        axes = figures["payer_mix"].axes[0]
        tops: dict[float, float] = {}
        for patch in axes.patches:
            x = round(patch.get_x() + patch.get_width() / 2, 6)
            tops[x] = max(tops.get(x, 0), patch.get_y() + patch.get_height())
        assert tops and all(top == pytest.approx(100) for top in tops.values()), patients


@pytest.mark.parametrize("patients", SCALES)
def test_tiles_and_the_charts_of_the_same_kpi_show_the_same_value(scaled, patients) -> None:
    marts, publication, figures = scaled[patients]
    tiles = {tile.key: tile.value for tile in kpi_tiles(marts)}
    readmissions = marts["mart_readmissions_monthly"]
    rate = readmissions["readmission_count"].sum() / readmissions["index_discharge_count"].sum()
    assert tiles["readmission_rate"] == f"{rate:.1%}"
    for name, key in (("readmission_rate", "readmission_rate"), ("no_show_rate_by_weekday", "no_show_rate"),
                      ("denial_rate", "denial_rate"), ("length_of_stay_by_department", "alos")):  # fmt: skip
        labels = [line.get_label() for axes in figures[name].axes for line in axes.lines]
        assert f"Whole period: {tiles[key]} (KPI tile)" in labels, (name, labels)
        assert publication.views[name].note.reference_text == tiles[key]
    beds = marts["mart_bed_occupancy_daily"]
    assert tiles["occupancy"] == f"{beds['midnight_census'].sum() / beds['staffed_beds'].sum():.1%}"
    assert f"{tiles['occupancy']} (KPI tile)" in figures["bed_occupancy"].axes[-1].get_xlabel()


def test_a_chart_with_nothing_publishable_says_so_in_its_place() -> None:
    marts = sample_marts(np.random.default_rng(3), months=2, patients=100)
    publication = publish_marts({"mart_readmissions_monthly": marts["mart_readmissions_monthly"]})
    view = publication.views["readmission_rate"]
    assert view.note.nothing_publishable
    figure = CHARTS["readmission_rate"].plot(view.frame, grain=view.note, period=PERIOD, run_id=RUN_ID)
    texts = figure.findobj(lambda artist: artist.get_gid() == NOTHING_GID)
    assert len(texts) == 1 and "Nothing publishable" in texts[0].get_text()
    assert not [line for line in figure.axes[0].lines if np.isfinite(np.asarray(line.get_ydata(), float)).any()]


def test_category_labels_are_wrapped_at_word_boundaries_never_cut_mid_word() -> None:
    title = "Diseases of the blood and blood-forming organs and certain disorders involving the immune mechanism"
    wrapped = _wrap(title)
    assert len(wrapped.splitlines()) <= 2
    words = set(title.split())
    assert all(word in words or word == "…" or word in {"blood-", "forming"} for word in wrapped.split())


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_has_axis_labels_with_units(scaled, name) -> None:
    figure = scaled[10_000][2][name]
    assert figure.get_suptitle()
    assert any(axes.get_xlabel() for axes in figure.axes)
    assert all(axes.get_ylabel() for axes in figure.axes)
    labels = " ".join(axes.get_xlabel() + " " + axes.get_ylabel() for axes in figure.axes)
    assert re.search(r"\((count|%|nights|patients|thousand USD|hospital local calendar|patient record|years)", labels)


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_chart_draws_only_okabe_ito_colours_and_the_suppressed_grey(scaled, name) -> None:
    palette = {mcolors.to_hex(colour) for colour in OKABE_ITO} | {"#000000", SUPPRESSED_COLOUR.lower()}
    for figure in (scaled[p][2][name] for p in SCALES):
        for axes in figure.axes:
            bars = [p for p in axes.patches if p.get_width() and p.get_height() and p.get_gid() != SUPPRESSED_GID]
            lines = [line for line in axes.lines if np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any()]
            drawn = [p.get_facecolor() for p in bars] + [line.get_color() for line in lines]
            drawn += [p.get_edgecolor() for p in axes.patches if p.get_gid() == SUPPRESSED_GID]
            assert {mcolors.to_hex(colour) for colour in drawn} <= palette


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_plot_function_leaves_its_input_frame_unchanged(scaled, name) -> None:
    view = scaled[2_000][1].views[name]
    before = view.frame.copy()
    CHARTS[name].plot(view.frame, grain=view.note, period=PERIOD, run_id=RUN_ID)
    pd.testing.assert_frame_equal(view.frame, before)


def test_charts_never_register_with_pyplot(scaled) -> None:
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_saved_chart_is_a_png_and_an_svg_without_software_or_date_metadata(scaled, tmp_path) -> None:
    png, svg = save_chart(scaled[10_000][2]["admissions_trend"], tmp_path, "admissions_trend")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_text_keys(png) == [b"Title"]
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "Admissions" in text  # text is kept as text (searchable, accessible)
    assert "<dc:date>" not in text and "Matplotlib" not in text


def test_grain_note_flags_every_cell_hidden_as_nothing_publishable() -> None:
    grain = CHARTS["readmission_rate"].grains[0]
    note = GrainNote(grain, 0, 5, "index stays", cells=3, hidden_cells=3, hidden_share=1.0, limit=0.05)
    assert note.nothing_publishable and not note.within_limit


def test_every_chart_of_empty_marts_says_there_is_no_data() -> None:
    marts = {name: frame.iloc[0:0] for name, frame in sample_marts(np.random.default_rng(1)).items()}
    publication = publish_marts(marts)
    assert set(publication.views) == set(CHARTS)
    for name, view in publication.views.items():
        figure = CHARTS[name].plot(view.frame, grain=view.note, period=PERIOD, run_id=RUN_ID)
        texts = [text.get_text() for text in figure.findobj(lambda a: a.get_gid() == NOTHING_GID)]
        assert texts == ["No data in this period"], name
