"""Test tables of the language-model entries, beside the rules a sceptic would try."""
from __future__ import annotations

import numpy as np

from fhir_assist.tasks import verbalise


def _frequency(train, index: dict[str, int]) -> np.ndarray:
    counts = np.zeros(len(index))
    for example in train:
        for label in example.labels:
            if label in index:
                counts[index[label]] += 1
    return counts / max(len(train), 1)


def _previous_visit(test, index: dict[str, int], timelines, frequency: np.ndarray) -> np.ndarray:
    """The previous visit's codes first (frequency breaks ties), then the rest by frequency."""
    where = {v.encounter_id: (t, i) for t in timelines for i, v in enumerate(t.visits)}
    scores = np.tile(frequency, (len(test), 1))
    for row, example in enumerate(test):
        timeline, i = where[example.encounter_id]
        if i == 0:
            continue
        for code in timeline.visits[i - 1].diagnoses:
            for level, node in verbalise.icd_nodes(code).items():
                column = index.get(verbalise.dx_token(level, node))
                if column is not None:
                    scores[row, column] += 1.0
    return scores


def ranking_tables(scores: np.ndarray, labels: np.ndarray, columns: dict, train, test,
                   index: dict[str, int], timelines) -> dict:
    """{model: {level: ranking summary}} for MERA, frequency and previous-visit."""
    from model_zoo.metrics.ranking import ranking_summary

    frequency = _frequency(train, index)
    models = {"mera": scores, "frequency": np.tile(frequency, (len(test), 1)),
              "previous-visit": _previous_visit(test, index, timelines, frequency)}
    return {"models": {name: {level: ranking_summary(s[:, cols.numpy()], labels[:, cols.numpy()])
                              for level, cols in columns.items()}
                       for name, s in models.items()}}


def _cut_figures(ranked_hits: np.ndarray, cut: np.ndarray, positives: np.ndarray) -> dict:
    hits = np.array([row[:k].sum() for row, k in zip(ranked_hits, cut)])
    return {"mean_recommended": float(cut.mean()), "p90_recommended": float(np.percentile(cut, 90)),
            "recall_at_cut": float((hits / np.maximum(positives, 1)).mean()),
            "precision_at_cut": float((hits / cut).mean()), "re_at_cut": float((cut - hits).mean())}


def cut_summary(billing_scores: np.ndarray, eov_scores: np.ndarray, billing_labels: np.ndarray,
                target_recall: float = 0.9) -> dict:
    """Where EOV cuts each visit's list, against the expected-recall cut: the shortest prefix
    whose share of the softmax mass over billing codes reaches `target_recall`."""
    keep = billing_labels.sum(axis=1) > 0
    s, y, eov = billing_scores[keep], billing_labels[keep], eov_scores[keep]
    order = np.argsort(-s, axis=1, kind="stable")
    ranked_hits = np.take_along_axis(y, order, axis=1)
    positives = y.sum(axis=1)
    eov_cut = np.maximum((s > eov[:, None]).sum(axis=1), 1)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    mass = np.cumsum(np.take_along_axis(p / p.sum(axis=1, keepdims=True), order, axis=1), axis=1)
    recall_cut = np.minimum((mass < target_recall).sum(axis=1) + 1, s.shape[1])
    return {"true_codes_per_visit": float(positives.mean()),
            "eov": _cut_figures(ranked_hits, eov_cut, positives),
            f"expected_recall_{target_recall:g}": _cut_figures(ranked_hits, recall_cut, positives)}
