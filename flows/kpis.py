"""Row counts of the marts, for the run's summary (a count is an aggregate: safe to show).

The headline KPIs are computed once, by the report (``reports/kpis.py``): the run's summary artifact shows the
figures the published report's tiles show (``publish`` returns them), so the two cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

from flows.warehouse.resource import WarehouseResource, as_resource


def mart_row_counts(warehouse: WarehouseResource | Path) -> dict[str, int]:
    """Rows per table of schema ``marts`` (empty when the warehouse does not exist yet)."""
    resource = as_resource(warehouse)
    if not resource.exists():
        return {}
    with resource.session() as session:
        tables = sorted(table for _, table in session.tables("marts"))
        return {t: session.one(f"select count(*) from marts.{t}")[0] for t in tables}  # noqa: S608
