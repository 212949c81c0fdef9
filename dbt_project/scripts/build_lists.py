"""Write the reference lists (dbt seeds under seeds/lists/) from the network's code sets.

The lists come from one place: `flows/contracts/code_sets.py` (service lines and specialties, UB-04 admission
types, discharge dispositions and revenue codes, CARC denial reasons), the code sets the simulated source systems
send too, and the official ICD-10-CM chapter list shipped by `simple-icd-10-cm`. Each list keeps the delimiter of
the kind of file its source publishes; seeds/lists/_lists.yml sets the same `delimiter` per seed. `--check` exits 1
when the committed files are out of date (a test runs it).

    python dbt_project/scripts/build_lists.py          # rewrite seeds/lists/*.csv
    python dbt_project/scripts/build_lists.py --check  # verify only
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import simple_icd_10_cm as icd  # noqa: E402

from flows.contracts import code_sets  # noqa: E402

LISTS_DIR = Path(__file__).resolve().parents[1] / "seeds" / "lists"

# UB-04 form locator 14 (priority/type of admission) codes of the admission types the ADT system sends.
UB04_ADMISSION_TYPE_CODES = {"Emergency": "1", "Urgent": "2", "Elective": "3"}


@dataclass(frozen=True)
class ReferenceList:
    """One list: its seed name, the delimiter its file uses, header and rows."""

    name: str
    delimiter: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def render(self) -> str:
        """The file's text: header and rows joined by the list's delimiter, minimal quoting, LF endings."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue()


def icd10cm_chapters() -> ReferenceList:
    """ICD-10-CM chapters (number, code range, title); pipe-delimited like CMS's code files."""
    rows = []
    for chapter in (code for code in icd.get_all_codes(False) if code.isdigit()):
        title = icd.get_description(chapter)
        # Titles end with their code range, e.g. "Neoplasms (C00-D49)".
        name, _, code_range = title.rpartition(" (")
        first, _, last = code_range.rstrip(")").partition("-")
        rows.append((chapter, first, last, name))
    return ReferenceList("icd10cm_chapters", "|", ("chapter_number", "first_code", "last_code", "chapter_name"),
                         tuple(rows))  # fmt: skip


def specialties() -> ReferenceList:
    """Physician specialties with their service line; comma CSV."""
    rows = tuple(
        (line.specialty, line.code, line.name, str(line.inpatient).lower(), str(line.clinic).lower())
        for line in code_sets.SERVICE_LINES
    )
    header = ("specialty_name", "service_line_code", "service_line_name", "has_inpatient_unit", "has_clinic")
    return ReferenceList("specialties", ",", header, rows)


def admission_types() -> ReferenceList:
    """Admission types the ADT system sends, with their UB-04 code; comma CSV."""
    rows = tuple((str(name), UB04_ADMISSION_TYPE_CODES[str(name)]) for name in code_sets.ADMISSION_TYPES)
    return ReferenceList("admission_types", ",", ("admission_type", "ub04_admission_type_code"), rows)


def discharge_dispositions() -> ReferenceList:
    """UB-04 patient discharge status codes; pipe-delimited like the ADT feed that carries them."""
    rows = tuple(
        (code, text, str(code == code_sets.EXPIRED_DISPOSITION).lower(),
         str(code == code_sets.TRANSFER_DISPOSITION).lower())
        for code, text in sorted(code_sets.DISPOSITIONS.items())
    )  # fmt: skip
    header = ("discharge_disposition_code", "discharge_disposition", "is_expired", "is_transfer_to_acute_care")
    return ReferenceList("discharge_dispositions", "|", header, rows)


def denial_reasons() -> ReferenceList:
    """CARC claim adjustment reason codes used for denials; tab-delimited like the payer files."""
    rows = tuple((code, code.split("-")[0], code.split("-")[1], text) for code, text in code_sets.DENIAL_REASONS)
    header = ("denial_reason_code", "claim_adjustment_group_code", "carc_code", "denial_reason")
    return ReferenceList("denial_reasons", "\t", header, tuple(sorted(rows)))


def revenue_codes() -> ReferenceList:
    """UB-04 revenue codes the billing system posts, with a typical unit price; semicolon-delimited."""
    lines = sorted(code_sets.REVENUE_LINES.items())
    rows = tuple((code, line.description, f"{line.unit_price:.2f}") for code, line in lines)
    return ReferenceList("revenue_codes", ";", ("revenue_code", "revenue_description", "typical_unit_price_usd"), rows)


def build_lists() -> list[ReferenceList]:
    """Every reference list, in a stable order."""
    return [icd10cm_chapters(), specialties(), admission_types(), discharge_dispositions(), denial_reasons(),
            revenue_codes()]  # fmt: skip


# Lists kept by hand because their content is an outside authority's, not the network's code sets.
HAND_MAINTAINED = frozenset({"restricted_zip3.csv"})


def out_of_sync(lists: list[ReferenceList], lists_dir: Path) -> list[str]:
    """File names whose committed content differs from the generated one (or that are stale extras)."""
    expected = {f"{item.name}.csv": item.render() for item in lists}
    stale = [
        name
        for name, text in expected.items()
        if not (lists_dir / name).is_file() or (lists_dir / name).read_text(encoding="utf-8") != text
    ]
    extras = [
        path.name for path in lists_dir.glob("*.csv") if path.name not in expected and path.name not in HAND_MAINTAINED
    ]
    return sorted(stale + extras)


def main(argv: list[str] | None = None) -> int:
    """Rewrite the lists, or with ``--check`` report files that are out of sync (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify only; exit 1 when out of sync")
    args = parser.parse_args(argv)
    lists = build_lists()
    if args.check:
        stale = out_of_sync(lists, LISTS_DIR)
        if stale:
            print(f"reference lists out of sync: {', '.join(stale)}; run dbt_project/scripts/build_lists.py")
            return 1
        print("reference lists are in sync with the network's code sets (flows/contracts/code_sets.py)")
        return 0
    LISTS_DIR.mkdir(parents=True, exist_ok=True)
    for item in lists:
        (LISTS_DIR / f"{item.name}.csv").write_text(item.render(), encoding="utf-8")
    print(f"wrote {len(lists)} list(s) under {LISTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
