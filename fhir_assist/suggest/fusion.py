"""The sources of one fused coding list, as feature rows over the ranker's billing codes.

For each billing code of the structured ranker's label space, a visit gives:
the ranker's calibrated logit; the text coder's calibrated logit where it read a note and
knows the code (0 otherwise, with `text_read` saying which); whether the code was recorded
at the patient's previous visit, or at any earlier one; and whether it is on the patient's
active problem list as the visit starts (`Visit.problem_list`, rebuilt from the problem-list
Conditions' dates and status; an export without a problem list leaves it empty). A
`model_zoo.fusion.Stacker` fitted on validation visits turns each row into a probability.
The same rows are built for training, evaluation and a hook call.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from model_zoo.fusion import FEATURES
from model_zoo.recall_cut import logit

__all__ = ["text_columns", "history_columns", "feature_rows", "FEATURES", "HISTORY_COLUMNS"]

# Feature columns of the three history sets, in the order `history_columns` gives them.
HISTORY_COLUMNS = tuple(FEATURES.index(name) for name in ("previous_visit", "earlier_visit", "problem_list"))


def text_columns(text_labels, ranker_labels) -> tuple[np.ndarray, np.ndarray]:
    """(text coder billing positions, ranker billing positions) of the codes both know."""
    t_slice, r_slice = text_labels.slices()["billing"], ranker_labels.slices()["billing"]
    src, dst = [], []
    for i in range(t_slice.stop - t_slice.start):
        _, token = text_labels.token_of(t_slice.start + i)
        col = ranker_labels.column("billing", token)
        if col is not None:
            src.append(i)
            dst.append(col - r_slice.start)
    return np.asarray(src, dtype=int), np.asarray(dst, dtype=int)


def billing_positions(visit, ranker_labels) -> set[int]:
    """Positions in the ranker's billing head of a visit's recorded ICD diagnoses."""
    from fhir_assist.tasks.coding.encounters import diagnosis_labels

    start = ranker_labels.slices()["billing"].start
    out = set()
    for token in diagnosis_labels(visit, Counter()).get("billing", ()):
        col = ranker_labels.column("billing", token)
        if col is not None:
            out.add(col - start)
    return out


def problem_positions(visit, ranker_labels, patient=None) -> set[int]:
    """Positions in the ranker's billing head of the problems active as the visit starts."""
    from fhir_assist.tasks.coding.history import problem_tokens

    start = ranker_labels.slices()["billing"].start
    columns = (ranker_labels.column("billing", token) for token in problem_tokens(visit, patient))
    return {col - start for col in columns if col is not None}


History = tuple  # (previous visit's positions, every earlier visit's, active problem list's)


def history_columns(visits: Iterable, ranker_labels, patient=None) -> dict[str, History]:
    """encounter id → (codes of the previous visit, codes of every earlier visit, codes on the
    active problem list as the visit starts), for visits in time order. Neither diagnoses nor
    problems ever include our own provisional guesses: the adapter drops those."""
    out, previous, earlier = {}, set(), set()
    for visit in visits:
        out[visit.encounter_id] = (set(previous), set(earlier), problem_positions(visit, ranker_labels, patient))
        previous = billing_positions(visit, ranker_labels)
        earlier |= previous
    return out


def feature_rows(ranker_probs: np.ndarray, text_probs: np.ndarray | None, text_known: np.ndarray | None,
                 history: list[History]) -> np.ndarray:
    """[N, C, F] feature rows (F = len(FEATURES)) for N visits over C ranker billing codes.
    `text_probs` is [N, C] on the ranker's columns, `text_known` [N, C] booleans: the text
    coder read a note for that visit and knows that code."""
    ranker_probs = np.asarray(ranker_probs, dtype=np.float64)
    n, c = ranker_probs.shape
    rows = np.zeros((n, c, len(FEATURES)), dtype=np.float32)
    rows[:, :, 0] = logit(ranker_probs)
    if text_probs is not None and text_known is not None:
        known = np.asarray(text_known, dtype=bool)
        rows[:, :, 1] = np.where(known, logit(text_probs), 0.0)
        rows[:, :, 2] = known
    for i, parts in enumerate(history):
        for column, positions in zip(HISTORY_COLUMNS, parts):
            if positions:
                rows[i, sorted(positions), column] = 1.0
    return rows
