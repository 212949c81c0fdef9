"""Building blocks shared by the raw and marts suites: rule ids, thresholds, and value-free SQL expectations.

A *rule* is one GX expectation plus the id the thresholds and the reports know it by
(``<source or mart>.<kind>.<column>``). Expectations that need SQL (cross-table, reconciliation, date arithmetic)
are :class:`ExpectNoFailingRows`, a count-only ``UnexpectedRowsExpectation``: they run in the warehouse, and their
queries select only constants or surrogate row numbers, so even a full result could not hold a patient value.
"""

# SQL here is assembled from the registry and the rules files (trusted configuration); values are quoted.
# ruff: noqa: S608

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import great_expectations.expectations as gxe
import yaml
from great_expectations.execution_engine import ExecutionEngine

from expectations.dialects import DUCKDB, SqlDialect

EXPECTATIONS_DIR = Path(__file__).resolve().parent
DEFAULT_THRESHOLDS = EXPECTATIONS_DIR / "thresholds.yml"


class RulesConfigError(ValueError):
    """A rules or thresholds file is not valid; the message names the file, entry and what to fix."""


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite, with the id thresholds and reports use and the column it checks."""

    id: str
    expectation: gxe.Expectation
    column: str | None = None


@dataclass(frozen=True)
class SuiteSpec:
    """What one suite validates (a query or a table) and its rules; turned into GX objects by the checkpoint."""

    name: str
    rules: tuple[Rule, ...]
    query: str | None = None
    schema: str | None = None
    table: str | None = None
    #: Value-free notes on rules that could not be built (e.g. a configured mart that does not exist).
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Thresholds:
    """Largest failing share per rule id pattern, for one checkpoint."""

    default: float
    overrides: dict[str, float]

    def max_failing_rate(self, rule_id: str) -> float:
        """The threshold of a rule: the longest matching pattern's, else the default."""
        matches = [pattern for pattern in self.overrides if fnmatch.fnmatchcase(rule_id, pattern)]
        if not matches:
            return self.default
        return self.overrides[max(matches, key=len)]


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from a configuration file, or a RulesConfigError naming the file."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RulesConfigError(f"{path}: cannot read the expectations configuration ({exc})") from exc
    if not isinstance(document, dict):
        raise RulesConfigError(f"{path}: expected a mapping at the top level")
    return document


def load_thresholds(path: Path, checkpoint: str) -> Thresholds:
    """The thresholds of one checkpoint (``raw`` or ``marts``) from a thresholds file."""
    section = read_yaml(path).get(checkpoint) or {}
    try:
        default = float(section.get("default", 0.0))
        overrides = {str(key): float(value) for key, value in (section.get("overrides") or {}).items()}
    except (TypeError, ValueError) as exc:
        raise RulesConfigError(f"{path}: {checkpoint}: thresholds must be numbers between 0 and 1 ({exc})") from exc
    for key, value in [("default", default), *overrides.items()]:
        if not 0 <= value <= 1:
            raise RulesConfigError(f"{path}: {checkpoint}.{key}: threshold {value} is not between 0 and 1")
    return Thresholds(default, overrides)


def mostly(rate: float) -> dict[str, float]:
    """GX's ``mostly`` keyword for a tolerated failing share (nothing when no failure is tolerated)."""
    return {"mostly": 1.0 - rate} if rate > 0 else {}


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def failing_rows_query(condition: str, select: str = "1 as failing_row") -> str:
    """Rows of the batch meeting ``condition`` (``select``: a constant or a surrogate row number only)."""
    return f"select {select} from {{batch}} where {condition}"


class ExpectNoFailingRows(gxe.UnexpectedRowsExpectation):
    """GX's ``UnexpectedRowsExpectation``, counted in one query, with a tolerated share of the batch's rows.

    GX 1.24.1's ``UnexpectedRowsExpectation`` depends on two metrics, ``unexpected_rows_query.row_count``
    (``COUNT(*)`` around the query) and ``unexpected_rows_query.table`` (the query again, fetching up to 200
    rows that a SUMMARY or BASIC result never shows): every SQL rule ran twice. This one depends on the count
    and on ``table.row_count``, which GX computes once per batch in the query bundling the suite's other
    aggregates. It succeeds when no row fails, or when ``max_failing_rate`` > 0 and the failing rows are at most
    that share of the batch; the observed value is always the failing count.
    """

    max_failing_rate: float = 0.0
    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count", "table.row_count")
    success_keys: ClassVar[tuple[str, ...]] = ("unexpected_rows_query", "max_failing_rate")

    def _validate(
        self,
        metrics: dict,
        runtime_configuration: dict | None = None,
        execution_engine: ExecutionEngine | None = None,
    ) -> dict[str, Any]:
        failing = int(metrics["unexpected_rows_query.row_count"])
        rows = int(metrics["table.row_count"])
        success = failing == 0 or (self.max_failing_rate > 0 and failing <= self.max_failing_rate * rows)
        return {"success": success, "result": {"observed_value": failing}}


def sql_rule(rule_id: str, column: str | None, query: str, description: str, rate: float = 0.0) -> Rule:
    """A rule checked by a SQL query returning the failing rows (as constants or row numbers, never values).

    With ``rate`` > 0 the rule passes while the failing rows are at most that share of the batch's rows.
    """
    note = f" (tolerated: {rate:.2%} of rows)" if rate > 0 else ""
    expectation = ExpectNoFailingRows(
        unexpected_rows_query=query,
        max_failing_rate=rate,
        description=description + note,
        meta={"rule_id": rule_id, "column": column, "max_failing_rate": rate},
    )
    return Rule(rule_id, expectation, column)


def gx_rule(rule_id: str, reported: str | None, expectation_class: type[gxe.Expectation], **kwargs: Any) -> Rule:
    """A rule checked by one of GX's own expectations, tagged with its rule id and the column it reports."""
    meta = {"rule_id": rule_id, "column": reported}
    if "mostly" in kwargs:
        meta["max_failing_rate"] = round(1.0 - kwargs["mostly"], 6)
    return Rule(rule_id, expectation_class(meta=meta, **kwargs), reported)


def npi_check_failing(column: str, dialect: SqlDialect = DUCKDB) -> str:
    """SQL true where a value is not a 10-digit NPI with a valid check digit (Luhn over ``80840`` + 9 digits).

    The prefix 80840 contributes 24 to the Luhn sum; of the 9 leading digits, positions 1, 3, 5, 7 and 9 are
    doubled. Written with ``try_cast`` and ``substr`` so it runs on DuckDB and Snowflake alike (``dialect`` names
    the regex function).
    """
    terms = []
    for position in range(1, 10):
        digit = f"try_cast(substr({column}, {position}, 1) as integer)"
        terms.append(f"(case when {digit} >= 5 then 2 * {digit} - 9 else 2 * {digit} end)" if position % 2 else digit)
    # mod(), not `%`: SQLAlchemy doubles `%` in text queries for the Snowflake connector's pyformat paramstyle.
    check = f"mod(10 - mod(24 + {' + '.join(terms)}, 10), 10)"
    last = f"try_cast(substr({column}, 10, 1) as integer)"
    ten_digits = dialect.regex_match(column, "^[0-9]{10}$")
    return f"{column} is not null and (not {ten_digits} or coalesce({last} <> {check}, true))"
