"""`fhir-assist evaluate ARTIFACT --data DIR [--json] …`: the artifact's task picks the report."""
from __future__ import annotations

import argparse
import json
import sys

from fhir_assist.cli import CliError


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    parser = sub.add_parser(
        "evaluate",
        help=help_text,
        description="Evaluate an artifact and its baselines on the test patients of a cohort "
        "(same deterministic split as training). Medication-change artifacts print the MICRON "
        "table (Jaccard, F1, PRAUC, DDI rate, Err(add), Err(remove)); coding artifacts print "
        "per-level NDCG, RE@R, Recall@K, AUPRC and F1.",
    )
    parser.add_argument("artifact", metavar="ARTIFACT", help="artifact directory or registry name")
    parser.add_argument("--data", required=True, metavar="DIR", help="cohort directory")
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON object")
    parser.add_argument("--seeds", type=int, default=1,
                        help="retrain and evaluate with N seeds, report mean ± std (default 1)")
    parser.add_argument("--plots", "--out", dest="plots", metavar="DIR", default=None,
                        help="write PNG plots (RE@R, Recall@K, calibration) to DIR")
    parser.add_argument("--feedback", metavar="FILE", default=None,
                        help="coder feedback labels: also evaluate a ranker retrained with them")
    parser.add_argument("--target-recall", type=float, default=0.9, metavar="R",
                        help="coding: recall the per-encounter cut aims at, for the `cut` figures (default 0.9)")
    parser.add_argument("--min-probability", type=float, default=None, metavar="P",
                        help="coding: also report the per-encounter cut stopped before the first code whose "
                        "calibrated score is below P (`per_encounter_floor` in the cut figures)")
    parser.add_argument("--fuse-with", metavar="TEXT_CODER", default=None,
                        help="coding: also fit and report the fused list of this ranker and a text-coder "
                        "artifact (with previous-visit and problem-list evidence)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.set_defaults(func=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from fhir_assist.tasks.artifacts import read_config

    try:
        config = read_config(args.artifact)
    except FileNotFoundError as exc:
        raise CliError(f"no artifact at {args.artifact!r}: {exc}") from None
    task = config["task"]
    if config.get("kind") in ("mera", "lamo"):
        from fhir_assist.commands.language_models import evaluate
        return evaluate(args)
    if task == "medication-change":
        return _evaluate_medication(args)
    if task == "icd-coding":
        return _evaluate_coding(args)
    raise CliError(f"artifact {args.artifact!r} has unknown task {task!r}")


def _evaluate_medication(args: argparse.Namespace) -> int:
    from fhir_assist.commands.medication_report import describe_thresholds, format_table
    from fhir_assist.recipes import micron_evaluation

    result = micron_evaluation.evaluate(args.artifact, args.data, seeds=args.seeds, device=args.device,
                                        progress=not args.json or sys.stderr.isatty())
    if args.json:
        print(json.dumps(micron_evaluation.json_document(result)))
        return 0
    note = "" if result.same_data else "  (cohort differs from the training data)"
    print(format_table(result.test_patients, result.summary, title=f"test patients{note}",
                       seeds=result.seeds))
    print()
    print(format_table(result.test_patients, result.summary_observed, seeds=result.seeds,
                       title="test patients, base set = previous prescription"))
    print(describe_thresholds(result.thresholds))
    return 0


def _evaluate_coding(args: argparse.Namespace) -> int:
    from fhir_assist.commands.coding_report import format_table, write_plots
    from fhir_assist.recipes import coding_evaluation

    result = coding_evaluation.evaluate(
        args.artifact, args.data, feedback_path=args.feedback, seeds=int(args.seeds or 1),
        device=args.device, progress=not args.json or sys.stderr.isatty(),
        target_recall=float(getattr(args, "target_recall", None) or 0.9), fuse_with=getattr(args, "fuse_with", None),
        min_probability=getattr(args, "min_probability", None))
    report = result.report
    if args.plots:
        report["plots"] = write_plots(result.scores, result.labels, result.slices, args.plots)
    if args.json:
        print(json.dumps(report, allow_nan=False))
    else:
        print(format_table(report))
    return 0
