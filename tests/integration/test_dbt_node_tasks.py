"""dbt nodes as Prefect tasks (flows/dbt_runner.py, ``NodeTaskReporter``) on a real Prefect server.

One module fixture generates a small network, loads it, and runs the pipeline's dbt stage (the ``transform``
flow, node tasks on, as the deployments run it) on a temporary Prefect server; then a batch with a hospital of a
type no list knows is loaded and the stage runs again, so one test warns. Every assertion reads the API.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb
import pytest

from flows.contracts.registry import load_registry
from generators.batch import NetworkSpec, generate_initial
from tests.integration.dbtkit import copy_project, load

pytestmark = pytest.mark.integration

NETWORK = NetworkSpec(seed=5, patients=1000, start_date=dt.date(2024, 1, 1))
INITIAL_END = dt.date(2024, 1, 31)


@dataclass
class NodeTasks:
    """The two stage runs' flow run ids and what the API holds of their task runs and logs."""

    manifest: dict
    clean: list
    warned: list
    logs: dict[str, list[str]]
    parent_ids: set
    while_starting: list = field(default_factory=list)


def _task_runs(client, flow_run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs, offset = [], 0
    while page := client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200, offset=offset
    ):
        runs += page
        offset += len(page)
    return runs


@pytest.fixture(scope="module")
def node_tasks(tmp_path_factory) -> Iterator[NodeTasks]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId

    from flows.server import temporary_server
    from flows.transform import transform

    root = tmp_path_factory.mktemp("node_tasks")
    warehouse = root / "warehouse.duckdb"
    batch = generate_initial(root / "landing", NETWORK, INITIAL_END, registry=load_registry())
    load(batch.path, warehouse)
    target = root / "target"
    project = str(copy_project(root / "dbt_project"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_HOME", str(root / "prefect"))
        patch.delenv("PREFECT_API_URL", raising=False)
        waited: list = []

        def while_starting() -> None:  # what `hospital run` does in this wait: import the stages' modules
            waited.append(os.environ.get("PREFECT_API_URL"))
            raise RuntimeError("an error here is ignored: the server still starts")

        with temporary_server(root / "server.log", while_starting=while_starting):
            clean = transform(project, str(warehouse), str(target), str(root / "logs"), False, True, None,
                              True, return_state=True)  # fmt: skip
            assert clean.is_completed(), clean
            with duckdb.connect(str(warehouse)) as connection:  # a hospital type outside the accepted values
                connection.execute(
                    "insert into raw.facilities__hospitals select * replace ('day_spa_xq' as hospital_type, "
                    "now() as _loaded_at) from raw.facilities__hospitals limit 1"
                )
            warned = transform(project, str(warehouse), str(target), str(root / "logs"), False, False, None,
                               True, return_state=True)  # fmt: skip
            with get_client(sync_client=True) as client:
                clean_runs = _task_runs(client, clean.state_details.flow_run_id)
                warned_runs = _task_runs(client, warned.state_details.flow_run_id)
                logs = {}
                for run in clean_runs:
                    if run.name in ("model fct_admissions", "dbt-build"):
                        records = client.read_logs(LogFilter(task_run_id=LogFilterTaskRunId(any_=[run.id])))
                        logs[run.name] = [record.message for record in records]
                parent_ids = {run.id for run in clean_runs if run.name in ("dbt-build", "dbt-snapshot")}
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    yield NodeTasks(manifest, clean_runs, warned_runs, logs, parent_ids, waited)


def _names(manifest: dict, kind: str) -> set[str]:
    return {f"{kind} {node['name']}" for node in manifest["nodes"].values() if node["resource_type"] == kind}


def test_every_model_seed_and_snapshot_is_a_task_run_and_tests_are_not(node_tasks: NodeTasks) -> None:
    names = [run.name for run in node_tasks.clean]
    expected = {*_names(node_tasks.manifest, "model"), *_names(node_tasks.manifest, "seed"),
                *_names(node_tasks.manifest, "snapshot")}  # fmt: skip
    assert len(expected) == 54
    assert set(names) == expected | {"dbt-build", "dbt-snapshot"}
    assert len(names) == len(set(names))  # one task run each
    assert not any(name.startswith(("test ", "unit_test ")) for name in names)


def test_each_task_run_completed_with_its_tests_counted(node_tasks: NodeTasks) -> None:
    manifest = node_tasks.manifest
    attached: dict[str, int] = {}
    for node in [*manifest["nodes"].values(), *manifest.get("unit_tests", {}).values()]:
        if node["resource_type"] in ("test", "unit_test"):
            parent = node.get("attached_node") or next(d for d in node["depends_on"]["nodes"] if d.startswith("model."))
            attached[parent] = attached.get(parent, 0) + 1
    by_name = {run.name: run for run in node_tasks.clean}
    for unique_id, count in attached.items():
        kind, name = unique_id.split(".")[0], unique_id.split(".")[-1]
        run = by_name[f"{kind} {name}"]
        assert run.state.is_completed(), (run.name, run.state)
        assert run.state.message.endswith(f"{count} tests: {count} passed"), (run.name, run.state.message)
        assert run.start_time is not None and run.end_time is not None


def test_node_task_runs_sit_under_the_dbt_task_with_their_upstream_models_as_inputs(node_tasks: NodeTasks) -> None:
    by_name = {run.name: run for run in node_tasks.clean}
    ids = {run.id: run.name for run in node_tasks.clean}
    fact = by_name["model fct_admissions"]
    assert {parent.id for parent in fact.task_inputs["__parents__"]} <= node_tasks.parent_ids
    upstream = {ids[item.id] for item in fact.task_inputs["wait_for"]}
    assert "model int_encounters_unioned" in upstream or "model stg_adt__admissions" in upstream, upstream


def test_dbts_lines_reach_the_models_task_run_and_the_summary_the_dbt_task(node_tasks: NodeTasks) -> None:
    assert any("OK created" in line and "fct_admissions" in line for line in node_tasks.logs["model fct_admissions"])
    assert any(line.startswith("Done. PASS=") for line in node_tasks.logs["dbt-build"])


def test_a_warning_test_is_named_on_its_models_task_run(node_tasks: NodeTasks) -> None:
    by_name = {run.name: run for run in node_tasks.warned}
    hospitals = by_name["model stg_facilities__hospitals"]
    message = hospitals.state.message
    # The model's checks test, with the failing rule and its row count (macros/tests/checks.sql).
    assert "checks_stg_facilities__hospitals (1 rows: accepted_values(hospital_type) 1 rows)" in message, message
    assert ("1 warned" in message and hospitals.state.is_completed()) or (
        "1 failed" in message and hospitals.state.is_failed()
    ), (hospitals.state, message)
    assert "day_spa_xq" not in message  # names and counts, never a value


def test_a_temporary_server_runs_the_commands_work_while_it_starts(node_tasks: NodeTasks) -> None:
    # Called once, before the API is pointed at the server (it was not answering yet); its error did not stop it.
    assert node_tasks.while_starting == [None]
