"""Pure pieces of the generator: NPI check digits, ICD-10-CM chapters, partition seeds, JSON lines."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest
import simple_icd_10_cm as icd

from generators.clinical import CASE_MIX, COMORBIDITIES, PLANNED_READMISSION_CODE
from generators.icd10 import chapters, is_billable
from generators.providers import is_valid_npi, npi_check_digit
from generators.seeds import partition_rng
from generators.writer import encode_jsonl

pytestmark = pytest.mark.unit


def test_npi_check_digit_follows_the_cms_luhn_rule():
    # CMS's worked example: 123456789 with prefix 80840 has check digit 3.
    assert npi_check_digit(np.array([123456789]))[0] == 3
    assert is_valid_npi("1234567893")
    assert not is_valid_npi("1234567894")
    assert not is_valid_npi("323456789")


def test_chapter_map_agrees_with_the_package_on_a_sample():
    codes = chapters()
    sample = random.Random(3).sample(sorted(codes), 40)
    for code in sample:
        assert icd.is_leaf(code), code
        assert icd.get_ancestors(code)[-1] == codes[code], code
    assert codes["J18.9"] == "10"
    assert codes["O80"] == "15"


def test_every_coded_diagnosis_is_a_billable_icd10cm_code():
    for code in [dx.code for dx in CASE_MIX] + [code for code, _ in COMORBIDITIES] + [PLANNED_READMISSION_CODE]:
        assert is_billable(code), code


def test_partition_streams_depend_only_on_seed_and_key():
    first = partition_rng(1, "appointments", 0, "2024-01-01").random(3)
    again = partition_rng(1, "appointments", 0, "2024-01-01").random(3)
    other = partition_rng(1, "appointments", 1, "2024-01-01").random(3)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_json_lines_escape_text_and_keep_numbers_and_nulls():
    table = pa.table(
        {
            "name": ['say "hi"', "back\\slash", None],
            "amount": pa.array([1.5, 2.25, 0.0]).cast(pa.decimal128(12, 2)),
            "history": ['[{"status":"paid"}]', "[]", "[]"],
        }
    )
    lines = encode_jsonl(table, frozenset({"history"})).decode().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert parsed[0] == {"name": 'say "hi"', "amount": 1.5, "history": [{"status": "paid"}]}
    assert parsed[1]["name"] == "back\\slash"
    assert parsed[2]["name"] is None
