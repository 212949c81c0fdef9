"""Prefect artifacts a run leaves behind: checkpoint results, the KPI summary, links to the docs and the report.

The renderers are pure functions (tested on their own); ``publish_*`` hand their output to Prefect. Artifacts hold
names, counts, rates of whole-network aggregates and paths: never a row-level value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CHECKPOINT_KEY = "hospital-checkpoint-{checkpoint}"
SUMMARY_KEY = "hospital-run-summary"
LINK_KEYS = {"report": "hospital-report", "data_docs": "hospital-data-docs", "dbt_docs": "hospital-dbt-docs"}


def checkpoint_rows(outcome: Any) -> list[dict[str, Any]]:
    """One table row per expectation of a ``CheckpointOutcome``: suite, expectation, column, result, counts."""
    return [
        {
            "checkpoint": outcome.checkpoint,
            "suite": o.suite,
            "expectation": o.expectation,
            "column": o.column or "",
            "result": "passed" if o.success else "FAILED",
            "failing_rows": "" if o.unexpected_count is None else o.unexpected_count,
            "failing_percent": "" if o.unexpected_percent is None else round(o.unexpected_percent, 3),
            "note": o.note or "",
        }
        for o in sorted(outcome.outcomes, key=lambda o: (o.success, o.suite, o.expectation, o.column or ""))
    ]


def render_summary(
    *,
    batch_id: str,
    status: str,
    stage_rows: Iterable[tuple[str, str, str]],
    checkpoints: Iterable[Any],
    kpis: Iterable[Mapping[str, str]],
    links: Mapping[str, str | None],
    message: str | None = None,
) -> str:
    """The run's markdown summary: outcome, stages with their counts, checkpoints, headline KPIs and links.

    ``kpis`` are the published report's tiles (``{label, value, mart}``, from ``reports.publish``)."""
    lines = [f"# Hospital pipeline: batch `{batch_id}` {status}", ""]
    if message:
        lines += ["```", message, "```", ""]
    lines += ["## Stages", "", "| stage | result | seconds |", "|---|---|---|"]
    lines += [f"| {stage} | {result} | {seconds} |" for stage, result, seconds in stage_rows]
    checkpoint_list = list(checkpoints)
    if checkpoint_list:
        lines += ["", "## Quality gates", "", "| checkpoint | result | expectations | failed |", "|---|---|---|---|"]
        for outcome in checkpoint_list:
            result = "passed" if outcome.success else "**FAILED**"
            lines.append(f"| {outcome.checkpoint} | {result} | {outcome.evaluated} | {len(outcome.failures)} |")
    kpi_list = list(kpis)
    if kpi_list:
        lines += ["", "## Headline KPIs (the report's tiles: whole network, whole period)", "",
                  "| KPI | value | mart |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {k['label']} | {k['value']} | `marts.{k['mart']}` |" for k in kpi_list]
    shown = {name: url for name, url in links.items() if url}
    if shown:
        lines += ["", "## Links", ""]
        lines += [f"- [{name}]({url})" for name, url in shown.items()]
    return "\n".join(lines) + "\n"


def publish_checkpoint_table(outcome: Any) -> None:
    """A table artifact with the checkpoint's expectations (key ``hospital-checkpoint-<name>``)."""
    from prefect.artifacts import create_table_artifact

    failed = len(outcome.failures)
    create_table_artifact(
        table=checkpoint_rows(outcome) or [{"checkpoint": outcome.checkpoint, "result": "no expectations"}],
        key=CHECKPOINT_KEY.format(checkpoint=outcome.checkpoint),
        description=f"Checkpoint {outcome.checkpoint}: {outcome.evaluated - failed} of {outcome.evaluated} passed",
    )


def publish_summary(markdown: str, description: str) -> None:
    """The run's markdown summary artifact (key ``hospital-run-summary``)."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(markdown=markdown, key=SUMMARY_KEY, description=description)


def publish_links(links: Mapping[str, str | None]) -> None:
    """One link artifact per existing target: report, Data Docs, dbt docs."""
    from prefect.artifacts import create_link_artifact

    titles = {"report": "Published report", "data_docs": "Data Docs (quality gates)", "dbt_docs": "dbt docs"}
    for name, url in links.items():
        if url and name in LINK_KEYS:
            create_link_artifact(link=url, link_text=titles[name], key=LINK_KEYS[name], description=titles[name])
