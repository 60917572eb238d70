"""`fhir-assist synth`: generate a synthetic FHIR cohort, or print any cohort's statistics."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fhir_assist.synth import ICD_VERSIONS, PROFILES

EPILOG = """\
examples:
  fhir-assist synth --patients 10000 --seed 7 --out cohort/
  fhir-assist synth --patients 500 --icd-version mixed --out cohort-2015/
  fhir-assist synth --patients 500 --profile ambulatory --out clinic-cohort/
  fhir-assist synth --stats cohort/
  fhir-assist synth --stats /data/bulk-export/ --json

Generated files (Bulk Data NDJSON, one resource per line): Patient, Encounter,
Condition, Procedure, MedicationRequest and DocumentReference (discharge
summaries). The same --patients/--seed/--icd-version/--profile give byte-identical
files.

Profiles: inpatient (default) is calibrated to MIMIC-III: multi-visit hospital
stays, every diagnosis on its stay. ambulatory is shaped like an outpatient-heavy
health-system export: ~6 encounters per patient-year (clinic, virtual, ED,
admissions), chronic problems on the problem list re-cited from each visit's
Encounter.diagnosis, check-ups known only by Encounter.reasonCode, admissions
partOf the ED visit they came through and readmissions partOf the index stay,
CPT/HCPCS/SNOMED CT/local procedure codes, text-only and brand-name medications,
notes only for ED visits and stays.
"""


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    parser = sub.add_parser(
        "synth",
        help=help_text,
        description="Generate a reproducible synthetic cohort calibrated to MIMIC-III (multi-visit\n"
        "patients with chronic and acute conditions, ICD codes, procedures, RxNorm medications and\n"
        "discharge notes), or print the calibration statistics of any cohort directory: ours, a FHIR\n"
        "Bulk Data export (NDJSON files named by resource type) or a directory of Bundle JSON files.\n"
        "A patient's visits are their Encounters; resources without an Encounter reference are\n"
        "attached to the visit their date falls in.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen = parser.add_argument_group("generate")
    gen.add_argument("--patients", type=int, metavar="N", help="number of patients to generate")
    gen.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    gen.add_argument("--out", metavar="DIR", help="directory to write the NDJSON files into (created)")
    gen.add_argument("--icd-version", choices=ICD_VERSIONS, default="icd10cm",
                     help="diagnosis/procedure code set: ICD-10-CM/PCS (default), ICD-9-CM, or mixed "
                     "(stays discharged before October 2015 in ICD-9-CM, later ones in ICD-10)")
    gen.add_argument("--profile", choices=PROFILES, default="inpatient",
                     help="cohort shape: inpatient (MIMIC-III-calibrated stays, default) or ambulatory "
                     "(outpatient-heavy EHR export; see below)")
    stats = parser.add_argument_group("statistics")
    stats.add_argument("--stats", metavar="DIR", help="print the calibration table of the cohort in DIR")
    stats.add_argument("--json", action="store_true", help="with --stats: print one JSON object instead")
    stats.add_argument("--validate", choices=("fast", "full", "none"), default="fast",
                       help="with --stats: how strictly resources are validated while reading (default fast)")
    gen.add_argument("--workers", type=int, default=None, metavar="N",
                     help="processes rendering patients in parallel (default: one per CPU, at most 4); "
                     "the output does not depend on it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fhir_assist.cli import CliError

    if args.stats:
        if args.patients is not None or args.out:
            raise CliError("use either --stats DIR or --patients N --out DIR, not both")
        return _stats(args, CliError)
    if args.json:
        raise CliError("--json goes with --stats DIR")
    if args.patients is None or not args.out:
        raise CliError("give --patients N and --out DIR to generate a cohort, or --stats DIR to describe one")
    if args.patients < 1:
        raise CliError("--patients must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise CliError("--workers must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out} exists and is not a directory")
    return _generate(args, out, CliError)


def _generate(args, out: Path, CliError) -> int:
    from fhir_assist.synth.generate import generate_cohort

    try:
        summary = generate_cohort(args.patients, args.seed, out, progress=not args.quiet,
                                  icd_version=args.icd_version, workers=args.workers,
                                  profile=args.profile)
    except OSError as exc:
        raise CliError(f"cannot write the cohort to {out}: {exc.strerror or exc}") from None
    total = sum(summary["resources"].values())
    print(f"wrote {summary['patients']} patients, {summary['visits']} visits, {total} resources "
          f"({summary['profile']}, {summary['icd_version']}, seed {summary['seed']}) to {out} in {summary['seconds']:.1f} s "
          f"({summary['workers']} worker{'s' if summary['workers'] > 1 else ''})")
    for rtype, count in summary["resources"].items():
        print(f"  {rtype}.ndjson: {count}")
    print(f"  visits with a drug-drug interaction pair: {summary['ddi_visit_rate']:.1%}")
    if summary["icd9_unmapped_codes"]:
        print(f"  ICD-10-CM codes without an ICD-9-CM equivalent (left out): {summary['icd9_unmapped_codes']}")
    return 0


def _stats(args, CliError) -> int:
    from fhir_assist.synth import stats

    path = Path(args.stats)
    if not path.exists():
        raise CliError(f"--stats {path}: no such file or directory")
    try:
        from fhir_assist.adapter.timeline import load_cohort
    except ImportError as exc:  # the adapter is part of the product; a broken install is the only way here
        raise CliError(f"cannot read cohorts: {exc}") from None
    from fhir_assist.adapter.report import FhirInputError

    try:
        cohort = load_cohort(path, validate=args.validate, progress=not args.quiet)
    except FhirInputError as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    timelines = cohort.timelines
    report = getattr(cohort, "report", None)
    if not timelines:
        detail = f"\n{report.summary()}" if report is not None else ""
        raise CliError(f"no patients found in {path}{detail}")
    figures = stats.cohort_stats(timelines)
    if not any(t.visits for t in timelines):
        print(f"fhir-assist: warning: {path} has patients but no visits (Encounters); per-visit "
              "figures are empty", file=sys.stderr)
    if args.json:
        json.dump(figures, sys.stdout)
        sys.stdout.write("\n")
    else:
        profile = stats.code_frequency_profile(timelines)
        print(stats.format_table(figures, profile, title=f"Cohort statistics: {path}",
                                 levels=stats.level_profile(timelines),
                                 medications=stats.medication_profile(timelines)))
    if report is not None and not args.quiet:
        summary = report.summary()
        if summary:
            print(summary, file=sys.stderr)
    return 0
