"""Row conservation: every physical record of a file is in its raw table or in raw._rejects, exactly once, at its
own line, whatever the delimiter, the line endings or the quoting defects (docs/loading.md, "Every row is
accounted for")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from flows.warehouse import load_batch, open_warehouse

pytestmark = pytest.mark.integration

_KIT = Path(__file__).resolve().parents[1] / "fixtures" / "loader" / "batchkit.py"
_spec = importlib.util.spec_from_file_location("batchkit", _KIT)
kit = importlib.util.module_from_spec(_spec)
sys.modules["batchkit"] = kit
_spec.loader.exec_module(kit)

# One source per delimiter the registry uses.
CSV_SOURCES = {
    ",": "registration__patients",
    "|": "provider_registry__physicians",
    "\t": "payers__coverage",
    ";": "scheduling__appointments",
}


def run(folder: Path, database: Path, **kwargs):
    with open_warehouse("duckdb", duckdb_path=database) as warehouse:
        return load_batch(folder, kit.REGISTRY, warehouse, **kwargs)


def query(database: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def data_lines(source_name: str, n: int, *, quote_all: bool = False) -> tuple[str, list[str]]:
    """The header and ``n`` data lines of a source (no line breaks inside values), each row's key first.

    ``quote_all`` quotes every field, as the generator and many EHR exports do.
    """
    source = kit.REGISTRY[source_name]
    text = kit.csv_text(source, kit.rows_for(source, n), quote_all=quote_all).replace("\r\n", "\n")
    header, *lines = text.rstrip("\n").split("\n")
    return header, lines


def key_column(source_name: str) -> str:
    return kit.REGISTRY[source_name].columns[0].name


def assert_conserved(database: Path, source_name: str, file: str, loaded: dict[str, int], rejected: dict[int, int]):
    """``loaded``: key -> row number in raw; ``rejected``: line -> row number in raw._rejects; nothing else."""
    table, key = kit.REGISTRY[source_name].table, key_column(source_name)
    got = dict(query(database, f"select \"{key}\", _row_number from raw.{table} where _source_file = '{file}'"))
    assert got == loaded
    rejects = query(database, f"select line_number, row_number from raw._rejects where file = '{file}'")
    assert dict(rejects) == rejected and len(rejects) == len(rejected)
    (ledger,) = query(
        database, f"select rows_in_file, rows_loaded, rows_rejected from ledger.load_ledger where file = '{file}'"
    )
    assert ledger == (len(loaded) + len(rejected), len(loaded), len(rejected))


def keys_of(lines: list[str], delimiter: str) -> list[str]:
    return [line.split(delimiter)[0].strip('"') for line in lines]


@pytest.mark.parametrize("quote_all", [False, True], ids=["quoted-as-needed", "all-quoted"])
@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
@pytest.mark.parametrize("delimiter", CSV_SOURCES, ids=["comma", "pipe", "tab", "semicolon"])
def test_loader_unterminated_quote_rejects_its_own_line_and_loads_the_next(
    tmp_path: Path, delimiter: str, manifest: bool, quote_all: bool
) -> None:
    """All-quoted: the open quote closes on the next line, so the parser used to read two lines as one bad row
    and lose the second (2228 = 2227 + 1); quoted as needed, it swallowed lines up to the next quote."""
    source_name = CSV_SOURCES[delimiter]
    source = kit.REGISTRY[source_name]
    header, lines = data_lines(source_name, 300, quote_all=quote_all)
    keys = keys_of(lines, delimiter)
    broken = 100  # 0-based: data row 101, file line 102
    fields = [field.strip('"') for field in lines[broken].split(delimiter)]
    fields[1] = '"' + fields[1]  # a quote opened and never closed on its line (the line's only quote)
    lines[broken] = delimiter.join(fields)
    lines[250] = lines[250].replace(lines[250].split(delimiter)[2], '"has, a comma"', 1)  # a later quoted value
    keys[250] = lines[250].split(delimiter)[0].strip('"')
    data = ("\n".join([header, *lines]) + "\n").encode()
    name = kit.file_name(source, "20250101")
    folder = kit.write_batch(tmp_path / "landing", "b1", {name: (source_name, data, 300)}, manifest=manifest)
    result = run(folder, tmp_path / "w.duckdb")
    assert result.outcome == "loaded", result.message
    (outcome,) = result.files
    assert "line 102" in outcome.message and "quote" in outcome.message
    loaded = {key: i + 1 for i, key in enumerate(keys) if i != broken}
    assert_conserved(tmp_path / "w.duckdb", source_name, name, loaded, {broken + 2: broken + 1})
    assert outcome.rows_in_file == 300 == data.count(b"\n") - 1  # the ledger agrees with the physical file


def test_loader_unterminated_quote_on_several_lines_rejects_each_and_keeps_row_numbers(tmp_path: Path) -> None:
    source_name = "registration__patients"
    header, lines = data_lines(source_name, 200)
    keys = keys_of(lines, ",")
    broken = [10, 11, 150]  # two in a row, then one further on
    for i in broken:
        fields = lines[i].split(",")
        fields[1] = '"' + fields[1]
        lines[i] = ",".join(fields)
    data = ("\n".join([header, *lines]) + "\n").encode()
    folder = kit.write_batch(tmp_path / "landing", "b1", {"patients_1.csv": (source_name, data, 200)}, manifest=False)
    result = run(folder, tmp_path / "w.duckdb", max_reject_rate=0.05)
    assert result.outcome == "loaded", result.message
    loaded = {key: i + 1 for i, key in enumerate(keys) if i not in broken}
    assert_conserved(tmp_path / "w.duckdb", source_name, "patients_1.csv", loaded, {i + 2: i + 1 for i in broken})


def test_loader_legit_line_break_inside_quotes_stays_one_row(tmp_path: Path) -> None:
    source_name = "registration__patients"
    source = kit.REGISTRY[source_name]
    rows = kit.rows_for(source, 50)
    rows[20]["address_line"] = "12 Main St\nApt 4"
    rows[30]["address_line"] = "1 Side St\nFloor 2"
    rows[30]["birth_date"] = "not-a-date"  # a properly quoted row with a bad value: one reject, two lines
    data = kit.csv_text(source, rows).encode()
    folder = kit.write_batch(tmp_path / "landing", "b1", {"patients_1.csv": (source_name, data, 50)}, manifest=True)
    result = run(folder, tmp_path / "w.duckdb", max_reject_rate=0.05)
    assert result.outcome == "loaded", result.message
    loaded = {row["mrn"]: i + 1 for i, row in enumerate(rows) if i != 30}
    assert_conserved(tmp_path / "w.duckdb", source_name, "patients_1.csv", loaded, {33: 31})  # row 31 on line 33
    (raw,) = query(tmp_path / "w.duckdb", "select raw_line from raw._rejects")[0]
    assert "1 Side St\nFloor 2" in raw


ENDINGS = {
    "lf": lambda lines: "\n".join(lines) + "\n",
    "crlf": lambda lines: "\r\n".join(lines) + "\r\n",
    "cr": lambda lines: "\r".join(lines) + "\r",
    "mixed": lambda lines: "".join(line + ("\r\n" if i % 3 else "\n") for i, line in enumerate(lines)),
}


@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "no-manifest"])
@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("delimiter", CSV_SOURCES, ids=["comma", "pipe", "tab", "semicolon"])
def test_loader_loads_every_line_ending_with_exact_lines(tmp_path: Path, delimiter: str, ending: str, manifest: bool):
    source_name = CSV_SOURCES[delimiter]
    header, lines = data_lines(source_name, 120)
    keys = keys_of(lines, delimiter)
    lines[40] = "too" + delimiter + "few"  # data row 41 on line 42
    text = ENDINGS[ending]([header, *lines])
    name = kit.file_name(kit.REGISTRY[source_name], "20250101")
    folder = kit.write_batch(tmp_path / "landing", "b1", {name: (source_name, text.encode(), 120)}, manifest=manifest)
    result = run(folder, tmp_path / "w.duckdb")
    assert result.outcome == "loaded", result.message
    loaded = {key: i + 1 for i, key in enumerate(keys) if i != 40}
    assert_conserved(tmp_path / "w.duckdb", source_name, name, loaded, {42: 41})
    (raw,) = query(tmp_path / "w.duckdb", "select raw_line from raw._rejects")[0]
    assert raw == "too" + delimiter + "few"


@pytest.mark.parametrize("ending", ["lf", "crlf", "mixed", "cr"])
def test_loader_loads_json_lines_with_every_line_ending(tmp_path: Path, ending: str) -> None:
    claims = kit.REGISTRY["claims__claims"]
    rows = kit.rows_for(claims, 150)
    lines = kit.file_bytes(claims, rows).decode().rstrip("\n").split("\n")
    lines[70] = '{"claim_id": "broken"'
    text = ENDINGS[ending](lines)
    folder = kit.write_batch(tmp_path / "landing", "b1", {"claims_1.jsonl": ("claims__claims", text.encode(), 150)})
    result = run(folder, tmp_path / "w.duckdb")
    assert result.outcome == "loaded", result.message
    loaded = {row["claim_id"]: i + 1 for i, row in enumerate(rows) if i != 70}
    assert_conserved(tmp_path / "w.duckdb", "claims__claims", "claims_1.jsonl", loaded, {71: 71})


def test_loader_refuses_a_stray_carriage_return_naming_its_line(tmp_path: Path) -> None:
    header, lines = data_lines("registration__patients", 60)
    lines[30] = lines[30].replace(",", ",\r", 1)  # a CR outside quotes that ends no line
    data = ("\n".join([header, *lines]) + "\n").encode()
    folder = kit.write_batch(tmp_path / "landing", "b1", {"patients_1.csv": ("registration__patients", data, 60)})
    result = run(folder, tmp_path / "w.duckdb")
    assert result.outcome == "failed"
    assert "patients_1.csv" in result.message and "line 32" in result.message and "carriage return" in result.message
    assert "TransactionException" not in result.message


def test_loader_cli_prints_first_reject_reasons_without_values(tmp_path: Path) -> None:
    import typer

    from flows.load_cli import load

    app = typer.Typer()
    app.command("load")(load)
    app.callback()(lambda: None)
    source = kit.REGISTRY["registration__patients"]
    rows = kit.rows_for(source, 300)
    rows[149]["birth_date"] = "Zebediah-31"  # a value that must not be printed
    text = kit.csv_text(source, rows).replace("mrn-7,", "mrn-7,extra,", 1)  # too many fields on line 8
    home = tmp_path / "home"
    kit.write_batch(home / "landing", "b1", {"patients_1.csv": ("registration__patients", text.encode(), 300)})
    result = CliRunner().invoke(app, ["load", "b1", "--home", str(home), "--max-reject-rate", "0.01"])
    assert result.exit_code == 0, result.output
    assert "line 8: too many fields" in result.output
    assert "line 151: column birth_date: not a valid date" in result.output
    assert "Zebediah" not in result.output


def test_loader_row_count_mismatch_names_the_rejected_lines_not_transit(tmp_path: Path) -> None:
    header, lines = data_lines("registration__patients", 100)
    lines[9] = "too,few"
    data = ("\n".join([header, *lines]) + "\n").encode()
    folder = kit.write_batch(
        tmp_path / "landing",
        "b1",
        {"patients_1.csv": ("registration__patients", data, 100)},
        manifest_overrides={"patients_1.csv": {"rows": 101}},
    )
    result = run(folder, tmp_path / "w.duckdb", max_reject_rate=0.05)
    assert result.outcome == "failed"
    assert "declares 101 rows" in result.message and "line 11" in result.message
