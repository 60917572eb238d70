"""`fhir-assist code-batch`: a messy Bulk Data export coded by the local engine and by Spark
(a real local[2] Spark, offline), the same bytes out of both, skips counted, Bundles valid R4."""
from __future__ import annotations

import gzip
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fhir_assist.batch.groups import group_by_patient, keyed_resources
from fhir_assist.batch.job import BatchOptions, build_coder, coder_factory, run_batch
from fhir_assist.batch.shards import load_shard, spill
from fhir_assist.adapter.report import IngestReport
from fhir_assist.fhir.validation import validate_r4
from fhir_assist.fhir_server import SUGGESTION_TAG
from fhir_assist.synth.generate import generate_cohort

RECORDED = "2030-01-02T03:04:05Z"
CLI = [sys.executable, "-c", "import sys; from fhir_assist.cli import main; sys.exit(main(sys.argv[1:]))"]


def _messy_export(root: Path) -> Path:
    """A 24-patient synthetic export, gzipped in part, with the faults of real exports added."""
    data = root / "export"
    generate_cohort(24, seed=11, out_dir=data, progress=False, workers=1)
    # A second Condition file, gzipped: one good line, one broken, one naming no patient.
    lines = (data / "Condition.ndjson").read_text().splitlines()
    (data / "Condition.ndjson").write_text("\n".join(lines[:-1]) + "\n")
    orphan = json.loads(lines[0]) | {"id": "orphan-1", "subject": {"reference": "Group/g1"}}
    with gzip.open(data / "Condition_2.ndjson.gz", "wt") as f:
        f.write(lines[-1] + "\n" + '{"resourceType": "Condition", "id": \n' + json.dumps(orphan) + "\n")
    # A finished encounter with nothing recorded for it, years after everything else.
    patient = json.loads((data / "Patient.ndjson").read_text().splitlines()[0])["id"]
    empty = {"resourceType": "Encounter", "id": "empty-1", "status": "finished",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
             "subject": {"reference": f"Patient/{patient}"},
             "period": {"start": "2039-05-01T10:00:00Z", "end": "2039-05-01T10:30:00Z"}}
    with open(data / "Encounter.ndjson", "a") as f:
        f.write(json.dumps(empty) + "\n")
    return data


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    data = _messy_export(root)
    summary = run_batch(BatchOptions(data=str(data), out=str(root / "local"), workers=2, bundles=True,
                                     recorded=RECORDED, progress=False))
    return data, root / "local", summary


def test_local_engine_codes_every_encounter_and_counts_what_it_skipped(local_run):
    data, out, summary = local_run
    lines = [json.loads(line) for line in (out / "suggestions.ndjson").read_text().splitlines()]
    assert summary["encounters"] == len(lines) > 24
    assert summary["patients"] == 24
    assert summary["skipped"]["invalid JSON"] == 1
    assert summary["skipped"]["resource without patient"] == 1
    assert summary["skipped"]["encounter without inputs"] == 1
    assert json.loads((out / "summary.json").read_text())["encounters"] == len(lines)
    assert any("Condition_2.ndjson.gz:2" in (p["source"] or "") for p in summary["problems"])
    # Sorted by patient, then by visit; every line a ranked list with a recommended flag.
    keys = [(line["patient"], line["start"]) for line in lines]
    assert keys == sorted(keys)
    assert "empty-1" not in {line["encounter"] for line in lines}
    for line in lines:
        assert line["codes"] and line["models"]
        assert [c["rank"] for c in line["codes"]] == list(range(1, len(line["codes"]) + 1))
        scores = [c["score"] for c in line["codes"]]
        flags = [c["recommended"] for c in line["codes"]]
        assert flags == sorted(flags, reverse=True)          # recommended first
        assert all(0.0 <= s <= 1.0 for s in scores)
    assert sum(c["recommended"] for line in lines for c in line["codes"]) > 0


def test_write_back_bundles_are_valid_r4_transactions_of_provisional_conditions(local_run):
    data, out, summary = local_run
    bundles = [json.loads(line) for line in (out / "write-back.ndjson").read_text().splitlines()]
    assert bundles and sum(len(b["entry"]) for b in bundles) == summary["conditions_in_bundles"]
    coded = {(line["patient"], line["encounter"]): {c["code"] for c in line["codes"] if c["recommended"]}
             for line in map(json.loads, (out / "suggestions.ndjson").read_text().splitlines())}
    for bundle in bundles:
        validate_r4(bundle)
        assert bundle["type"] == "transaction"
        for entry in bundle["entry"]:
            condition = entry["resource"]
            assert entry["request"]["method"] == "POST" and entry["request"]["ifNoneExist"].startswith("identifier=")
            assert condition["verificationStatus"]["coding"][0]["code"] == "provisional"
            assert condition["meta"]["tag"] == [SUGGESTION_TAG]
            assert condition["recordedDate"] == RECORDED
            key = (condition["subject"]["reference"].split("/")[1], condition["encounter"]["reference"].split("/")[1])
            assert condition["code"]["coding"][0]["code"] in coded[key]


def test_spilled_shards_hold_each_patient_whole_in_reading_order(local_run, tmp_path):
    data, _, _ = local_run
    patients, medications = group_by_patient(keyed_resources(data, IngestReport()))
    read = IngestReport()
    shards, spilled_medications = spill(data, tmp_path, 5, read)
    assert spilled_medications == medications
    assert read.to_dict()["skipped"]["resource without patient"] == 1
    seen: dict[str, list[dict]] = {}
    for shard in shards:
        groups = load_shard(shard)
        assert not set(groups) & set(seen), "a patient split over two shards"
        seen.update(groups)
    assert 1 < len(shards) <= 5
    assert seen == patients        # every resource once, each patient's in reading order


def test_local_engine_writes_the_same_bytes_whatever_the_shards(local_run, tmp_path):
    """Hundreds of tiny shards (most of them one patient) and one process give the bytes of
    the default run (a few shards, two processes); the shards are gone afterwards."""
    data, local_out, local_summary = local_run
    summary = run_batch(BatchOptions(data=str(data), out=str(tmp_path), workers=1, bundles=True,
                                     recorded=RECORDED, progress=False, shard_mb=0.002))
    assert summary["shards"] > 20 > local_summary["shards"]
    for name in ("suggestions.ndjson", "write-back.ndjson"):
        assert (tmp_path / name).read_bytes() == (local_out / name).read_bytes()
    assert summary["skipped"] == local_summary["skipped"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suggestions.ndjson", "summary.json", "write-back.ndjson"]


def test_the_per_patient_result_does_not_depend_on_resource_order(local_run):
    data, _, _ = local_run
    patients, _ = group_by_patient(keyed_resources(data, IngestReport()))
    coder = build_coder(coder_factory(BatchOptions(data=str(data), out="unused")))
    pid = max(patients, key=lambda p: len(patients[p]))
    shuffled = list(patients[pid])
    random.Random(3).shuffle(shuffled)
    assert coder.code(pid, shuffled).lines == coder.code(pid, patients[pid]).lines


@pytest.mark.timeout(240)
def test_spark_engine_writes_the_same_bytes_as_the_local_engine(local_run, tmp_path):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs a Java runtime")
    data, local_out, local_summary = local_run
    result = subprocess.run(
        CLI + ["code-batch", "--data", str(data), "--out", str(tmp_path),
               "--engine", "spark", "--spark-master", "local[2]", "--bundles", "--recorded", RECORDED],
        capture_output=True, text=True, timeout=230)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "suggestions.ndjson").read_bytes() == (local_out / "suggestions.ndjson").read_bytes()
    assert (tmp_path / "write-back.ndjson").read_bytes() == (local_out / "write-back.ndjson").read_bytes()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["skipped"] == local_summary["skipped"]
    assert summary["engine"] == "spark" and summary["encounters"] == local_summary["encounters"]
    # Spark's start-up stays quiet: what it says on stderr is our summary and warnings at most.
    noise = [line for line in result.stderr.splitlines() if " INFO " in line and "fhir_assist" not in line]
    assert noise == []


def test_cli_refuses_a_missing_folder_without_a_traceback(tmp_path):
    result = subprocess.run(CLI + ["code-batch", "--data", str(tmp_path / "no"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr and "Traceback" not in result.stderr
