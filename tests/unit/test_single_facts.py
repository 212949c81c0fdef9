"""Facts written once: the hospitals' time zone and the list of published marts each have one home, and every copy
that must stay literal (another tool's file) agrees with it, so a change in one place cannot drift unnoticed.

- Time zone: the source registry's ``defaults.timezone`` (``flows/sources.yml``, ``Registry.timezone``).
- Published marts: ``flows/contracts/marts.py``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from expectations.marts_suites import DEFAULT_MARTS_RULES, load_marts_rules, marts_suites
from expectations.rules import Thresholds
from flows.contracts.marts import DIMENSIONS, KPI_MARTS, PUBLISHED_MARTS, kpi_mart_names
from flows.contracts.registry import load_registry
from flows.settings import Settings
from reports.marts import CATALOGUE

REPO = Path(__file__).resolve().parents[2]
ZONE = load_registry().timezone
MARTS_MODELS = REPO / "dbt_project" / "models" / "marts"
#: dbt dimensions that are deliberately not published (docs/reports.md, "What is published").
UNPUBLISHED_DIMENSIONS = {
    "dim_patients": "one row per patient: patient-level, never published",
    "dim_dates": "a calendar; every published mart carries its own dates",
}


# --- the hospitals' time zone ---------------------------------------------------------------------------------


def test_the_registry_defines_the_hospitals_time_zone():
    document = yaml.safe_load((REPO / "flows" / "sources.yml").read_text(encoding="utf-8"))
    assert document["defaults"]["timezone"] == ZONE and ZONE != "UTC"


def test_settings_time_zone_defaults_to_the_registrys_and_the_environment_overrides_it(monkeypatch):
    monkeypatch.delenv("HOSPITAL_TIMEZONE", raising=False)
    assert Settings(_env_file=None).timezone == ZONE
    monkeypatch.setenv("HOSPITAL_TIMEZONE", "Europe/Berlin")
    assert Settings(_env_file=None).timezone == "Europe/Berlin"


def test_env_example_time_zone_is_the_registrys():
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    values = [line.split("=", 1)[1].strip() for line in lines if line.startswith("HOSPITAL_TIMEZONE=")]
    assert values == [ZONE]


def test_deployment_schedules_and_parameters_use_the_registrys_time_zone():
    document = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))
    zones = [document["definitions"]["timezone"]]
    for deployment in document["deployments"]:
        zones += [schedule["timezone"] for schedule in deployment.get("schedules") or []]
        if "timezone" in (deployment.get("parameters") or {}):
            zones.append(deployment["parameters"]["timezone"])
    assert len(zones) > 1 and set(zones) == {ZONE}


def test_dbt_local_calendar_defaults_to_the_registrys_time_zone():
    # dbt_project.yml declares no hospital_timezone var today; the macro's default is the copy dbt uses.
    project = yaml.safe_load((REPO / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8"))
    assert project.get("vars", {}).get("hospital_timezone", ZONE) == ZONE
    sql = (REPO / "dbt_project" / "macros" / "integration" / "calendar.sql").read_text(encoding="utf-8")
    defaults = re.findall(r"""var\(\s*["']hospital_timezone["']\s*,\s*["']([^"']+)["']\s*\)""", sql)
    assert defaults and set(defaults) == {ZONE}


def test_dbt_sources_carry_each_sources_time_zone_from_the_registry():
    registry = load_registry()
    found = {}
    for path in (REPO / "dbt_project" / "models" / "staging").rglob("_*__sources.yml"):
        for source in yaml.safe_load(path.read_text(encoding="utf-8"))["sources"]:
            for table in source["tables"]:
                meta = table["config"]["meta"]
                found[meta["registry_source"]] = meta["timezone"]
    assert found == {name: source.timezone for name, source in registry.sources.items()}


def test_marts_rules_do_not_repeat_the_time_zone():
    assert "local_timezone" not in yaml.safe_load(DEFAULT_MARTS_RULES.read_text(encoding="utf-8"))


def test_no_python_module_writes_the_time_zone_as_a_literal():
    copies = []
    for package in ("flows", "expectations", "reports", "generators", "deployments", "dbt_project"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value == ZONE:
                    copies.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert copies == []


# --- the published marts ---------------------------------------------------------------------------------------


def test_every_published_mart_has_one_report_spec_of_its_kind_and_nothing_extra():
    assert list(CATALOGUE) == list(PUBLISHED_MARTS)
    assert {name: spec.is_dimension for name, spec in CATALOGUE.items()} == {
        name: mart.kind == "dimension" for name, mart in PUBLISHED_MARTS.items()
    }


def test_the_marts_gate_expects_exactly_the_published_kpi_marts():
    suites = marts_suites(load_marts_rules(DEFAULT_MARTS_RULES), Thresholds(0.0, {}), {}, timezone=ZONE)
    catalog = next(suite for suite in suites if suite.name == "marts.catalog")
    (rule,) = catalog.rules
    assert sorted(rule.expectation.value_set) == sorted(kpi_mart_names())


def test_marts_rules_name_only_published_kpi_marts():
    rules = load_marts_rules(DEFAULT_MARTS_RULES)
    named = set(rules["month_coverage"].get("by_table") or {})
    named |= {entry["table"] for entry in rules["totals"]} | {entry["table"] for entry in rules.get("not_above") or []}
    assert named and named <= set(kpi_mart_names())
    # Every KPI mart is under the gate's fraction rules (mart_*) and its identifier scans.
    assert all(name.startswith(rules["fractions"]["tables"].rstrip("*")) for name in kpi_mart_names())


def test_every_published_mart_has_a_dbt_model_and_every_kpi_model_is_published():
    models = {path.stem: path for path in MARTS_MODELS.rglob("*.sql")}
    assert [name for name in PUBLISHED_MARTS if name not in models] == []
    kpi_models = {name for name in models if name.startswith("mart_")}
    assert kpi_models == set(kpi_mart_names())
    assert all(models[mart.name].parent.name == "kpi" for mart in KPI_MARTS)
    dimensions = {name for name in models if name.startswith("dim_")}
    assert dimensions - {mart.name for mart in DIMENSIONS} == set(UNPUBLISHED_DIMENSIONS)


@pytest.mark.parametrize(
    "path", ["flows/kpis.py", "reports/kpis.py", "reports/charts.py", "reports/html.py", "reports/views.py"]
)
def test_modules_reading_marts_name_only_published_ones(path):
    strings = [node.value for node in ast.walk(ast.parse((REPO / path).read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]  # fmt: skip
    named = {name for text in strings for name in re.findall(r"\b(?:mart|dim)_[a-z_]+\b", text)}
    assert named - set(PUBLISHED_MARTS) - set(UNPUBLISHED_DIMENSIONS) == set()


def test_docs_list_every_published_kpi_mart():
    text = (REPO / "docs" / "dbt.md").read_text(encoding="utf-8")
    assert [name for name in kpi_mart_names() if f"`{name}`" not in text] == []


# --- the contracts package sits at the bottom -------------------------------------------------------------------


def test_contracts_import_nothing_of_the_platform_but_contracts():
    imported = []
    for path in (REPO / "flows" / "contracts").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported += [(path.name, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.append((path.name, node.module))
    platform = ("flows", "expectations", "reports", "generators", "deployments", "dbt_project", "benchmarks")
    wrong = [(name, module) for name, module in imported
             if module.split(".")[0] in platform and not module.startswith("flows.contracts")]  # fmt: skip
    assert imported and wrong == []
