"""The KPI marts (mart_claim_denials, mart_admissions_monthly) against the same KPIs computed from the landing files.

One module fixture generates a small network, loads it into a fresh warehouse and builds lists, staging and
everything downstream once. The expectations are derived in Python from the landed files, independently of dbt:
claims from the JSON lines' status histories (UTC), admissions from the pipe-delimited ADT files in the
registry's local time zone.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dbt.cli.main import dbtRunnerResult

from flows.registry import load_registry
from generators.batch import NetworkSpec, generate_initial
from tests.integration.dbtkit import copy_project, invoke, load, query

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=9, patients=2500, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 3, 31)
SALT = "kpi-test-salt-" + "0123456789abcdef" * 2
# The surrogate salt and the calendar read no other model, so `staging+` alone leaves them out: named here.
SELECT = ["--select", "lists", "staging+", "int_surrogate_salt_generated", "dim_dates", "--indirect-selection",
          "cautious"]  # fmt: skip
VARS = ["--vars", f"{{defect_severity: error, surrogate_salt: {SALT}}}"]
KPI_MARTS = {"fct_claims", "mart_claim_denials", "mart_admissions_monthly"}


@dataclass
class Built:
    """The landed batch, the warehouse built from it, and the build's result."""

    landing: Path
    warehouse: Path
    result: dbtRunnerResult


@pytest.fixture(scope="module")
def built_kpis(tmp_path_factory) -> Iterator[Built]:
    """Generate the initial batch, load it and run one dbt build of lists, staging and everything downstream."""
    root = tmp_path_factory.mktemp("kpis")
    project = copy_project(root / "dbt_project")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    batch = generate_initial(landing, NETWORK, END, registry=load_registry())
    load(batch.path, warehouse)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOSPITAL_WAREHOUSE_PATH", str(warehouse))
        patch.setenv("DBT_TARGET", "duckdb")
        result = invoke(project, root, "build", *SELECT, *VARS)
    yield Built(landing, warehouse, result)


def latest_versions(records: list[dict], key: str) -> list[dict]:
    """The last version of each record (by updated_at), records without a key left out, as staging does."""
    latest: dict[str, dict] = {}
    for record in records:
        if not record.get(key):
            continue
        if record[key] not in latest or record["updated_at"] >= latest[record[key]]["updated_at"]:
            latest[record[key]] = record
    return list(latest.values())


def landed_claims(landing: Path) -> list[dict]:
    records = []
    for path in sorted(landing.glob("*/claims_*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle if line.strip())
    for record in records:
        record["updated_at"] = dt.datetime.fromisoformat(record["updated_at"])
    return latest_versions(records, "claim_id")


def landed_admissions(landing: Path) -> list[dict]:
    registry_source = load_registry().sources["adt__admissions"]
    records = []
    for path in sorted(landing.glob("*/admissions_*.txt")):
        with path.open(newline="", encoding="utf-8") as handle:
            records.extend(csv.DictReader(handle, delimiter=registry_source.delimiter))
    return latest_versions(records, "admission_id")


def expected_denials(landing: Path) -> dict[tuple[str, dt.date], tuple[int, int, float]]:
    """(payer, UTC month of submission) -> claims, initially denied, denial rate."""
    counts: dict[tuple[str, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    for claim in landed_claims(landing):
        history = claim["status_history"]
        if isinstance(history, str):
            history = json.loads(history)
        submitted = dt.datetime.fromisoformat(history[0]["at"]).astimezone(dt.UTC)
        key = (claim["payer_id"], submitted.date().replace(day=1))
        counts[key][0] += 1
        # Initial denial: the payer's first answer to the submission (the second event) is a denial.
        counts[key][1] += len(history) > 1 and history[1]["status"].lower() == "denied"
    return {key: (claims, denied, denied / claims) for key, (claims, denied) in counts.items()}


def expected_admissions(landing: Path) -> dict[tuple[str, dt.date], tuple[int, int, float | None]]:
    """(hospital, local month) -> admissions (by admission month), discharges and mean nights (by discharge month)."""
    admitted: dict[tuple[str, dt.date], int] = defaultdict(int)
    nights: dict[tuple[str, dt.date], list[int]] = defaultdict(list)
    for stay in landed_admissions(landing):
        # Timestamps are written in local time without an offset: their dates are the local calendar dates.
        admit = dt.datetime.fromisoformat(stay["admit_at"]).date()
        admitted[(stay["hospital_id"], admit.replace(day=1))] += 1
        if stay["discharge_at"]:
            discharge = dt.datetime.fromisoformat(stay["discharge_at"]).date()
            nights[(stay["hospital_id"], discharge.replace(day=1))].append((discharge - admit).days)
    return {
        key: (admitted.get(key, 0), len(nights.get(key, [])), statistics.fmean(nights[key]) if key in nights else None)
        for key in admitted.keys() | nights.keys()
    }


def test_every_node_of_the_build_passes(built_kpis) -> None:
    assert built_kpis.result.success, built_kpis.result.exception
    statuses = {item.node.name: str(item.status) for item in built_kpis.result.result.results}
    assert {name: status for name, status in statuses.items() if status not in {"success", "pass"}} == {}
    assert set(statuses) >= KPI_MARTS


def test_denial_rate_per_payer_and_month_matches_the_landed_histories(built_kpis) -> None:
    rows = query(
        built_kpis.warehouse,
        "select payer_id, submission_month, claim_count, initially_denied_count, initial_denial_rate "
        "from marts.mart_claim_denials",
    )
    actual = {(payer, month): (claims, denied, rate) for payer, month, claims, denied, rate in rows}
    expected = expected_denials(built_kpis.landing)
    assert expected, "the generated network has no claims"
    assert actual.keys() == expected.keys()
    for key, (claims, denied, rate) in expected.items():
        assert actual[key][:2] == (claims, denied), key
        assert actual[key][2] == pytest.approx(rate), key


def test_monthly_admissions_and_average_stay_match_the_landed_adt_files(built_kpis) -> None:
    rows = query(
        built_kpis.warehouse,
        "select hospital_id, month_date, admission_count, discharge_count, average_length_of_stay_nights "
        "from marts.mart_admissions_monthly",
    )
    actual = {(hospital, month): (admissions, discharges, los) for hospital, month, admissions, discharges, los in rows}
    expected = expected_admissions(built_kpis.landing)
    assert expected, "the generated network has no admissions"
    assert actual.keys() == expected.keys()
    for key, (admissions, discharges, los) in expected.items():
        assert actual[key][:2] == (admissions, discharges), key
        assert actual[key][2] == pytest.approx(los), key


def test_median_stay_lies_within_the_months_stays(built_kpis) -> None:
    rows = query(
        built_kpis.warehouse,
        "select median_length_of_stay_nights, average_length_of_stay_nights, discharge_count "
        "from marts.mart_admissions_monthly where discharge_count > 0",
    )
    assert rows
    assert all(median is not None and median >= 0 for median, _, _ in rows)
