"""``fastcodec.fixed_text``: fixed-width text built as a byte matrix must equal Arrow's cast, pad and join."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from generators.fastcodec import fixed_text, joined_text


def _padded(values: np.ndarray, digits: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(values).cast(pa.string()), digits, "0")


@pytest.mark.parametrize("digits", [1, 2, 3, 4, 5, 6, 8, 9, 12])
def test_zero_padded_numbers_equal_arrows_cast_and_pad(digits):
    values = np.random.default_rng(digits).integers(0, 10**digits, 4_000)
    values[:3] = [0, 10**digits - 1, 10 ** (digits - 1)]  # the edges: all zeros, all nines, a leading one
    built = fixed_text("A001202401", (values, digits))
    assert built.equals(pc.binary_join_element_wise("A001202401", _padded(values, digits), ""))


def test_string_columns_literals_and_numbers_are_concatenated_row_by_row():
    ids = pa.array([f"E00220240{n:06d}" for n in range(50)]).slice(7)  # a slice: its data starts past offset 0
    line = np.arange(ids.__len__()) % 13 + 1
    built = fixed_text("CLM", ids, "-", (line, 2))
    expected = pc.binary_join_element_wise("CLM", ids, "-", _padded(line, 2), "")
    assert built.equals(expected)
    assert built[0].as_py() == "CLME00220240000007-01"


@pytest.mark.parametrize(
    "parts",
    [
        ("X", (np.array([5, 100]), 2)),  # a number wider than its digits
        ("X", (np.array([5, -1]), 2)),  # a negative number
        (pa.array(["ab", "abc"]), "-"),  # values of different widths
        (pa.array(["ab", None]), "-"),  # a null
    ],
)
def test_what_cannot_be_fixed_width_is_left_to_the_caller(parts):
    assert fixed_text(*parts) is None


def test_no_rows_give_an_empty_string_array():
    built = fixed_text("COV", (np.array([], dtype=np.int64), 8))
    assert built is not None and len(built) == 0 and built.type == pa.string()


@pytest.mark.parametrize(
    "values",
    [np.array([7, 42, 99]), np.array([7, 100, 12_345]), np.array([5, -1, 3])],
    ids=["fixed width", "wider than its digits", "negative"],
)
def test_joined_text_equals_arrows_cast_pad_and_join_whether_or_not_it_is_fixed_width(values):
    ids = pa.array(["E001", "E002", "E003"])
    expected = pc.binary_join_element_wise("CLM", ids, "-", _padded(values, 2), "")
    assert joined_text("CLM", ids, "-", (values, 2)).equals(expected)
    assert joined_text(pa.array(["a", "bb", "c"]), "-", (values, 2)).equals(
        pc.binary_join_element_wise(pa.array(["a", "bb", "c"]), "-", _padded(values, 2), "")
    )
