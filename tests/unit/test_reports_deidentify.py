"""Safe Harbor rules of the publication: cell suppression with complements, ZIP3, age bands, table checks."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from reports.deidentify import (
    AGE_BANDS,
    RESTRICTED_ZIP3,
    SUPPRESSED_COLUMN,
    age_band,
    check_table,
    margin_groupings,
    publishable,
    suppress,
    suppress_linked,
    zip3,
)
from reports.grains import Grain, rollup
from reports.marts import CATALOGUE, KPI_MARTS, MartSpec
from reports.samples import sample_marts
from reports.views import publish_mart, top_other

pytestmark = pytest.mark.unit

GRID = MartSpec("grid", ("row", "col", "n"), margins=("row", "col"), counts=("n",), derived={"share": ("n",)})


def grid(values: list[list[int]]) -> pd.DataFrame:
    """A two-way table in long form: one row per (row, col) cell."""
    cells = [(r, c, values[r][c]) for r, c in itertools.product(range(len(values)), range(len(values[0])))]
    frame = pd.DataFrame(cells, columns=["row", "col", "n"])
    return frame.assign(share=frame["n"] / frame["n"].sum())


def derivable_cells(original: pd.DataFrame, published: pd.DataFrame, spec: MartSpec, column: str) -> set[int]:
    """Suppressed cells an attacker recovers from the published cells and every margin total, by subtraction.

    The attacker knows the true total of every margin group (as if each were published elsewhere) and repeats:
    a group with exactly one unknown cell gives that cell away.
    """
    known = published[column].notna().to_numpy().copy()
    derived: set[int] = set()
    progress = True
    while progress:
        progress = False
        for grouping in margin_groupings(spec):
            keys = original.groupby(list(grouping), sort=False).ngroup() if grouping else pd.Series(0, original.index)
            for group in keys.unique():
                members = np.flatnonzero(keys.to_numpy() == group)
                unknown = [i for i in members if not known[i]]
                if len(unknown) == 1:
                    known[unknown[0]] = True
                    derived.add(unknown[0])
                    progress = True
    return derived


@pytest.mark.parametrize(("value", "suppressed"), [(0, False), (1, True), (10, True), (11, False), (500, False)])
def test_counts_from_one_to_ten_are_suppressed_and_zero_and_eleven_are_not(value, suppressed) -> None:
    spec = MartSpec("one", ("k", "n"), margins=(), counts=("n",))
    published, cells = suppress(pd.DataFrame({"k": ["a"], "n": [value]}), spec)
    assert bool(published["n"].isna().iloc[0]) is suppressed
    assert cells == int(suppressed)


def test_a_lone_small_cell_gets_the_smallest_non_zero_cell_of_its_margins_as_complement() -> None:
    frame = grid([[3, 40, 50], [30, 20, 60]])
    published, _ = suppress(frame, GRID)
    hidden = set(np.flatnonzero(published["n"].isna().to_numpy()))
    # 3 is small; the grand total takes the smallest other cell (20), row 0 then takes 40 and row 1 takes 30:
    # every row, column and the whole table then hold two suppressed cells or none.
    assert hidden == {0, 1, 3, 4}


@pytest.mark.parametrize("seed", range(8))
def test_no_suppressed_cell_can_be_recovered_from_margin_totals(seed) -> None:
    rng = np.random.default_rng(seed)
    values = rng.choice([0, 1, 4, 9, 12, 30, 80], size=(5, 4), p=[0.2, 0.1, 0.1, 0.1, 0.2, 0.1, 0.2]).tolist()
    frame = grid(values)
    published, cells = suppress(frame, GRID)
    assert cells > 0
    assert not published["n"].between(1, 10).any()
    assert derivable_cells(frame, published, GRID, "n") == set()


def test_the_attacker_recovers_a_lone_suppressed_cell_without_complements() -> None:
    # The test's attacker is real: with suppression but no complement, the small cell is recovered.
    frame = grid([[3, 40], [30, 20]])
    naive = frame.assign(n=frame["n"].mask(frame["n"].between(1, 10)))
    assert derivable_cells(frame, naive, GRID, "n") == {0}


def test_rates_and_amounts_derived_from_a_suppressed_count_are_suppressed_with_it() -> None:
    published, _ = suppress(grid([[3, 40], [30, 20]]), GRID)
    hidden = published["n"].isna()
    assert published.loc[hidden, "share"].isna().all()
    assert published.loc[~hidden, "share"].notna().all()
    assert published.loc[hidden, SUPPRESSED_COLUMN].str.contains("share").all()


def test_every_sample_mart_is_published_without_small_counts_or_lone_suppressed_cells() -> None:
    frames = sample_marts(np.random.default_rng(3))
    total = 0
    for spec in KPI_MARTS:
        published, cells = publishable(frames[spec.name], spec)
        total += cells
        assert check_table(spec.name, published, spec) == [], spec.name
        # What was published unsuppressed is the mart's own value.
        original = frames[spec.name].reset_index(drop=True)
        for column in spec.counts:
            shown = published[column].notna()
            assert (published.loc[shown, column].astype(int) == original.loc[shown, column]).all()
    assert total > 0, "the sample marts should exercise suppression"


def test_unsuppressed_counts_keep_their_values_and_the_frame_is_not_modified() -> None:
    frame = grid([[3, 40], [30, 20]])
    before = frame.copy()
    suppress(frame, GRID)
    pd.testing.assert_frame_equal(frame, before)


@pytest.mark.parametrize("area", sorted(RESTRICTED_ZIP3))
def test_restricted_three_digit_zip_areas_publish_as_000(area) -> None:
    assert zip3(f"{area}42") == "000"


@pytest.mark.parametrize(
    ("zip_code", "expected"), [("60614", "606"), ("60614-1234", "606"), ("6061", None), ("ABCDE", None), (None, None)]
)
def test_zip_codes_are_cut_to_three_digits_or_dropped_when_malformed(zip_code, expected) -> None:
    assert zip3(zip_code) == expected


@pytest.mark.parametrize(("age", "band"), [(0, "0-17"), (17, "0-17"), (18, "18-44"), (89, "85-89"), (90, "90+"),
                                           (104, "90+"), (-1, "unknown"), (None, "unknown")])  # fmt: skip
def test_ages_of_ninety_and_over_are_grouped_as_ninety_plus(age, band) -> None:
    assert age_band(age) == band
    assert band in AGE_BANDS


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (pd.DataFrame({"mrn": ["M1"]}), "column mrn would carry a direct identifier"),
        (pd.DataFrame({"patient_key": ["abc"]}), "column patient_key"),
        (pd.DataFrame({"birth_date": ["1950-01-01"]}), "column birth_date"),
        (pd.DataFrame({"zip_code": ["60614"]}), "column zip_code"),
        (pd.DataFrame({"email": ["a@b.org"]}), "column email"),
        (pd.DataFrame({"k": ["a"], "visit_count": [7]}), "visit_count has 1 published count(s) from 1 to 10"),
        (pd.DataFrame({"midnight_census": [4]}), "midnight_census has 1"),
        (pd.DataFrame({"age_band": ["93"]}), "age_band has 1 value(s) outside the published bands"),
        (pd.DataFrame({"zip3": ["036"]}), "zip3 has 1 value(s)"),
        (pd.DataFrame({"zip3": ["6061"]}), "zip3 has 1 value(s)"),
    ],
)
def test_check_table_names_each_kind_of_safe_harbor_breach(frame, problem) -> None:
    problems = check_table("t", frame, None)
    assert any(problem in text for text in problems), problems


def test_check_table_finds_a_lone_suppressed_cell() -> None:
    frame = grid([[3, 40], [30, 20]])
    lone = frame.assign(n=frame["n"].mask(frame.index == 0).astype("Int64"))
    lone[SUPPRESSED_COLUMN] = pd.Series(["n", None, None, None], dtype="string")
    assert any("lone suppressed n" in problem for problem in check_table("grid", lone, GRID))


def test_published_hospital_dimension_has_zip3_and_payers_lose_plan_count() -> None:
    frames = sample_marts(np.random.default_rng(0))
    hospitals, _ = publishable(frames["dim_hospitals"], CATALOGUE["dim_hospitals"])
    payers, _ = publishable(frames["dim_payers"], CATALOGUE["dim_payers"])
    assert "zip_code" not in hospitals and list(hospitals["zip3"]) == ["627", "693"]
    assert "plan_count" not in payers


# ------------------------------------------------------------------------------------------ linked tables


def _determined(tables: list[tuple[pd.DataFrame, MartSpec, np.ndarray]], column: str,
                unknown: list[np.ndarray]) -> set[tuple[int, int]]:  # fmt: skip
    """(table, row) of the ``unknown`` cells whose value follows from the known cells and the known totals."""
    index, cells = {}, []
    for t, mask in enumerate(unknown):
        for row in np.flatnonzero(mask):
            index[(t, row)] = len(cells)
            cells.append((t, row))
    if not cells:
        return set()
    equations = []
    for t, (frame, spec, _) in enumerate(tables):
        for grouping in margin_groupings(spec):
            groups = frame.groupby(list(grouping), dropna=False).ngroup() if grouping else pd.Series(0, frame.index)
            totals = pd.to_numeric(frame[column], errors="coerce").groupby(groups.to_numpy()).sum()
            for group in np.unique(groups):
                members = np.flatnonzero(groups.to_numpy() == group)
                # A group of one cell is that cell (a key such as department_id that fixes the hospital too):
                # not a total known from elsewhere.
                if 1 <= totals[group] <= 10 or len(members) == 1:
                    continue
                equation = np.zeros(len(cells))
                for row in members:
                    if (t, row) in index:
                        equation[index[(t, row)]] = 1
                equations.append(equation)
    for t, (frame, _, rows) in enumerate(tables[1:], start=1):
        for cell in range(len(frame)):
            equation = np.zeros(len(cells))
            if (t, cell) in index:
                equation[index[(t, cell)]] = 1
            for row in np.flatnonzero(rows == cell):
                if (0, row) in index:
                    equation[index[(0, row)]] = -1
            equations.append(equation)
    matrix = np.array([e for e in equations if e.any()] or [np.zeros(len(cells))])
    _, singular, vt = np.linalg.svd(matrix)
    null = vt[int((singular > 1e-9).sum()) :]
    return {cells[i] for i in range(len(cells)) if np.linalg.norm(null[:, i]) < 1e-9}


def determined_cells(tables: list[tuple[pd.DataFrame, MartSpec, np.ndarray]], column: str,
                     published: list[pd.DataFrame]) -> list[tuple[int, int]]:  # fmt: skip
    """(table, row) of every suppressed cell an attacker can compute exactly thanks to what is published.

    Built independently of the suppression code, with linear algebra (stronger than repeated subtraction): the
    attacker knows every published cell, the total of every grouping each table declares (the threat model's
    totals "known from elsewhere"; not one from 1 to 10, which no table of the platform publishes, nor a group
    of one cell), and that each
    cell of an aggregate is the sum of the mart's cells it holds. A suppressed cell is determined when its unit
    vector lies in the row space of those equations over the suppressed cells. Cells the known totals determine on
    their own, with nothing published (a month total a declared grouping already gives), are not the
    publication's doing and are left out.
    """
    hidden = [frame[column].isna().to_numpy() for frame in published]
    by_assumption = _determined(tables, column, [np.ones(len(frame), dtype=bool) for frame, _, _ in tables])
    return sorted(_determined(tables, column, hidden) - by_assumption)


def _linked(frame: pd.DataFrame, spec: MartSpec, grains) -> list[tuple[pd.DataFrame, MartSpec, np.ndarray]]:
    return [(frame.reset_index(drop=True), spec, np.arange(len(frame)))] + [
        (r.frame, r.spec, r.rows) for r in (rollup(frame, spec, grain) for grain in grains)
    ]


def test_a_chart_total_cannot_give_away_a_month_the_extract_hides() -> None:
    spec = MartSpec("m", ("k", "month_date", "n"), margins=("k", "month_date"), groupings=((),), counts=("n",),
                    time=("month_date", "month"))  # fmt: skip
    months = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"])
    frame = pd.DataFrame({"k": "a", "month_date": months, "n": [4, 50, 40, 20, 60, 70]})
    alone = suppress(frame, spec)[0]
    # Alone, the extract hides January and its complement, the smallest other month (April)...
    assert alone["n"].isna().tolist() == [True, False, False, True, False, False]
    # ...but a chart by quarter publishes Q1 = Jan + Feb + Mar: January would be Q1 - Feb - Mar. Linked, each
    # quarter holds two hidden months (March and May join), and both quarters can still be published.
    tables = _linked(frame, spec, [Grain("quarter", (), "quarter")])
    published = [table for table, _ in suppress_linked(*tables[0][:2], tables[1:])]
    assert published[0]["n"].isna().tolist() == [True, False, True, True, True, False]
    assert published[1]["n"].notna().all()
    assert determined_cells(tables, "n", published) == []
    naive = [alone, suppress(tables[1][0], tables[1][1])[0]]
    assert determined_cells(tables, "n", naive) != [], "the attacker finds the month without linking"


@pytest.mark.parametrize("patients", [2_000, 10_000, 100_000])
def test_no_suppressed_cell_of_a_mart_or_its_charts_can_be_computed_from_what_is_published(patients) -> None:
    from reports.charts import CHARTS

    frames = sample_marts(np.random.default_rng(patients), months=24, patients=patients)
    checked = 0
    for name in ("mart_admissions_monthly", "mart_patient_demographics", "mart_readmissions_monthly",
                 "mart_payer_mix", "mart_claim_denials", "mart_length_of_stay_by_department"):  # fmt: skip
        spec = CATALOGUE[name]
        _, _, views, _ = publish_mart(frames[name], spec)
        tables = [(frames[name].reset_index(drop=True), spec, np.arange(len(frames[name])))]
        for chart, view in views.items():
            grain = view.note.grain
            other = top_other(frames[name], grain, CHARTS[chart].mass)
            if grain.other is not None and grain.other.suppressed:
                labels = view.frame[grain.other.column].astype(str)
                other = other | (set(frames[name][grain.other.column].astype(str)) - set(labels))
            rolled = rollup(frames[name], spec, grain, other=other)
            assert len(rolled.frame) == len(view.frame), (name, chart)
            tables.append((rolled.frame, rolled.spec, rolled.rows))
        results = suppress_linked(tables[0][0], spec, tables[1:])
        for column in spec.counts:
            published = [frame for frame, _ in results]
            assert determined_cells(tables, column, published) == [], (name, column)
            checked += 1
        for (frame, _), (_, table_spec, _) in zip(results, tables, strict=True):
            assert check_table(name, frame, table_spec) == []
    assert checked >= 9
