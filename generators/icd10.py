"""ICD-10-CM codes from the official code list shipped by ``simple-icd-10-cm``."""

from __future__ import annotations

from functools import cache

import numpy as np
import simple_icd_10_cm as icd


@cache
def chapters() -> dict[str, str]:
    """Billable code (with dot) -> chapter number ("1".."22").

    One pass over the package's ordered list (chapter, block, then each code followed by its children):
    a code is billable when the next entry is not one of its children. The package's own per-code
    predicates are far too slow for 98k codes; a test checks this rule against them on a sample.
    """
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


@cache
def long_tail(chapter_numbers: tuple[str, ...]) -> np.ndarray:
    """Every billable code of the given chapters, for rare secondary diagnoses."""
    return np.array(sorted(code for code, ch in chapters().items() if ch in chapter_numbers), dtype=object)
