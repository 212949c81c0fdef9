"""The `checks` data test (dbt_project/macros/tests/checks.sql): every rule kind on a small model with known
defects, the failing rules by name and count, stored without a value, and named by the pipeline's dbt stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.dbt_runner import failing_rules
from tests.integration.dbtkit import copy_project, duckdb_target, invoke, query

pytestmark = pytest.mark.integration

PARENT = "select * from (values ('P1'), ('P2')) as parents(id)"
# (row_id, parent_id, code, amount, pattern_col, status, closed_at, low, high); the defects are commented per row.
MODEL = """
select * from (values
    (1, 'P1', 'a', 5, 'AB12', 'open', null, 1, 2),
    (2, 'P2', 'b', 6, 'CD34', 'closed', date '2024-01-01', 1, 1),
    -- row_id 2 again; no parent; code c; pattern in lower case; closed without a date; low above high
    (2, null, 'c', 7, 'ab12', 'closed', null, 3, 2),
    -- unknown parent (code a); amount 10 (outside the strict range and the accepted amounts); no pattern (open)
    (3, 'P9', 'a', 10, null, 'open', null, 1, null),
    -- unknown parent (code c); amount 0; code c
    (4, 'P9', 'c', 0, 'EF56', 'open', null, 0, 0)
) as t(row_id, parent_id, code, amount, pattern_col, status, closed_at, low, high)
"""
YAML = """
version: 2
models:
  - name: checks_fixture
    config:
      meta: {contains_phi: true}
    data_tests:
      - checks:
          name: checks_checks_fixture
          arguments:
            rules:
              - not_null: [row_id, parent_id]
              - not_null: pattern_col
                where: "status = 'open'"
              - unique: row_id
              - accepted_values: code
                values: [a, b]
              - accepted_values: amount
                values: [5, 6, 7]
                quote: false
              - accepted_range: amount
                min_value: 0
                max_value: 10
                inclusive: false
              - accepted_range: low
                min_value: 0
              - matches_pattern: pattern_col
                pattern: "[A-Z]{2}[0-9]{2}"
              - not_null_where: closed_at
                condition: "status = 'closed'"
              - expression_is_true: "low <= high"
              - expression_is_true: "status in ('open', 'closed') and amount < 7"
              - relationships: parent_id
                to: ref('checks_fixture_parent')
                field: id
              - relationships: parent_id
                to: ref('checks_fixture_parent')
                field: id
                where: "code = 'a'"
                name: a_codes_have_parents
"""
EXPECTED = {
    "not_null(parent_id)": 1,
    "not_null(pattern_col)": 1,
    "unique(row_id)": 1,
    "accepted_values(code)": 2,
    "accepted_values(amount)": 2,
    "accepted_range(amount)": 2,
    "matches_pattern(pattern_col)": 1,
    "not_null_where(closed_at)": 1,
    "expression_is_true(low <= high)": 1,
    "expression_is_true(status in ('open', 'closed') and amount < 7)": 2,
    "relationships(parent_id -> checks_fixture_parent.id)": 2,
    "a_codes_have_parents": 1,
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    root = tmp_path_factory.mktemp("checks")
    project = copy_project(root / "dbt_project")
    fixture = project / "models" / "checks_fixture"
    fixture.mkdir()
    (fixture / "checks_fixture_parent.sql").write_text(PARENT, encoding="utf-8")
    (fixture / "checks_fixture.sql").write_text(MODEL, encoding="utf-8")
    (fixture / "_checks_fixture.yml").write_text(YAML, encoding="utf-8")
    warehouse = root / "warehouse.duckdb"
    with duckdb_target(warehouse):
        result = invoke(project, root, "build", "--select", "checks_fixture_parent", "checks_fixture")
    return root, warehouse, result


def test_each_rule_counts_its_failing_rows_and_the_test_fails_with_their_sum(checked) -> None:
    _, warehouse, result = checked
    (test,) = [item for item in result.result.results if item.node.resource_type == "test"]
    assert test.node.name == "checks_checks_fixture"
    assert str(test.status) == "fail"
    assert test.failures == sum(EXPECTED.values())
    stored = dict(query(warehouse, "select rule_name, failing_rows from test_failures.checks_checks_fixture"))
    assert stored == EXPECTED  # passing rules (not_null(row_id), accepted_range(low)) are not listed


def test_failures_of_a_phi_model_are_stored_as_rule_names_and_counts_only(checked) -> None:
    _, warehouse, _ = checked
    columns = query(warehouse, "select column_name from information_schema.columns "
                               "where table_name = 'checks_checks_fixture' order by ordinal_position")  # fmt: skip
    assert columns == [("rule_name",), ("failing_rows",)]


def test_the_failing_rules_are_logged_and_named_in_the_stage_error(checked) -> None:
    root, warehouse, result = checked
    (test,) = [item for item in result.result.results if item.node.resource_type == "test"]
    named = failing_rules(test.node, warehouse)
    assert named.startswith(": ") and "a_codes_have_parents 1 rows" in named and "unique(row_id) 1 rows" in named
    log = (Path(root) / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert "failing rules of checks_checks_fixture: " in log
    assert "AB12" not in named and "P9" not in named  # names and counts, never a value
