"""`fhir-assist evaluate` of a MERA or LAMO artifact: the same tables as at training time,
on the test patients of any cohort (split by the artifact's seed)."""
from __future__ import annotations

from fhir_assist.recipes import device_for
from fhir_assist.recipes.language_model_data import by_split, load_split
from fhir_assist.tasks import verbalise
from fhir_assist.tasks.language_models import load_code_lm
from model_zoo.llm.fit import FitConfig


def evaluate(artifact: str, data: str, device=None, progress: bool = True) -> dict:
    device = device_for(device)
    model, config = load_code_lm(artifact, device)
    fit = FitConfig.from_dict(config.get("fit", {}))
    timelines, split = load_split(data, int(config.get("split_seed", 0)), progress)
    if config["kind"] == "mera":
        from fhir_assist.recipes import mera

        parts = by_split(verbalise.coding_examples(timelines), split)
        tokens = list(config["code_tokens"])
        columns = mera._level_columns(tokens, config["levels"])
        tables = mera.evaluate(model, parts["test"], parts["train"], tokens, columns, fit, timelines)
    else:
        from fhir_assist.recipes import lamo

        parts = by_split(verbalise.medication_examples(timelines), split)
        index = {m: i for i, m in enumerate(config["medications"])}
        tables = lamo.evaluate(model, parts["test"], index, float(config["threshold"]), fit, timelines)
    trained = config.get("report", {})
    return {"task": config["task"], "kind": config["kind"], "test": tables,
            "memorisation": trained.get("memorisation"), "trainable": trained.get("trainable"),
            "seconds_per_epoch": (trained.get("stage2") or trained.get("training") or {}).get("seconds_per_epoch"),
            "examples": {k: len(v) for k, v in parts.items()}}
