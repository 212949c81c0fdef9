"""deployments/automations.yaml without a server: it validates as Prefect's client and server models, its trigger
fires for exactly the runs it should (judged by the server's own trigger code on state-change events shaped as the
server emits them), and its message renders the gate's names, counts and the run's link, with the server's
template engine and filters. Applying it to a real server is in tests/integration/test_prefect_deployments.py."""

from __future__ import annotations

import ast
import datetime as dt
import re
import uuid

import pytest
from typer.testing import CliRunner

from deployments.automations import AutomationFileError, bind, read_automations
from deployments.serve import _import_flow, read_deployments
from flows.cli import app

pytestmark = pytest.mark.unit

GATE_MESSAGE = (
    "Flow run encountered an exception: QualityGateFailed: Quality gate failed: checkpoint 'raw' on batch "
    "daily-20240301, 2 of 207 expectations failed.\n"
    "  - suite raw__registration__patients, expect_column_values_to_not_be_null column date_of_birth: 12 failing "
    "rows (1.2%)\n"
    "  - suite raw__billing__claims, expect_column_values_to_be_between column amount_usd: 3 failing rows (0.3%)\n"
    "Data Docs: /srv/hospital/data_docs/index.html\n"
    "Fix the source data or the thresholds in expectations/ configuration, then re-run the batch."
)


@pytest.fixture(scope="module")
def automation():
    (spec,) = read_automations()
    return spec


def test_file_binds_every_notification_to_the_given_block_and_validates_on_client_and_server(automation):
    from prefect.server.events.schemas.automations import AutomationCore as ServerAutomation

    block = uuid.uuid4()
    (model,) = bind([automation], block)
    notify = [a for a in model.actions if a.type == "send-notification"]
    assert notify and all(a.block_document_id == block for a in notify)
    server = ServerAutomation.model_validate(model.model_dump(mode="json"))  # also checks the Jinja templates
    assert server.trigger.posture == "Reactive" and server.trigger.threshold == 1
    assert server.trigger.within == dt.timedelta(0)


def test_trigger_names_the_flows_of_the_deployments_file(automation):
    flows = {_import_flow(spec["entrypoint"]).name for spec in read_deployments()}
    (flow_match,) = [m for m in automation["trigger"]["match_related"] if m["prefect.resource.role"] == "flow"]
    assert set(flow_match["prefect.resource.name"]) == flows == {"hospital-pipeline", "hospital-backfill"}


def test_a_block_id_in_the_file_is_refused(tmp_path, automation):
    bad = tmp_path / "automations.yaml"
    action = {**automation["actions"][0], "block_document_id": str(uuid.uuid4())}
    import yaml

    bad.write_text(yaml.safe_dump({"automations": [{**automation, "actions": [action]}]}), encoding="utf-8")
    with pytest.raises(AutomationFileError, match="block ids differ per server"):
        read_automations(bad)


def _state_event(state: str, state_type: str, flow: str, *, deployment: bool = True, subflow: bool = False):
    """A flow run state-change event with the resource and related labels the server gives it."""
    from prefect.server.events.schemas.events import ReceivedEvent

    now = dt.datetime.now(dt.UTC)
    related = [{"prefect.resource.id": f"prefect.flow.{uuid.uuid4()}", "prefect.resource.role": "flow",
                "prefect.resource.name": flow},
               {"prefect.resource.id": "prefect.tag.hospital", "prefect.resource.role": "tag"}]  # fmt: skip
    if deployment:
        related.append({"prefect.resource.id": f"prefect.deployment.{uuid.uuid4()}", "prefect.resource.role":
                        "deployment", "prefect.resource.name": "daily-incremental"})  # fmt: skip
    if subflow:
        related.append({"prefect.resource.id": f"prefect.task-run.{uuid.uuid4()}", "prefect.resource.role": "task-run",
                        "prefect.resource.name": "pipeline-0"})  # fmt: skip
    return ReceivedEvent(
        occurred=now, received=now, id=uuid.uuid4(), event=f"prefect.flow-run.{state}",
        resource={"prefect.resource.id": f"prefect.flow-run.{uuid.uuid4()}", "prefect.resource.name": "daily-20240301",
                  "prefect.state-message": "", "prefect.state-name": state, "prefect.state-type": state_type},
        related=related,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("state", "state_type", "flow", "kwargs", "fires"),
    [
        ("Failed", "FAILED", "hospital-pipeline", {}, True),
        ("Crashed", "CRASHED", "hospital-pipeline", {}, True),
        ("TimedOut", "FAILED", "hospital-pipeline", {}, True),
        ("Failed", "FAILED", "hospital-backfill", {}, True),
        ("Completed", "COMPLETED", "hospital-pipeline", {}, False),
        ("Running", "RUNNING", "hospital-pipeline", {}, False),
        ("Cancelled", "CANCELLED", "hospital-pipeline", {}, False),
        ("Failed", "FAILED", "validate", {"deployment": False, "subflow": True}, False),  # a stage's subflow
        ("Failed", "FAILED", "hospital-pipeline", {"deployment": False, "subflow": True}, False),  # a backfill's day
        ("Failed", "FAILED", "hospital-pipeline", {"deployment": False}, False),  # `hospital run` on the console
        ("Failed", "FAILED", "someone-elses-flow", {}, False),
    ],
)
def test_trigger_fires_for_failed_or_crashed_deployment_runs_of_the_pipeline_only(
    automation, state, state_type, flow, kwargs, fires
):
    from prefect.server.events.schemas.automations import EventTrigger

    trigger = EventTrigger.model_validate(automation["trigger"])
    assert trigger.covers(_state_event(state, state_type, flow, **kwargs)) is fires


def _render(automation, ui_url: str | None, message: str = GATE_MESSAGE) -> tuple[str, str]:
    """Subject and body as the server's send-notification action renders them for a failed daily run."""
    from prefect.server.events.jinja_filters import all_filters
    from prefect.server.schemas.core import Flow
    from prefect.server.schemas.responses import DeploymentResponse, FlowRunResponse
    from prefect.server.schemas.states import State, StateType
    from prefect.server.utilities.user_templates import register_user_template_filters, render_user_template_sync
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    register_user_template_filters(all_filters)
    flow = Flow(id=uuid.UUID(int=1), name="hospital-pipeline")
    context = {
        "flow": flow,
        "deployment": DeploymentResponse(id=uuid.UUID(int=2), name="daily-incremental", flow_id=flow.id),
        "flow_run": FlowRunResponse(
            id=uuid.UUID(int=3),
            name="daily-20240301",
            flow_id=flow.id,
            state=State(type=StateType.FAILED, name="Failed", message=message),
        ),
    }
    (action,) = automation["actions"]
    with temporary_settings(updates={PREFECT_UI_URL: ui_url, PREFECT_API_URL: None}):
        return render_user_template_sync(action["subject"], context), render_user_template_sync(action["body"], context)


def test_message_names_batch_checkpoint_expectations_counts_data_docs_and_links_the_run(automation):
    subject, body = _render(automation, "https://prefect.hospital.example")
    assert subject == "Hospital pipeline Failed: hospital-pipeline/daily-incremental, run daily-20240301"
    assert body.startswith("hospital-pipeline/daily-incremental: run daily-20240301 ended Failed.\n\n")
    assert "QualityGateFailed: Quality gate failed: checkpoint 'raw' on batch daily-20240301, 2 of 207" in body
    assert "expect_column_values_to_not_be_null column date_of_birth: 12 failing rows (1.2%)" in body
    assert "Data Docs: /srv/hospital/data_docs/index.html" in body
    assert "Flow run encountered an exception" not in body
    assert body.endswith(f"Flow run: https://prefect.hospital.example/runs/flow-run/{uuid.UUID(int=3)}")


def test_message_without_a_ui_url_still_names_the_run(automation):
    _, body = _render(automation, None)
    assert body.endswith(f"Flow run: flow run id {uuid.UUID(int=3)}")


def test_apply_without_prefect_api_url_exits_2_and_says_what_to_set(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "")
    result = CliRunner().invoke(app, ["automations", "apply", "--block", "custom-webhook/hospital-alerts"])
    assert result.exit_code == 2
    assert "PREFECT_API_URL is not set" in result.output and "prefect cloud login" in result.output


def _quoted_errors(automation) -> set[str]:
    (action,) = automation["actions"]
    listed = re.search(r"set quoted = (\[.*?\])", action["body"], flags=re.DOTALL)
    return set(ast.literal_eval(listed.group(1)))


def _platform_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class the platform's packages define (imported, so subclasses are registered)."""
    import expectations.results  # noqa: F401  (safe_message imports the gates and reports lazily)
    import flows.pipeline  # the stages and the loader
    import flows.warehouse.snowflake_connect  # noqa: F401
    import reports  # noqa: F401

    found, stack = {}, [BaseException]
    while stack:
        for cls in stack.pop().__subclasses__():
            stack.append(cls)
            if cls.__module__.split(".")[0] in {"flows", "expectations", "reports", "generators", "deployments"}:
                found[cls.__name__] = cls
    return found


def test_the_message_quotes_exactly_the_errors_the_pipeline_calls_its_own(automation):
    from flows.errors import safe_message

    own = {name for name, cls in _platform_exceptions().items() if safe_message(cls.__new__(cls)) == ""}
    assert {"QualityGateFailed", "LoadError", "DbtStageError"} <= own  # the check sees the pipeline's own errors
    assert _quoted_errors(automation) == own


def test_a_foreign_error_is_named_by_its_type_only(automation):
    foreign = (
        "Flow run encountered an exception: ConversionException: Conversion Error: Could not convert string "
        "'Zzcanarywood' to DATE"
    )
    _, body = _render(automation, "https://prefect.hospital.example", message=foreign)
    assert "Zzcanarywood" not in body and "Could not convert" not in body
    assert "ConversionException (details in the run's logs)." in body


def test_a_crash_is_named_without_the_exception_it_carries(automation):
    crash = "Execution was interrupted by an unexpected exception: KeyError: 'Zzcanarywood'"
    _, body = _render(automation, None, message=crash)
    assert "Zzcanarywood" not in body
    assert "Execution was interrupted by an unexpected exception (details in the run's logs)." in body
