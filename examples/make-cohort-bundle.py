#!/usr/bin/env python3
"""Rebuild examples/cohort-bundle.json from the synthetic cohort generator.

    .venv/bin/python examples/make-cohort-bundle.py [--patients 4] [--seed 7] [--out FILE]

Generates a small cohort (seed 7, ICD-10-CM era), takes the first patients whose records
are short enough, and writes them as one FHIR transaction Bundle of `PUT Type/id`
entries: loading it twice leaves one copy of each resource. Patients with short records
are taken so the example stays small enough to read.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path

ORDER = ("Patient", "Encounter", "Condition", "Procedure", "MedicationRequest", "DocumentReference")
MAX_ENTRIES = 150
MAX_PER_PATIENT = 40


def patient_of(resource: dict) -> str:
    if resource["resourceType"] == "Patient":
        return resource["id"]
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return ref.split("/")[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=4, help="patients in the Bundle (default 4)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("cohort-bundle.json"),
                        help="where to write the Bundle (default examples/cohort-bundle.json)")
    args = parser.parse_args(argv)

    from fhir_assist.synth.generate import generate_cohort

    records: dict[str, list[dict]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="fhir-assist-cohort-") as tmp:
        generate_cohort(max(40, args.patients * 10), args.seed, tmp, progress=False)
        for rtype in ORDER:
            path = Path(tmp) / f"{rtype}.ndjson"
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    resource = json.loads(line)
                    records[patient_of(resource)].append(resource)

    chosen, entries = [], []
    for patient_id in sorted(records):   # generator ids sort in patient order
        resources = records[patient_id]
        if len(resources) > MAX_PER_PATIENT or len(entries) + len(resources) > MAX_ENTRIES:
            continue
        chosen.append(patient_id)
        entries.extend(resources)
        if len(chosen) == args.patients:
            break
    if len(chosen) < args.patients:
        print(f"error: found only {len(chosen)} patients small enough for a {MAX_ENTRIES}-entry Bundle",
              file=sys.stderr)
        return 1

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['resourceType'] + '/' + r['id'])}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        } for r in sorted(entries, key=lambda r: (ORDER.index(r["resourceType"]), r["id"]))],
    }
    args.out.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(chosen)} patients, {len(entries)} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
