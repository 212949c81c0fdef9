"""A gate's fixed cost: what a checkpoint does besides validating rows, counted (not timed) on a small warehouse.

One module fixture writes a DuckDB file with one table whose failing counts are known by construction, and runs a
two-suite checkpoint on it (``build_context`` / ``build_checkpoint``, as ``run_checkpoint`` does) while counting
every read of the context's suite, validation definition and checkpoint stores.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from unittest import mock

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import pytest
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.store.store import Store
from great_expectations.expectations.expectation import Expectation

from expectations.checkpoints import (
    RESULT_FORMAT,
    BuiltCheckpoint,
    BuiltValidationDefinition,
    add_warehouse_datasource,
    build_checkpoint,
    build_context,
)
from expectations.datadocs import OfflineIndexPageView, OfflinePageView, SummarySectionBuilder, read_summary
from expectations.gx_overhead import kwargs_read_once
from expectations.rules import Rule, SuiteSpec

pytestmark = pytest.mark.integration

ROWS = 500
REPO = Path(__file__).resolve().parents[2]


def _not_null() -> Rule:
    return Rule("rows.not_null.id", gxe.ExpectColumnValuesToNotBeNull(column="id"), "id")


def _pattern() -> Rule:
    return Rule("rows.pattern.code", gxe.ExpectColumnValuesToMatchRegex(column="code", regex="^A[0-9]{2}$"), "code")


def _specs() -> list[SuiteSpec]:
    return [
        SuiteSpec("raw.rows", (_not_null(), _pattern()), query="select * from raw.rows"),
        SuiteSpec("raw.rows_again", (_not_null(),), query="select * from raw.rows where id is not null"),
    ]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A checkpoint run on a table with every 10th id null and every 7th code malformed; store reads counted."""
    root = tmp_path_factory.mktemp("fixed_cost")
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            f"""create schema raw; create table raw.rows as select
                case when range % 10 = 0 then null else 'ID' || range end as id,
                case when range % 7 = 0 then 'X' || range else 'A' || lpad(cast(range % 100 as varchar), 2, '0') end
                    as code
                from range({ROWS})"""
        )
    context = build_context(root / "data_docs", root / "gx_results")
    datasource = add_warehouse_datasource(context, warehouse)
    reads: list[str] = []
    saves: list[str] = []
    original_get, original_save = Store.get, type(context.variables).save

    def counting_get(store, key):
        reads.append(type(store).__name__)
        return original_get(store, key)

    def counting_save(variables):
        saves.append("config")
        return original_save(variables)

    try:
        with mock.patch.object(type(context.variables), "save", counting_save):
            checkpoint = build_checkpoint(context, "raw", datasource, _specs())
        with mock.patch.object(Store, "get", counting_get):
            result = checkpoint.run(run_id=RunIdentifier(run_name="raw fixed-cost"))
    finally:
        datasource.close()
    return checkpoint, result, reads, saves, context, datasource


def test_checkpoint_runs_without_reading_its_definitions_back_from_the_stores(checked):
    # GX's own checkpoint reads every suite, validation definition and the checkpoint back from the stores (twice
    # per validation definition) to compare them with the objects it holds; these are fresh by construction.
    checkpoint, result, reads, *_ = checked
    assert isinstance(checkpoint, BuiltCheckpoint)
    assert all(isinstance(definition, BuiltValidationDefinition) for definition in checkpoint.validation_definitions)
    assert reads.count("ValidationDefinitionStore") == 0
    assert reads.count("CheckpointStore") == 0
    assert reads.count("ExpectationsStore") <= 2 * len(checkpoint.validation_definitions)  # the suites' pages
    assert len(result.run_results) == 2


def test_checkpoint_still_counts_every_row(checked):
    result = checked[1]
    counts = {
        (validation.suite_name, item.expectation_config.type): item.result["unexpected_count"]
        for validation in result.run_results.values()
        for item in validation.results
    }
    nulls, malformed = ROWS // 10, len([n for n in range(ROWS) if n % 7 == 0])
    assert counts == {
        ("raw.rows", "expect_column_values_to_not_be_null"): nulls,
        ("raw.rows", "expect_column_values_to_match_regex"): malformed,
        ("raw.rows_again", "expect_column_values_to_not_be_null"): 0,
    }
    assert not result.success


def test_a_definition_never_added_is_not_fresh(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create table t as select 1 as x")
    context = build_context(tmp_path / "data_docs")
    datasource = add_warehouse_datasource(context, warehouse)
    try:
        batch_definition = datasource.add_query_asset("t", query="select * from t").add_batch_definition_whole_table(
            "t"
        )
        suite = context.suites.add(gx.ExpectationSuite(name="t"))
        definition = BuiltValidationDefinition(name="t", data=batch_definition, suite=suite)
        assert not definition.is_fresh().success
        checkpoint = BuiltCheckpoint(name="t", validation_definitions=[definition])
        assert not checkpoint.is_fresh().success
        context.validation_definitions.add(definition)
        assert definition.is_fresh().success
    finally:
        datasource.close()


def test_data_docs_views_compile_their_templates_once_per_process():
    first, second = OfflinePageView(), OfflinePageView()
    assert first.env is second.env
    assert first.env.auto_reload is False
    assert OfflineIndexPageView().env is not first.env  # one environment per view class
    assert first.env.get_template("page.j2") is second.env.get_template("page.j2")


def test_hospital_run_imports_the_stages_modules_while_its_server_starts():
    # flows.run_cli.import_stage_modules (the temporary server's while_starting): GX, dbt, prefect-dbt, the charts.
    script = (
        "import sys\n"
        "from flows.run_cli import import_stage_modules\n"
        "heavy = ('great_expectations', 'dbt.cli.main', 'prefect_dbt', 'matplotlib')\n"
        "assert not any(name in sys.modules for name in heavy), 'the CLI must not import them itself'\n"
        "import_stage_modules()\n"
        "print(*(name in sys.modules for name in ('expectations.checkpoints', *heavy)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=180, check=False
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["True"] * 5


def test_build_checkpoint_saves_the_context_configuration_once_with_every_asset(checked):
    # GX saves the whole configuration (as YAML) after each asset and batch definition: 4 times for two suites.
    checkpoint, _, _, saves, context, _ = checked
    assert saves == ["config"]
    saved = context.variables.config.fluent_datasources["warehouse"]
    assert sorted(asset.name for asset in saved.assets) == ["raw.rows", "raw.rows_again"]
    assert len(checkpoint.validation_definitions) == 2


def test_kwargs_read_once_gives_the_same_results_with_fewer_configuration_builds(checked):
    checkpoint, *_, datasource = checked
    definition = checkpoint.validation_definitions[0]
    builds = []
    configuration = Expectation.configuration

    def counted(expectation):
        builds.append(1)
        return configuration.fget(expectation)

    outcomes = {}
    try:
        with mock.patch.object(Expectation, "configuration", property(counted)):
            for name, wrapper in (("stock", contextlib.nullcontext), ("once", kwargs_read_once)):
                builds.clear()
                with wrapper():
                    result = definition.run(result_format=RESULT_FORMAT)
                outcomes[name] = (
                    len(builds),
                    [(r.expectation_config.type, r.success, r.result) for r in result.results],
                )
    finally:
        datasource.close()
    (stock_builds, stock_results), (once_builds, once_results) = outcomes["stock"], outcomes["once"]
    assert once_results == stock_results
    assert once_builds < stock_builds * 0.7  # 105 against 178 on this suite of two expectations


def test_a_suite_page_is_rendered_again_only_when_its_suite_changed(tmp_path):
    # A second and a third run onto the first run's Data Docs: every validation page is new; the suite pages are
    # rendered from the suites alone, so only the suite whose expectations changed gets a new page.
    rendered: list[tuple[str, str]] = []
    original = SummarySectionBuilder._render

    def counting(builder, key, resource):
        rendered.append((builder.name, key.to_tuple()[0]))
        return original(builder, key, resource)

    home = tmp_path / "home"
    warehouse = home / "warehouse.duckdb"
    home.mkdir()
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("create schema raw; create table raw.rows as select 'ID1' as id, 'A01' as code")

    def run(specs: list[SuiteSpec]) -> list[tuple[str, str]]:
        context = build_context(home / "data_docs", home / "gx_results")
        datasource = add_warehouse_datasource(context, warehouse)
        rendered.clear()
        try:
            with mock.patch.object(SummarySectionBuilder, "_render", counting):
                build_checkpoint(context, "raw", datasource, specs).run(run_id=RunIdentifier(run_name="raw pages"))
        finally:
            datasource.close()
        return sorted(rendered)

    assert run(_specs()) == [("expectations", "raw"), ("expectations", "raw"), ("validations", "raw"),
                             ("validations", "raw")]  # fmt: skip
    assert run(_specs()) == [("validations", "raw"), ("validations", "raw")]
    changed = _specs()
    changed[1] = SuiteSpec("raw.rows_again", (_not_null(), _pattern()), query=changed[1].query)
    assert run(changed) == [("expectations", "raw"), ("validations", "raw"), ("validations", "raw")]
    summary = read_summary(home / "data_docs")
    assert summary is not None and set(summary.suite_pages) == {"raw.rows", "raw.rows_again"}
    page = (home / "data_docs" / "expectations" / "raw" / "rows_again.html").read_text(encoding="utf-8")
    assert "values must match this regular expression" in page  # the new expectation is on the page
