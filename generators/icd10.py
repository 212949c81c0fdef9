"""ICD-10-CM codes from the official code list shipped by ``simple-icd-10-cm``.

Importing that package parses its whole code list (~1.8 s, on every ``hospital generate``), yet generation needs
only the billable codes of five chapters for rare secondary diagnoses. Those are kept in ``icd10cm_long_tail.json``,
derived from the package by ``python -m generators.icd10``; a unit test checks that the file still equals what the
installed package gives, so a new package version cannot drift from it silently.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

LONG_TAIL_CHAPTERS = ("4", "9", "10", "11", "14")
LONG_TAIL_FILE = Path(__file__).with_name("icd10cm_long_tail.json")


@cache
def chapters() -> dict[str, str]:
    """Billable code (with dot) -> chapter number ("1".."22"), from the package (imported on first use).

    One pass over the package's ordered list (chapter, block, then each code followed by its children):
    a code is billable when the next entry is not one of its children. The package's own per-code
    predicates are far too slow for 98k codes; a test checks this rule against them on a sample.
    """
    import simple_icd_10_cm as icd

    codes = icd.get_all_codes(False)
    mapping: dict[str, str] = {}
    chapter = ""
    for position, code in enumerate(codes):
        if code.isdigit():
            chapter = code
            continue
        if "-" in code:
            continue
        following = codes[position + 1] if position + 1 < len(codes) else ""
        if not following.startswith(code):
            mapping[_with_dot(code)] = chapter
    return mapping


def _with_dot(code: str) -> str:
    # The package's add_dot validates every code first, which costs milliseconds per call.
    return f"{code[:3]}.{code[3:]}" if len(code) > 3 else code


def is_billable(code: str) -> bool:
    """Whether ``code`` (with its dot) is a billable ICD-10-CM code."""
    return code in chapters()


def long_tail_from_package() -> dict:
    """The content of ``icd10cm_long_tail.json``, computed from the installed package."""
    mapping = chapters()
    return {
        "source": f"simple-icd-10-cm {version('simple-icd-10-cm')}: billable codes by chapter",
        "chapters": {ch: sorted(code for code, of in mapping.items() if of == ch) for ch in LONG_TAIL_CHAPTERS},
    }


@cache
def _long_tail_file() -> dict[str, list[str]]:
    return json.loads(LONG_TAIL_FILE.read_text(encoding="utf-8"))["chapters"]


@cache
def long_tail(chapter_numbers: tuple[str, ...]) -> np.ndarray:
    """Every billable code of the given chapters, for rare secondary diagnoses (sorted)."""
    stored = _long_tail_file()
    missing = sorted(set(chapter_numbers) - set(stored))
    if missing:
        raise ValueError(
            f"chapters {missing} are not in {LONG_TAIL_FILE.name}; add them to LONG_TAIL_CHAPTERS and rerun "
            "python -m generators.icd10"
        )
    return np.array(sorted(code for ch in chapter_numbers for code in stored[ch]), dtype=object)


if __name__ == "__main__":
    LONG_TAIL_FILE.write_text(json.dumps(long_tail_from_package(), indent=0) + "\n", encoding="utf-8")
    print(f"wrote {LONG_TAIL_FILE}")
