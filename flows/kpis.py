"""Network-wide KPI totals read from the marts (aggregates only), for the run's summary artifact and the CLI.

Every figure is a sum or a ratio of sums over a KPI mart; no row-level value is read. A mart that does not exist
yet is left out, so the summary grows as the marts land.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class Kpi:
    """One headline figure: label, formatted value and the mart it comes from."""

    label: str
    value: str
    source: str


#: Figures resting on fewer events than this are shown as "<11" (the report's small-cell rule, as CMS's).
SMALL_CELL = 11

# (label, mart, figure, format, the count it rests on); each runs as one select over the mart.
_KPIS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Admissions", "mart_admissions_monthly", "sum(admission_count)", "count", "sum(admission_count)"),
    ("Discharges", "mart_admissions_monthly", "sum(discharge_count)", "count", "sum(discharge_count)"),
    (
        "Average length of stay (nights)",
        "mart_admissions_monthly",
        "sum(average_length_of_stay_nights * discharge_count) / nullif(sum(discharge_count), 0)",
        "decimal",
        "sum(discharge_count)",
    ),
    (
        "30-day readmission rate",
        "mart_readmissions_monthly",
        "sum(readmission_count) / nullif(sum(index_discharge_count), 0)",
        "rate",
        "sum(index_discharge_count)",
    ),
    ("Claims submitted", "mart_claim_denials", "sum(claim_count)", "count", "sum(claim_count)"),
    (
        "Initial denial rate",
        "mart_claim_denials",
        "sum(initially_denied_count) / nullif(sum(claim_count), 0)",
        "rate",
        "sum(claim_count)",
    ),
    ("Appointments", "mart_no_shows_by_weekday", "sum(appointment_count)", "count", "sum(appointment_count)"),
    (
        "No-show rate",
        "mart_no_shows_by_weekday",
        "sum(no_show_count) / nullif(sum(appointment_count), 0)",
        "rate",
        "sum(appointment_count)",
    ),
    ("Charges (USD)", "mart_revenue_by_department", "sum(charge_amount_usd)", "money", "sum(charge_count)"),
    (
        "Bed occupancy on the last day",
        "mart_bed_occupancy_daily",
        "sum(midnight_census) filter (where census_date = last_day) "
        "/ nullif(sum(staffed_beds) filter (where census_date = last_day), 0)",
        "rate",
        "sum(staffed_beds) filter (where census_date = last_day)",
    ),
)
_LAST_DAY = {"mart_bed_occupancy_daily": "(select max(census_date) as last_day from marts.mart_bed_occupancy_daily)"}


def _format(value: float | int | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "rate":
        return f"{float(value):.1%}"
    if kind == "money":
        return f"${float(value):,.0f}"
    return f"{float(value):,.2f}"


def read_kpis(warehouse: Path) -> list[Kpi]:
    """The headline KPIs of the marts that exist in ``warehouse`` (opened read-only and closed at once).

    A figure resting on 1 to 10 events (admissions, claims, appointments...) is shown as ``<11``.
    """
    if not warehouse.exists():
        return []
    kpis: list[Kpi] = []
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        marts = _mart_tables(connection)
        for label, mart, expression, kind, basis in _KPIS:
            if mart not in marts:
                continue
            sources = ", ".join(filter(None, (f"marts.{mart}", _LAST_DAY.get(mart))))
            sql = f"select {expression}, {basis} from {sources}"  # noqa: S608 (constant names and expressions)
            value, count = connection.execute(sql).fetchone()
            shown = f"<{SMALL_CELL}" if count is not None and 0 < count < SMALL_CELL else _format(value, kind)
            kpis.append(Kpi(label, shown, f"marts.{mart}"))
    return kpis


def mart_row_counts(warehouse: Path) -> dict[str, int]:
    """Rows per table of schema ``marts`` (a count is an aggregate: safe to show)."""
    if not warehouse.exists():
        return {}
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = sorted(_mart_tables(connection))
        return {t: connection.execute(f'select count(*) from marts."{t}"').fetchone()[0] for t in tables}  # noqa: S608


def data_period(warehouse: Path) -> tuple[str, str] | None:
    """First and last month of the admissions mart, as ISO dates, or None when it does not exist."""
    if not warehouse.exists():
        return None
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        if "mart_admissions_monthly" not in _mart_tables(connection):
            return None
        statement = "select min(month_date), max(month_date) from marts.mart_admissions_monthly"
        first, last = connection.execute(statement).fetchone()
    return (str(first), str(last)) if first is not None else None


def _mart_tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    rows = connection.execute("select table_name from duckdb_tables() where schema_name = 'marts'").fetchall()
    return {row[0] for row in rows}
