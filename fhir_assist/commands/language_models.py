"""`train lm-base|mera|lamo` and the `evaluate` report of MERA and LAMO artifacts."""
from __future__ import annotations

import argparse
import json
from typing import Callable


def register_train(models: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    base = models.add_parser(
        "lm-base", help="small GPT-2-style base language model pre-trained on a cohort's text",
        description="Pre-train a small causal language model (word-level tokenizer, GPT-2 blocks) on "
        "the training patients' verbalised visits, notes and code descriptions. MERA and LAMO start "
        "from it (--base-model); any local transformers causal-LM directory works the same way.")
    common(base)
    base.add_argument("--layers", type=int, default=2, help="transformer blocks (default 2)")
    base.add_argument("--width", type=int, default=128, help="hidden width (default 128)")
    base.add_argument("--steps", type=int, default=400, help="training steps (default 400)")
    base.set_defaults(func=_train_base)
    for name, helptext in (("mera", "MERA-style diagnosis ranker on a causal LM (code tokens, EOV cut)"),
                           ("lamo", "LAMO-style medication recommender (LoRA on a causal LM)")):
        parser = models.add_parser(name, help=helptext, description=helptext + ". Base model from "
                                   "--base-model (a local directory; never downloaded), else a small one "
                                   "pre-trained on the cohort first.")
        common(parser)
        parser.add_argument("--base-model", metavar="PATH", default=None,
                            help="local transformers causal-LM directory (e.g. from `train lm-base`)")
        parser.add_argument("--lora-r", type=int, default=8, metavar="N",
                            help="LoRA rank (default 8; 0 fine-tunes every weight)")
        parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default 4)")
        parser.set_defaults(func=_train_language_model, language_model=name)


def _train_base(args: argparse.Namespace) -> int:
    from fhir_assist.recipes import lm_base

    log = lm_base.train(args.data, args.out, layers=args.layers, width=args.width, steps=args.steps,
                        seed=args.seed, device=args.device)
    print(f"saved {args.out}: {log['parameters']:,} parameters, {log['texts']:,} texts, "
          f"final loss {log['final_loss']:.3f}, {log['seconds']:.0f} s")
    return 0


def _train_language_model(args: argparse.Namespace) -> int:
    from fhir_assist.recipes import device_for

    if args.language_model == "mera":
        from fhir_assist.recipes.mera import MeraConfig as Config, train
    else:
        from fhir_assist.recipes.lamo import LamoConfig as Config, train
    config = Config()
    if args.epochs:
        config.fit = {**config.fit, "epochs": int(args.epochs)}
    report = train(args.data, args.out, base_path=args.base_model, lora_rank=args.lora_r, seed=args.seed,
                   device=device_for(args.device), config=config)
    print(format_report({"kind": args.language_model, **report}))
    print(f"artifact written to {args.out}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from fhir_assist.recipes import language_model_evaluation

    report = language_model_evaluation.evaluate(args.artifact, args.data, device=args.device,
                                                progress=not args.json)
    print(json.dumps(report, allow_nan=False, default=float) if args.json else format_report(report))
    return 0


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def format_report(report: dict) -> str:
    test, lines = report.get("test") or {}, []
    for model, levels in (test.get("models") or {}).items():
        if "jaccard" in levels:
            lines.append(f"{model:<16} " + "  ".join(f"{k} {_fmt(v)}" for k, v in levels.items()))
        else:
            for level, row in levels.items():
                lines.append(f"{model:<16} {level:<8} NDCG {_fmt(row['ndcg'])}  RE@90 {_fmt(row['re@90'])}"
                             f"  Recall@10 {_fmt(row['recall@10'])}")
    for rule, row in (test.get("cut") or {}).items():
        lines.append(f"cut {rule}: {row}")
    if report.get("memorisation"):
        lines.append(f"memorisation: {report['memorisation']}")
    if report.get("trainable"):
        t = report["trainable"]
        lines.append(f"trainable parameters: {t['trainable']:,} of {t['parameters']:,} ({t['fraction']:.1%})")
    return "\n".join(lines)
