"""What a quality gate reports: the contract between the checkpoints, the pipeline flow and the published report.

These objects only ever hold names, counts and percentages: never a data value. They are safe to log, to put in a
Prefect artifact and to print in the HTML report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result: which suite, which expectation, on which column, and how many rows failed."""

    suite: str
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    #: A short, value-free note (e.g. "threshold 0.5%"), never a data value.
    note: str | None = None

    def describe(self) -> str:
        """One line naming the suite, expectation, column and failing count."""
        column = f" column {self.column}" if self.column else ""
        if self.unexpected_count is None:
            count = ""
        else:
            percent = "" if self.unexpected_percent is None else f" ({self.unexpected_percent:.3g}%)"
            count = f": {self.unexpected_count:,} failing rows{percent}"
        note = f" [{self.note}]" if self.note else ""
        return f"suite {self.suite}, {self.expectation}{column}{count}{note}"


@dataclass(frozen=True)
class CheckpointOutcome:
    """The result of one checkpoint run (``raw`` or ``marts``)."""

    checkpoint: str
    success: bool
    run_id: str
    batch_id: str | None
    data_docs_index: Path | None
    outcomes: tuple[ExpectationOutcome, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.success)

    @property
    def evaluated(self) -> int:
        return len(self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary (paths as strings)."""
        data = asdict(self)
        data["data_docs_index"] = None if self.data_docs_index is None else str(self.data_docs_index)
        data["outcomes"] = [asdict(o) for o in self.outcomes]
        return data


class QualityGateFailed(RuntimeError):  # noqa: N818 - the name the pipeline and its users know
    """A checkpoint failed: the run stops here, and nothing after the gate runs.

    The message names the checkpoint, and for each failed expectation its suite, expectation, column and failing
    count, and where the Data Docs page is. It never quotes a data value.
    """

    def __init__(self, outcome: CheckpointOutcome, max_listed: int = 10) -> None:
        self.outcome = outcome
        failures = outcome.failures
        lines = [
            f"Quality gate failed: checkpoint '{outcome.checkpoint}'"
            + (f" on batch {outcome.batch_id}" if outcome.batch_id else "")
            + f", {len(failures)} of {outcome.evaluated} expectations failed."
        ]
        lines += [f"  - {failure.describe()}" for failure in failures[:max_listed]]
        if len(failures) > max_listed:
            lines.append(f"  - ... and {len(failures) - max_listed} more")
        if outcome.data_docs_index is not None:
            lines.append(f"Data Docs: {outcome.data_docs_index}")
        lines.append("Fix the source data or the thresholds in expectations/ configuration, then re-run the batch.")
        super().__init__("\n".join(lines))
