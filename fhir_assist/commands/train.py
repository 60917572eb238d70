"""`fhir-assist train {micron,icd-ranker,text-coder,coding-fusion,lm-base,mera,lamo} --data DIR --out ARTIFACT`."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    parser = sub.add_parser(
        "train",
        help=help_text,
        description="Train a model of the zoo on a cohort directory (Bulk Data NDJSON or FHIR "
        "Bundles, from any generator) and save it, with its baselines, as an artifact directory. "
        "The split is by patient and deterministic from --seed (train/validation/test ≈ 4/1/1).",
    )
    models = parser.add_subparsers(dest="model", metavar="MODEL", required=True)

    micron = models.add_parser("micron", help="MICRON residual medication-change model")
    _common(micron)
    micron.add_argument("--epochs", type=int, default=None, help="training epochs (default: model's)")
    micron.add_argument("--no-ddi-loss", action="store_true",
                        help="ablation: train without the drug-drug-interaction loss")
    micron.add_argument("--ddi-weight", type=float, default=None, metavar="W",
                        help="weight λ2 of the drug-drug-interaction loss (Eq. 10)")
    micron.add_argument("--ddi-stop-below", type=float, default=None, metavar="P",
                        help="DDI control at decision time: when two interacting medicines are both "
                        "on the predicted list, stop the one MICRON scores below P "
                        "(default 0.05: on a 5k cohort about a fifth of the interacting pairs "
                        "left, for 0.007 F1; 0: off)")
    micron.add_argument("--ddi-penalty", type=float, default=None, metavar="BETA",
                        help="DDI control in the cut-off search: choose the add/stop cut-offs on "
                        "validation for F1 − BETA × DDI rate (MICRON default 0, the change "
                        "baselines' default 2; this sets both)")
    micron.add_argument("--threshold-rule", choices=["per-medicine", "roc-percentile", "validation-grid"],
                        default=None,
                        help="how δ1/δ2 are chosen on validation: per-medicine search (default), "
                        "the paper's 5th/95th-percentile ROC rule, or one global pair "
                        "(--ddi-penalty applies to the per-medicine search)")
    micron.set_defaults(func=_train_micron)

    ranker = models.add_parser("icd-ranker", help="multitask ICD hierarchy + CCS ranker")
    _common(ranker)
    ranker.add_argument("--epochs", type=int, default=None, help="training epochs (default: model's)")
    ranker.add_argument("--select", choices=["ndcg", "auprc", "f1"], default="ndcg",
                        help="validation metric for model selection (default: ndcg)")
    ranker.add_argument("--feedback", metavar="FILE", default=None,
                        help="coder feedback labels (from `fhir-assist feedback export`)")
    ranker.add_argument("--hidden", type=_layer_sizes, default=None, metavar="N[,N…]",
                        help="hidden layer widths (default 512,512)")
    ranker.add_argument("--mode", choices=["multitask", "per-level"], default=None,
                        help="one network for all hierarchy levels, or one per level (default multitask)")
    ranker.add_argument("--dropout", type=float, default=None, help="dropout (default 0.6)")
    ranker.set_defaults(func=_train_ranker)

    text = models.add_parser("text-coder", help="note-based ICD + CCS coder (focal loss)")
    _common(text)
    text.add_argument("--architecture", choices=["tfidf", "bigru"], default=None,
                      help="tfidf: TF-IDF + logistic regression over the note vocabulary (default: "
                           "it ranks codes better than the BiGRU on our cohorts); bigru: BiGRU + "
                           "label-wise attention (MARN), the options below")
    text.add_argument("--epochs", type=int, default=None, help="training epochs (default: model's)")
    text.add_argument("--hidden", type=int, default=None, metavar="N", help="BiGRU units per direction")
    text.add_argument("--focal-alpha", dest="focal_alpha", type=float, default=None,
                      help="focal loss α (weight of positive labels)")
    text.add_argument("--focal-gamma", dest="focal_gamma", type=float, default=None,
                      help="focal loss γ (down-weighting of easy labels)")
    text.set_defaults(func=_train_text)

    fusion = models.add_parser("coding-fusion", help="one calibrated list from a ranker, a text coder and history")
    fusion.add_argument("--ranker", required=True, metavar="ARTIFACT", help="icd-ranker artifact")
    fusion.add_argument("--text-coder", required=True, metavar="ARTIFACT", help="text-coder artifact")
    fusion.add_argument("--data", required=True, metavar="DIR", help="cohort directory (the same split)")
    fusion.add_argument("--out", required=True, metavar="ARTIFACT", help="artifact directory to write")
    fusion.add_argument("--target-recall", type=float, default=0.9, metavar="R",
                        help="target recall of the stored global-K cut (default 0.9)")
    fusion.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    fusion.set_defaults(func=_train_fusion)
    from fhir_assist.commands.language_models import register_train
    register_train(models, _common)


def _layer_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 2048,2048, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths like 2048,2048, got {text!r}")
    return sizes


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="cohort directory")
    parser.add_argument("--out", required=True, metavar="ARTIFACT", help="artifact directory to write")
    parser.add_argument("--seed", type=int, default=0, help="split and initialisation seed (default 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")


def _train_micron(args: argparse.Namespace) -> int:
    from fhir_assist.commands.medication_report import describe_thresholds, format_table
    from fhir_assist.recipes import micron

    micron_config, baseline_config = micron.default_configs(
        args.epochs, not args.no_ddi_loss, args.ddi_weight, args.ddi_penalty, args.threshold_rule,
        args.ddi_stop_below)
    trained = micron.train(args.data, args.out, micron_config, baseline_config, seed=args.seed,
                           device=args.device)
    print(format_table(trained.test_patients, trained.test, title="test patients"))
    print(f"\nartifact written to {trained.path} in {trained.seconds:.1f} s")
    print(describe_thresholds(trained.thresholds))
    return 0


# flags of `train icd-ranker|text-coder` that override a training setting when given
CODING_OVERRIDES = ("hidden", "mode", "dropout", "focal_alpha", "focal_gamma", "architecture")


def _train_coding(args: argparse.Namespace, kind: str) -> int:
    from fhir_assist.commands.coding_report import fmt
    from fhir_assist.recipes import coding

    overrides = {key: getattr(args, key) for key in CODING_OVERRIDES
                 if getattr(args, key, None) is not None}
    if getattr(args, "epochs", None):
        overrides["epochs"] = int(args.epochs)
    trained = coding.train(kind, args.data, args.out, overrides=overrides,
                           seed=int(getattr(args, "seed", 0) or 0),
                           select=getattr(args, "select", None) or "ndcg",
                           device=getattr(args, "device", None),
                           feedback_path=getattr(args, "feedback", None),
                           progress=not getattr(args, "quiet", False))
    billing = (trained.metrics or {}).get(trained.model, {}).get("billing", {})
    print(f"saved {trained.path}  (test billing: NDCG {fmt(billing.get('ndcg'))}, RE@90 "
          f"{fmt(billing.get('re@90'))}, Recall@20 {fmt(billing.get('recall@20'))})")
    return 0


def _train_ranker(args: argparse.Namespace) -> int:
    return _train_coding(args, "icd-ranker")


def _train_text(args: argparse.Namespace) -> int:
    return _train_coding(args, "text-coder")


def _train_fusion(args: argparse.Namespace) -> int:
    import json

    from fhir_assist.recipes import coding_fusion

    summary = coding_fusion.train(args.ranker, args.text_coder, args.data, args.out,
                                  target_recall=args.target_recall, device=args.device)
    print(json.dumps(summary))
    return 0
