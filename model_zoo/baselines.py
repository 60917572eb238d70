"""Baselines for medication-change prediction (MICRON paper, Sec. 4.1).

- SimNN: the MICRON health representation h(t), then a 3-way classifier per
  medicine (remain / add / remove), cross-entropy.
- DualNN: h(t), then two networks: one for additions, one for removals (BCE each).
- GRU: a GRU over the embedded visits 1..t predicting the full set M(t); at
  inference the whole history is run again for each visit (the
  recompute-everything comparison to MICRON's O(1)-in-history update).
- RepeatLast: the previous set, unchanged.
- Frequency: the medicines prescribed in at least a fraction θ of training visits
  (θ chosen on validation F1), whatever the patient.

Every model exposes `predict_patient(patient, anchor)` returning a
`PatientPrediction` under the same protocol as `MicronPredictor`: the first
visit's set is given, and from the second visit on the base set is the previous
prediction (anchor="predicted") or the previous prescription ("observed").
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .metrics.medication import PatientPrediction, medication_change_metrics
from .micron import (OOV, HealthEncoder, PatientSequence, densify, label_rows, medication_mask,
                     pad_indices, pair_batches)
from .stored_config import StoredConfig
from .thresholds import ChangeSearchData, best_f1_threshold, search_change_cutoffs

__all__ = [
    "BaselineConfig", "SimNN", "DualNN", "GruHistory", "RepeatLast", "Frequency",
    "train_simnn", "train_dualnn", "train_gru", "fit_frequency", "REMAIN", "ADD", "REMOVE",
]

REMAIN, ADD, REMOVE = 0, 1, 2


@dataclass
class BaselineConfig(StoredConfig):
    dim: int = 32                 # same sizes as MICRON's defaults: a like-for-like comparison
    hidden: int = 64
    dropout: float = 0.3
    lr: float = 5e-3
    weight_decay: float = 1e-4
    epochs: int = 15
    batch_size: int = 64
    gru_batch_size: int = 32
    removal_recall_floor: float = 0.3   # as MicronConfig: the same threshold procedure
    threshold_min_support: int = 8
    threshold_objective: str = "f1+jaccard"
    # DDI control: cut-offs for F1 − β · DDI rate (MICRON stops interacting medicines instead,
    # from σ(m̃), which these models do not have)
    threshold_ddi_penalty: float = 2.0

    LEGACY_DEFAULTS = {"threshold_ddi_penalty": 0.0}  # artifacts from before DDI control


def _base_sets(patient: PatientSequence, anchor: str) -> tuple[list[set[int]], list[set[int]] | None]:
    truth = patient.med_sets()
    previous = [set()] + truth[:-1] if anchor == "observed" else None
    return truth, previous


def _apply_changes(base: set[int], add: np.ndarray, remove: np.ndarray) -> set[int]:
    result = (set(base) | set(np.flatnonzero(add).tolist())) - set(np.flatnonzero(remove).tolist())
    result.discard(OOV)
    return result


def _mlp(dim: int, hidden: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out))


# ----------------------------------------------------------------------------- SimNN / DualNN

class _ChangeModel(nn.Module):
    """Shared plumbing: h(t) of every visit of a patient, change probabilities per medicine."""

    def __init__(self, n_dx: int, n_proc: int, n_med: int, dim: int):
        super().__init__()
        self.sizes = (n_dx, n_proc, n_med)
        self.encoder = HealthEncoder(n_dx, n_proc, dim)
        # (add, remove) probability cut-offs per medicine, tuned on validation as MICRON's
        # δ1/δ2 are; None keeps the model's own rule (argmax / 0.5)
        self.change_thresholds: tuple[list[float], list[float]] | None = None

    def health(self, dx: torch.Tensor, proc: torch.Tensor) -> torch.Tensor:
        n_dx, n_proc, _ = self.sizes
        return self.encoder(densify(dx, n_dx), densify(proc, n_proc))

    def change_probabilities(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def probabilities(self, patients: Sequence[PatientSequence], chunk: int = 2048
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(p_add [T, |M|], p_remove [T, |M|]) of every patient, all visits batched."""
        self.eval()
        n_dx, n_proc, _ = self.sizes
        device = next(self.parameters()).device
        dx = [visit for p in patients for visit in p.dx]
        proc = [visit for p in patients for visit in p.proc]
        adds, removes = [], []
        for start in range(0, len(dx), chunk):
            h = self.health(pad_indices(dx[start:start + chunk], n_dx).to(device),
                            pad_indices(proc[start:start + chunk], n_proc).to(device))
            p_add, p_remove = self.change_probabilities(h)
            adds.append(p_add.to("cpu").numpy())
            removes.append(p_remove.to("cpu").numpy())
        if not adds:
            return [(np.zeros((0, 0)), np.zeros((0, 0))) for _ in patients]
        p_add, p_remove = np.concatenate(adds), np.concatenate(removes)
        out, start = [], 0
        for patient in patients:
            out.append((p_add[start:start + len(patient)], p_remove[start:start + len(patient)]))
            start += len(patient)
        return out

    def predict_patient(self, patient: PatientSequence, anchor: str = "predicted") -> PatientPrediction:
        return self.predict_many([patient], anchor)[0]

    def predict_many(self, patients: Sequence[PatientSequence], anchor: str = "predicted",
                     probabilities: list | None = None) -> list[PatientPrediction]:
        probabilities = probabilities if probabilities is not None else self.probabilities(patients)
        records = []
        for patient, (p_add, p_remove) in zip(patients, probabilities):
            truth, previous = _base_sets(patient, anchor)
            predicted, scores = [set(truth[0])], [None]
            for t in range(1, len(patient)):
                base = previous[t] if previous is not None else predicted[t - 1]
                add, remove = self.decide(p_add[t], p_remove[t])
                predicted.append(_apply_changes(base, add & ~remove, remove & ~add))
                in_base = np.zeros(p_add.shape[1], dtype=bool)
                in_base[list(base)] = True
                scores.append(np.where(in_base, 1.0 - p_remove[t], p_add[t]))
            records.append(PatientPrediction(truth, predicted, scores, previous))
        return records

    def decide(self, p_add: np.ndarray, p_remove: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.change_thresholds is not None:
            add, remove = self.change_thresholds   # per medicine (lists) or one pair
            return p_add >= np.asarray(add), p_remove >= np.asarray(remove)
        return self.natural_decision(p_add, p_remove)

    def natural_decision(self, p_add: np.ndarray, p_remove: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return p_add >= 0.5, p_remove >= 0.5


def _change_labels(batch: dict[str, torch.Tensor], n_med: int) -> tuple[torch.Tensor, torch.Tensor]:
    previous = densify(batch["med_prev"], n_med)
    current = densify(batch["med"], n_med)
    return current * (1 - previous), previous * (1 - current)   # added, removed


class SimNN(_ChangeModel):
    """One 3-way (remain / add / remove) softmax per medicine on h(t)."""

    def __init__(self, n_dx: int, n_proc: int, n_med: int, dim: int = 64, hidden: int = 128,
                 dropout: float = 0.2):
        super().__init__(n_dx, n_proc, n_med, dim)
        self.head = _mlp(dim, hidden, 3 * n_med, dropout)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h).view(*h.shape[:-1], self.sizes[2], 3)

    def change_probabilities(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(self.logits(h), -1)
        return probabilities[..., ADD], probabilities[..., REMOVE]

    def natural_decision(self, p_add: np.ndarray, p_remove: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p_remain = 1.0 - p_add - p_remove  # argmax of the three classes
        return (p_add > p_remain) & (p_add >= p_remove), (p_remove > p_remain) & (p_remove > p_add)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        n_med = self.sizes[2]
        added, removed = _change_labels(batch, n_med)
        target = (added * ADD + removed * REMOVE).long()
        logits = self.logits(self.health(batch["dx"], batch["proc"]))
        per_medicine = F.cross_entropy(logits.reshape(-1, 3), target.reshape(-1), reduction="none")
        mask = medication_mask(n_med).to(logits.device)
        return (per_medicine.view(target.shape) * mask).sum(-1).mean()


class DualNN(_ChangeModel):
    """Separate addition and removal networks on h(t), BCE each."""

    def __init__(self, n_dx: int, n_proc: int, n_med: int, dim: int = 64, hidden: int = 128,
                 dropout: float = 0.2):
        super().__init__(n_dx, n_proc, n_med, dim)
        self.add_net = _mlp(dim, hidden, n_med, dropout)
        self.remove_net = _mlp(dim, hidden, n_med, dropout)

    def change_probabilities(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.sigmoid(self.add_net(h)), torch.sigmoid(self.remove_net(h))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        n_med = self.sizes[2]
        added, removed = _change_labels(batch, n_med)
        h = self.health(batch["dx"], batch["proc"])
        mask = medication_mask(n_med).to(h.device)
        add_loss = F.binary_cross_entropy_with_logits(self.add_net(h), added, reduction="none")
        remove_loss = F.binary_cross_entropy_with_logits(self.remove_net(h), removed, reduction="none")
        return ((add_loss + remove_loss) * mask).sum(-1).mean()


# ----------------------------------------------------------------------------- GRU over the history

class GruHistory(nn.Module):
    """Embedded visits (Eq. 1) → GRU → full medication set of each visit."""

    def __init__(self, n_dx: int, n_proc: int, n_med: int, dim: int = 64, hidden: int = 128,
                 dropout: float = 0.2):
        super().__init__()
        self.sizes = (n_dx, n_proc, n_med)
        self.encoder = HealthEncoder(n_dx, n_proc, dim)
        self.gru = nn.GRU(2 * dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_med)
        self.threshold = 0.5  # replaced by the validation-F1 threshold after training

    def forward(self, dx: torch.Tensor, proc: torch.Tensor) -> torch.Tensor:
        """Padded indices [B, T, L] → logits [B, T, |M|]."""
        n_dx, n_proc, _ = self.sizes
        x = self.encoder.embed(densify(dx, n_dx), densify(proc, n_proc))
        output, _ = self.gru(x)
        return self.out(self.dropout(output))

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        n_med = self.sizes[2]
        logits = self(batch["dx"], batch["proc"])
        target = densify(batch["med"], n_med)
        mask = medication_mask(n_med).to(logits.device) * batch["visit_mask"].unsqueeze(-1)
        losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return (losses * mask).sum((-1, -2)).div(batch["visit_mask"].sum().clamp(min=1)).mean()

    @torch.no_grad()
    def history_scores(self, patient: PatientSequence, upto: int | None = None) -> np.ndarray:
        """σ(logits) of the last visit after running the GRU over visits 1..upto."""
        self.eval()
        upto = len(patient) if upto is None else upto
        dx, proc = _sequence_tensor(patient.dx[:upto], self.sizes[0]), _sequence_tensor(patient.proc[:upto], self.sizes[1])
        device = self.out.weight.device
        return torch.sigmoid(self(dx.to(device), proc.to(device))[0, -1]).to("cpu").numpy()

    @torch.no_grad()
    def predict_patient(self, patient: PatientSequence, anchor: str = "predicted") -> PatientPrediction:
        self.eval()
        device = self.out.weight.device
        dx = _sequence_tensor(patient.dx, self.sizes[0]).to(device)
        proc = _sequence_tensor(patient.proc, self.sizes[1]).to(device)
        # a GRU's output at t only depends on visits 1..t, so one pass gives every
        # recompute-from-scratch prediction at once
        probabilities = torch.sigmoid(self(dx, proc)[0]).to("cpu").numpy()
        truth, previous = _base_sets(patient, anchor)
        predicted, scores = [set(truth[0])], [None]
        for t in range(1, len(patient)):
            chosen = set(np.flatnonzero(probabilities[t] >= self.threshold).tolist()) - {OOV}
            predicted.append(chosen)
            scores.append(probabilities[t])
        return PatientPrediction(truth, predicted, scores, previous)


def _sequence_tensor(index_lists: Sequence[Sequence[int]], pad: int) -> torch.Tensor:
    return pad_indices(index_lists, pad).unsqueeze(0)


def _sequence_batches(patients: Sequence[PatientSequence], sizes: tuple[int, int, int],
                      batch_size: int, seed: int) -> list[dict[str, torch.Tensor]]:
    n_dx, n_proc, n_med = sizes
    order = list(patients)
    random.Random(seed).shuffle(order)
    order.sort(key=len)  # similar lengths together: less padding
    chunks = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    for chunk in chunks:
        length = max(len(p) for p in chunk)

        def stack(field: str, pad: int) -> torch.Tensor:
            rows = [getattr(p, field) + [[]] * (length - len(p)) for p in chunk]
            flat = pad_indices([visit for row in rows for visit in row], pad)
            return flat.view(len(chunk), length, -1)

        mask = torch.zeros(len(chunk), length)
        for row, patient in enumerate(chunk):
            mask[row, : len(patient)] = 1
        batches.append({"dx": stack("dx", n_dx), "proc": stack("proc", n_proc),
                        "med": stack("meds", n_med), "visit_mask": mask})
    return batches


# ----------------------------------------------------------------------------- non-learned

class RepeatLast:
    """M̃(t) = the base set (previous prediction, or previous prescription)."""

    def __init__(self, n_med: int):
        self.n_med = n_med

    def predict_patient(self, patient: PatientSequence, anchor: str = "predicted") -> PatientPrediction:
        truth, previous = _base_sets(patient, anchor)
        n_med = self.n_med
        predicted, scores = [set(truth[0])], [None]
        for t in range(1, len(patient)):
            base = previous[t] if previous is not None else predicted[t - 1]
            predicted.append(set(base))
            score = np.zeros(n_med)
            score[list(base)] = 1.0
            scores.append(score)
        return PatientPrediction(truth, predicted, scores, previous)


class Frequency:
    """The medicines prescribed in ≥ θ of training visits, for every visit."""

    def __init__(self, prevalence: np.ndarray, threshold: float):
        self.prevalence = np.asarray(prevalence, dtype=np.float64)
        self.threshold = float(threshold)
        chosen = set(np.flatnonzero(self.prevalence >= self.threshold).tolist()) - {OOV}
        self.chosen = chosen

    def predict_patient(self, patient: PatientSequence, anchor: str = "predicted") -> PatientPrediction:
        truth, previous = _base_sets(patient, anchor)
        predicted = [set(truth[0])] + [set(self.chosen) for _ in range(1, len(patient))]
        scores = [None] + [self.prevalence for _ in range(1, len(patient))]
        return PatientPrediction(truth, predicted, scores, previous)


def fit_frequency(train: Sequence[PatientSequence], validation: Sequence[PatientSequence],
                  n_med: int) -> Frequency:
    counts = np.zeros(n_med)
    visits = 0
    for patient in train:
        for meds in patient.meds:
            counts[list(set(meds) - {OOV})] += 1
            visits += 1
    prevalence = counts / max(visits, 1)
    labels = label_rows([m for p in validation for m in p.meds[1:]], n_med)
    if labels.shape[0]:
        threshold, _ = best_f1_threshold(np.tile(prevalence, (labels.shape[0], 1)), labels,
                                         candidates=np.unique(np.r_[prevalence, 1.01]))
    else:
        threshold = 0.5
    return Frequency(prevalence, threshold)


# ----------------------------------------------------------------------------- training

def _validate_with(model, validation: Sequence[PatientSequence], ddi: np.ndarray | None):
    scored = [p for p in validation if len(p) > 1]
    records = (model.predict_many(scored) if hasattr(model, "predict_many")
               else [model.predict_patient(p) for p in scored])

    def metrics() -> dict[str, float]:
        result = medication_change_metrics(records, ddi)
        return {"f1": result["f1"], "jaccard": result["jaccard"]}

    return metrics()


def _train_change_model(cls, train, validation, sizes, ddi, config: BaselineConfig, *, seed, device,
                        progress, desc):
    from .train import fit, seed_everything

    seed_everything(seed)
    model = cls(*sizes, dim=config.dim, hidden=config.hidden, dropout=config.dropout)
    batches = pair_batches(train, sizes, config.batch_size, seed)
    if not batches:
        raise ValueError(f"{desc}: no training patient has two visits")
    has_validation = any(len(p) > 1 for p in validation)
    result = fit(model, batches, lambda m, b: m.loss(b), epochs=config.epochs, lr=config.lr,
                 weight_decay=config.weight_decay,
                 validate=(lambda m: _validate_with(m, validation, ddi)) if has_validation else None,
                 select="f1", seed=seed, device=device, progress=progress, desc=desc)
    model.to("cpu").eval()
    if has_validation:
        tune_change_thresholds(model, validation, removal_recall_floor=config.removal_recall_floor,
                               min_support=config.threshold_min_support,
                               objective=config.threshold_objective, ddi=ddi,
                               ddi_penalty=config.threshold_ddi_penalty)
    return model, result


# probability cut-offs (1.01: never); low values too, since change heads are trained on
# rare events and their probabilities sit low
CHANGE_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01)


def tune_change_thresholds(model: _ChangeModel, validation: Sequence[PatientSequence], *,
                           removal_recall_floor: float = 0.3, min_support: int = 8,
                           objective: str = "f1+jaccard", ddi: np.ndarray | None = None,
                           ddi_penalty: float = 0.0) -> None:
    """Per-medicine (add, remove) cut-offs by the same validation search as MICRON's
    δ1/δ2 (`thresholds.search_change_cutoffs`, same grid shape and removal-recall
    floor), so every change model is judged under one threshold procedure."""
    scored = [p for p in validation if len(p) > 1]
    probabilities = model.probabilities(scored)
    n_med = model.sizes[2]
    data = ChangeSearchData.from_patients(
        [p_add for p_add, _ in probabilities], [p_remove for _, p_remove in probabilities],
        [label_rows(patient.meds, n_med).astype(bool) for patient in scored])
    found = search_change_cutoffs(data, CHANGE_GRID, CHANGE_GRID,
                                  removal_recall_floor=removal_recall_floor,
                                  min_support=min_support, remove_wins=False, skip=(OOV,),
                                  objective=objective, ddi=ddi, ddi_penalty=ddi_penalty)
    model.change_thresholds = ([float(v) for v in found.add], [float(v) for v in found.remove])


def train_simnn(train, validation, sizes, ddi, config: BaselineConfig, *, seed=0, device=None,
                progress=True):
    return _train_change_model(SimNN, train, validation, sizes, ddi, config, seed=seed,
                               device=device, progress=progress, desc="SimNN")


def train_dualnn(train, validation, sizes, ddi, config: BaselineConfig, *, seed=0, device=None,
                 progress=True):
    return _train_change_model(DualNN, train, validation, sizes, ddi, config, seed=seed,
                               device=device, progress=progress, desc="DualNN")


def _gru_threshold(model: GruHistory, validation: Sequence[PatientSequence]) -> float:
    scores, labels = [], []
    for patient in validation:
        if len(patient) < 2:
            continue
        record = model.predict_patient(patient)
        scores.extend(record.scores[1:])
        labels.append(label_rows(patient.meds[1:], model.sizes[2]))
    if not scores:
        return 0.5
    threshold, _ = best_f1_threshold(np.stack(scores), np.concatenate(labels))
    return threshold


def train_gru(train, validation, sizes, ddi, config: BaselineConfig, *, seed=0, device=None,
              progress=True):
    """GRU over whole histories; the decision threshold is the validation-F1 best."""
    from .train import fit, seed_everything

    seed_everything(seed)
    model = GruHistory(*sizes, dim=config.dim, hidden=config.hidden, dropout=config.dropout)
    batches = _sequence_batches(train, sizes, config.gru_batch_size, seed)
    if not batches:
        raise ValueError("GRU: empty training split")
    has_validation = any(len(p) > 1 for p in validation)

    def validate(current: GruHistory) -> dict[str, float]:
        current.threshold = _gru_threshold(current, validation)
        return _validate_with(current, validation, ddi)

    result = fit(model, batches, lambda m, b: m.loss(b), epochs=config.epochs, lr=config.lr,
                 weight_decay=config.weight_decay, validate=validate if has_validation else None,
                 select="f1", seed=seed, device=device, progress=progress, desc="GRU")
    model.to("cpu").eval()
    model.threshold = _gru_threshold(model, validation) if has_validation else 0.5
    return model, result
