"""The bad-input catalogue of the loader: every case with its expected outcome, and nothing partial left."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flows.warehouse import load_batch, open_warehouse

pytestmark = pytest.mark.integration

_KIT = Path(__file__).resolve().parents[1] / "fixtures" / "loader" / "batchkit.py"
_spec = importlib.util.spec_from_file_location("batchkit", _KIT)
kit = importlib.util.module_from_spec(_spec)
sys.modules["batchkit"] = kit
_spec.loader.exec_module(kit)

PATIENTS = kit.REGISTRY["registration__patients"]
BASE_FILES = kit.standard_files("20250101", n=30)
PATIENTS_BASE = kit.file_name(PATIENTS, "20250101")
NEW = kit.file_name(PATIENTS, "20250102")


def patients_text(n: int, start: int = 1000) -> str:
    return kit.csv_text(PATIENTS, kit.rows_for(PATIENTS, n, start))


def with_bad_lines(n: int, bad: dict[int, str]) -> str:
    """Patients text whose data row i (1-based, so file line i + 1) is replaced by ``bad[i]``."""
    lines = patients_text(n).splitlines(keepends=True)
    for i, text in bad.items():
        lines[i] = text + "\n"
    return "".join(lines)


def single(name: str, data: bytes, rows: int) -> dict[str, tuple[str, bytes, int]]:
    return {name: ("registration__patients", data, rows)}


@dataclass
class Case:
    """One bad input: how to land it, what the load must do, what the message must name."""

    land: Callable[[Path, Path], Path]  # (landing, database) -> batch folder
    outcome: str
    says: list[str] = field(default_factory=list)
    rejected: int | None = None


def _batch(files: dict, **kwargs) -> Callable[[Path, Path], Path]:
    return lambda landing, _db: kit.write_batch(landing, "bad-batch", files, **kwargs)


def _manifest_lists_missing(landing: Path, _db: Path) -> Path:
    folder = kit.write_batch(landing, "bad-batch", single(NEW, patients_text(5).encode(), 5))
    (folder / NEW).unlink()
    return folder


def _undeclared_file(landing: Path, _db: Path) -> Path:
    folder = kit.write_batch(landing, "bad-batch", single(NEW, patients_text(5).encode(), 5))
    (folder / kit.file_name(PATIENTS, "20250103")).write_text(patients_text(5))
    return folder


def _checksum_mismatch(landing: Path, _db: Path) -> Path:
    folder = kit.write_batch(landing, "bad-batch", single(NEW, patients_text(50).encode(), 50))
    data = (folder / NEW).read_bytes()
    (folder / NEW).write_bytes(data[: len(data) // 2])  # truncated in transit, after the manifest was written
    return folder


def _renamed_column() -> bytes:
    text = patients_text(10)
    header, rest = text.split("\n", 1)
    return (header.replace("birth_date", "date_of_birth") + "\n" + rest).encode()


TRUNCATED = patients_text(50)[:-25]
MALFORMED = with_bad_lines(20, {3: "only,three,fields", 7: "x"})
ONE_BAD_OF_300 = with_bad_lines(300, {150: "too,few"})
LATIN1 = patients_text(300).encode().replace(b"first_name-1100", b"first_name-1100\xe9")
CRLF = patients_text(40).replace("\n", "\r\n")
WRONG_DELIMITER = kit.csv_text(PATIENTS, kit.rows_for(PATIENTS, 10), delimiter=";")
HEADER_ONLY = ",".join(PATIENTS.column_names) + "\n"

CASES: dict[str, Case] = {
    "malformed rows over the threshold": Case(
        _batch(single(NEW, MALFORMED.encode(), 20)), "failed", [NEW, "line 4", "line 8", "too few fields"]
    ),
    "malformed row under the threshold": Case(
        _batch(single(NEW, ONE_BAD_OF_300.encode(), 300)),
        "loaded",
        ["1 rejected", "first: line 151: too few fields"],
        rejected=1,
    ),
    "wrong delimiter": Case(_batch(single(NEW, WRONG_DELIMITER.encode(), 10)), "failed", [NEW, "';'", "delimiter"]),
    "utf-8 BOM": Case(_batch(single(NEW, b"\xef\xbb\xbf" + patients_text(40).encode(), 40)), "loaded", rejected=0),
    "latin-1 bytes in a utf-8 file": Case(_batch(single(NEW, LATIN1, 300)), "loaded", ["1 rejected"], rejected=1),
    "CRLF line endings": Case(_batch(single(NEW, CRLF.encode(), 40)), "loaded", rejected=0),
    "truncated last line": Case(
        _batch(single(NEW, TRUNCATED.encode(), 50)), "failed", [NEW, "line 51", "too few fields"]
    ),
    "empty file": Case(_batch(single(NEW, b"", 0)), "failed", [NEW, "empty"]),
    "header only": Case(_batch(single(NEW, HEADER_ONLY.encode(), 0)), "loaded", ["header only"], rejected=0),
    "same file delivered twice": Case(
        _batch({PATIENTS_BASE: BASE_FILES[PATIENTS_BASE]}), "skipped", ["already loaded", "batch base-batch"]
    ),
    "same file under another name": Case(
        _batch(single(NEW, BASE_FILES[PATIENTS_BASE][1], 30)), "skipped", [PATIENTS_BASE, "base-batch"]
    ),
    "loaded name with changed content": Case(
        _batch(single(PATIENTS_BASE, patients_text(30).encode(), 30)),
        "failed",
        [PATIENTS_BASE, "content conflict"],
    ),
    "file in the manifest but missing": Case(_manifest_lists_missing, "failed", [NEW, "missing"]),
    "file present but not in the manifest": Case(
        _undeclared_file, "failed", [kit.file_name(PATIENTS, "20250103"), "not listed in manifest.json"]
    ),
    "checksum mismatch": Case(_checksum_mismatch, "failed", [NEW, "bytes"]),
    "column renamed": Case(
        _batch(single(NEW, _renamed_column(), 10)), "failed", [NEW, "'birth_date'", "'date_of_birth'"]
    ),
    "header missing": Case(
        _batch(single(NEW, patients_text(10).split("\n", 1)[1].encode(), 10)),
        "failed",
        [NEW, "header is missing"],
    ),
    "manifest row count differs": Case(
        _batch(single(NEW, patients_text(10).encode(), 12)), "failed", [NEW, "declares 12 rows", "holds 10"]
    ),
    "quote left open": Case(
        _batch(single(NEW, with_bad_lines(400, {100: 'mrn-x,"open quote'}).encode(), 400)),
        "loaded",
        ["1 rejected", "line 101: unterminated or misplaced quote"],
        rejected=1,
    ),
}


@pytest.fixture
def loaded_base(tmp_path: Path) -> tuple[Path, Path]:
    """A warehouse holding one good batch (every format), and the landing folder."""
    landing, database = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    folder = kit.write_batch(landing, "base-batch", BASE_FILES)
    result = run(folder, database)
    assert result.outcome == "loaded", result.message
    return landing, database


def run(folder: Path, database: Path, registry=kit.REGISTRY):
    with open_warehouse("duckdb", duckdb_path=database) as warehouse:
        return load_batch(folder, registry, warehouse)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_loader_bad_input_catalogue(case: Case, loaded_base: tuple[Path, Path]) -> None:
    landing, database = loaded_base
    before = kit.snapshot(database)
    result = run(case.land(landing, database), database)
    after = kit.snapshot(database)

    assert result.outcome == case.outcome, result.message
    text = result.message + " | " + " | ".join(f.message for f in result.files)
    for fragment in case.says:
        assert fragment in text
    assert "name-10" not in text  # values look like "first_name-10xx"; messages name lines, never values
    ledger = kit.ledger_rows(database, "bad-batch")
    assert ledger and {row["outcome"] for row in ledger} == {case.outcome}
    old_ledger = [row for row in after["ledger.load_ledger"] if row[0] != "bad-batch"]
    assert old_ledger == before["ledger.load_ledger"]
    data_before = {k: v for k, v in before.items() if k.startswith("raw.")}
    data_after = {k: v for k, v in after.items() if k.startswith("raw.")}
    if case.outcome != "loaded":
        assert data_after == data_before  # nothing partial: no row, no reject, no table
        return
    (file,) = result.files
    assert file.rows_in_file == file.rows_loaded + file.rows_rejected
    assert file.rows_rejected == case.rejected
    table = "raw." + PATIENTS.table
    assert len(data_after[table]) - len(data_before[table]) == file.rows_loaded
    assert len(data_after["raw._rejects"]) - len(data_before["raw._rejects"]) == file.rows_rejected
    assert all(v == data_before[k] for k, v in data_before.items() if k not in (table, "raw._rejects"))


def test_loader_messages_never_quote_values(loaded_base: tuple[Path, Path]) -> None:
    landing, database = loaded_base
    secret = "Zebediah-Quixote"
    text = with_bad_lines(20, {2: f"mrn-1,{secret},x", 5: f"mrn-2,{secret}"})
    result = run(kit.write_batch(landing, "bad-batch", single(NEW, text.encode(), 20)), database)
    assert result.outcome == "failed"
    assert secret not in result.message and all(secret not in f.message for f in result.files)
    assert "line 3" in result.message and "line 6" in result.message
