"""HIPAA Safe Harbor for published tables: small-cell suppression with complementary suppression, ZIP3, age bands.

Suppression follows the CMS cell-size rule: a count of people or events from 1 to 10 is not published (0 is).
A suppressed cell could still be recovered by subtraction from a total a reader can compute (a margin: the sum
over one key column with the others fixed, or the grand total shown in a KPI tile), so every margin group that
holds exactly one suppressed cell gets a second one: the smallest remaining non-zero cell of that group
(complementary suppression). This repeats until no group has a lone suppressed cell. Columns derived from a
suppressed count (rates, averages, amounts) are suppressed in the same row.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from reports.marts import MartSpec

MIN_CELL = 1
MAX_SUPPRESSED = 10
#: Three-digit ZIP areas of 20,000 people or fewer (HHS de-identification guidance, 2000 census): published "000".
RESTRICTED_ZIP3 = frozenset(
    "036 059 063 102 203 556 692 790 821 823 830 831 878 879 884 890 893".split()  # noqa: SIM905 - readable list
)
AGE_BANDS = ("0-17", "18-44", "45-64", "65-74", "75-84", "85-89", "90+", "unknown")
#: Wider bands a chart may merge those into (each 90+ stays inside a band of 85 or more: still Safe Harbor).
MERGED_AGE_BANDS = ("0-44", "65-84", "85+", "0-64", "65+")
#: Column listing, per published row, which cells were suppressed (null when none).
SUPPRESSED_COLUMN = "suppressed_columns"
#: Column names that would carry a direct identifier (or a key derived from one): never published.
FORBIDDEN_COLUMNS = re.compile(
    r"(^|_)(mrn|ssn|first_name|last_name|full_name|patient_name|phone|email|e_mail|address|street|birth|"
    r"member_id|patient_key|patient_id|admission_key|appointment_key|charge_key|claim_key|encounter_key|"
    r"admission_id|appointment_id|claim_id|charge_id|encounter_id|zip|zip_code|zip5)($|_)"
)


def zip3(zip_code: object) -> str | None:
    """The first three digits of a five-digit ZIP, "000" for a restricted area, None when malformed."""
    text = "" if zip_code is None or (isinstance(zip_code, float) and np.isnan(zip_code)) else str(zip_code).strip()
    if not re.fullmatch(r"\d{5}(-\d{4})?", text):
        return None
    return "000" if text[:3] in RESTRICTED_ZIP3 else text[:3]


def age_band(age_years: int | None) -> str:
    """The published age band of an age in years; every age of 90 or more is "90+"."""
    if age_years is None or age_years < 0 or age_years > 130:
        return "unknown"
    for upper, band in ((17, "0-17"), (44, "18-44"), (64, "45-64"), (74, "65-74"), (84, "75-84"), (89, "85-89")):
        if age_years <= upper:
            return band
    return "90+"


def is_small(values: pd.Series) -> pd.Series:
    """Whether each count lies in the suppressed range 1..10 (nulls are not small)."""
    numbers = pd.to_numeric(values, errors="coerce")
    return (numbers >= MIN_CELL) & (numbers <= MAX_SUPPRESSED)


def margin_groupings(spec: MartSpec) -> list[tuple[str, ...]]:
    """The groupings whose totals a reader can know: the spec's own, else every proper subset of its margins."""
    if spec.groupings is not None:
        return list(spec.groupings)
    margins = spec.margins
    return [subset for size in range(len(margins)) for subset in itertools.combinations(margins, size)]


def _group_ids(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    if not columns:
        return np.zeros(len(frame), dtype=np.int64)
    return frame.groupby(list(columns), dropna=False, sort=False).ngroup().to_numpy()


def complement(values: pd.Series | np.ndarray, suppressed: np.ndarray, groups: Iterable[np.ndarray]) -> np.ndarray:
    """Extend a suppression mask until no group of any grouping holds exactly one suppressed cell.

    Each grouping is an array of group ids, one per cell (-1: the cell is not in any group of that grouping). The
    complement chosen in a group is its smallest non-zero unsuppressed cell (least information lost), else a zero
    cell (a reader who knows the total still cannot split it between two hidden cells). Only a group of a single
    cell keeps a lone suppressed cell: its total is the cell itself, hidden the same way.
    """
    numbers = pd.to_numeric(pd.Series(np.asarray(values)), errors="coerce").to_numpy(dtype=float)
    mask = suppressed.copy()
    groupings = []
    for group_ids in groups:
        ids = np.asarray(group_ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        groupings.append((ids, order, ids[order]))
    changed = True
    while changed:
        changed = False
        for ids, order, sorted_ids in groupings:
            hidden = ids[(ids >= 0) & mask]
            if not hidden.size:
                continue
            for group in np.flatnonzero(np.bincount(hidden) == 1):
                start, stop = np.searchsorted(sorted_ids, [group, group + 1])
                members = order[start:stop]
                if mask[members].sum() != 1:
                    continue
                candidates = [i for i in members if not mask[i] and np.isfinite(numbers[i])]
                if candidates:
                    # Non-zero cells first, then the smallest, then the first row: deterministic.
                    mask[min(candidates, key=lambda i: (numbers[i] == 0, numbers[i], i))] = True
                    changed = True
    return mask


def _nesting(fine_rows: np.ndarray, coarse_rows: np.ndarray, size: int) -> np.ndarray | None:
    """For each row of a fine table, the coarse row holding it, or None when the fine rows are not nested."""
    pairs = pd.DataFrame({"fine": fine_rows, "coarse": coarse_rows}).groupby("fine")["coarse"]
    if (pairs.nunique() != 1).any():
        return None
    return pairs.first().reindex(range(size), fill_value=-1).to_numpy(dtype=np.int64)


def linked_groupings(tables: Sequence[tuple[pd.DataFrame, MartSpec, np.ndarray]]) -> list[np.ndarray]:
    """Every set of cells whose total a reader knows, over the cells of several tables built from one mart.

    ``tables`` are (frame, spec, rows): the mart itself first (rows = its own row numbers), then aggregates of it
    (rows = the aggregate row each mart row went into). Cells are numbered table after table. The sets are each
    table's own groupings (its `MartSpec`), and, for every aggregate, each of its cells with the cells of any
    finer table it adds up (the mart, or another aggregate nested in it): "this aggregate cell = the sum of those
    cells" is known even when the aggregate cell is hidden, so a lone unknown in it would be derivable.
    """
    sizes = [len(frame) for frame, _, _ in tables]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    total = int(sum(sizes))
    groupings: list[np.ndarray] = []
    for (frame, spec, _), offset in zip(tables, offsets, strict=True):
        for grouping in margin_groupings(spec):
            ids = np.full(total, -1, dtype=np.int64)
            ids[offset : offset + len(frame)] = _group_ids(frame, grouping)
            groupings.append(ids)
    for fine, (fine_frame, _, fine_rows) in enumerate(tables):
        for coarse, (coarse_frame, _, coarse_rows) in enumerate(tables):
            if coarse == fine or coarse == 0:
                continue
            mapping = _nesting(fine_rows, coarse_rows, len(fine_frame))
            if mapping is None:
                continue
            ids = np.full(total, -1, dtype=np.int64)
            ids[offsets[coarse] : offsets[coarse] + len(coarse_frame)] = np.arange(len(coarse_frame))
            ids[offsets[fine] : offsets[fine] + len(fine_frame)] = mapping
            groupings.append(ids)
    return groupings


def _published(frame: pd.DataFrame, spec: MartSpec, masks: dict[str, np.ndarray]) -> tuple[pd.DataFrame, int]:
    """One table with its suppressed counts and the values derived from them nulled, and its suppressed cells."""
    result = frame.copy()
    masks = dict(masks)
    for column, sources in spec.derived.items():
        if column in result.columns:
            masks[column] = np.logical_or.reduce([masks[source] for source in sources])
    suppressed_cells = 0
    for column, mask in masks.items():
        suppressed_cells += int(mask.sum())
        if column in spec.counts:
            result[column] = result[column].astype("Int64").mask(mask)
        else:
            result[column] = result[column].astype("Float64").mask(mask)
    names = [",".join(column for column, mask in masks.items() if mask[row]) or None for row in range(len(result))]
    result[SUPPRESSED_COLUMN] = pd.Series(names, index=result.index, dtype="string")
    return result, suppressed_cells


def suppress_linked(
    frame: pd.DataFrame, spec: MartSpec, aggregates: Sequence[tuple[pd.DataFrame, MartSpec, np.ndarray]] = ()
) -> list[tuple[pd.DataFrame, int]]:
    """The publishable form of a mart and of aggregates of it published beside it (the charts' coarser grains).

    Small counts (1..10) are suppressed in every table, then complements are added until no set of cells with a
    known total (`linked_groupings`) holds exactly one suppressed cell: a chart's quarterly total cannot give
    away the month the extract hides, nor the extract's months a quarter the chart hides. ``aggregates`` are
    (frame, spec, rows) with ``rows`` the aggregate row of each mart row (`reports.grains.rollup`). Returns, for
    the mart and then each aggregate, the published frame (with ``suppressed_columns``) and its suppressed cells.
    """
    tables = [(frame.reset_index(drop=True), spec, np.arange(len(frame), dtype=np.int64)), *aggregates]
    groupings = linked_groupings(tables)
    sizes = np.cumsum([0] + [len(table) for table, _, _ in tables])
    masks: dict[str, np.ndarray] = {}
    for column in spec.counts:
        values = np.concatenate(
            [pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float) for table, _, _ in tables]
        )
        masks[column] = complement(values, is_small(pd.Series(values)).to_numpy(), groupings)
    return [
        _published(table, table_spec, {c: m[sizes[i] : sizes[i + 1]] for c, m in masks.items()})
        for i, (table, table_spec, _) in enumerate(tables)
    ]


def suppress(frame: pd.DataFrame, spec: MartSpec) -> tuple[pd.DataFrame, int]:
    """The publishable form of one mart: small counts and their complements nulled, derived columns with them.

    Returns the frame (with a ``suppressed_columns`` column naming the row's suppressed cells) and the number of
    suppressed cells. Count columns become nullable integers so that a suppressed count is a null, not a float.
    """
    return suppress_linked(frame, spec)[0]


def prepare(frame: pd.DataFrame, spec: MartSpec) -> pd.DataFrame:
    """A mart's rows with its unpublished columns dropped and any ZIP cut to ZIP3 (before suppression)."""
    result = frame.drop(columns=[c for c in spec.dropped if c in frame.columns]).reset_index(drop=True)
    if "zip_code" in result.columns:
        position = result.columns.get_loc("zip_code")
        result.insert(position, "zip3", result.pop("zip_code").map(zip3).astype("string"))
    return result


def publishable(frame: pd.DataFrame, spec: MartSpec) -> tuple[pd.DataFrame, int]:
    """Apply every Safe Harbor rule the catalogue knows to one mart: dropped columns, ZIP3, suppression."""
    result = prepare(frame, spec)
    if not spec.counts:
        return result.reset_index(drop=True), 0
    published, cells = suppress(result, spec)
    return published.reset_index(drop=True), cells


def check_table(name: str, frame: pd.DataFrame, spec: MartSpec | None) -> list[str]:
    """Every Safe Harbor problem of one table as it will be published (an empty list when it may go out)."""
    problems = [
        f"{name}: column {column} would carry a direct identifier or a key derived from one"
        for column in frame.columns
        if FORBIDDEN_COLUMNS.search(column.lower())
    ]
    count_columns = [c for c in frame.columns if c.endswith("_count") or c == "midnight_census"]
    for column in count_columns:
        small = int(is_small(frame[column]).sum())
        if small:
            problems.append(f"{name}: column {column} has {small} published count(s) from 1 to 10")
    if "age_band" in frame.columns:
        unknown = sorted(set(frame["age_band"].dropna().astype(str)) - set(AGE_BANDS) - set(MERGED_AGE_BANDS))
        if unknown:
            # The values are not quoted: a message may end up in logs and artifacts.
            problems.append(f"{name}: column age_band has {len(unknown)} value(s) outside the published bands")
    for column in [c for c in frame.columns if c == "zip3" or c.endswith("_zip3")]:
        values = frame[column].dropna().astype(str)
        bad = values[~values.str.fullmatch(r"\d{3}") | values.isin(RESTRICTED_ZIP3)]
        if len(bad):
            problems.append(f"{name}: column {column} has {len(bad)} value(s) that are not a published ZIP3")
    if spec is not None and spec.counts and SUPPRESSED_COLUMN in frame.columns:
        problems += check_complements(name, frame, spec)
    return problems


def check_complements(name: str, frame: pd.DataFrame, spec: MartSpec) -> list[str]:
    """Margin groups of more than one cell holding exactly one suppressed cell (derivable from the group's total)."""
    problems = []
    suppressed_sets = frame[SUPPRESSED_COLUMN].fillna("").str.split(",")
    for column in spec.counts:
        mask = np.array([column in names for names in suppressed_sets], dtype=bool)  # empty marts too
        known = pd.to_numeric(frame[column], errors="coerce").notna().to_numpy()
        for grouping in margin_groupings(spec):
            group_ids = _group_ids(frame, grouping)
            for group in np.unique(group_ids[mask]):
                members = group_ids == group
                if mask[members].sum() == 1 and (members & ~mask & known).any():
                    label = ", ".join(grouping) or "the grand total"
                    problems.append(f"{name}: a lone suppressed {column} cell can be derived from totals by {label}")
    return problems
