"""Loading whole batches: idempotent re-runs, a killed load, time zones, line numbers, policies, formats."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from flows.contracts.registry import load_registry
from flows.warehouse import load_batch, open_warehouse
from flows.warehouse.errors import WarehouseBusyError

pytestmark = pytest.mark.integration

_KIT = Path(__file__).resolve().parents[1] / "fixtures" / "loader" / "batchkit.py"
_spec = importlib.util.spec_from_file_location("batchkit", _KIT)
kit = importlib.util.module_from_spec(_spec)
sys.modules["batchkit"] = kit
_spec.loader.exec_module(kit)

REPO = Path(__file__).resolve().parents[2]
# The shared extracts sit beside the clone (../shared), or beside the folder of worktrees (../../shared).
EXTERNAL = (
    next((p for p in (REPO.parent / "shared", REPO.parent.parent / "shared") if p.is_dir()), REPO.parent / "shared")
    / "external"
    / "hospital_mgmt_system"
)
PATIENTS = kit.REGISTRY["registration__patients"]


def run(folder: Path, database: Path, registry=kit.REGISTRY, **kwargs):
    with open_warehouse("duckdb", duckdb_path=database) as warehouse:
        return load_batch(folder, registry, warehouse, **kwargs)


def query(database: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_loader_loads_every_format_and_counts_add_up(tmp_path: Path) -> None:
    files = kit.standard_files("20250101", n=25)
    result = run(kit.write_batch(tmp_path / "landing", "b1", files), tmp_path / "w.duckdb")
    assert result.outcome == "loaded", result.message
    for outcome in result.files:
        source = kit.REGISTRY[outcome.source]
        assert outcome.rows_in_file == outcome.rows_loaded + outcome.rows_rejected == files[outcome.file][2]
        count, lines = query(
            tmp_path / "w.duckdb",
            f"select count(*), list(_row_number order by _row_number) from raw.{source.table}",
        )[0]
        assert count == outcome.rows_loaded
        assert lines == list(range(1, count + 1))  # _row_number: the n-th row of the file, every format
    ledger = kit.ledger_rows(tmp_path / "w.duckdb", "b1")
    assert [row["outcome"] for row in ledger] == ["loaded"] * len(files)
    assert all(row["rows_in_file"] == row["rows_loaded"] + row["rows_rejected"] for row in ledger)


def test_loader_skips_redelivered_batch_and_leaves_tables_unchanged(tmp_path: Path) -> None:
    folder = kit.write_batch(tmp_path / "landing", "b1", kit.standard_files("20250101", n=10))
    first = run(folder, tmp_path / "w.duckdb")
    before = kit.snapshot(tmp_path / "w.duckdb")
    second = run(folder, tmp_path / "w.duckdb")
    after = kit.snapshot(tmp_path / "w.duckdb")
    assert first.outcome == "loaded" and second.outcome == "skipped"
    assert all(f.outcome == "skipped" and "already loaded" in f.message for f in second.files)
    assert {k: v for k, v in after.items() if k.startswith("raw.")} == {
        k: v for k, v in before.items() if k.startswith("raw.")
    }


def test_loader_skips_duplicate_content_within_one_batch(tmp_path: Path) -> None:
    data = kit.file_bytes(PATIENTS, kit.rows_for(PATIENTS, 5))
    files = {name: ("registration__patients", data, 5) for name in ("patients_a.csv", "patients_b.csv")}
    result = run(kit.write_batch(tmp_path / "landing", "b1", files), tmp_path / "w.duckdb")
    assert [f.outcome for f in result.files] == ["loaded", "skipped"]
    assert "patients_a.csv in this batch" in result.files[1].message
    assert query(tmp_path / "w.duckdb", f"select count(*) from raw.{PATIENTS.table}") == [(5,)]


def test_loader_reruns_a_failed_batch_once_fixed(tmp_path: Path) -> None:
    name = kit.file_name(PATIENTS, "20250101")
    folder = kit.write_batch(tmp_path / "landing", "b1", {name: ("registration__patients", b"", 0)})
    assert run(folder, tmp_path / "w.duckdb").outcome == "failed"
    good = kit.file_bytes(PATIENTS, kit.rows_for(PATIENTS, 7))
    fixed = kit.write_batch(tmp_path / "fixed", "b1", {name: ("registration__patients", good, 7)})
    result = run(fixed, tmp_path / "w.duckdb")
    assert result.outcome == "loaded", result.message
    assert [r["outcome"] for r in kit.ledger_rows(tmp_path / "w.duckdb", "b1")] == ["failed", "loaded"]


_KILLED_LOAD = """
import sys, time
from pathlib import Path
from flows.contracts.registry import load_registry
from flows.warehouse import load_batch, open_warehouse

marker = Path(sys.argv[3])
def pause(outcome):
    marker.write_text(outcome.file)
    time.sleep(60)  # killed here, mid-transaction, after the first file was written

with open_warehouse("duckdb", duckdb_path=Path(sys.argv[2])) as warehouse:
    load_batch(Path(sys.argv[1]), load_registry(), warehouse, on_file_loaded=pause)
"""


def test_loader_killed_mid_load_then_rerun_equals_clean_load(tmp_path: Path) -> None:
    folder = kit.write_batch(tmp_path / "landing", "b1", kit.standard_files("20250101", n=30))
    killed, clean, marker = tmp_path / "killed.duckdb", tmp_path / "clean.duckdb", tmp_path / "marker"
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_KILLED_LOAD), str(folder), str(killed), str(marker)], cwd=REPO
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the load never reached its first file"
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL

    leftovers = kit.snapshot(killed)
    assert all(rows == [] for rows in leftovers.values())  # no data, no rejects, no ledger row
    assert run(folder, killed).outcome == "loaded"
    assert run(folder, clean).outcome == "loaded"
    assert kit.snapshot(killed) == kit.snapshot(clean)


def test_loader_stores_local_timestamps_in_utc(tmp_path: Path) -> None:
    zone = ZoneInfo(PATIENTS.timezone)
    local = [dt.datetime(2025, 1, 15, 8, 0), dt.datetime(2025, 7, 15, 8, 0), dt.datetime(2024, 3, 10, 3, 30)]
    rows = kit.rows_for(PATIENTS, len(local))
    for row, stamp in zip(rows, local, strict=True):
        row["registered_at"] = stamp.strftime("%Y-%m-%d %H:%M:%S")
    claims = kit.REGISTRY["claims__claims"]
    claim_rows = kit.rows_for(claims, 2)
    claim_rows[0]["submitted_at"], claim_rows[1]["submitted_at"] = (
        "2025-03-04T13:45:00Z",
        "2025-03-04T13:45:00+02:00",
    )
    files = {
        "patients_1.csv": ("registration__patients", kit.file_bytes(PATIENTS, rows), 3),
        "claims_1.jsonl": ("claims__claims", kit.file_bytes(claims, claim_rows), 2),
    }
    run(kit.write_batch(tmp_path / "landing", "b1", files), tmp_path / "w.duckdb")
    stored = query(
        tmp_path / "w.duckdb",
        f"select epoch(registered_at)::bigint from raw.{PATIENTS.table} order by _row_number",
    )
    expected = [int(stamp.replace(tzinfo=zone).timestamp()) for stamp in local]  # zoneinfo, not DuckDB
    assert [s for (s,) in stored] == expected
    claimed = query(tmp_path / "w.duckdb", "select epoch(submitted_at)::bigint from raw.claims__claims order by 1")
    base = int(dt.datetime(2025, 3, 4, 13, 45, tzinfo=dt.UTC).timestamp())
    assert [c for (c,) in claimed] == [base - 2 * 3600, base]
    types = query(
        tmp_path / "w.duckdb",
        "select distinct data_type from duckdb_columns() where column_name in ('registered_at', 'submitted_at')",
    )
    assert types == [("TIMESTAMP WITH TIME ZONE",)]


@pytest.mark.parametrize("empty_line_in_value", [False, True], ids=["line-break-in-value", "empty-line-in-value"])
def test_loader_row_and_line_numbers_are_exact_with_blank_lines_quotes_and_rejects(
    tmp_path: Path, empty_line_in_value: bool
) -> None:
    rows = kit.rows_for(PATIENTS, 400)
    rows[10]["address_line"] = "12 Main St\nApt 4"  # a line break inside a quoted value
    if empty_line_in_value:
        rows[20]["address_line"] = "1 Side St\n\nBack"  # a line inside the value that looks blank
    lines = kit.csv_text(PATIENTS, rows).split("\n")
    lines.insert(5, "")  # a blank line
    lines[300] = "broken,row"  # a row with too few fields
    lines[350] = "broken,again"
    data = "\n".join(lines).encode()
    # Reference from Python's csv module: each record's start line and its position among the rows.
    reader = csv.reader(data.decode().splitlines(keepends=True))
    next(reader)
    records, line = [], 2
    for record in reader:
        if record:
            records.append((len(records) + 1, line, record[0]))
        line += 1 + sum(field.count("\n") for field in record)
    loaded = [row for row, _, first in records if first.startswith("mrn-")]
    rejected = [(ln, row) for row, ln, first in records if first == "broken"]
    files = {"patients_1.csv": ("registration__patients", data, len(records))}
    result = run(kit.write_batch(tmp_path / "landing", "b1", files), tmp_path / "w.duckdb", max_reject_rate=0.01)
    assert result.outcome == "loaded", result.message
    (outcome,) = result.files
    assert (outcome.rows_loaded, outcome.rows_rejected) == (400 - 2, 2)
    got = query(tmp_path / "w.duckdb", f"select _row_number from raw.{PATIENTS.table} order by _row_number")
    assert [g for (g,) in got] == loaded
    stored = query(tmp_path / "w.duckdb", "select line_number, row_number, raw_line from raw._rejects order by 1")
    assert [(ln, row) for ln, row, _ in stored] == rejected
    assert [raw for *_, raw in stored] == ["broken,row", "broken,again"]
    assert rejected[0][0] == lines.index("broken,row") + 1  # the reference agrees with the physical line


def test_loader_loads_unexpected_column_when_policy_allows(tmp_path: Path) -> None:
    registry = kit.registry_variant(tmp_path / "r.yml", {"registration__patients": {"unexpected_columns": "load"}})
    text = kit.csv_text(PATIENTS, kit.rows_for(PATIENTS, 4))
    header, rest = text.split("\n", 1)
    extra = "\n".join(line + ",vip" for line in rest.strip("\n").split("\n")) + "\n"
    files = {"patients_1.csv": ("registration__patients", (header + ",Loyalty Tier\n" + extra).encode(), 4)}
    result = run(kit.write_batch(tmp_path / "landing", "b1", files), tmp_path / "w.duckdb", registry=registry)
    assert result.outcome == "loaded", result.message
    assert "'Loyalty Tier'" in result.files[0].message and "unexpected_columns=load" in result.files[0].message
    assert query(tmp_path / "w.duckdb", f"select distinct loyalty_tier from raw.{PATIENTS.table}") == [("vip",)]


def test_loader_refuses_unexpected_column_under_fail_policy(tmp_path: Path) -> None:
    text = kit.csv_text(PATIENTS, kit.rows_for(PATIENTS, 2)).replace("updated_at\n", "updated_at,extra\n", 1)
    files = {"patients_1.csv": ("registration__patients", text.encode(), 2)}
    result = run(kit.write_batch(tmp_path / "landing", "b1", files), tmp_path / "w.duckdb")
    assert result.outcome == "failed"
    assert "'extra'" in result.message and "unexpected_columns=fail" in result.message


def test_loader_rejects_bad_json_lines_and_fails_broken_json_array(tmp_path: Path) -> None:
    claims = kit.REGISTRY["claims__claims"]
    lines = kit.file_bytes(claims, kit.rows_for(claims, 300)).decode().split("\n")
    lines[9] = '{"claim_id": "c-x", "billed_amount": "lots"'  # not valid JSON
    lines[19] = json.dumps({**kit.rows_for(claims, 1)[0], "billed_amount": "n/a"})  # not a decimal
    files = {"claims_1.jsonl": ("claims__claims", "\n".join(lines).encode(), 300)}
    result = run(kit.write_batch(tmp_path / "landing", "b1", files), tmp_path / "w.duckdb", max_reject_rate=0.05)
    assert result.outcome == "loaded", result.message
    assert (result.files[0].rows_loaded, result.files[0].rows_rejected) == (298, 2)
    reasons = query(tmp_path / "w.duckdb", "select line_number, row_number, reason from raw._rejects order by 1")
    assert reasons[0][:2] == (10, 10) and "not valid JSON" in reasons[0][2]
    assert reasons[1] == (20, 20, "column billed_amount: not a valid decimal(12,2)")
    hospitals = kit.REGISTRY["facilities__hospitals"]
    broken = kit.file_bytes(hospitals, kit.rows_for(hospitals, 3))[:-10]
    files = {"hospitals_1.json": ("facilities__hospitals", broken, 3)}
    failed = run(kit.write_batch(tmp_path / "landing", "b2", files), tmp_path / "w.duckdb")
    assert failed.outcome == "failed" and "hospitals_1.json line" in failed.message


def test_loader_reads_latin1_source_when_the_registry_says_so(tmp_path: Path) -> None:
    registry = kit.registry_variant(tmp_path / "r.yml", {"registration__patients": {"encoding": "latin-1"}})
    rows = kit.rows_for(PATIENTS, 3)
    rows[1]["city"] = "Montréal"
    data = kit.csv_text(PATIENTS, rows).encode("latin-1")
    files = {"patients_1.csv": ("registration__patients", data, 3)}
    result = run(kit.write_batch(tmp_path / "landing", "b1", files), tmp_path / "w.duckdb", registry=registry)
    assert result.outcome == "loaded", result.message
    assert ("Montréal",) in query(tmp_path / "w.duckdb", f"select city from raw.{PATIENTS.table}")


def test_loader_reports_a_busy_warehouse(tmp_path: Path) -> None:
    database = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(database)!r}); print(1, flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        holder.stdout.readline()
        with pytest.raises(WarehouseBusyError, match="in use by another process"):
            open_warehouse("duckdb", duckdb_path=database)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.skipif(not EXTERNAL.is_dir(), reason=f"external sample extracts not found at {EXTERNAL}")
def test_loader_loads_external_extracts_by_registry_alone(tmp_path: Path) -> None:
    registry = load_registry(REPO / "flows" / "registries" / "hospital_mgmt_system.yml")
    result = run(EXTERNAL, tmp_path / "w.duckdb", registry=registry)
    assert result.outcome == "loaded", result.message
    assert any("no manifest.json" in note for note in result.notes)
    assert len(result.files) == 6
    for outcome in result.files:
        source = registry[outcome.source]
        path = EXTERNAL / outcome.file
        assert path.read_bytes().count(b"\r\n") == path.read_bytes().count(b"\n")  # CRLF throughout
        with path.open(newline="", encoding="utf-8") as handle:
            records = list(csv.reader(handle, delimiter=source.delimiter))[1:]
        assert outcome.rows_in_file == len(records) == outcome.rows_loaded + outcome.rows_rejected
        assert query(tmp_path / "w.duckdb", f"select count(*) from raw.{source.table}") == [(outcome.rows_loaded,)]
    # Quoted names holding the '^' delimiter load whole, not split into extra fields.
    with (EXTERNAL / "insurance.csv").open(newline="", encoding="utf-8") as handle:
        quoted = sum("^" in row[1] for row in list(csv.reader(handle, delimiter="^"))[1:])
    got = query(tmp_path / "w.duckdb", "select count(*) from raw.hms__insurance where insurance_name like '%^%'")
    assert quoted > 0 and got == [(quoted,)]


def test_loader_reads_the_lines_after_an_unterminated_quote_on_their_own(tmp_path: Path) -> None:
    # An unterminated quote makes the parser swallow the following lines into one bad record (here 300 of
    # them, up to the end of the file). Without a manifest nothing else would notice: the quote's own line is
    # rejected and the lines after it are read on their own.
    lines = kit.csv_text(PATIENTS, kit.rows_for(PATIENTS, 400)).split("\n")
    lines[100] = 'mrn-x,"open quote'
    folder = tmp_path / "landing" / "b1"
    folder.mkdir(parents=True)
    (folder / "patients_1.csv").write_text("\n".join(lines))
    result = run(folder, tmp_path / "w.duckdb")
    assert result.outcome == "loaded", result.message
    (outcome,) = result.files
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected) == (400, 399, 1)
    assert "line 101: unterminated or misplaced quote" in outcome.message
    numbers = query(tmp_path / "w.duckdb", f"select _row_number from raw.{PATIENTS.table} order by 1")
    assert [n for (n,) in numbers] == [n for n in range(1, 401) if n != 100]
    assert query(tmp_path / "w.duckdb", "select line_number, row_number, raw_line from raw._rejects") == [
        (101, 100, 'mrn-x,"open quote')
    ]
