"""``hospital validate``: the raw gate on a loaded batch, through the installed ``hospital`` script.

One module fixture generates a small batch and lands it in two data homes: as generated, and with a defect a
sender might make (three patients' SSNs delivered without dashes, the manifest's checksums updated as a sender's
would be); each is loaded with ``hospital load``. The tests then run ``hospital validate`` as a user does and read
its exit code and what it prints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from flows.contracts.manifest import MANIFEST
from flows.contracts.registry import load_registry
from flows.locking import warehouse_lock
from generators.batch import NetworkSpec, generate_initial

pytestmark = pytest.mark.integration

HOSPITAL = str(Path(sys.executable).parent / "hospital")
REPO = Path(__file__).resolve().parents[2]
NETWORK = NetworkSpec(seed=23, patients=1000, start_date=dt.date(2024, 1, 1))
END = dt.date(2024, 1, 31)
EXTERNAL = (
    next((p for p in (REPO.parent / "shared", REPO.parent.parent / "shared") if p.is_dir()), REPO.parent / "shared")
    / "external"
    / "hospital_mgmt_system"
)
EXTERNAL_REGISTRY = REPO / "flows" / "registries" / "hospital_mgmt_system.yml"
SSN = re.compile(rb"\b(\d{3})-(\d{2})-(\d{4})\b")


@dataclass
class Homes:
    """Two data homes holding the same loaded batch: as generated, and with SSNs written without dashes."""

    batch_id: str
    clean: Path
    defective: Path
    spoiled_ssns: list[str]  # the defective values, as delivered


def hospital(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("HOSPITAL_", "PREFECT_"))}
    environment.update({"HOSPITAL_HOME": str(home), "PREFECT_HOME": str(home / "prefect"), **env})
    return subprocess.run([HOSPITAL, *args], capture_output=True, text=True, env=environment, timeout=600, check=False)


def _spoil_ssns(folder: Path, count: int) -> list[str]:
    """Write ``count`` patients' SSNs without their dashes and update the manifest's size and checksum."""
    manifest = json.loads((folder / MANIFEST).read_text())
    entry = next(e for e in manifest["files"] if e["source"] == "registration__patients")
    path = folder / entry["file"]
    data = path.read_bytes()
    spoiled = [match.group(0) for match in SSN.finditer(data)][:count]
    for ssn in spoiled:
        data = data.replace(ssn, ssn.replace(b"-", b""), 1)
    path.write_bytes(data)
    entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return [ssn.replace(b"-", b"").decode() for ssn in spoiled]


@pytest.fixture(scope="module")
def loaded_homes(tmp_path_factory) -> Homes:
    root = tmp_path_factory.mktemp("validate_cli")
    clean, defective = root / "clean", root / "defective"
    batch = generate_initial(clean / "landing", NETWORK, END, registry=load_registry())
    shutil.copytree(batch.path, defective / "landing" / batch.batch_id)
    spoiled = _spoil_ssns(defective / "landing" / batch.batch_id, 3)
    for home in (clean, defective):
        loaded = hospital("load", batch.batch_id, home=home)
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    return Homes(batch.batch_id, clean, defective, spoiled)


def test_validate_passes_a_clean_loaded_batch_and_reconciles_its_manifest(loaded_homes):
    result = hospital("validate", loaded_homes.batch_id, home=loaded_homes.clean)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = loaded_homes.clean / "landing" / loaded_homes.batch_id / MANIFEST
    assert f"Manifest {manifest}: the gate reconciles its row counts" in result.stdout
    sources = len(load_registry().sources)
    assert re.search(rf"Raw gate passed on batch {loaded_homes.batch_id}: \d+ expectations in {sources} suites",
                     result.stdout)  # fmt: skip
    assert (loaded_homes.clean / "data_docs" / "index.html").is_file()


def test_validate_fails_a_defective_batch_naming_the_expectation_and_no_value(loaded_homes):
    result = hospital("validate", loaded_homes.batch_id, home=loaded_homes.defective)
    assert result.returncode == 1, result.stdout + result.stderr
    # The pipeline's own summary: checkpoint, failing expectation and count, its Data Docs page, and its http link.
    assert f"Quality gate failed: checkpoint 'raw' on batch {loaded_homes.batch_id}, 1 of " in result.stderr
    assert "suite raw.registration__patients, expect_column_values_to_match_regex column ssn: 3 failing rows" in (
        result.stderr
    )
    page = re.search(r"raw\.registration__patients \(1 of \d+ failed\): (file://\S+\.html)", result.stderr)
    assert page is not None, result.stderr
    assert Path(page.group(1).removeprefix("file://").replace("%20", " ")).is_file()
    assert "Over http: http://127.0.0.1:8765/data_docs/validations/raw/registration__patients/" in result.stderr
    # No patient value: neither the spoiled SSNs nor those patients' names.
    with duckdb.connect(str(loaded_homes.defective / "warehouse.duckdb"), read_only=True) as connection:
        names = connection.execute(
            "select first_name, last_name from raw.registration__patients where ssn in (select unnest(?))",
            [loaded_homes.spoiled_ssns],
        ).fetchall()
    assert len(names) == 3
    printed = result.stdout + result.stderr
    for value in [*loaded_homes.spoiled_ssns, *(name for pair in names for name in pair)]:
        assert not re.search(rf"\b{re.escape(value)}\b", printed), "a patient value was printed"


def test_validate_waits_for_the_warehouse_lock_and_gives_up_naming_the_holder(loaded_homes):
    warehouse = loaded_homes.clean / "warehouse.duckdb"
    with warehouse_lock(warehouse, timeout_seconds=5, run_id="run-holding-it", batch_id="other-batch"):
        result = hospital("validate", loaded_homes.batch_id, home=loaded_homes.clean,
                          HOSPITAL_LOCK_TIMEOUT_SECONDS="1")  # fmt: skip
    assert result.returncode == 1
    assert "Waiting for the warehouse: run run-holding-it of batch other-batch" in result.stderr
    assert "is in use by run run-holding-it" in result.stderr


@pytest.mark.skipif(not EXTERNAL.is_dir(), reason=f"external sample extracts not found at {EXTERNAL}")
def test_validate_reports_an_external_extract_loaded_by_its_registry(tmp_path):
    home = tmp_path / "home"
    loaded = hospital("load", "--dir", str(EXTERNAL), "--registry", str(EXTERNAL_REGISTRY), home=home)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    result = hospital("validate", EXTERNAL.name, "--registry", str(EXTERNAL_REGISTRY), home=home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no manifest to reconcile" in result.stdout
    assert f"Quality gate failed: checkpoint 'raw' on batch {EXTERNAL.name}" in result.stderr
    # Their known defects (counted independently in test_expectations_raw.py), named by rule.
    for rule in ("hms__patients.date_order.discharge_date", "hms__insurance.date_order.coverage_end_date",
                 "hms__physicians.category_pairs.specialty+department"):  # fmt: skip
        assert f"[rule {rule}]" in result.stderr
    assert not re.search(r"hms__\w+\.(columns|types|row_counts|not_null)", result.stderr)


def test_validate_usage_errors_exit_2_with_one_line(loaded_homes, tmp_path):
    home, batch_id = loaded_homes.clean, loaded_homes.batch_id
    cases = [
        (["never-loaded"], home, f"batch never-loaded is not in the load ledger; loaded batches: {batch_id}."),
        (["x/../y"], home, "batch id 'x/../y' is not valid"),
        ([batch_id, "--registry", str(tmp_path / "nope.yml")], home, "nope.yml: cannot read the source registry"),
        ([batch_id, "--rules", str(tmp_path / "nope.yml")], home, "--rules"),
        ([batch_id], tmp_path / "empty-home", "no warehouse at"),
        ([], home, "Missing argument 'batch'"),
    ]
    for args, data_home, says in cases:
        result = hospital("validate", *args, home=data_home)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and says in lines[0], (args, result.stderr)
        assert "Quality gate" not in result.stdout + result.stderr
    assert not (tmp_path / "empty-home").exists()
