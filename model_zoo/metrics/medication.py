"""Medication-recommendation and medication-change metrics (MICRON paper, Sec. 4.1).

A patient's evaluation record holds, for visits t = 1..V: the prescribed sets
M(t), the predicted sets M̃(t) (M̃(1) = M(1): evaluation starts from the second
visit) and optionally per-medicine scores for t ≥ 2 (for PRAUC).

- Jaccard, F1, PRAUC: per visit t ≥ 2, averaged over the patient's visits, then
  over patients. Empty-vs-empty visits score 1 (a correct "no medication");
  PRAUC skips visits with no prescribed medicine (undefined there).
- DDI rate: interacting unordered pairs / all unordered pairs, pooled over every
  predicted set M̃(t), t ≥ 2 (the GAMENet/MICRON reference definition; a per-patient
  ratio would be undefined for patients whose sets have < 2 medicines).
- Err(add)_j = 1/V(j) · Σ_{t=2..V(j)} |N_target(t) Δ N(t)|, with
  N_target(t) = M(t) \\ M̃(t-1) and N(t) = M̃(t) \\ M̃(t-1) (the additions the model
  made); Err(remove) likewise with O_target(t) = M̃(t-1) \\ M(t) and
  O(t) = M̃(t-1) \\ M̃(t). M̃(t-1) is the *predicted* previous set (the paper's
  protocol); pass `previous` to measure against another base (e.g. the set that
  was actually prescribed). Averaged over patients.

Only patients with at least two visits are scored (there is no change to predict
otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "PatientPrediction", "MEDICATION_KEYS", "set_jaccard", "set_f1", "visit_prauc",
    "ddi_pair_counts", "ddi_rate", "change_errors", "medication_change_metrics",
]

# Keys of `medication_change_metrics`, in the order `fhir-assist evaluate` prints them.
MEDICATION_KEYS = ("ddi_rate", "jaccard", "f1", "prauc", "err_add", "err_remove")


@dataclass
class PatientPrediction:
    """One patient's evaluation record (sets hold medication indices).

    true_sets[t], predicted_sets[t] for t = 0..V-1 (0 = the first visit);
    scores[t]: 1-D array of per-medicine scores (None for t = 0, or when the model
    has none); previous[t]: the base the change at t is measured from (default:
    predicted_sets[t-1], the paper's protocol).
    """

    true_sets: Sequence[set[int]]
    predicted_sets: Sequence[set[int]]
    scores: Sequence[np.ndarray | None] | None = None
    previous: Sequence[set[int]] | None = None

    def base(self, t: int) -> set[int]:
        if self.previous is not None:
            return set(self.previous[t])
        return set(self.predicted_sets[t - 1])


def set_jaccard(true: Iterable[int], predicted: Iterable[int]) -> float:
    true, predicted = set(true), set(predicted)
    union = true | predicted
    if not union:
        return 1.0
    return len(true & predicted) / len(union)


def set_f1(true: Iterable[int], predicted: Iterable[int]) -> float:
    true, predicted = set(true), set(predicted)
    if not true and not predicted:
        return 1.0
    hits = len(true & predicted)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(true)
    return 2 * precision * recall / (precision + recall)


def visit_prauc(true: Iterable[int], scores: np.ndarray, exclude: Iterable[int] = ()) -> float | None:
    """Average precision of one visit's scores against its prescribed set (step-wise,
    ties grouped as one threshold). None when nothing was prescribed."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.zeros(scores.shape[0], dtype=bool)
    true = [i for i in set(true) if 0 <= i < scores.shape[0]]
    labels[true] = True
    keep = np.ones_like(labels)
    keep[[i for i in exclude if 0 <= i < scores.shape[0]]] = False
    scores, labels = scores[keep], labels[keep]
    positives = int(labels.sum())
    if positives == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    # last index of every distinct score: one ROC/PR point per threshold
    ends = np.r_[np.nonzero(np.diff(scores))[0], scores.shape[0] - 1]
    tps = np.cumsum(labels)[ends]
    fps = (ends + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / positives
    previous_recall = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - previous_recall) * precision))


def ddi_pair_counts(predicted: Iterable[int], ddi: np.ndarray) -> tuple[int, int]:
    """(interacting unordered pairs, all unordered pairs) within one set."""
    items = sorted(set(predicted))
    n = len(items)
    if n < 2:
        return 0, 0
    sub = np.asarray(ddi)[np.ix_(items, items)]
    interacting = int(np.count_nonzero(np.triu((sub + sub.T) > 0, k=1)))
    return interacting, n * (n - 1) // 2


def ddi_rate(sets: Iterable[Iterable[int]], ddi: np.ndarray) -> float:
    """Pooled DDI rate over predicted sets; 0 when no set has two medicines."""
    interacting = total = 0
    for predicted in sets:
        hit, pairs = ddi_pair_counts(predicted, ddi)
        interacting += hit
        total += pairs
    return interacting / total if total else 0.0


def change_errors(patient: PatientPrediction) -> tuple[float, float]:
    """(Err(add), Err(remove)) of one patient, divided by the number of visits V(j)."""
    visits = len(patient.true_sets)
    add_errors = remove_errors = 0
    for t in range(1, visits):
        base = patient.base(t)
        true, predicted = set(patient.true_sets[t]), set(patient.predicted_sets[t])
        add_target, add_made = true - base, predicted - base
        remove_target, remove_made = base - true, base - predicted
        add_errors += len(add_target ^ add_made)
        remove_errors += len(remove_target ^ remove_made)
    return add_errors / visits, remove_errors / visits


def medication_change_metrics(patients: Iterable[PatientPrediction], ddi: np.ndarray | None = None,
                              exclude: Iterable[int] = (0,)) -> dict[str, float]:
    """The six metrics of MEDICATION_KEYS (+ "patients", "visits" counted).

    ddi: |M|×|M| 0/1 matrix (None: ddi_rate reported as nan).
    exclude: medication indices left out of PRAUC ranking (the OOV slot).
    """
    exclude = tuple(exclude)
    jaccards, f1s, praucs, adds, removes = [], [], [], [], []
    predicted_for_ddi: list[set[int]] = []
    visits = 0
    for patient in patients:
        n = len(patient.true_sets)
        if n != len(patient.predicted_sets):
            raise ValueError("true_sets and predicted_sets differ in length")
        if n < 2:
            continue
        visits += n - 1
        ja, f1, pr = [], [], []
        for t in range(1, n):
            true, predicted = patient.true_sets[t], patient.predicted_sets[t]
            ja.append(set_jaccard(true, predicted))
            f1.append(set_f1(true, predicted))
            predicted_for_ddi.append(set(predicted))
            if patient.scores is not None and patient.scores[t] is not None:
                value = visit_prauc(true, patient.scores[t], exclude)
                if value is not None:
                    pr.append(value)
        jaccards.append(np.mean(ja))
        f1s.append(np.mean(f1))
        if pr:
            praucs.append(np.mean(pr))
        add, remove = change_errors(patient)
        adds.append(add)
        removes.append(remove)

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    return {
        "ddi_rate": ddi_rate(predicted_for_ddi, ddi) if ddi is not None else float("nan"),
        "jaccard": mean(jaccards),
        "f1": mean(f1s),
        "prauc": mean(praucs),
        "err_add": mean(adds),
        "err_remove": mean(removes),
        "patients": len(jaccards),
        "visits": visits,
    }
