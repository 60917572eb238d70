"""Ingest throughput: resources/s read with validation none / fast / full.

    .venv/bin/python benchmarks/ingest.py                  # writes a 100k-resource export, measures
    .venv/bin/python benchmarks/ingest.py --path EXPORT    # measure an existing export directory
    .venv/bin/python benchmarks/ingest.py --resources 1000000
    .venv/bin/python benchmarks/ingest.py --baseline /tmp/old-checkout   # this tree against another

The export written is a Bulk Data layout (one NDJSON file per resource type) with
the shapes real exports have: offsets and microseconds in times, Conditions cited
from Encounter.diagnosis, medicationReference, base64 notes. Full (pydantic)
validation runs on at most --full-resources resources, as it is far slower. Every
rate is resources per second of wall time (best of --repeat rounds), and the ratios
are against "none" of the same stage measured in the same run on the same data:
"read" is iter_resources alone, "timelines" is load_cohort (reading + timelines).

With --baseline DIR, "timelines fast" (the default load_cohort) is also measured with the
code of another checkout (e.g. an older commit) and of this tree, each in its own process,
alternating, on the same export: resources/s of wall time and of CPU time (the process's
own, so a busy shared machine skews it less) and this tree's ratio to the baseline.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fhir_assist.adapter.files import discover_files, iter_resources  # noqa: E402
from fhir_assist.adapter.report import IngestReport  # noqa: E402

ICD10 = ["I10", "E11.9", "E78.5", "I50.23", "J18.9", "N39.0", "K21.9", "I48.91", "N18.3",
         "J44.1", "E11.65", "F32.9", "M54.5", "R07.9", "Z79.4", "E87.1"]
RXNORM = ["6809", "29046", "83367", "11289", "1191", "32968", "4603", "7646", "17767", "36567"]
PCS = ["0DTJ4ZZ", "5A1955Z", "02703ZZ", "0FT44ZZ", "3E0336Z"]
NOTE = base64.b64encode(b"Admitted with shortness of breath. Known HTN and T2DM (E11.9). "
                        b"Chest x-ray: no consolidation. Plan: diuresis, follow-up in clinic.").decode()


def _time(rng: random.Random, day: int) -> str:
    hour, minute = rng.randrange(24), rng.randrange(60)
    micro = f".{rng.randrange(10**6):06d}" if rng.random() < 0.3 else ""
    zone = rng.choice(["Z", "+02:00", "-05:00", "+05:30"])
    year, rest = 2015 + day // 365, day % 365
    month, mday = 1 + rest // 31 % 12, 1 + rest % 28
    return f"{year}-{month:02d}-{mday:02d}T{hour:02d}:{minute:02d}:{rng.randrange(60):02d}{micro}{zone}"


def write_export(out: Path, resources: int, seed: int = 0) -> int:
    """A synthetic Bulk Data export of about `resources` resources; returns the count written."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    names = ["Patient", "Encounter", "Condition", "Procedure", "MedicationRequest", "Medication",
             "DocumentReference"]
    files = {n: open(out / f"{n}.ndjson", "w") for n in names}
    written = 0

    def emit(resource: dict) -> None:
        nonlocal written
        files[resource["resourceType"]].write(json.dumps(resource, separators=(",", ":")) + "\n")
        written += 1

    for i, rx in enumerate(RXNORM):
        emit({"resourceType": "Medication", "id": f"med{i}",
              "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rx}]}})
    p = 0
    while written < resources:
        pid = f"MRN{p:07d}"
        p += 1
        emit({"resourceType": "Patient", "id": pid, "gender": rng.choice(["male", "female"]),
              "birthDate": f"{rng.randrange(1930, 2000)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"})
        chronic = [f"{pid}-c{k}" for k in range(rng.randrange(1, 3))]
        for cid in chronic:
            emit({"resourceType": "Condition", "id": cid,
                  "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": rng.choice(ICD10)}]},
                  "subject": {"reference": f"Patient/{pid}"}, "recordedDate": "2014-06-01"})
        day = rng.randrange(300)
        for v in range(rng.randrange(1, 5)):
            eid = f"{pid}-e{v}"
            day += rng.randrange(20, 200)
            acute = [f"{eid}-dx{k}" for k in range(rng.randrange(1, 6))]
            emit({"resourceType": "Encounter", "id": eid, "status": "finished",
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                  "subject": {"reference": f"Patient/{pid}"},
                  "period": {"start": _time(rng, day), "end": _time(rng, day + 3)},
                  "diagnosis": [{"condition": {"reference": f"Condition/{c}"}, "rank": r + 1}
                                for r, c in enumerate(acute + chronic)]})
            for cid in acute:
                emit({"resourceType": "Condition", "id": cid,
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                           "code": rng.choice(ICD10), "display": "—"}]},
                      "subject": {"reference": f"Patient/{pid}"}, "recordedDate": _time(rng, day + 1)})
            for k in range(rng.randrange(0, 3)):
                emit({"resourceType": "Procedure", "id": f"{eid}-p{k}", "status": "completed",
                      "code": {"coding": [{"system": "http://www.cms.gov/Medicare/Coding/ICD10",
                                           "code": rng.choice(PCS)}]},
                      "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{eid}"},
                      "performedPeriod": {"start": _time(rng, day + 1)}})
            for k in range(rng.randrange(1, 6)):
                med = ({"medicationReference": {"reference": f"Medication/med{rng.randrange(len(RXNORM))}"}}
                       if rng.random() < 0.3 else
                       {"medicationCodeableConcept": {"coding": [
                           {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rng.choice(RXNORM)}]}})
                emit({"resourceType": "MedicationRequest", "id": f"{eid}-m{k}", "status": "active",
                      "intent": "order", **med, "subject": {"reference": f"Patient/{pid}"},
                      "encounter": {"reference": f"Encounter/{eid}"}, "authoredOn": _time(rng, day)})
            if rng.random() < 0.5:
                emit({"resourceType": "DocumentReference", "id": f"{eid}-n", "status": "current",
                      "subject": {"reference": f"Patient/{pid}"},
                      "content": [{"attachment": {"contentType": "text/plain", "data": NOTE}}],
                      "context": {"encounter": [{"reference": f"Encounter/{eid}"}]}})
    for handle in files.values():
        handle.close()
    return written


def _subset(src: Path, dst: Path, limit: int) -> None:
    """The first lines of each file, `limit` resources in all (for the slow full mode)."""
    dst.mkdir(parents=True, exist_ok=True)
    files = [f for f in discover_files(src) if f.name.endswith(".ndjson")]
    total = sum(1 for f in files for _ in open(f, "rb"))
    for f in files:
        lines = sum(1 for _ in open(f, "rb"))
        keep = max(1, lines * limit // max(total, 1))
        with open(f, "rb") as fin, open(dst / f.name, "wb") as fout:
            for n, line in enumerate(fin):
                if n >= keep:
                    break
                fout.write(line)


def measure(path: Path, mode: str) -> tuple[int, float]:
    report = IngestReport()
    start = time.perf_counter()
    count = sum(1 for _ in iter_resources(path, validate=mode, report=report))
    return count, time.perf_counter() - start


def measure_cohort(path: Path, mode: str) -> tuple[int, float]:
    from fhir_assist.adapter.timeline import load_cohort
    start = time.perf_counter()
    cohort = load_cohort(path, validate=mode, progress=False)
    return sum(cohort.report.resources.values()), time.perf_counter() - start


def warm_mappings() -> None:
    """Load the vocabularies once, so their one-off load is not counted as ingest."""
    from mappings import codesystems as cs
    from mappings.icd import icd9cm, icd10cm
    from mappings.procedures import procedure_description
    from mappings.rxnorm import ingredient_for
    icd10cm().normalize("I10")
    icd9cm().normalize("428.0")
    procedure_description(cs.ICD10PCS, "0DTJ4ZZ")
    ingredient_for("6809")


def measure_json_only(path: Path) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    for f in discover_files(path):
        with open(f, "rb") as handle:
            for line in handle:
                json.loads(line)
                count += 1
    return count, time.perf_counter() - start


# Run with a checkout's directory first on sys.path: load_cohort exists in every version.
_TREE_CHILD = """
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
from fhir_assist.adapter.timeline import load_cohort
load_cohort(sys.argv[2], validate="fast", progress=False)   # vocabularies loaded once, not timed
gc.collect()
wall, cpu = time.perf_counter(), time.process_time()
cohort = load_cohort(sys.argv[2], validate="fast", progress=False)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"resources": sum(cohort.report.resources.values()), "wall": wall, "cpu": cpu}))
"""


def compare_trees(path: Path, trees: dict[str, Path], rounds: int) -> list[dict]:
    """load_cohort ("fast") with each tree's code, alternating, best of `rounds` per tree."""
    import subprocess
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    best: dict[str, dict] = {}
    for round_no in range(rounds):
        for name, tree in trees.items():
            out = subprocess.run([sys.executable, "-c", _TREE_CHILD, str(tree), str(path)], env=env,
                                 cwd=tree, capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            mine = best.setdefault(name, {"tree": str(tree), "resources": got["resources"],
                                          "wall": got["wall"], "cpu": got["cpu"]})
            mine["wall"], mine["cpu"] = min(mine["wall"], got["wall"]), min(mine["cpu"], got["cpu"])
        print(f"trees round {round_no + 1}/{rounds} done", file=sys.stderr)
    base = best["baseline"]
    rows = []
    for name, row in best.items():
        rows.append({"tree": name, "path": row["tree"], "resources": row["resources"],
                     "wall_s": round(row["wall"], 2), "cpu_s": round(row["cpu"], 2),
                     "resources_per_s": round(row["resources"] / row["wall"]),
                     "resources_per_cpu_s": round(row["resources"] / row["cpu"]),
                     "ratio_wall": round(base["wall"] / row["wall"], 2),
                     "ratio_cpu": round(base["cpu"] / row["cpu"], 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, help="existing export directory (default: write one)")
    parser.add_argument("--resources", type=int, default=100_000, help="resources to write (default 100000)")
    parser.add_argument("--full-resources", type=int, default=10_000,
                        help="resources to measure full validation on (default 10000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds over all stages; the best time of each is kept (default 3)")
    parser.add_argument("--no-timelines", action="store_true",
                        help="time reading only, not load_cohort (reading + timelines)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", type=Path,
                        help="another checkout: time load_cohort with its code and this tree's, alternating")
    parser.add_argument("--only-trees", action="store_true",
                        help="with --baseline: measure only the two trees, not the stages of this one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fhir-ingest-") as tmp:
        path = args.path
        if path is None:
            path = Path(tmp) / "export"
            t0 = time.perf_counter()
            n = write_export(path, args.resources, args.seed)
            print(f"wrote {n} resources to {path} in {time.perf_counter() - t0:.1f}s "
                  f"({sum(f.stat().st_size for f in path.iterdir()) / 1e6:.0f} MB)", file=sys.stderr)
        trees = []
        if args.baseline is not None:
            trees = compare_trees(path, {"baseline": args.baseline.resolve(),
                                         "this": Path(__file__).resolve().parents[1]}, args.repeat)
            if args.only_trees:
                return _print_trees(trees, args.json)
        full_path = Path(tmp) / "full-subset"
        _subset(path, full_path, args.full_resources)

        stages = [("json.loads only", measure_json_only, path, None),
                  ("read none", measure, path, "none"),
                  ("read fast", measure, path, "fast"),
                  # none again on the subset, so the full ratio is taken on identical data
                  ("read none (subset)", measure, full_path, "none"),
                  ("read full (subset)", measure, full_path, "full")]
        if not args.no_timelines:
            warm_mappings()
            stages += [("timelines none", measure_cohort, path, "none"),
                       ("timelines fast", measure_cohort, path, "fast"),
                       ("timelines none (subset)", measure_cohort, full_path, "none"),
                       ("timelines full (subset)", measure_cohort, full_path, "full")]
        # Rounds over all stages, best time kept: a shared machine's noise hits every
        # stage alike instead of whichever happened to run during a spike.
        results: dict[str, tuple[int, float]] = {}
        for round_no in range(args.repeat):
            for name, run, where, mode in stages:
                count, seconds = run(where) if mode is None else run(where, mode)
                if name not in results or seconds < results[name][1]:
                    results[name] = (count, seconds)
            print(f"round {round_no + 1}/{args.repeat} done", file=sys.stderr)

    rate = {name: count / seconds for name, (count, seconds) in results.items()}
    rows = []
    for name, (count, seconds) in results.items():
        # each stage against "none" of the same kind on the same data
        kind = "timelines" if name.startswith("timelines") else "read"
        reference = rate[f"{kind} none (subset)"] if "(subset)" in name else rate.get(f"{kind} none")
        if name == "json.loads only":
            reference = rate["read none"]
        rows.append({"stage": name, "resources": count, "seconds": round(seconds, 2),
                     "resources_per_s": round(rate[name]), "vs_none": round(rate[name] / reference, 3)})
    if args.json:
        print(json.dumps({"cpu_count": os.cpu_count(), "rows": rows, "trees": trees}, indent=2))
    else:
        print(f"{'stage':<26}{'resources':>11}{'seconds':>9}{'res/s':>10}{'vs none':>9}")
        for row in rows:
            print(f"{row['stage']:<26}{row['resources']:>11}{row['seconds']:>9.2f}"
                  f"{row['resources_per_s']:>10}{row['vs_none']:>9.2f}")
        print("read = iter_resources only; timelines = load_cohort (read + timelines). "
              "Full validation runs on a subset;\nits ratio is against none on that same subset.")
        if trees:
            _print_trees(trees, False)
    return 0


def _print_trees(trees: list[dict], as_json: bool) -> int:
    if as_json:
        print(json.dumps({"cpu_count": os.cpu_count(), "trees": trees}, indent=2))
        return 0
    print(f"\n{'timelines fast':<16}{'resources':>11}{'wall s':>8}{'res/s':>9}{'cpu s':>8}{'res/cpu s':>11}"
          f"{'x wall':>8}{'x cpu':>7}")
    for row in trees:
        print(f"{row['tree']:<16}{row['resources']:>11}{row['wall_s']:>8.2f}{row['resources_per_s']:>9}"
              f"{row['cpu_s']:>8.2f}{row['resources_per_cpu_s']:>11}{row['ratio_wall']:>8.2f}{row['ratio_cpu']:>7.2f}")
    print("x = the baseline's seconds / this row's (best of --repeat runs each, alternating).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
