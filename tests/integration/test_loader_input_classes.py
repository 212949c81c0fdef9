"""Every input class of docs/loading.md ("Bad input and its outcome"), crossed with every format and delimiter
the registry uses, with and without a manifest, through ``hospital load``: its exit code, what it prints,
and conservation (each record in its raw table or in raw._rejects once, at its own row and line; nothing
partial when the batch fails or is skipped)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from flows.load_cli import EXIT_DATA_FAULT, load

pytestmark = pytest.mark.integration

_KIT = Path(__file__).resolve().parents[1] / "fixtures" / "loader" / "batchkit.py"
_spec = importlib.util.spec_from_file_location("batchkit", _KIT)
kit = importlib.util.module_from_spec(_spec)
sys.modules["batchkit"] = kit
_spec.loader.exec_module(kit)

app = typer.Typer()
app.command("load")(load)
app.callback()(lambda: None)

ROWS = 200  # one bad row of 200 is under the 1% limit; three are over it


@dataclass(frozen=True)
class Format:
    """A landing format: its registry source, and how it writes records as lines."""

    name: str
    source_name: str

    @property
    def source(self):  # a registry Source
        return kit.REGISTRY[self.source_name]

    @property
    def kind(self) -> str:
        return self.source.format

    @property
    def key(self) -> str:
        return self.source.columns[0].name

    def record(self, i: int, tag: str) -> dict:
        row = {c.name: kit.value(c.type, c.name, i) for c in self.source.columns}
        row[self.key] = f"{tag}-{i}"
        return row

    def header(self) -> str:
        return self.source.delimiter.join(self.source.column_names)

    def line(self, record: dict) -> str:
        """One record as one line (csv fields unquoted: the values hold no delimiter; jsonl one object)."""
        if self.kind == "csv":
            return self.source.delimiter.join(str(record[c]) for c in self.source.column_names)
        return json.dumps(record)


FORMATS = [
    Format("csv-comma", "registration__patients"),
    Format("csv-pipe", "provider_registry__physicians"),
    Format("csv-tab", "payers__coverage"),
    Format("csv-semicolon", "scheduling__appointments"),
    Format("json", "facilities__hospitals"),
    Format("jsonl", "claims__claims"),
]


@dataclass
class File:
    """A file to land: its lines (records one a line; json elements one a line inside the array)."""

    lines: list[str]
    ending: str = "\n"
    bom: bool = False
    last_break: bool = True
    raw: bytes | None = None  # written as is instead

    def data(self, fmt: Format) -> bytes:
        if self.raw is not None:
            return self.raw
        lines = self.lines
        if fmt.kind == "json":
            lines = ["[", *[line + ("," if i < len(self.lines) - 1 else "") for i, line in enumerate(lines)], "]"]
        endings = ["\r\n" if i % 2 else "\n" for i in range(len(lines))] if self.ending == "mixed" else None
        if endings:  # CRLF and LF alternating
            text = "".join(line + end for line, end in zip(lines, endings, strict=True))
            text = text if self.last_break else text.rstrip("\r\n")
        else:
            text = self.ending.join(lines) + (self.ending if self.last_break else "")
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode("utf-8", errors="surrogateescape")


@dataclass
class Case:
    """One input class for one format: what to land, what ``hospital load`` must do and print."""

    file: File | None
    outcome: str  # loaded, skipped, failed
    says: list[str] = field(default_factory=list)
    loaded: dict[str, int] = field(default_factory=dict)  # key -> row number
    rejected: dict[int, int] = field(default_factory=dict)  # row number -> line
    rows: int | None = None  # declared in the manifest (default: the records of the file)
    name: str | None = None  # the file's name (default: a new one)
    manifest_only: bool = False
    either_way: bool = False  # the manifest plays no part: tested with one only
    before: Callable[[Path, str], None] | None = None  # (batch folder, file name): change the landed batch


def records(fmt: Format, tag: str, n: int = ROWS) -> list[dict]:
    return [fmt.record(i, tag) for i in range(1, n + 1)]


def first_line(fmt: Format) -> int:
    """The line of the first record: after the csv header, or the json array's '['."""
    return 1 if fmt.kind == "jsonl" else 2


def good(fmt: Format, tag: str, **file_options) -> Case:
    rows = records(fmt, tag)
    lines = ([fmt.header()] if fmt.kind == "csv" else []) + [fmt.line(r) for r in rows]
    return Case(File(lines, **file_options), "loaded", loaded={r[fmt.key]: i for i, r in enumerate(rows, 1)})


def with_bad(fmt: Format, tag: str, bad: dict[int, str], says: list[str], outcome: str = "loaded") -> Case:
    """Records 1..ROWS with record i replaced by the text ``bad[i]`` (rejected)."""
    case = good(fmt, tag)
    offset = 1 if fmt.kind == "csv" else 0
    for i, text in bad.items():
        case.file.lines[i - 1 + offset] = text
        del case.loaded[f"{tag}-{i}"]
        case.rejected[i] = i - 1 + first_line(fmt)
    case.says, case.outcome = says, outcome
    if outcome == "failed":
        case.loaded, case.rejected = {}, {}
    return case


def short_record(fmt: Format, tag: str, i: int) -> str:
    if fmt.kind == "csv":
        return fmt.source.delimiter.join(["too", "few"])
    if fmt.kind == "jsonl":
        return '{"claim_id": "broken"'
    return "[1, 2]"  # json: an element that is not an object


def bad_value(fmt: Format, tag: str, i: int) -> tuple[str, str]:
    """A record with a value that does not cast, and the column it names."""
    record = fmt.record(i, tag)
    column = next(c for c in fmt.source.columns if c.type not in ("varchar", "json"))
    record[column.name] = "not-a-value"
    return fmt.line(record), column.name


def symlink_out(folder: Path, name: str) -> None:
    target = folder.parent / f"elsewhere-{name}"
    (folder / name).rename(target)
    (folder / name).symlink_to(target)


def replace_with_fifo(folder: Path, name: str) -> None:
    (folder / name).unlink()
    os.mkfifo(folder / name)


def replace_with_folder(folder: Path, name: str) -> None:
    (folder / name).unlink()
    (folder / name).mkdir()


def drop(folder: Path, name: str) -> None:
    (folder / name).unlink()


def add_undeclared(folder: Path, name: str) -> None:
    (folder / ("extra_" + name)).write_bytes((folder / name).read_bytes())


def truncate(folder: Path, name: str) -> None:
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])


@functools.cache
def cases_for(fmt: Format, base_name: str) -> dict[str, Case]:
    """Every input class that applies to ``fmt`` (``base_name``: its file in the base batch)."""
    csv, jsonl, tag = fmt.kind == "csv", fmt.kind == "jsonl", "n"
    column = bad_value(fmt, tag, 10)[1]
    out = {
        "well-formed": good(fmt, tag),
        "malformed row under the threshold": with_bad(
            fmt, tag, {150: short_record(fmt, tag, 150)}, [f"line {149 + first_line(fmt)}"]
        ),
        "malformed rows over the threshold": with_bad(
            fmt,
            tag,
            {i: short_record(fmt, tag, i) for i in (3, 7, 9)},
            [f"line {first_line(fmt) + 2}", "limit"],
            "failed",
        ),
        "value that does not cast": with_bad(fmt, tag, {10: bad_value(fmt, tag, 10)[0]}, [f"column {column}"]),
        "UTF-8 BOM": good(fmt, tag, bom=True),
        "CRLF line endings": good(fmt, tag, ending="\r\n"),
        "CR line endings": good(fmt, tag, ending="\r"),
        "no line break after the last line": good(fmt, tag, last_break=False),
        "same file delivered twice": Case(None, "skipped", ["already loaded"], name=base_name),
        "same content under another name": Case(None, "skipped", [base_name, "base"]),
        "loaded name with changed content": Case(good(fmt, tag).file, "failed", ["content conflict"], name=base_name),
        "listed file missing": Case(good(fmt, tag).file, "failed", ["missing"], manifest_only=True, before=drop),
        "file present but not listed": Case(
            good(fmt, tag).file, "failed", ["not listed in manifest.json"], manifest_only=True, before=add_undeclared
        ),
        "checksum mismatch": Case(good(fmt, tag).file, "failed", ["bytes"], manifest_only=True, before=truncate),
        "manifest row count differs": Case(
            good(fmt, tag).file, "failed", ["declares 201 rows"], rows=ROWS + 1, manifest_only=True
        ),
        "a link to a file outside the batch": Case(
            good(fmt, tag).file, "failed", ["symbolic link"], before=symlink_out
        ),
        "a FIFO under the file's name": Case(good(fmt, tag).file, "failed", ["FIFO"], before=replace_with_fifo),
        "a folder under the file's name": Case(
            good(fmt, tag).file, "failed", ["not a regular file", "folder"], before=replace_with_folder
        ),
    }
    out["mixed line endings (CRLF and LF)"] = good(fmt, tag, ending="mixed")
    latin = good(fmt, tag)
    offset = 1 if csv else 0
    latin.file.lines[19 + offset] = latin.file.lines[19 + offset].replace(f"{tag}-20", f"{tag}-20\udce9")
    if fmt.kind == "json":
        out["latin-1 bytes in a UTF-8 file"] = Case(latin.file, "failed", ["line 21", "not valid utf-8"])
    else:
        del latin.loaded[f"{tag}-20"]
        latin.rejected = {20: 20 + first_line(fmt) - 1}
        latin.says = ["not valid utf-8"]
        out["latin-1 bytes in a UTF-8 file"] = latin
    truncated = good(fmt, tag, last_break=False)
    truncated.file.lines[-1] = truncated.file.lines[-1][: len(truncated.file.lines[-1]) // 2]
    if fmt.kind == "json":
        truncated.file.raw = truncated.file.data(fmt)[:-40]
        out["truncated last line"] = Case(truncated.file, "failed", ["line", "column", "one array of objects"])
    else:
        del truncated.loaded[f"{tag}-{ROWS}"]
        truncated.rejected = {ROWS: ROWS + first_line(fmt) - 1}
        out["truncated last line"] = truncated
    blank = good(fmt, tag)
    if fmt.kind != "json":
        blank.file.lines.insert(5, "")  # a blank line: not a record, not counted
        blank.file.lines.insert(9, "")
        out["blank lines"] = blank
    if fmt.kind == "json":
        out["empty array"] = Case(File([], raw=b"[]\n"), "loaded", ["no records"])
        out["empty file"] = Case(File([], raw=b""), "failed", ["empty"])
        out["not an array"] = Case(File([], raw=b'{"hospital_id": "h"}\n'), "failed", ["does not start with '['"])
    elif jsonl:
        out["empty file (a quiet day)"] = Case(File([], raw=b""), "loaded", ["no records"])
        out["line that is not an object"] = with_bad(fmt, tag, {30: "[1, 2]"}, ["line 30: line is not a JSON object"])
    if csv:
        delimiter = fmt.source.delimiter
        other = ";" if delimiter != ";" else ","
        wrong = good(fmt, tag)
        wrong.file.lines = [line.replace(delimiter, other) for line in wrong.file.lines]
        out["wrong delimiter"] = Case(wrong.file, "failed", ["wrong delimiter", repr(other)])
        out["header only"] = Case(File([fmt.header()]), "loaded", ["header only"])
        out["empty file"] = Case(File([], raw=b""), "failed", ["empty"])
        renamed = good(fmt, tag)
        first_col = fmt.source.column_names[1]
        renamed.file.lines[0] = renamed.file.lines[0].replace(first_col, first_col + "_renamed", 1)
        out["column renamed"] = Case(renamed.file, "failed", [repr(first_col), repr(first_col + "_renamed")])
        headless = good(fmt, tag)
        headless.file.lines = headless.file.lines[1:]
        out["header missing"] = Case(headless.file, "failed", ["header is missing"])
        extra = good(fmt, tag)
        extra.file.lines = [line + delimiter + "x" for line in extra.file.lines]
        extra.file.lines[0] = extra.file.lines[0][:-1] + "loyalty_tier"
        refused = ["'loyalty_tier'", "unexpected_columns=fail"]
        out["unexpected column (policy fail)"] = Case(extra.file, "failed", refused)
        quote = good(fmt, tag)
        fields = quote.file.lines[101].split(delimiter)
        fields[1] = '"' + fields[1]
        quote.file.lines[101] = delimiter.join(fields)
        del quote.loaded[f"{tag}-101"]
        quote.rejected = {101: 102}
        quote.says = ["line 102: unterminated or misplaced quote"]
        out["quote left open"] = quote
        stray = good(fmt, tag)
        stray.file.lines[40] = stray.file.lines[40].replace(delimiter, delimiter + "\r", 1)
        out["carriage return inside a line"] = Case(stray.file, "failed", ["line 41", "carriage return"])
    else:
        renamed = good(fmt, tag)
        key = fmt.source.column_names[1]
        renamed.file.lines = [line.replace(f'"{key}"', '"renamed_key"') for line in renamed.file.lines]
        out["key renamed"] = Case(renamed.file, "failed", [repr(key), "'renamed_key'"])
    for name in (
        "same file delivered twice",
        "same content under another name",
        "loaded name with changed content",
        "wrong delimiter",
        "column renamed",
        "key renamed",
        "header missing",
        "unexpected column (policy fail)",
        "empty file",
        "not an array",
        "a FIFO under the file's name",
        "a folder under the file's name",
    ):
        if name in out:
            out[name].either_way = True
    return out


@functools.cache
def base_files() -> dict[str, tuple[str, bytes, int]]:
    """The base batch: one file of each format, tagged 'b'."""
    files = {}
    for fmt in FORMATS:
        case = good(fmt, "b")
        files[kit.file_name(fmt.source, "base")] = (fmt.source_name, case.file.data(fmt), ROWS)
    return files


@pytest.fixture(scope="module")
def base_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[tuple]]]:
    """A warehouse holding the base batch (every format), to copy for each case, and its tables."""
    root = tmp_path_factory.mktemp("input_classes")
    folder = kit.write_batch(root / "landing", "base", dict(base_files()))
    home = root / "home"
    result = CliRunner().invoke(app, ["load", "--dir", str(folder), "--home", str(home)])
    assert result.exit_code == 0, result.output
    return home / "warehouse.duckdb", state(home / "warehouse.duckdb")


PARAMS = [
    pytest.param(fmt, name, manifest, id=f"{fmt.name}-{name}-{'manifest' if manifest else 'no-manifest'}")
    for fmt in FORMATS
    for name, case in cases_for(fmt, kit.file_name(fmt.source, "base")).items()
    for manifest in (True, False)
    if manifest or not (case.manifest_only or case.either_way)
]


def state(database: Path) -> dict[str, list[tuple]]:
    out = kit.snapshot(database)
    out.pop("ledger.load_ledger")
    return out


@pytest.mark.parametrize(("fmt", "case_name", "manifest"), PARAMS)
def test_loader_input_class(
    base_warehouse: tuple[Path, dict[str, list[tuple]]], tmp_path: Path, fmt: Format, case_name: str, manifest: bool
) -> None:
    base_name = kit.file_name(fmt.source, "base")
    case = cases_for(fmt, base_name)[case_name]
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(base_warehouse[0], home / "warehouse.duckdb")
    before = base_warehouse[1]
    name = case.name or kit.file_name(fmt.source, "new")
    data = case.file.data(fmt) if case.file else dict(base_files())[base_name][1]
    rows = case.rows if case.rows is not None else len(case.loaded) + len(case.rejected)
    folder = kit.write_batch(tmp_path / "landing", "b2", {name: (fmt.source_name, data, rows)}, manifest=manifest)
    if case.before is not None:
        case.before(folder, name)

    result = CliRunner().invoke(app, ["load", "--dir", str(folder), "--home", str(home)])

    assert isinstance(result.exception, SystemExit | None), result.exception  # a message, never a traceback
    assert result.exit_code == (EXIT_DATA_FAULT if case.outcome == "failed" else 0), result.output
    for fragment in [case.outcome, *case.says]:
        assert fragment in result.output, fragment
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        ledger = con.execute(
            "select outcome, rows_in_file, rows_loaded, rows_rejected from ledger.load_ledger where batch_id = 'b2'"
        ).fetchall()
        if case.outcome != "loaded":
            assert state(home / "warehouse.duckdb") == before  # nothing partial, nothing twice
            assert ledger and {row[0] for row in ledger} == {case.outcome}
            return
        rows_of = f"select \"{fmt.key}\", _row_number from raw.{fmt.source.table} where _batch_id = 'b2'"
        loaded = dict(con.execute(rows_of).fetchall())
        rejects_of = "select row_number, line_number from raw._rejects where batch_id = 'b2'"
        rejected = dict(con.execute(rejects_of).fetchall())
    finally:
        con.close()
    assert loaded == case.loaded
    assert rejected == case.rejected
    assert ledger == [("loaded", len(case.loaded) + len(case.rejected), len(case.loaded), len(case.rejected))]
