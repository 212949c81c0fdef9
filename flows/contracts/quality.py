"""What a quality gate reports: the contract between the checkpoints (expectations/), the pipeline flow and the
published report (reports/), defined here once so that neither imports the other.

These objects only ever hold names, counts and percentages: never a data value. They are safe to log, to put in a
Prefect artifact and to print in the HTML report.
"""

from __future__ import annotations

from collections.abc import Callable
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
class ValidationPage:
    """One suite's validation page of a checkpoint run in Data Docs, and how that validation went."""

    suite: str
    success: bool
    path: Path
    evaluated: int = 0
    failed: int = 0


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
    #: When GX ran the checkpoint (ISO 8601, UTC); with ``run_id`` it names the run (see ``run_key``).
    run_time: str | None = None
    #: Each suite's validation page of this run, in suite order.
    validation_pages: tuple[ValidationPage, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.success)

    @property
    def evaluated(self) -> int:
        return len(self.outcomes)

    @property
    def failing_pages(self) -> tuple[ValidationPage, ...]:
        """The validation pages of the suites that failed."""
        return tuple(page for page in self.validation_pages if not page.success)

    @property
    def failing_page(self) -> Path | None:
        """The first failing suite's validation page: where to look first when the gate failed."""
        return self.failing_pages[0].path if self.failing_pages else None

    @property
    def run_key(self) -> tuple[str, str | None]:
        """(run name, run time): what ``expectations.datadocs.prune(keep_runs=...)`` keeps."""
        return self.run_id, self.run_time

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary (paths as strings)."""
        data = asdict(self)
        data["data_docs_index"] = None if self.data_docs_index is None else str(self.data_docs_index)
        data["outcomes"] = [asdict(o) for o in self.outcomes]
        data["validation_pages"] = [{**asdict(p), "path": str(p.path)} for p in self.validation_pages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointOutcome:
        """The outcome ``to_dict()`` gave (missing newer fields take their defaults)."""
        return cls(
            checkpoint=data["checkpoint"],
            success=data["success"],
            run_id=data["run_id"],
            batch_id=data.get("batch_id"),
            data_docs_index=Path(data["data_docs_index"]) if data.get("data_docs_index") else None,
            outcomes=tuple(ExpectationOutcome(**o) for o in data.get("outcomes", [])),
            seconds=data.get("seconds", 0.0),
            run_time=data.get("run_time"),
            validation_pages=tuple(
                ValidationPage(**{**p, "path": Path(p["path"])}) for p in data.get("validation_pages", [])
            ),
        )


class QualityGateFailed(RuntimeError):  # noqa: N818 - the name the pipeline and its users know
    """A checkpoint failed: the run stops here, and nothing after the gate runs.

    The message names the checkpoint, and for each failed expectation its suite, expectation, column and failing
    count, then the failing suites' own validation pages and the Data Docs index (``file://`` URLs: they open
    offline), and with ``http_link`` the first failing page's http address. It never quotes a data value.
    """

    def __init__(
        self, outcome: CheckpointOutcome, max_listed: int = 10, http_link: Callable[[Path], str | None] | None = None
    ) -> None:
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
        pages = outcome.failing_pages
        if pages:
            lines.append("Failing validation pages:" if len(pages) > 1 else "Failing validation page:")
            lines += [f"  - {page.suite} ({page.failed} of {page.evaluated} failed): {_url(page.path)}"
                      for page in pages[:max_listed]]  # fmt: skip
            if len(pages) > max_listed:
                lines.append(f"  - ... and {len(pages) - max_listed} more, listed in the index")
        if outcome.data_docs_index is not None:
            lines.append(f"Data Docs index: {_url(outcome.data_docs_index)}")
        first = pages[0].path if pages else outcome.data_docs_index
        served = http_link(first) if http_link is not None and first is not None else None
        if served:  # the link a browser opens from the Prefect UI or a notification (file:// links it refuses)
            lines.append(f"Over http: {served}")
        lines.append("Fix the source data or the thresholds in expectations/ configuration, then re-run the batch.")
        super().__init__("\n".join(lines))


def _url(path: Path) -> str:
    """A ``file://`` URL a browser opens (spaces and all), or the path as given when it is relative."""
    return path.as_uri() if path.is_absolute() else str(path)
