"""The published marts: the one list of the tables in the warehouse's ``marts`` schema that the platform publishes.

dbt builds them (``dbt_project/models/marts/kpi/<name>.sql`` for KPI marts, ``models/marts/core/`` for
dimensions), the marts quality gate fails naming any KPI mart that is missing (``expectations/marts_suites.py``),
and the report reads, de-identifies and publishes each of them (``reports/marts.py``'s ``CATALOGUE`` holds one
publication spec per name here). Adding a mart means adding it here; ``tests/unit/test_single_facts.py`` then fails
until dbt has its model and the report its spec, and fails for any of them that is not listed here.

Patient-level tables (``dim_patients``, ``fct_*``) are not published, on purpose: docs/reports.md, "What is
published".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The warehouse schema dbt builds the marts in.
MARTS_SCHEMA = "marts"


@dataclass(frozen=True)
class PublishedMart:
    """One published table of the marts schema."""

    name: str
    #: ``kpi``: an aggregate the charts and KPIs read (``mart_*``); ``dimension``: a de-identified reference
    #: table published beside them (``dim_*``).
    kind: Literal["kpi", "dimension"]


KPI_MARTS: tuple[PublishedMart, ...] = tuple(
    PublishedMart(name, "kpi")
    for name in (
        "mart_admissions_monthly",
        "mart_claim_denials",
        "mart_denial_reasons",
        "mart_patient_demographics",
        "mart_length_of_stay_by_department",
        "mart_length_of_stay_by_diagnosis_chapter",
        "mart_readmissions_monthly",
        "mart_bed_occupancy_daily",
        "mart_no_shows_by_weekday",
        "mart_no_shows_by_lead_time",
        "mart_no_shows_by_department",
        "mart_payer_mix",
        "mart_revenue_by_department",
        "mart_physician_activity",
    )
)

DIMENSIONS: tuple[PublishedMart, ...] = tuple(
    PublishedMart(name, "dimension") for name in ("dim_hospitals", "dim_departments", "dim_payers", "dim_physicians")
)

#: Every published mart by name, KPI marts first, in publication order.
PUBLISHED_MARTS: dict[str, PublishedMart] = {mart.name: mart for mart in (*KPI_MARTS, *DIMENSIONS)}


def kpi_mart_names() -> list[str]:
    """The KPI marts' names, in publication order."""
    return [mart.name for mart in KPI_MARTS]
