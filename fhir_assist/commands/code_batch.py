"""`fhir-assist code-batch`: code every encounter of a Bulk Data export."""
from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
examples:
  fhir-assist code-batch --data export/ --out coded/
  fhir-assist code-batch --data export/ --out coded/ --models models/ --bundles --workers 8
  fhir-assist code-batch --data export/ --out coded/ --engine spark --spark-master spark://head:7077

Reads the export's top-level NDJSON files (<Type>.ndjson or .ndjson.gz, several per type are
fine) and writes into --out:
  suggestions.ndjson  one line per coded encounter, by patient id then visit date: patient,
                      encounter (and the encounters a joined visit covers), the ranked ICD billing
                      codes with calibrated scores and a recommended flag, the models' versions
  write-back.ndjson   with --bundles: one FHIR transaction Bundle per encounter, creating its
                      confident codes as provisional Conditions (conditional creates: safe to resend)
  summary.json        what was read, coded and skipped (bad lines, resources without a patient,
                      encounters without inputs or still in progress), and the time taken
Both engines run the same per-patient function and write the same suggestions. The models,
cut and write-back rule are the CDS service's (FHIR_ASSIST_TARGET_RECALL, _CUT_RULE,
_WRITE_BACK_MAX, _WRITE_BACK_PRECISION, _TOP_CODES apply).
"""


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    parser = sub.add_parser("code-batch", help=help_text, epilog=EPILOG,
                            description="Code every encounter of a FHIR Bulk Data export with the coding models.",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="DIR", help="the Bulk Data export folder (or one NDJSON file)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the outputs (created)")
    parser.add_argument("--engine", choices=("local", "spark"), default="local",
                        help="local: a process per core on this machine (default); spark: Apache Spark")
    parser.add_argument("--spark-master", default="local[*]", metavar="URL",
                        help="with --engine spark: the Spark master (default local[*])")
    parser.add_argument("--models", metavar="DIR", help="models folder as for `serve --models` (default: the bundled demo models)")
    parser.add_argument("--bundles", action="store_true", help="also write transaction Bundles for write-back")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="with --engine local: worker processes (default: one per core; one where a "
                        "model runs on a GPU: FHIR_ASSIST_DEVICE, as for serve --device)")
    parser.add_argument("--recorded", metavar="DATETIME",
                        help="recordedDate of the written Conditions (default: when the run started)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fhir_assist.batch.job import BatchError, BatchOptions, run_batch
    from fhir_assist.batch.output import summary_text
    from fhir_assist.cli import CliError

    if args.workers < 0:
        raise CliError("--workers must be 0 (every core) or more")
    options = BatchOptions(data=args.data, out=args.out, engine=args.engine, spark_master=args.spark_master,
                           models=args.models, bundles=args.bundles, workers=args.workers,
                           recorded=args.recorded)
    try:
        summary = run_batch(options)
    except (BatchError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from None
    print(summary_text(summary), file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0
