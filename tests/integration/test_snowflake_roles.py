"""deployments/snowflake/roles.sql, parsed with sqlglot (snowflake dialect): each role gets only its layers."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

pytestmark = pytest.mark.integration

ROLES_SQL = Path(__file__).resolve().parents[2] / "deployments" / "snowflake" / "roles.sql"
_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON (?P<target>.+?) TO ROLE (?P<role>\w+)", re.IGNORECASE)


def grants() -> list[tuple[str, set[str], str]]:
    """(role, privileges, target) of every GRANT ... TO ROLE in the script."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # some GRANT forms parse as a generic Command
    out = []
    for statement in sqlglot.parse(ROLES_SQL.read_text(), read="snowflake"):
        assert isinstance(statement, exp.Create | exp.Grant | exp.Command), statement.sql()
        text = " ".join(statement.sql(dialect="snowflake").split())
        if isinstance(statement, exp.Grant | exp.Command) and text.upper().startswith("GRANT"):
            match = _GRANT.match(text)
            assert match, f"unexpected grant form: {text}"
            privileges = {p.strip().upper() for p in match["privileges"].split(",")}
            out.append((match["role"].upper(), privileges, match["target"].upper()))
    return out


def on_schema(target: str, schema: str) -> bool:
    return bool(re.search(rf"\bHOSPITAL\.{schema}\b", target))


def test_snowflake_roles_script_parses_and_grants_every_role() -> None:
    roles = {role for role, _, _ in grants()}
    assert roles == {"HOSPITAL_LOADER", "HOSPITAL_TRANSFORMER", "HOSPITAL_REPORTER"}
    for role in roles:
        assert any("WAREHOUSE" in t and p == {"USAGE"} for r, p, t in grants() if r == role)
        assert any(t.startswith("DATABASE") and p == {"USAGE"} for r, p, t in grants() if r == role)


def test_snowflake_reporter_reads_marts_only() -> None:
    reporter = [(p, t) for r, p, t in grants() if r == "HOSPITAL_REPORTER"]
    for privileges, target in reporter:
        if "SCHEMA" in target:
            assert on_schema(target, "MARTS"), target  # never RAW, LEDGER, STAGING, ...
            assert privileges <= {"USAGE", "SELECT"}, privileges


def test_snowflake_loader_writes_raw_and_ledger_only() -> None:
    loader = [(p, t) for r, p, t in grants() if r == "HOSPITAL_LOADER"]
    schemas = {s for _, t in loader for s in ("RAW", "LEDGER") if on_schema(t, s)}
    assert schemas == {"RAW", "LEDGER"}
    assert all(on_schema(t, "RAW") or on_schema(t, "LEDGER") for _, t in loader if "SCHEMA" in t)
    assert any("INSERT" in p and "TABLES" in t and on_schema(t, "RAW") for p, t in loader)
    assert any("WRITE" in p and "STAGES" in t for p, t in loader)
    assert not any("OWNERSHIP" in p for p, _ in loader)


def test_snowflake_transformer_reads_raw_and_owns_the_dbt_layers() -> None:
    transformer = [(p, t) for r, p, t in grants() if r == "HOSPITAL_TRANSFORMER"]
    assert all(p <= {"USAGE", "SELECT"} for p, t in transformer if on_schema(t, "RAW") or on_schema(t, "LEDGER"))
    owned = {t.split()[-1].removeprefix("HOSPITAL.") for p, t in transformer if p == {"OWNERSHIP"}}
    assert owned == {"STAGING", "INTEGRATION", "MARTS", "LISTS", "SNAPSHOTS"}


def test_snowflake_roles_script_grants_no_role_to_another_role() -> None:
    text = ROLES_SQL.read_text().upper()
    assert not re.search(r"GRANT ROLE \w+ TO ROLE", text)
