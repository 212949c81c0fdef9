"""The Snowflake backend through the shared loader, against the fakesnow emulator (docs/snowflake.md)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import fakesnow
import pytest
import snowflake.connector

from flows.warehouse import load_batch, render_summary
from flows.warehouse.snowflake_backend import SnowflakeWarehouse
from flows.warehouse.snowflake_connect import SnowflakeConfigError, open_snowflake, params_from_env
from generators.batch import NetworkSpec, generate_initial

pytestmark = pytest.mark.integration

_KIT = Path(__file__).resolve().parents[1] / "fixtures" / "loader" / "batchkit.py"
_spec = importlib.util.spec_from_file_location("batchkit", _KIT)
kit = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("batchkit", kit)
_spec.loader.exec_module(kit)

PATIENTS = kit.REGISTRY["registration__patients"]
CANARY = "canary-Pa55word-never-shown"


@pytest.fixture
def emulator() -> Iterator[None]:
    """A fresh fakesnow account for one test."""
    with fakesnow.patch():
        yield


def connect() -> snowflake.connector.SnowflakeConnection:
    return snowflake.connector.connect(database="HOSPITAL", schema="RAW")


def scalar(warehouse: SnowflakeWarehouse, statement: str, params: list | None = None):
    return warehouse.run(statement, params)[0][0]


@pytest.fixture(scope="module")
def generated_batch(tmp_path_factory) -> Path:
    """A generated initial batch of a tiny network (500 patients, January 2024; 300 trips a generator edge case)."""
    landing = tmp_path_factory.mktemp("sf_landing")
    network = NetworkSpec(seed=1, patients=500, start_date=dt.date(2024, 1, 1))
    return generate_initial(landing, network, dt.date(2024, 1, 31), registry=kit.REGISTRY).path


def test_snowflake_loads_generated_batch_counts_equal_manifest_and_rerun_skips(emulator, generated_batch) -> None:
    manifest = json.loads((generated_batch / "manifest.json").read_text())
    with open_snowflake(connection=connect()) as warehouse:
        first = load_batch(generated_batch, kit.REGISTRY, warehouse)
        assert first.outcome == "loaded", render_summary(first)
        for entry in manifest["files"]:
            source = kit.REGISTRY[entry["source"]]
            count, low, high = warehouse.run(
                f"SELECT COUNT(*), MIN(_row_number), MAX(_row_number) FROM raw.{source.table} WHERE _source_file = %s",
                [entry["file"]],
            )[0]
            rejected = scalar(warehouse, "SELECT COUNT(*) FROM raw._rejects WHERE file = %s", [entry["file"]])
            assert count + rejected == entry["rows"], entry["file"]
            if entry["rows"] and not rejected:
                assert (low, high) == (1, entry["rows"])  # _row_number: the n-th row of the file
        before = {
            e["source"]: scalar(warehouse, f"SELECT COUNT(*) FROM raw.{kit.REGISTRY[e['source']].table}")
            for e in manifest["files"]
        }
        second = load_batch(generated_batch, kit.REGISTRY, warehouse)
        after = {
            e["source"]: scalar(warehouse, f"SELECT COUNT(*) FROM raw.{kit.REGISTRY[e['source']].table}")
            for e in manifest["files"]
        }
    assert second.outcome == "skipped"
    assert all(f.outcome == "skipped" and "already loaded" in f.message for f in second.files)
    assert after == before


def test_snowflake_malformed_row_lands_in_rejects_with_line_and_reason(emulator, tmp_path: Path) -> None:
    rows = kit.rows_for(PATIENTS, 200)
    text = kit.csv_text(PATIENTS, rows).splitlines(keepends=True)
    text[57] = text[57].replace(rows[56]["birth_date"], "1990-02-31")  # line 58 = row 57: impossible date
    data = "".join(text).encode()
    name = kit.file_name(PATIENTS, "20250101")
    folder = kit.write_batch(tmp_path / "landing", "b1", {name: ("registration__patients", data, 200)})
    with open_snowflake(connection=connect()) as warehouse:
        result = load_batch(folder, kit.REGISTRY, warehouse)
        assert result.outcome == "loaded", render_summary(result)
        rejects = warehouse.run("SELECT line_number, row_number, reason, raw_line FROM raw._rejects")
        loaded = warehouse.run(f"SELECT COUNT(*), MAX(_row_number) FROM raw.{PATIENTS.table}")[0]
        gap = scalar(warehouse, f"SELECT COUNT(*) FROM raw.{PATIENTS.table} WHERE _row_number = 57")
    assert [(line, row, reason) for line, row, reason, _ in rejects] == [
        (58, 57, "column birth_date: not a valid date")
    ]
    assert rejects[0][3] == text[57].rstrip("\n")
    assert loaded == (199, 200) and gap == 0
    assert result.files[0].rows_loaded == 199 and result.files[0].rows_rejected == 1


def test_snowflake_over_threshold_fails_and_leaves_nothing(emulator, tmp_path: Path) -> None:
    text = kit.csv_text(PATIENTS, kit.rows_for(PATIENTS, 20)).splitlines(keepends=True)
    text[3] = text[3].replace(",", ";", 3)  # a row with too few fields: 1 of 20 is over the 1% limit
    name = kit.file_name(PATIENTS, "20250101")
    folder = kit.write_batch(tmp_path / "landing", "b1", {name: ("registration__patients", "".join(text).encode(), 20)})
    with open_snowflake(connection=connect()) as warehouse:
        result = load_batch(folder, kit.REGISTRY, warehouse)
        tables = warehouse.run("SELECT table_name FROM information_schema.tables WHERE table_schema = 'RAW'")
        ledger = warehouse.run("SELECT outcome FROM ledger.load_ledger")
    assert result.outcome == "failed" and "line 4: too few fields" in result.message
    assert {t for (t,) in tables} <= {"_REJECTS"}
    assert ledger == [("failed",)]


def test_snowflake_changed_file_with_same_name_is_content_conflict(emulator, tmp_path: Path) -> None:
    name = kit.file_name(PATIENTS, "20250101")
    first = kit.file_bytes(PATIENTS, kit.rows_for(PATIENTS, 10))
    changed = kit.file_bytes(PATIENTS, kit.rows_for(PATIENTS, 11))
    with open_snowflake(connection=connect()) as warehouse:
        ok = load_batch(
            kit.write_batch(tmp_path / "a", "b1", {name: ("registration__patients", first, 10)}),
            kit.REGISTRY,
            warehouse,
        )
        bad = load_batch(
            kit.write_batch(tmp_path / "b", "b2", {name: ("registration__patients", changed, 11)}),
            kit.REGISTRY,
            warehouse,
        )
        count = scalar(warehouse, f"SELECT COUNT(*) FROM raw.{PATIENTS.table}")
    assert ok.outcome == "loaded" and bad.outcome == "failed"
    assert "content conflict" in bad.message and name in bad.message
    assert count == 10


def test_snowflake_dry_run_writes_nothing(emulator, tmp_path: Path) -> None:
    folder = kit.write_batch(tmp_path / "landing", "b1", kit.standard_files("20250101", n=15))
    with open_snowflake(connection=connect(), dry_run=True) as warehouse:
        result = load_batch(folder, kit.REGISTRY, warehouse)
        tables = warehouse.run("SELECT table_name FROM information_schema.tables WHERE table_schema = 'RAW'")
        ledger = scalar(warehouse, "SELECT COUNT(*) FROM ledger.load_ledger")
        rejects = scalar(warehouse, "SELECT COUNT(*) FROM raw._rejects")
        statements = warehouse.statements
    assert result.ok and all(f.rows_loaded == 15 for f in result.files)
    assert all("dry run: nothing written" in f.message for f in result.files)
    assert {t for (t,) in tables} == {"_REJECTS"} and ledger == 0 and rejects == 0
    assert sum("VALIDATION_MODE = RETURN_ERRORS" in s for s in statements) == len(result.files)
    writes = [s for s in statements if s.startswith(("INSERT", "COPY")) and "VALIDATION_MODE" not in s]
    assert writes == []


def test_snowflake_compiled_sql_stages_copies_by_file_format_and_never_forces(emulator, tmp_path: Path) -> None:
    folder = kit.write_batch(tmp_path / "landing", "b1", kit.standard_files("20250101", n=5))
    with open_snowflake(connection=connect(), registry=kit.REGISTRY) as warehouse:
        assert load_batch(folder, kit.REGISTRY, warehouse).outcome == "loaded"
        statements = warehouse.statements
    text = "\n".join(statements)
    puts = [s for s in statements if s.startswith("PUT 'file://")]
    copies = [s for s in statements if s.startswith("COPY INTO raw.")]
    formats = [s for s in statements if s.startswith("CREATE FILE FORMAT IF NOT EXISTS raw.ff_")]
    assert len(puts) == len(copies) == 5 and len(formats) == len(kit.REGISTRY.sources)
    assert all("@raw.hospital_landing/b1/" in s for s in puts)
    assert all("METADATA$FILE_ROW_NUMBER" in s and "FORMAT_NAME" in s for s in copies)
    assert all("ON_ERROR = ABORT_STATEMENT" in s for s in copies)  # no rejects: any COPY error aborts
    assert "FIELD_DELIMITER = '|'" in text and "FIELD_DELIMITER = '\\t'" in text and "SKIP_HEADER = 1" in text
    assert "CONVERT_TIMEZONE('America/Chicago', 'UTC'" in text
    assert "FORCE" not in text.upper()
    assert statements.count("BEGIN") == 1 and statements.count("COMMIT") == 1  # no DDL inside the batch


def test_snowflake_rolls_back_rows_committed_by_ddl_when_a_later_file_fails(emulator, tmp_path: Path) -> None:
    # Without the registry up front, the first load creates tables mid-batch: Snowflake commits before DDL.
    files = kit.standard_files("20250101", n=10)
    claims = kit.REGISTRY["claims__claims"]
    name = kit.file_name(claims, "20250101")  # the last file: the four before it were committed by its DDL
    files[name] = ("claims__claims", files[name][1], 11)  # manifest row count wrong: the batch fails
    with open_snowflake(connection=connect()) as warehouse:
        result = load_batch(kit.write_batch(tmp_path / "l", "b1", files), kit.REGISTRY, warehouse)
        tables = warehouse.run("SELECT table_name FROM information_schema.tables WHERE table_schema = 'RAW'")
        counts = {t: scalar(warehouse, f"SELECT COUNT(*) FROM raw.{t}") for (t,) in tables}
        ledger = warehouse.run("SELECT DISTINCT outcome FROM ledger.load_ledger")
    assert result.outcome == "failed" and "manifest declares 11 rows" in result.message
    assert "COMMIT" in warehouse.statements[: warehouse.statements.index("ROLLBACK")]  # DDL committed mid-batch
    assert any(s.startswith("DELETE FROM raw.") for s in warehouse.statements)  # the compensation ran
    assert counts and all(count == 0 for count in counts.values())
    assert ledger == [("failed",)]


def test_snowflake_stores_local_timestamps_as_utc(emulator, tmp_path: Path) -> None:
    rows = kit.rows_for(PATIENTS, 2)
    rows[0]["registered_at"], rows[1]["registered_at"] = "2025-03-09 02:30:00", "2025-07-01 12:00:00"
    name = kit.file_name(PATIENTS, "20250101")
    folder = kit.write_batch(
        tmp_path / "l", "b1", {name: ("registration__patients", kit.file_bytes(PATIENTS, rows), 2)}
    )
    with open_snowflake(connection=connect()) as warehouse:
        assert load_batch(folder, kit.REGISTRY, warehouse).outcome == "loaded"
        stored = warehouse.run(f"SELECT registered_at FROM raw.{PATIENTS.table} ORDER BY _row_number")
    utc = [value.astimezone(dt.UTC).replace(tzinfo=None) for (value,) in stored]
    assert utc == [dt.datetime(2025, 3, 9, 8, 30), dt.datetime(2025, 7, 1, 17, 0)]  # CST -6 (gap), CDT -5


def test_snowflake_password_never_appears_in_logs_output_or_errors(emulator, tmp_path, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    env = {
        "SNOWFLAKE_ACCOUNT": "acct",
        "SNOWFLAKE_USER": "loader",
        "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD": CANARY,
        "SNOWFLAKE_PASSWORD": "other-" + CANARY,
        "SNOWFLAKE_DATABASE": "HOSPITAL",
    }
    params = params_from_env(env)
    assert params.password == CANARY  # the DBT_ENV_SECRET_ name wins
    folder = kit.write_batch(tmp_path / "landing", "b1", kit.standard_files("20250101", n=3))
    with open_snowflake(environ=env) as warehouse:
        result = load_batch(folder, kit.REGISTRY, warehouse)
        statements = "\n".join(warehouse.statements)
    print(render_summary(result), repr(params), str(params))
    with pytest.raises(SnowflakeConfigError) as missing:
        params_from_env({k: v for k, v in env.items() if k != "SNOWFLAKE_USER"})
    captured = capsys.readouterr()
    seen = "\n".join([caplog.text, captured.out, captured.err, statements, str(missing.value), repr(params)])
    assert result.outcome == "loaded"
    assert "SNOWFLAKE_USER" in str(missing.value)
    assert CANARY not in seen


def test_snowflake_missing_configuration_names_variables_not_values() -> None:
    with pytest.raises(SnowflakeConfigError) as error:
        params_from_env({"SNOWFLAKE_ACCOUNT": "acct", "SNOWFLAKE_USER": "u"})
    assert "DBT_ENV_SECRET_SNOWFLAKE_PASSWORD or SNOWFLAKE_PASSWORD" in str(error.value)


def test_snowflake_unterminated_quote_rejects_its_line_and_stages_the_next_on_their_own(emulator, tmp_path) -> None:
    """The loader's conservation rule holds before PUT: the quote's own line is rejected, the next lines are
    loaded on their own, and the staged copy carries that line as one Snowflake rejects alone."""
    rows = kit.rows_for(PATIENTS, 120)
    header, *lines = kit.csv_text(PATIENTS, rows, quote_all=True).rstrip("\n").split("\n")
    fields = [field.strip('"') for field in lines[40].split(",")]
    fields[1] = '"' + fields[1]  # opened, never closed: the parser would read line 43 into it
    lines[40] = ",".join(fields)
    lines = [line.replace("\n", "") for line in lines]
    text = "\r\n".join([header, *lines[:60]]) + "\n" + "\n".join(lines[60:]) + "\n"  # mixed line endings too
    name = kit.file_name(PATIENTS, "20250101")
    folder = kit.write_batch(tmp_path / "landing", "b1", {name: ("registration__patients", text.encode(), 120)})
    with open_snowflake(connection=connect()) as warehouse:
        result = load_batch(folder, kit.REGISTRY, warehouse)
        assert result.outcome == "loaded", render_summary(result)
        rejects = warehouse.run("SELECT line_number, row_number, reason FROM raw._rejects")
        numbers = warehouse.run(f"SELECT mrn, _row_number FROM raw.{PATIENTS.table}")
    assert [(line, row) for line, row, _ in rejects] == [(42, 41)]
    assert "unterminated or misplaced quote" in rejects[0][2]
    assert dict(numbers) == {row["mrn"]: i + 1 for i, row in enumerate(rows) if i != 40}
    assert result.files[0].rows_in_file == 120


def test_snowflake_refuses_a_link_before_anything_is_staged(emulator, tmp_path: Path) -> None:
    name = kit.file_name(PATIENTS, "20250101")
    outside = tmp_path / "outside.csv"
    outside.write_bytes(kit.file_bytes(PATIENTS, kit.rows_for(PATIENTS, 5)))
    folder = kit.write_batch(tmp_path / "landing", "b1", {name: ("registration__patients", outside.read_bytes(), 5)})
    (folder / name).unlink()
    (folder / name).symlink_to(outside)
    with open_snowflake(connection=connect()) as warehouse:
        result = load_batch(folder, kit.REGISTRY, warehouse)
        statements = warehouse.statements
    assert result.outcome == "failed" and "symbolic link" in result.message and name in result.message
    assert not any(s.startswith("PUT") for s in statements)
