"""Recipe: the structured multitask ICD ranker (+ frequency and logistic baselines) on the
train split, selected on validation, with μF1 thresholds and RE@R cut-offs fitted on
validation."""
from __future__ import annotations

from collections import defaultdict

import torch

from fhir_assist.recipes import RecipeError
from fhir_assist.tasks.coding.artifact import RankerBundle
from fhir_assist.tasks.coding.encounters import Encounter, input_stratum
from fhir_assist.tasks.coding.settings import RankerSettings
from fhir_assist.tasks.coding.evaluation import SELECT_METRICS, cutoffs_for, selection_score, to_numpy
from fhir_assist.tasks.coding.spaces import FeatureSpace, LabelSpace


def _batches(tensors: dict[str, torch.Tensor], batch_size: int, seed: int) -> list[dict]:
    n = len(next(iter(tensors.values())))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [{k: v[order[i:i + batch_size]] for k, v in tensors.items()}
            for i in range(0, n, batch_size)]


def _feedback_weight_fn(edits, n_rows: int):
    """Per-batch dense loss weights from sparse feedback edits (row, col, weight)."""
    rows, cols, weights = edits
    if len(rows) == 0:
        return None
    by_row: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(rows.tolist()):
        by_row[r].append(i)

    def build(batch_rows: torch.Tensor, n_labels: int, device) -> torch.Tensor | None:
        picks = [(j, i) for j, r in enumerate(batch_rows.tolist()) for i in by_row.get(r, ())]
        if not picks:
            return None
        w = torch.ones(len(batch_rows), n_labels, device=device)
        local = torch.tensor([p[0] for p in picks], device=device)
        edit = torch.tensor([p[1] for p in picks])
        w[local, cols[edit].to(device)] = weights[edit].to(device)
        return w
    return build



def _new_ranker(features: FeatureSpace, labels: LabelSpace, settings: RankerSettings, seed: int):
    """An untrained ranker over these spaces, its copy path joined to the record's codes."""
    from model_zoo import icd_ranker
    from model_zoo.train import seed_everything

    copy_pairs = features.copy_pairs(labels) if settings.copy else []
    config = icd_ranker.RankerConfig(
        n_inputs=features.size, head_names=labels.heads, head_sizes=labels.sizes,
        hidden=list(settings.hidden), dropout=settings.dropout, input_dropout=settings.input_dropout,
        mode=settings.mode, wide=settings.wide, copy_pairs=[len(inputs) for inputs, _ in copy_pairs])
    seed_everything(seed)
    model = icd_ranker.IcdRanker(config)
    model.set_copy_pairs(copy_pairs)
    return model


def _ranker_loss(model, settings: RankerSettings, column_w: torch.Tensor, fb_weights):
    """(loss_fn, the L2 hook to remove after training): weighted BCE over every label column
    (feedback edits reweighting their cells) + the wide and copy paths' L2 penalty."""
    from model_zoo.losses import l2_by_gradient_hook

    # W_wide's L2 gradient by a hook: the penalty term over its millions of weights cost as
    # much a step as the rest of the loss
    hook = l2_by_gradient_hook(model.wide.weight, settings.wide_l2) if settings.wide else None

    def loss_fn(m, batch):
        logits = m(batch["x"])
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, batch["y"].float(), reduction="none") * column_w.to(logits.device)
        if fb_weights is not None:
            w = fb_weights(batch["row"], logits.shape[1], logits.device)
            if w is not None:
                bce = bce * w
        data = (bce.sum(1) * batch["w"]).sum() / batch["w"].sum()
        return data + settings.wide_l2 * m.wide_penalty(wide=hook is None)
    return loss_fn, hook


def train_ranker_models(encounters: list[Encounter], *, settings: RankerSettings, seed: int, select: str,
                        device=None, progress: bool = True, features: FeatureSpace | None = None,
                        labels: LabelSpace | None = None, train_baselines: bool = True,
                        snapshot=None) -> RankerBundle:
    """Train the multitask ranker (+ frequency and logistic baselines) on the train split,
    select on validation, fit μF1 thresholds and RE@R cut-offs on validation."""
    from model_zoo import classical, icd_ranker
    from model_zoo.thresholds import f1_thresholds_per_level
    from model_zoo.train import fit, pick_device

    train = [e for e in encounters if e.split == "train"]
    val = [e for e in encounters if e.split == "validation"]
    if len(train) < 10 or len(val) < 2:
        raise RecipeError(f"too few coded encounters to train on ({len(train)} train, {len(val)} "
                         "validation); need a larger cohort")
    features = features or FeatureSpace.build(train, settings.min_count, settings.history)
    labels = labels or LabelSpace.build(train)
    x_tr, y_tr = features.encode(train), labels.encode(train)
    x_va, y_va = features.encode(val), labels.encode(val)
    slices = labels.slices()
    device = pick_device(device)

    model = _new_ranker(features, labels, settings, seed)
    sample_w = torch.tensor([2.0 if e.feedback else 1.0 for e in train])
    model.set_output_prior(y_tr.float().mul(sample_w[:, None]).sum(0) / sample_w.sum())
    column_w = icd_ranker.head_weights(labels.sizes, settings.head_weighting)
    fb_weights = _feedback_weight_fn(labels.feedback_edits(train), len(train))
    batches = _batches({"x": x_tr, "y": y_tr, "row": torch.arange(len(train)), "w": sample_w},
                       settings.batch_size, seed)

    loss_fn, hook = _ranker_loss(model, settings, column_w, fb_weights)

    def validate(m):
        scores = icd_ranker.predict_proba(m, x_va, device=device)
        # the selecting metric and NDCG only: μAUPRC over every validation pair took 15 s an
        # epoch at 3,000 ambulatory patients, three times the NDCG
        out = {metric: selection_score(scores, y_va, slices, metric) for metric in SELECT_METRICS
               if metric in (select, "ndcg")}
        if snapshot is not None:
            snapshot(m, out)
        return out

    result = fit(model, batches, loss_fn, epochs=settings.epochs, lr=settings.lr,
                 weight_decay=settings.weight_decay, validate=validate, select=select,
                 mode="max", seed=seed, device=device, progress=progress, desc="icd-ranker",
                 patience=settings.patience,
                 param_groups=model.parameter_groups(settings.lr, settings.wide_lr))
    if hook is not None:
        hook.remove()
    model = model.to(device).eval()

    freq = classical.FrequencyRanker.fit(y_tr, sample_w)
    logistic = None
    if train_baselines:
        logistic = classical.fit_logistic(
            x_tr, y_tr, sample_weights=sample_w, l2=settings.logistic_l2,
            epochs=settings.logistic_epochs, seed=seed, device=device, progress=progress,
            validate=lambda m: {"score": selection_score(icd_ranker.predict_proba(m, x_va, device=device),
                                                         y_va, slices, select)})
    # thresholds and cut-offs on validation, per model
    thresholds, cutoffs = {}, {}
    strata = [input_stratum(e.n_inputs) for e in val]
    for name, m in (("multitask-ranker", model), ("frequency", freq), ("logistic", logistic)):
        if m is None:
            continue
        scores = icd_ranker.predict_proba(m.to(device), x_va, device=device)
        thresholds[name] = f1_thresholds_per_level(to_numpy(scores), to_numpy(y_va), slices)
        cutoffs[name] = cutoffs_for(scores, y_va, strata, slices, settings.target_recall)
    return RankerBundle(features, labels, model.cpu(), freq, logistic.cpu() if logistic else None,
                        settings, thresholds, cutoffs, result.history)

