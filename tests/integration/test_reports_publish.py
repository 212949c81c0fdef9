"""Write-audit-publish on a real DuckDB warehouse holding contract-shaped sample marts.

Failures are injected for real: a failed checkpoint, a hook that raises in the middle of publishing, a file the
audit must reject, and a real filesystem error (the history folder's path taken by a file) before the switch.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from flows.contracts.quality import CheckpointOutcome, ExpectationOutcome
from reports import PublishAuditFailed, PublishError, PublishRefused, publish
from reports.charts import CHARTS
from reports.deidentify import check_table
from reports.extracts import write_hyper
from reports.marts import CATALOGUE, DIMENSIONS, KPI_MARTS
from reports.samples import sample_marts, write_sample_warehouse

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 23)


def outcome(name: str, success: bool = True) -> CheckpointOutcome:
    expectation = ExpectationOutcome(
        "suite", "expect_column_values_to_not_be_null", "mrn", success, 0 if success else 3
    )
    return CheckpointOutcome(name, success, "run", "batch-1", None, (expectation,))


PASSED = [outcome("raw"), outcome("marts")]


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory) -> Path:
    """A real DuckDB file whose marts schema holds every contract mart (seeded sample values)."""
    path = tmp_path_factory.mktemp("sample") / "warehouse.duckdb"
    return write_sample_warehouse(path, sample_marts(np.random.default_rng(5)))


@pytest.fixture(scope="module")
def first_publication(sample_warehouse, tmp_path_factory):
    reports_dir = tmp_path_factory.mktemp("published") / "reports"
    # Charts drawn in a second process, as on any machine with two cores (the test below compares with one).
    result = publish(sample_warehouse, reports_dir, "run-1", DAY, PASSED, "../data_docs/index.html", None, processes=1)
    return reports_dir, result


def snapshot(reports_dir: Path) -> dict[str, object]:
    """What a reader of the reports folder sees: where the links point and every file with its bytes."""
    links = {path.name: path.readlink().as_posix() for path in reports_dir.iterdir() if path.is_symlink()}
    files = {p.relative_to(reports_dir).as_posix(): p.read_bytes() for p in reports_dir.rglob("*") if p.is_file()}
    return {"links": links, "files": files, "entries": sorted(p.name for p in reports_dir.iterdir())}


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory) -> Path:
    """A real DuckDB file with two KPI marts only: publishing it is quick (two charts), as the WAP tests need."""
    frames = sample_marts(np.random.default_rng(6))
    kept = {name: frames[name] for name in ("mart_admissions_monthly", "mart_claim_denials", "dim_hospitals")}
    return write_sample_warehouse(tmp_path_factory.mktemp("small") / "warehouse.duckdb", kept)


@pytest.fixture(scope="module")
def published_template(small_warehouse, tmp_path_factory) -> Path:
    reports_dir = tmp_path_factory.mktemp("template") / "reports"
    publish(small_warehouse, reports_dir, "run-1", DAY, PASSED)
    return reports_dir


@pytest.fixture
def published_once(published_template, tmp_path) -> Path:
    """A reports folder holding one publication of the small warehouse (a copy; its links are relative)."""
    return Path(shutil.copytree(published_template, tmp_path / "reports", symlinks=True))


def test_publication_holds_every_catalogued_table_in_every_format_and_every_chart(first_publication) -> None:
    reports_dir, result = first_publication
    names = {path.relative_to(result.run_dir).as_posix() for path in result.files}
    for spec in (*KPI_MARTS, *DIMENSIONS):
        assert {f"extracts/{spec.name}.{suffix}" for suffix in ("parquet", "csv", "csv.gz")} <= names, spec.name
    for suffix in ("png", "svg", "csv"):
        assert sum(name.startswith("charts/") and name.endswith(f".{suffix}") for name in names) == 13, suffix
    assert {"report.html", "manifest.json", "extracts/marts.hyper", "extracts/data_dictionary.json",
            "extracts/data_dictionary.csv", "extracts/data_dictionary_tables.csv"} <= names  # fmt: skip
    assert result.missing_marts == ()
    assert result.report_html == reports_dir / "latest" / "report.html" and result.report_html.exists()
    assert result.dated_dir == reports_dir / DAY.isoformat()
    assert result.latest_dir.resolve() == result.dated_dir.resolve() == result.run_dir.resolve()


def test_charts_drawn_in_a_second_process_publish_the_same_bytes_as_drawn_in_one(
    first_publication, sample_warehouse, tmp_path
) -> None:
    # The first publication drew its charts in a worker process (processes=1); drawn all in this process
    # (processes=0), every file is the same but the Hyper file (Hyper writes it differently every time) and its
    # digest in the manifest.
    _, result = first_publication
    serial = publish(sample_warehouse, tmp_path / "reports", "run-1", DAY, PASSED, "../data_docs/index.html", None,
                     processes=0)  # fmt: skip

    def contents(run_dir: Path) -> dict[str, bytes]:
        files = {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        manifest = json.loads(files.pop("manifest.json"))
        manifest["files"].pop("extracts/marts.hyper")
        files.pop("extracts/marts.hyper")
        return {**files, "manifest.json": json.dumps(manifest).encode()}

    expected = contents(serial.run_dir)
    assert len(expected) == len(result.files) - 1
    assert contents(result.run_dir) == expected


def test_patient_level_tables_are_not_published(first_publication) -> None:
    _, result = first_publication
    names = {path.name for path in result.files}
    assert not any(name.startswith(("dim_patients", "fct_")) for name in names)


def test_parquet_and_csv_extracts_hold_the_same_published_values(first_publication, sample_warehouse) -> None:
    _, result = first_publication
    for spec in KPI_MARTS:
        parquet = pd.read_parquet(result.run_dir / "extracts" / f"{spec.name}.parquet")
        csv = pd.read_csv(result.run_dir / "extracts" / f"{spec.name}.csv.gz")
        assert len(parquet) == len(csv) > 0
        assert list(parquet.columns) == list(csv.columns)
        for column in spec.counts:
            assert parquet[column].isna().tolist() == csv[column].isna().tolist(), (spec.name, column)
        assert check_table(spec.name, parquet, spec) == []
    with duckdb.connect(str(sample_warehouse), read_only=True) as connection:
        warehouse = connection.execute("select * from marts.mart_no_shows_by_weekday order by 1").df()
    published = pd.read_parquet(result.run_dir / "extracts" / "mart_no_shows_by_weekday.parquet")
    shown = published["appointment_count"].notna()
    assert shown.any()
    assert (published.loc[shown, "appointment_count"].astype(int) == warehouse.loc[shown, "appointment_count"]).all()
    assert (warehouse.loc[~shown, "appointment_count"] != 0).all()


def test_the_hyper_extract_opens_with_the_hyper_api_with_one_table_per_mart_typed_as_published(
    first_publication, sample_warehouse
) -> None:
    from tableauhyperapi import Connection, HyperProcess, SqlType, Telemetry

    _, result = first_publication
    expected = {"date32[day]": SqlType.date(), "int64": SqlType.big_int(), "double": SqlType.double(),
                "large_string": SqlType.text(), "string": SqlType.text(), "bool": SqlType.bool()}  # fmt: skip
    with (
        HyperProcess(Telemetry.DO_NOT_SEND_USAGE_DATA_TO_TABLEAU, parameters={"log_config": ""}) as hyper,
        Connection(hyper.endpoint, str(result.run_dir / "extracts" / "marts.hyper")) as connection,
    ):
        tables = {name.name.unescaped: name for name in connection.catalog.get_table_names("Extract")}
        assert set(tables) == set(CATALOGUE)
        with duckdb.connect(str(sample_warehouse), read_only=True) as warehouse:
            for name, table in tables.items():
                parquet = pq.read_schema(result.run_dir / "extracts" / f"{name}.parquet")
                columns = connection.catalog.get_table_definition(table).columns
                assert [column.name.unescaped for column in columns] == parquet.names, name
                for column in columns:
                    assert column.type == expected[str(parquet.field(column.name.unescaped).type)], (name, column)
                rows = connection.execute_scalar_query(f"SELECT COUNT(*) FROM {table}")
                (marts_rows,) = warehouse.execute(f"select count(*) from marts.{name}").fetchone()
                assert rows == marts_rows > 0, name
        census = tables["mart_bed_occupancy_daily"]
        nulls = connection.execute_scalar_query(f'SELECT COUNT(*) FROM {census} WHERE "midnight_census" IS NULL')
        zeros_published = pd.read_parquet(result.run_dir / "extracts" / "mart_bed_occupancy_daily.parquet")
        assert nulls == int(zeros_published["midnight_census"].isna().sum())  # suppressed stays null, not 0
    assert not (result.run_dir / "extracts" / "hyperd.log").exists()


def test_dates_are_dates_and_counts_are_integers_in_parquet(first_publication) -> None:
    _, result = first_publication
    census = pq.read_schema(result.run_dir / "extracts" / "mart_bed_occupancy_daily.parquet")
    assert census.field("census_date").type == pa.date32()
    assert census.field("staffed_beds").type == pa.int64() and census.field("midnight_census").type == pa.int64()
    hospitals = pq.read_schema(result.run_dir / "extracts" / "dim_hospitals.parquet")
    assert hospitals.field("opened_date").type == pa.date32() and hospitals.field("staffed_beds").type == pa.int64()
    for spec in KPI_MARTS:
        schema = pq.read_schema(result.run_dir / "extracts" / f"{spec.name}.parquet")
        assert all(schema.field(count).type == pa.int64() for count in spec.counts), spec.name
        assert not any(pa.types.is_timestamp(field.type) for field in schema), spec.name


def test_suppressed_cells_are_counted_and_listed_per_row(first_publication) -> None:
    _, result = first_publication
    listed = 0
    for spec in KPI_MARTS:
        frame = pd.read_parquet(result.run_dir / "extracts" / f"{spec.name}.parquet")
        listed += sum(len(names.split(",")) for names in frame["suppressed_columns"].dropna())
    assert listed == result.suppressed_cells > 0


def test_data_dictionary_describes_every_published_column_with_its_type(first_publication) -> None:
    _, result = first_publication
    entries = {e["table"]: e for e in json.loads((result.run_dir / "extracts/data_dictionary.json").read_text())}
    assert set(entries) == set(CATALOGUE) | {f"chart_{name}" for name in CHARTS}
    for name, entry in entries.items():
        path = f"{name}.parquet" if name in CATALOGUE else f"../charts/{name.removeprefix('chart_')}.csv"
        frame = pd.read_parquet(result.run_dir / "extracts" / path) if name in CATALOGUE else pd.read_csv(
            result.run_dir / "extracts" / path)  # fmt: skip
        assert [column["name"] for column in entry["columns"]] == list(frame.columns)
        assert all(column["type"] and column["description"] for column in entry["columns"]), name
    denials = {column["name"]: column["description"] for column in entries["mart_claim_denials"]["columns"]}
    documented = yaml_model("mart_claim_denials")
    assert documented["columns"], "the model's YAML documents its columns"
    for column in documented["columns"]:
        if column.get("description") and column["name"] in denials:
            assert denials[column["name"]] == " ".join(column["description"].split()), column["name"]
    assert "suppressed" in denials["suppressed_columns"]
    assert entries["mart_claim_denials"]["description"] == " ".join(documented["description"].split())


def yaml_model(name: str) -> dict:
    """One model's entry in the YAML files beside the models, its ``{{ doc('x') }}`` references replaced by the
    docs blocks of the Markdown files there (as dbt renders them)."""
    models = Path(__file__).resolve().parents[2] / "dbt_project" / "models"
    blocks = {}
    for path in models.rglob("*.md"):
        text = path.read_text()
        for block in text.split("{% docs ")[1:]:
            block_name, body = block.split(" %}", 1)
            blocks[block_name.strip()] = body.split("{% enddocs %}")[0].strip()
    for path in models.rglob("*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []) or []:
            if model.get("name") == name:
                for column in model.get("columns", []):
                    text = column.get("description") or ""
                    if text.startswith("{{ doc("):
                        column["description"] = blocks[text.split("'")[1]]
                return model
    raise AssertionError(f"{name} is not documented in dbt_project/models")


def test_warehouse_is_closed_after_publishing(first_publication, sample_warehouse) -> None:
    # A writer can open the file: publish() held no connection (DuckDB allows one writer process per file).
    with duckdb.connect(str(sample_warehouse)) as connection:
        connection.execute("create or replace table main.touched as select 1 as x")


@pytest.mark.parametrize(
    ("checkpoints", "message"),
    [
        ([outcome("raw"), outcome("marts", success=False)], "Checkpoint 'marts' (1 of 1 expectations failed) failed"),
        ([], "No checkpoint outcome was given"),
    ],
)
def test_a_failed_or_missing_checkpoint_refuses_and_leaves_latest_untouched(
    published_once, small_warehouse, checkpoints, message
) -> None:
    before = snapshot(published_once)
    with pytest.raises(PublishRefused, match="latest report is unchanged") as refused:
        publish(small_warehouse, published_once, "run-2", DAY + dt.timedelta(days=1), checkpoints)
    assert message in str(refused.value)
    assert snapshot(published_once) == before


def test_a_failure_in_the_middle_of_publishing_leaves_latest_untouched(published_once, small_warehouse) -> None:
    before = snapshot(published_once)
    seen: list[Path] = []

    def fail(staging: Path) -> None:
        seen.append(staging)
        assert (staging / "report.html").exists()  # everything was written when the failure strikes
        raise OSError("disk full")

    with pytest.raises(PublishError, match=r"disk full.*latest report is unchanged"):
        publish(small_warehouse, published_once, "run-2", DAY + dt.timedelta(days=1), PASSED, staging_hook=fail)
    assert seen and not seen[0].exists()
    assert snapshot(published_once) == before


def test_a_warehouse_without_kpi_marts_is_not_published_over_latest(published_once, tmp_path) -> None:
    empty = write_sample_warehouse(tmp_path / "empty.duckdb", {"dim_hospitals": sample_marts(np.random.default_rng(1))[
        "dim_hospitals"]})  # fmt: skip
    before = snapshot(published_once)
    with pytest.raises(PublishError, match="has no KPI mart"):
        publish(empty, published_once, "run-2", DAY, PASSED)
    assert snapshot(published_once) == before


def test_a_real_filesystem_error_before_the_switch_leaves_latest_untouched(published_once, small_warehouse) -> None:
    # The history folder's name is taken by a file: moving the staged report into it fails (NotADirectoryError).
    runs = published_once / "runs"
    moved = published_once / "runs-moved"
    runs.rename(moved)
    (published_once / "latest").unlink()
    (published_once / "latest").symlink_to("runs-moved/" + next(moved.iterdir()).name, target_is_directory=True)
    runs.write_text("not a folder")
    before = snapshot(published_once)
    with pytest.raises(PublishError, match="latest report is unchanged"):
        publish(small_warehouse, published_once, "run-2", DAY + dt.timedelta(days=1), PASSED)
    assert snapshot(published_once) == before
    assert (published_once / "latest" / "report.html").exists()


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (lambda staging: (staging / "extracts" / "notes.csv").write_text("name,ssn\nx,912-34-5678\n"),
         "looks like an SSN"),
        (lambda staging: (staging / "extracts" / "extra.csv").write_text("contact\nsomeone@example.org\n"),
         "not listed in the manifest"),
        (lambda staging: pd.DataFrame({"k": ["a"], "visit_count": [4]}).to_parquet(
            staging / "extracts" / "mart_claim_denials.parquet"), "visit_count has 1 published count(s) from 1 to 10"),
        (lambda staging: (staging / "charts" / "denial_rate.png").unlink(),
         "charts/denial_rate.png: listed in the manifest"),
        (lambda staging: (staging / "report.html").write_text('<img src="https://example.org/x.png">'),
         "not embedded"),
        (lambda staging: (staging / "charts" / "denial_rate.csv").write_text(
            "period_start,payer_id,claim_count\n2024-01-01,P01,7\n"), "claim_count has 1 published count(s)"),
        (lambda staging: write_hyper({"mart_claim_denials": pa.table({"payer_id": ["P01"]})},
                                     staging / "extracts" / "marts.hyper"), "extracts/marts.hyper: holds tables"),
        (lambda staging: (staging / "extracts" / "mart_claim_denials.csv.gz").write_bytes(gzip.compress(
            b"payer_id,claim_count\nP01,40\n", mtime=0)), "csv.gz: not the same table as mart_claim_denials.csv"),
    ],
)  # fmt: skip
def test_the_audit_rejects_a_staged_publication_that_breaks_a_rule(
    published_once, small_warehouse, tamper, problem
) -> None:
    before = snapshot(published_once)
    with pytest.raises(PublishAuditFailed, match="failed its audit") as failed:
        publish(small_warehouse, published_once, "run-2", DAY + dt.timedelta(days=1), PASSED, staging_hook=tamper)
    assert problem in str(failed.value)
    assert snapshot(published_once) == before


def test_a_new_publication_switches_latest_and_keeps_the_dated_history(published_once, small_warehouse) -> None:
    first = (published_once / "latest").resolve()
    later = DAY + dt.timedelta(days=1)
    result = publish(small_warehouse, published_once, "run-2", later, PASSED)
    assert (published_once / "latest").resolve() == result.run_dir.resolve() != first
    assert (published_once / DAY.isoformat()).resolve() == first and (first / "report.html").exists()
    assert (published_once / later.isoformat()).resolve() == result.run_dir.resolve()
    # A second run on the same day becomes that day's report; the first stays in the history.
    again = publish(small_warehouse, published_once, "run-3", later, PASSED)
    assert (published_once / later.isoformat()).resolve() == again.run_dir.resolve()
    assert result.run_dir.exists()
    assert not [path for path in published_once.iterdir() if path.name.startswith(".")]
    assert set(result.missing_marts) == set(CATALOGUE) - {"mart_admissions_monthly", "mart_claim_denials",
                                                          "dim_hospitals"}  # fmt: skip
    assert "mart_payer_mix" in (result.latest_dir / "report.html").read_text(encoding="utf-8")


def test_the_page_is_self_contained_and_shows_run_period_tiles_and_checkpoints(first_publication) -> None:
    _, result = first_publication
    html = result.report_html.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 13
    assert "run-1" in html and "2024-01-01 to 2024-06-30" in html
    assert html.count('href="charts/') == 3 * 13 and "Grain: month × hospital." in html
    for kpi in ("admissions", "alos", "readmission_rate", "occupancy", "no_show_rate", "denial_rate", "revenue"):
        assert f'data-kpi="{kpi}"' in html
    assert html.count('class="pass"') == 2 and "../data_docs/index.html" in html
    assert "dbt docs: not published for this run" in html
    with gzip.open(result.run_dir / "extracts" / "mart_payer_mix.csv.gz", "rt") as handle:
        assert handle.readline().startswith("month_date,payer_type,admission_count,admission_share")


# --- The page as a person sees it: headless Chromium ------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip
WIDTHS = {"desktop": (1366, 900), "narrow": (390, 844)}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through chromedriver; fails (never skips) when either is missing."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            f"{CHROMIUM} or {CHROMEDRIVER} is missing: the report's browser test needs them. Install with "
            "`make browser` (apt-get install -y --no-install-recommends chromium chromium-driver)."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_report_in_chromium_loads_every_image_without_horizontal_overflow(
    browser, first_publication, width, tmp_path
) -> None:
    _, result = first_publication
    browser.set_window_size(*WIDTHS[width])
    browser.get(result.report_html.resolve().as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    images = browser.execute_script(
        "return Array.from(document.images).map(image => [image.complete, image.naturalWidth, image.alt])"
    )
    assert len(images) == 13
    assert [alt for complete, natural, alt in images if not (complete and natural > 0)] == []
    scroll_width, inner_width = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"{width}: page is {scroll_width}px wide in a {inner_width}px window"
    tiles = browser.execute_script("return document.querySelectorAll('[data-kpi]').length")
    assert tiles == 7
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTHS[width][0], min(height, 12000))
    screenshot = tmp_path / f"report-{width}.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000


def test_the_kpis_a_publication_returns_are_the_report_tiles_and_the_manifest(first_publication) -> None:
    # Computed once (reports/kpis.py): the run's summary artifact shows what the result returns.
    _, result = first_publication
    html = result.report_html.read_text(encoding="utf-8")
    manifest = json.loads((result.run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert [k["key"] for k in result.kpis] == ["admissions", "alos", "readmission_rate", "occupancy",
                                               "no_show_rate", "denial_rate", "revenue"]  # fmt: skip
    assert manifest["kpis"] == list(result.kpis)
    for figure in result.kpis:
        assert figure["value"] not in ("n/a", "") and f">{figure['value']}<" in html, figure
    occupancy = next(k for k in result.kpis if k["key"] == "occupancy")
    assert occupancy["label"] == "Bed occupancy" and occupancy["mart"] == "mart_bed_occupancy_daily"
