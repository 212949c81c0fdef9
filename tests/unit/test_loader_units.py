"""Pure pieces of the loader: batch ids, manifests, column plans, fingerprints, JSON parsing, summaries."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest

from flows.contracts.registry import load_registry
from flows.warehouse.batch import batch_folder, plan_batch, validate_batch_id
from flows.warehouse.batchdir import BatchDir
from flows.warehouse.csvscan import alone_reason, scan, text_lines
from flows.warehouse.errors import BatchIdError, FileFormatError, FileKindError, ManifestError, SchemaDriftError
from flows.warehouse.files import fingerprint, normalize_name, plan_columns, read_header
from flows.warehouse.jsonfiles import iter_json_array, parse_json_file
from flows.warehouse.model import BatchResult, FileOutcome, exceeds_reject_threshold, reject_allowance
from flows.warehouse.summary import render_summary

pytestmark = pytest.mark.unit

REGISTRY = load_registry()
PATIENTS = REGISTRY["registration__patients"]
CLAIMS = REGISTRY["claims__claims"]


@pytest.mark.parametrize(
    "batch_id",
    ["../x", "..", "a/b", "/etc", "x/../../y", "", ".hidden", "a\\b", "a" * 129, "a..b", "a b", "é"],
)
def test_loader_refuses_batch_ids_that_are_not_plain_names(batch_id: str, tmp_path: Path) -> None:
    with pytest.raises(BatchIdError):
        validate_batch_id(batch_id)
    with pytest.raises(BatchIdError):
        batch_folder(tmp_path, batch_id)


@pytest.mark.parametrize("batch_id", ["initial-20240101-20251231", "b1", "2025.03.04_x", "A" * 128])
def test_loader_accepts_plain_batch_ids(batch_id: str) -> None:
    assert validate_batch_id(batch_id) == batch_id


def _manifest(folder: Path, files: list[dict], **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"batch_id": folder.name, "files": files, **extra}))


def test_loader_ignores_declared_ground_truth_file(tmp_path: Path) -> None:
    folder = tmp_path / "b1"
    _manifest(folder, [{"file": "patients_1.csv", "source": PATIENTS.name}], ground_truth="defects.ground_truth.csv")
    (folder / "patients_1.csv").write_text("x")
    (folder / "defects.ground_truth.csv").write_text("x")
    plan = plan_batch(folder, REGISTRY, "b1")
    assert [f.name for f in plan.files] == ["patients_1.csv"] and plan.has_manifest


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"file": "../patients_1.csv", "source": PATIENTS.name}, "not a plain file name"),
        ({"file": "patients_1.csv", "source": "nope__nope"}, "not in the registry"),
        ({"file": "claims_1.csv", "source": PATIENTS.name}, "does not match its pattern"),
        ({"file": "patients_1.csv", "rows": -1}, "non-negative integer"),
        ({"file": "patients_1.csv", "sha256": "XYZ"}, "64 lower-case hex"),
    ],
)
def test_loader_refuses_bad_manifest_entries(entry: dict, fragment: str, tmp_path: Path) -> None:
    folder = tmp_path / "b1"
    _manifest(folder, [entry])
    with pytest.raises(ManifestError, match=fragment):
        plan_batch(folder, REGISTRY, "b1")


def test_loader_refuses_manifest_of_another_batch(tmp_path: Path) -> None:
    folder = tmp_path / "b1"
    _manifest(folder, [])
    (folder / "manifest.json").write_text(json.dumps({"batch_id": "b2", "files": []}))
    with pytest.raises(ManifestError, match="declares batch_id 'b2'"):
        plan_batch(folder, REGISTRY, "b1")


def test_loader_without_manifest_matches_files_by_pattern(tmp_path: Path) -> None:
    folder = tmp_path / "b1"
    folder.mkdir()
    (folder / "patients_1.csv").write_text("x")
    (folder / "claims_1.jsonl").write_text("x")
    plan = plan_batch(folder, REGISTRY, "b1")
    assert {f.name: f.source.name for f in plan.files} == {
        "claims_1.jsonl": "claims__claims",
        "patients_1.csv": "registration__patients",
    }
    assert not plan.has_manifest and "no manifest.json" in plan.notes[0]
    (folder / "readme.md").write_text("x")
    with pytest.raises(ManifestError, match=r"readme\.md: no source"):
        plan_batch(folder, REGISTRY, "b1")


def test_loader_column_plan_follows_file_order_and_names_missing_columns() -> None:
    names = list(reversed(PATIENTS.column_names))
    columns, notes = plan_columns("f.csv", PATIENTS, names)
    assert [c.name for c in columns] == names and notes == []
    with pytest.raises(SchemaDriftError, match=r"'ssn'.*missing.*'social'"):
        plan_columns("f.csv", PATIENTS, [n if n != "ssn" else "social" for n in PATIENTS.column_names])
    with pytest.raises(SchemaDriftError, match="twice"):
        plan_columns("f.csv", PATIENTS, [*PATIENTS.column_names, "MRN"])


def test_loader_column_plan_applies_unexpected_column_policy() -> None:
    found = [*PATIENTS.column_names, "Loyalty Tier"]
    with pytest.raises(SchemaDriftError, match="unexpected_columns=fail"):
        plan_columns("f.csv", PATIENTS, found)
    permissive = PATIENTS.model_copy(update={"unexpected_columns": "load"})
    columns, notes = plan_columns("f.csv", permissive, found)
    assert columns[-1].name == "loyalty_tier" and not columns[-1].expected and "'Loyalty Tier'" in notes[0]
    assert normalize_name("2nd Phone #") == "col_2nd_phone"


def test_loader_fingerprint_counts_lines_and_hashes(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    data = b"a,b\r\n1,2\r\n\r\n3,4"
    path.write_bytes(data)
    facts = fingerprint(path)
    assert facts.sha256 == hashlib.sha256(data).hexdigest() and facts.size == len(data)
    assert facts.lines == 4 and not facts.ends_with_newline
    path.write_bytes(b"a,b\n1,2\n")
    facts = fingerprint(path)
    assert facts.lines == 2 and facts.ends_with_newline


def test_loader_reads_header_with_bom_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b'\xef\xbb\xbfmrn,"first_name",last_name\r\n1,2,3\r\n')
    assert read_header(path, PATIENTS) == ["mrn", "first_name", "last_name"]
    path.write_bytes(b"")
    with pytest.raises(FileFormatError, match="empty"):
        read_header(path, PATIENTS)


def test_loader_parses_json_lines_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "claims_1.jsonl"
    good = {c.name: "1" for c in CLAIMS.columns} | {"status_history": [{"s": "paid"}]}
    lines = [json.dumps(good), "", "[1, 2]", "{broken", json.dumps(good | {"mrn": {"nested": 1}})]
    path.write_text("\n".join(lines) + "\n")
    parsed = parse_json_file(path, CLAIMS)
    assert parsed.rows_in_file == 4 and parsed.table.num_rows == 1
    assert parsed.table.column("_line").to_pylist() == [1]
    assert parsed.table.column("status_history").to_pylist() == ['[{"s":"paid"}]']
    assert [(r.line_number, r.reason.split(" (")[0]) for r in sorted(parsed.rejects, key=lambda r: r.line_number)] == [
        (3, "line is not a JSON object"),
        (4, "not valid JSON"),
        (5, "column mrn: an object or array, not a value"),
    ]


def test_loader_takes_an_empty_json_lines_file_as_zero_records_but_not_an_empty_json_file(tmp_path: Path) -> None:
    path = tmp_path / "claims_1.jsonl"
    path.write_bytes(b"")  # a quiet day: no claims
    parsed = parse_json_file(path, CLAIMS)
    assert (parsed.rows_in_file, parsed.table.num_rows, parsed.rejects) == (0, 0, [])
    assert [c.name for c in CLAIMS.columns if c.name not in parsed.table.column_names] == []
    hospitals = tmp_path / "hospitals_1.json"
    hospitals.write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"hospitals_1\.json: the file is empty"):
        parse_json_file(hospitals, REGISTRY["facilities__hospitals"])


def test_loader_fails_json_array_that_does_not_parse(tmp_path: Path) -> None:
    hospitals = REGISTRY["facilities__hospitals"]
    path = tmp_path / "hospitals_1.json"
    path.write_text('[\n {"hospital_id": "h1"},\n {"hospital_id": \n')
    with pytest.raises(FileFormatError, match=r"hospitals_1.json line 4 column 1"):
        parse_json_file(path, hospitals)


@pytest.mark.parametrize(
    ("rejected", "rows", "rate", "fails"),
    [(1, 100, 0.01, False), (2, 100, 0.01, True), (0, 0, 0, False), (1, 1, 1.0, False)],
)
def test_loader_reject_threshold(rejected: int, rows: int, rate: float, fails: bool) -> None:
    assert exceeds_reject_threshold(rejected, rows, rate) is fails
    assert (rejected > reject_allowance(rows, rate)) is fails


def test_loader_summary_lists_every_file() -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    files = [
        FileOutcome(
            "patients_1.csv",
            PATIENTS.name,
            "loaded",
            "10 rows loaded",
            rows_in_file=11,
            rows_loaded=10,
            rows_rejected=1,
        ),
        FileOutcome("claims_1.jsonl", CLAIMS.name, "skipped", "already loaded"),
    ]
    text = render_summary(BatchResult("b1", Path("landing/b1"), "loaded", "batch b1: 1 file(s) loaded", files, now))
    lines = text.splitlines()
    assert lines[1].split() == [
        "file",
        "source",
        "rows",
        "in",
        "file",
        "loaded",
        "rejected",
        "outcome",
        "message",
    ]
    assert lines[3].split()[:6] == ["patients_1.csv", PATIENTS.name, "11", "10", "1", "loaded"]
    assert lines[4].split()[:6] == ["claims_1.jsonl", CLAIMS.name, "-", "0", "0", "skipped"]


@pytest.mark.parametrize(
    ("data", "endings", "lines", "stray"),
    [
        (b"a\nb\n", "lf", 2, None),
        (b"a\r\nb\r\n", "crlf", 2, None),
        (b"a\r\nb\nc", "mixed", 3, None),
        (b"a\rb\r", "cr", 2, None),
        (b"a\nb\rc\nd\n", "stray-cr", 3, 2),
        (b"abc", "none", 1, None),
    ],
    ids=["lf", "crlf", "mixed", "cr", "stray-cr", "none"],
)
def test_loader_fingerprint_classifies_line_endings(
    tmp_path: Path, data: bytes, endings: str, lines: int, stray: int | None
) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    facts = fingerprint(path)
    assert (facts.line_endings, facts.lines, facts.first_stray_cr_line) == (endings, lines, stray)


def test_loader_fingerprint_sees_a_crlf_split_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a\r\n" + b"x" * (8 * 1024 * 1024 - 4) + b"\r\nq\r\n")  # the second CR ends the first chunk
    facts = fingerprint(path)
    assert (facts.line_endings, facts.lines) == ("crlf", 3)


@pytest.mark.parametrize(
    ("text", "where"),
    [('{"batch_id": "b1",\n "files": [}', "line 2 column 12"), ('{"files": []', "line 1 column 13")],
)
def test_loader_names_line_and_column_of_an_invalid_manifest(tmp_path: Path, text: str, where: str) -> None:
    folder = tmp_path / "b1"
    folder.mkdir()
    (folder / "manifest.json").write_text(text)
    with pytest.raises(ManifestError, match=f"manifest.json {where}: not valid JSON") as error:
        plan_batch(folder, REGISTRY, "b1")
    assert "re-send" in str(error.value)


def test_loader_names_the_byte_of_a_manifest_that_is_not_utf8(tmp_path: Path) -> None:
    folder = tmp_path / "b1"
    folder.mkdir()
    (folder / "manifest.json").write_bytes(b'{"files": [],\n "note": "caf\xe9"}')
    with pytest.raises(ManifestError, match=r"manifest.json line 2 column 14: byte 28 is not valid UTF-8"):
        plan_batch(folder, REGISTRY, "b1")


def test_loader_scans_csv_records_reading_an_unterminated_quote_alone() -> None:
    text = b'a,b,c\nx1,1,y\n"x2,2,y\nx3,3,y\nx4,4,"q, r"\nx5,5,"multi\nline"\nx6,"a"b,c\n'
    records = list(scan(text_lines([text], "utf-8"), {"delimiter": ",", "quotechar": '"'}, 3))
    got = [(r.first, r.last, r.alone, r.fields) for r in records]
    assert got == [
        (1, 1, False, ["a", "b", "c"]),
        (2, 2, False, ["x1", "1", "y"]),
        (3, 5, True, None),  # the quote opened on line 3 ran to line 5: line 3 alone is one rejected row
        (4, 4, False, ["x3", "3", "y"]),  # the lines it swallowed are read again, on their own
        (5, 5, False, ["x4", "4", "q, r"]),
        (6, 7, False, ["x5", "5", "multi\nline"]),  # a well-formed quoted value may span lines
        (8, 8, True, None),  # a misplaced quote: its line alone
    ]
    assert alone_reason(records[2], 3, ",").startswith("unterminated or misplaced quote: the quoted value")


def test_loader_streams_json_array_elements_with_their_lines() -> None:
    elements = [{"a": 1}, [1, 2], "s", {"b": "x\ny"}, {"c": [{"d": None}]}]
    text = json.dumps(elements, indent=2).encode()
    for size in (1, 5, 64, 1 << 20):  # chunk boundaries anywhere
        got = list(iter_json_array(io.BytesIO(text), "f.json", "utf-8", chunk_size=size))
        assert [json.loads(e.text) for e in got] == elements
        assert [e.line for e in got] == [2, 5, 9, 10, 13]


def test_loader_refuses_links_and_special_files_by_kind(tmp_path: Path) -> None:
    folder = tmp_path / "b1"
    folder.mkdir()
    (folder / "f.csv").write_text("x")
    (folder / "link.csv").symlink_to(folder / "f.csv")
    (folder / "sub").mkdir()
    with BatchDir(folder) as directory:
        assert directory.kind("f.csv") == "regular file" and directory.kind("nope") is None
        with pytest.raises(FileKindError, match=r"link\.csv: is a symbolic link"):
            directory.open("link.csv")
        with pytest.raises(FileKindError, match=r"sub: is not a regular file \(it is a folder\)"):
            directory.require_regular("sub")
        opened = directory.open("f.csv")
        try:
            assert opened.read_path.read_bytes() == b"x"
        finally:
            opened.close()
