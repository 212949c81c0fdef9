"""The marts a report publishes: the KPI mart contract, and a read-only reader of them from the DuckDB warehouse.

Which tables are published is written once, in ``flows.contracts.marts``; each has a `MartSpec` here: its columns
(as the contract in docs/dbt.md names them), the key columns that span its margins (for complementary suppression),
which columns count people or events (suppressed from 1 to 10) and which columns are derived from those counts
(suppressed with them). Patient-level tables (`dim_patients`, `fct_*`) are not published on purpose: see
docs/reports.md, "What is published".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from flows.contracts.marts import MARTS_SCHEMA, PUBLISHED_MARTS
from flows.warehouse.resource import Session, WarehouseResource, as_resource

SCHEMA = MARTS_SCHEMA


@dataclass(frozen=True)
class MartSpec:
    """How one mart is read and de-identified for publication."""

    name: str
    #: Columns the report needs; the reader fails when one is missing.
    columns: tuple[str, ...]
    #: Key columns whose sub-totals (margins) a reader could compute: complementary suppression covers them.
    margins: tuple[str, ...] = ()
    #: Explicit groupings whose totals are known, overriding the proper subsets of ``margins`` (``()`` is the
    #: grand total).
    groupings: tuple[tuple[str, ...], ...] | None = None
    #: Columns counting people or events: values 1..10 are suppressed (CMS cell-size rule).
    counts: tuple[str, ...] = ()
    #: Derived column -> the counts it is computed from; suppressed whenever one of those is.
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Columns that may be present and are published when they are (contract additions).
    optional: tuple[str, ...] = ()
    #: Columns never published although the mart has them (not needed by any reader).
    dropped: tuple[str, ...] = ()
    #: Ordering of the published rows.
    order_by: tuple[str, ...] = ()
    is_dimension: bool = False
    # How the mart's cells add up to a coarser grain (reports/grains.py): a chart that must coarsen its grain
    # recomputes every value it draws from the summed counts, never from published (suppressed) values.
    #: The time column and its unit ("day" or "month"), when the mart has a time axis.
    time: tuple[str, str] | None = None
    #: Key column -> the columns that depend on it alone (names, sort orders), carried along when it is kept.
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Column -> (numerator, denominator): a ratio of two summed columns.
    ratios: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Column -> count: a mean recomputed as the average weighted by that count.
    weighted: dict[str, str] = field(default_factory=dict)
    #: Columns that are not counts of people but add up (amounts, bed-days).
    additive: tuple[str, ...] = ()
    #: Column -> (count, keys): the count's share of its total over the rows with the same values of ``keys``.
    shares: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def keys(self) -> tuple[str, ...]:
        """The key columns of one row (its grain)."""
        return self.margins


_LOS = ("average_length_of_stay_nights", "median_length_of_stay_nights")
_NO_SHOW = {"no_show_rate": ("appointment_count", "no_show_count")}
_NO_SHOW_RATIO = {"no_show_rate": ("no_show_count", "appointment_count")}

KPI_MARTS: tuple[MartSpec, ...] = (
    MartSpec(
        "mart_admissions_monthly",
        ("hospital_id", "month_date", "admission_count", "discharge_count", *_LOS),
        margins=("hospital_id", "month_date"),
        counts=("admission_count", "discharge_count"),
        derived=dict.fromkeys(_LOS, ("discharge_count",)),
        order_by=("month_date", "hospital_id"),
        time=("month_date", "month"),
        weighted={"average_length_of_stay_nights": "discharge_count"},
    ),
    MartSpec(
        "mart_claim_denials",
        (
            "payer_id",
            "submission_month",
            "claim_count",
            "initially_denied_count",
            "initial_denial_rate",
            "paid_on_appeal_count",
            "appeal_overturn_rate",
        ),
        margins=("payer_id", "submission_month"),
        counts=("claim_count", "initially_denied_count", "paid_on_appeal_count"),
        derived={
            "initial_denial_rate": ("claim_count", "initially_denied_count"),
            "appeal_overturn_rate": ("initially_denied_count", "paid_on_appeal_count"),
        },
        optional=("month_date",),
        order_by=("submission_month", "payer_id"),
        time=("submission_month", "month"),
        ratios={
            "initial_denial_rate": ("initially_denied_count", "claim_count"),
            "appeal_overturn_rate": ("paid_on_appeal_count", "initially_denied_count"),
        },
    ),
    MartSpec(
        "mart_denial_reasons",
        ("month_date", "denial_reason_code", "denial_reason_description", "denied_claim_count"),
        margins=("month_date", "denial_reason_code"),
        counts=("denied_claim_count",),
        order_by=("month_date", "denial_reason_code"),
        time=("month_date", "month"),
        labels={"denial_reason_code": ("denial_reason_description",)},
    ),
    MartSpec(
        "mart_patient_demographics",
        ("sex", "age_band", "patient_count"),
        margins=("sex", "age_band"),
        # No total of this table is published elsewhere: no tile and no other mart counts distinct patients. The
        # only totals a reader gets are the charts' own cells (per sex; wider age bands), and suppression links
        # those to this table cell by cell (deidentify.suppress_linked): a per-sex total is known exactly when the
        # sex chart publishes it. So a small "sex unknown" cell does not force a complement in every age band of
        # the other two sexes, and the charts never print the number of inpatients.
        groupings=(),
        counts=("patient_count",),
        order_by=("sex", "age_band"),
    ),
    MartSpec(
        "mart_length_of_stay_by_department",
        ("hospital_id", "department_id", "department_name", "discharge_count", *_LOS),
        margins=("hospital_id", "department_id"),
        counts=("discharge_count",),
        derived=dict.fromkeys(_LOS, ("discharge_count",)),
        order_by=("hospital_id", "department_id"),
        labels={"department_id": ("department_name",)},
        weighted={"average_length_of_stay_nights": "discharge_count"},
    ),
    MartSpec(
        "mart_length_of_stay_by_diagnosis_chapter",
        ("diagnosis_chapter_number", "diagnosis_chapter_title", "discharge_count", *_LOS),
        margins=("diagnosis_chapter_number",),
        counts=("discharge_count",),
        derived=dict.fromkeys(_LOS, ("discharge_count",)),
        order_by=("diagnosis_chapter_number",),
        labels={
            "diagnosis_chapter_number": ("diagnosis_chapter_title",),
            "diagnosis_chapter_title": ("diagnosis_chapter_number",),
        },
        weighted={"average_length_of_stay_nights": "discharge_count"},
    ),
    MartSpec(
        "mart_readmissions_monthly",
        ("month_date", "index_discharge_count", "readmission_count", "readmission_rate"),
        margins=("month_date",),
        counts=("index_discharge_count", "readmission_count"),
        derived={"readmission_rate": ("index_discharge_count", "readmission_count")},
        order_by=("month_date",),
        time=("month_date", "month"),
        ratios={"readmission_rate": ("readmission_count", "index_discharge_count")},
    ),
    MartSpec(
        "mart_bed_occupancy_daily",
        ("census_date", "hospital_id", "midnight_census", "staffed_beds", "occupancy_rate"),
        margins=("census_date", "hospital_id"),
        # Only the grand total (patient-days, behind the occupancy tile) is a known total: neither the network's
        # daily census nor a hospital's patient-days is published. Complements by day would hide every large
        # hospital's census on each day a small one is hidden, for no protection.
        groupings=((),),
        # The midnight census counts patients: it is a count whatever its name says.
        counts=("midnight_census",),
        derived={"occupancy_rate": ("midnight_census",)},
        order_by=("census_date", "hospital_id"),
        time=("census_date", "day"),
        # Summed over days, the census is patient-days and the staffed beds are bed-days.
        additive=("staffed_beds",),
        ratios={"occupancy_rate": ("midnight_census", "staffed_beds")},
    ),
    MartSpec(
        "mart_no_shows_by_weekday",
        ("iso_day_of_week", "weekday_name", "appointment_count", "no_show_count", "no_show_rate"),
        margins=("iso_day_of_week",),
        counts=("appointment_count", "no_show_count"),
        derived=_NO_SHOW,
        order_by=("iso_day_of_week",),
        labels={"iso_day_of_week": ("weekday_name",), "weekday_name": ("iso_day_of_week",)},
        ratios=_NO_SHOW_RATIO,
    ),
    MartSpec(
        "mart_no_shows_by_lead_time",
        ("lead_time_band", "lead_time_band_order", "appointment_count", "no_show_count", "no_show_rate"),
        margins=("lead_time_band",),
        counts=("appointment_count", "no_show_count"),
        derived=_NO_SHOW,
        order_by=("lead_time_band_order",),
        labels={"lead_time_band": ("lead_time_band_order",)},
        ratios=_NO_SHOW_RATIO,
    ),
    MartSpec(
        "mart_no_shows_by_department",
        ("hospital_id", "department_id", "department_name", "appointment_count", "no_show_count", "no_show_rate"),
        margins=("hospital_id", "department_id"),
        counts=("appointment_count", "no_show_count"),
        derived=_NO_SHOW,
        order_by=("hospital_id", "department_id"),
        labels={"department_id": ("department_name",)},
        ratios=_NO_SHOW_RATIO,
    ),
    MartSpec(
        "mart_payer_mix",
        ("month_date", "payer_type", "admission_count", "admission_share"),
        margins=("month_date", "payer_type"),
        counts=("admission_count",),
        derived={"admission_share": ("admission_count",)},
        order_by=("month_date", "payer_type"),
        time=("month_date", "month"),
        shares={"admission_share": ("admission_count", ("month_date",))},
    ),
    MartSpec(
        "mart_revenue_by_department",
        ("month_date", "hospital_id", "department_id", "department_name", "charge_count", "charge_amount_usd"),
        margins=("month_date", "hospital_id", "department_id"),
        counts=("charge_count",),
        derived={"charge_amount_usd": ("charge_count",)},
        order_by=("month_date", "hospital_id", "department_id"),
        time=("month_date", "month"),
        labels={"department_id": ("department_name",)},
        additive=("charge_amount_usd",),
    ),
    MartSpec(
        "mart_physician_activity",
        ("month_date", "npi", "specialty_name", "department_id", "admission_count", "appointment_count"),
        margins=("month_date", "npi"),
        counts=("admission_count", "appointment_count"),
        order_by=("month_date", "npi"),
        time=("month_date", "month"),
        labels={"npi": ("specialty_name", "department_id")},
    ),
)

# Non-patient dimensions the extracts need to label the marts. Facility and provider data, not PHI; the
# hospital's ZIP is still cut to three digits, as every published ZIP is.
DIMENSIONS: tuple[MartSpec, ...] = (
    MartSpec(
        "dim_hospitals",
        ("hospital_id", "hospital_name", "hospital_type", "state_code", "zip_code", "staffed_beds"),
        optional=("city", "opened_date"),
        order_by=("hospital_id",),
        is_dimension=True,
    ),
    MartSpec(
        "dim_departments",
        ("department_id", "hospital_id", "department_name", "service_line_name", "is_inpatient"),
        optional=("staffed_beds",),
        order_by=("department_id",),
        is_dimension=True,
    ),
    MartSpec(
        "dim_payers",
        ("payer_id", "payer_type"),
        optional=("payer_name",),
        # Plans per payer is not a count of people, but it is not needed either: left out so that every
        # published `_count` column is a suppressed count.
        dropped=("plan_count",),
        order_by=("payer_id",),
        is_dimension=True,
    ),
    MartSpec(
        "dim_physicians",
        ("npi", "specialty_name", "service_line_name", "department_id", "hospital_id", "is_active"),
        order_by=("npi",),
        is_dimension=True,
    ),
)


def _catalogue(specs: tuple[MartSpec, ...]) -> dict[str, MartSpec]:
    """One spec per published mart of ``flows.contracts.marts``, in its order; a spec too many or too few is an
    error naming the mart (the list of marts is written there only)."""
    by_name = {spec.name: spec for spec in specs}
    missing = [name for name in PUBLISHED_MARTS if name not in by_name]
    extra = [name for name in by_name if name not in PUBLISHED_MARTS]
    wrong = [name for name, mart in PUBLISHED_MARTS.items()
             if name in by_name and by_name[name].is_dimension != (mart.kind == "dimension")]  # fmt: skip
    if missing or extra or wrong:
        raise ValueError(
            f"reports/marts.py disagrees with flows/contracts/marts.py: no MartSpec for {missing}, specs of marts not "
            f"published {extra}, is_dimension unlike the contract's kind {wrong}"
        )
    return {name: by_name[name] for name in PUBLISHED_MARTS}


#: The publication spec of every published mart (``flows.contracts.marts.PUBLISHED_MARTS``), in that order.
CATALOGUE: dict[str, MartSpec] = _catalogue((*KPI_MARTS, *DIMENSIONS))


class MartContractError(RuntimeError):
    """A mart exists but lacks a column of the contract."""


@dataclass(frozen=True)
class MartFrames:
    """The marts read from the warehouse, and the catalogue's marts the warehouse does not have (yet)."""

    frames: dict[str, pd.DataFrame]
    missing: tuple[str, ...]
    loaded_at: pd.Timestamp | None


def read_mart(session: Session, spec: MartSpec) -> pd.DataFrame:
    """One mart's contract columns (plus optional ones it has), ordered; never a column outside the contract."""
    present = list(session.columns(SCHEMA, spec.name).get((SCHEMA, spec.name), {}))
    missing = [column for column in spec.columns if column not in present]
    if missing:
        raise MartContractError(
            f"Table {SCHEMA}.{spec.name} lacks column(s) {', '.join(missing)} of the KPI mart contract "
            "(docs/brief common.md, reports/marts.py): rebuild the mart or update the contract in reports/marts.py."
        )
    columns = [*spec.columns, *(c for c in spec.optional if c in present)]
    order = ", ".join(spec.order_by) or "1"
    frame = session.frame(f"select {', '.join(columns)} from {SCHEMA}.{spec.name} order by {order}")  # noqa: S608
    return _typed(frame, spec)


def _typed(frame: pd.DataFrame, spec: MartSpec) -> pd.DataFrame:
    """Snowflake hands NUMBER columns over as Decimal objects and dates as date objects: give them the dtypes
    DuckDB's reader gives (float64, datetime64), so the report is computed the same way on both warehouses."""
    import datetime as dt
    import decimal

    for column in frame.columns:
        values = frame[column].dropna()
        if frame[column].dtype != object or values.empty:
            continue
        if isinstance(values.iloc[0], decimal.Decimal):
            frame[column] = frame[column].astype("float64")
        elif isinstance(values.iloc[0], dt.date) and not isinstance(values.iloc[0], dt.datetime):
            frame[column] = pd.to_datetime(frame[column])
    return frame


def read_marts(warehouse: WarehouseResource | Path, specs: Iterable[MartSpec] = CATALOGUE.values()) -> MartFrames:
    """Read every catalogued mart the warehouse has (DuckDB read-only); the session is closed before returning.

    The load time of the newest raw data (``max(_loaded_at)`` of ``fct_admissions``, an aggregate) is read as the
    report's data freshness when that fact exists.
    """
    resource = as_resource(warehouse)
    if not resource.exists():
        raise FileNotFoundError(f"Warehouse {resource.label} does not exist: load and build it before publishing.")
    frames: dict[str, pd.DataFrame] = {}
    missing: list[str] = []
    with resource.session() as session:
        available = {table for _, table in session.tables(SCHEMA)}
        for spec in specs:
            if spec.name in available:
                frames[spec.name] = read_mart(session, spec)
            else:
                missing.append(spec.name)
        loaded_at = None
        if "fct_admissions" in available:
            (loaded_at,) = session.one(f"select max(_loaded_at) from {SCHEMA}.fct_admissions")  # noqa: S608
    return MartFrames(frames, tuple(missing), None if loaded_at is None else pd.Timestamp(loaded_at))
