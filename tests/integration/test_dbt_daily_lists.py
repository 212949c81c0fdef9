"""Daily builds leave the lists (seeds) out while the warehouse holds them as the project has them, and load them
again on the next run once a list, its config or the warehouse's copy changed (flows/transform.py, ``dbt_build``;
docs/dbt.md, "Daily builds").

One module fixture loads a small network and runs the pipeline's build task (``dbt_build``, node tasks off) the
way the flow does: the initial build, then daily builds with the daily test scope. Each test reads dbt's
run_results.json of the build it looks at and the warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from flows.contracts.registry import load_registry
from generators.batch import NetworkSpec, generate_initial
from tests.integration.dbtkit import copy_project, load, query

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=23, patients=800, start_date=dt.date(2024, 1, 1))
INITIAL_END = dt.date(2024, 1, 31)
# What the flow passes for a daily batch: the scope instant (flows.transform.transform_vars).
DAILY_VARS = '{tests_loaded_after: "2024-02-01 00:00:00"}'


def _executed(target: Path) -> dict[str, list[str]]:
    """The unique ids dbt ran in the last command, by resource type (from run_results.json)."""
    results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))["results"]
    by_type: dict[str, list[str]] = {}
    for result in results:
        by_type.setdefault(result["unique_id"].split(".")[0], []).append(result["unique_id"])
    return by_type


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, Path, Path, Callable[[str | None], dict[str, list[str]]]]:
    """(project copy, warehouse, target, build): ``build(vars_yaml)`` runs the flow's build task and returns what
    it executed."""
    from flows.transform import dbt_build

    root = tmp_path_factory.mktemp("daily_lists")
    warehouse, target = root / "warehouse.duckdb", root / "target"
    batch = generate_initial(root / "landing", NETWORK, INITIAL_END, registry=load_registry())
    load(batch.path, warehouse)
    project = copy_project(root / "dbt_project")

    def run(vars_yaml: str | None) -> dict[str, list[str]]:
        dbt_build.fn(str(project), str(warehouse), str(target), str(root / "logs"), False, vars_yaml, False)
        return _executed(target)

    return project, warehouse, target, run


def _lists_as_built(build) -> None:
    """Build everything (the initial batch's build) unless the last build left the lists loaded and stamped."""
    from flows.transform import lists_loaded

    project, warehouse, target, run = build
    if not lists_loaded(project, target, warehouse):
        run(None)


def test_daily_builds_leave_unchanged_lists_out_and_keep_the_tests_from_models_to_lists(build) -> None:
    project, _, target, run = build
    first = run(None)  # the initial batch: no daily scope, everything is built
    seeds = {path.stem for path in (project / "seeds").rglob("*.csv")}
    assert {uid.split(".")[-1] for uid in first["seed"]} == seeds
    daily = run(DAILY_VARS)
    assert "seed" not in daily, daily.get("seed")
    assert len(daily["model"]) == len(first["model"])  # every model is still built
    # The unit tests passed on this very project in the first build: a daily build leaves them out.
    assert first.get("unit_test") and "unit_test" not in daily, daily.get("unit_test")
    # A relationships test from a model to a list (here staging admissions to admission_types) still runs; only the
    # tests on the lists alone are left out.
    # (The rule is one of staging admissions' `checks`: that test depends on the list and still runs.)
    nodes = json.loads((target / "manifest.json").read_text(encoding="utf-8"))["nodes"]
    to_lists = [uid for uid in daily["test"] if "stg_adt__admissions" in uid
                and "seed.hospital.admission_types" in nodes[uid]["depends_on"]["nodes"]]  # fmt: skip
    assert to_lists, "no test from a model to a list ran in the daily build"
    assert "admission_types" in nodes[to_lists[0]]["compiled_code"]
    assert len(daily["test"]) < len(first["test"])  # the tests on the lists alone


def test_a_changed_list_is_loaded_and_reaches_the_marts_on_the_next_daily_build(build) -> None:
    project, warehouse, _, run = build
    _lists_as_built(build)
    denied = query(warehouse, "select min(denial_reason_code) from marts.mart_denial_reasons "
                              "where denial_reason_description is not null")  # fmt: skip
    code = denied[0][0]
    assert code, "the network has no denied claim with a listed reason; the test needs one"
    path = project / "seeds" / "lists" / "denial_reasons.csv"
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(code + "\t"))
    fields = lines[index].split("\t")
    fields[-1] = "Corrected reason text for the list-change test"
    lines[index] = "\t".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        daily = run(DAILY_VARS)
        assert any(uid.endswith(".denial_reasons") for uid in daily.get("seed", [])), daily.get("seed")
        (text,) = query(
            warehouse, f"select denial_reason from lists.denial_reasons where denial_reason_code = '{code}'"
        )[0]
        assert text == "Corrected reason text for the list-change test"
        in_mart = query(
            warehouse,
            "select distinct denial_reason_description from marts.mart_denial_reasons "
            f"where denial_reason_code = '{code}'",
        )
        assert in_mart == [("Corrected reason text for the list-change test",)], in_mart
        assert "seed" not in run(DAILY_VARS)  # loaded once, then left out again
    finally:
        path.write_text(original, encoding="utf-8")
    assert "seed" in run(DAILY_VARS)  # reverting the list is a change too


def test_a_list_missing_from_the_warehouse_is_loaded_by_the_next_daily_build(build) -> None:
    _, warehouse, _, run = build
    _lists_as_built(build)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("drop table lists.specialties")
    daily = run(DAILY_VARS)
    assert "seed" in daily
    assert query(warehouse, "select count(*) from lists.specialties")[0][0] > 0
    assert "seed" not in run(DAILY_VARS)


def test_lists_are_judged_only_on_the_duckdb_target(build, monkeypatch) -> None:
    from flows.transform import lists_loaded

    project, warehouse, target, _ = build
    _lists_as_built(build)
    assert lists_loaded(project, target, warehouse)
    monkeypatch.setenv("DBT_TARGET", "snowflake")  # dbt would build elsewhere: the DuckDB file says nothing of it
    assert not lists_loaded(project, target, warehouse)


def test_a_changed_model_brings_the_unit_tests_back_into_the_next_daily_build(build) -> None:
    project, _, _, run = build
    _lists_as_built(build)
    assert "unit_test" not in run(DAILY_VARS)
    model = project / "models" / "integration" / "readmissions" / "int_readmissions_paired.sql"
    original = model.read_text(encoding="utf-8")
    model.write_text(original + "\n-- a change to the model\n", encoding="utf-8")
    try:
        changed = run(DAILY_VARS)
        assert any(uid.split(".")[-1].startswith("test_int_readmissions") for uid in changed.get("unit_test", []))
        assert "unit_test" not in run(DAILY_VARS)  # passed on the changed project: left out again
    finally:
        model.write_text(original, encoding="utf-8")
