"""The drug–drug-interaction table over a medication vocabulary (row 0, the OOV slot,
interacts with nothing), and its storage as index pairs in an artifact."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def ddi_matrix(med_vocabulary) -> np.ndarray:
    """|M|×|M| 0/1 interaction matrix over the medication vocabulary (OOV row empty)."""
    from mappings import rxnorm

    tokens = med_vocabulary.tokens
    matrix = np.zeros((len(tokens), len(tokens)), dtype=np.float32)
    if len(tokens) > 1:
        inner = np.asarray(rxnorm.ddi_matrix(list(tokens[1:])), dtype=np.float32)
        matrix[1:, 1:] = inner
    return matrix


def ddi_from_pairs(pairs: Sequence[Sequence[int]], size: int) -> np.ndarray:
    matrix = np.zeros((size, size), dtype=np.float32)
    for i, j in pairs:
        matrix[i, j] = matrix[j, i] = 1.0
    return matrix


def ddi_to_pairs(matrix: np.ndarray) -> list[list[int]]:
    rows, cols = np.nonzero(np.triu(matrix, k=1))
    return [[int(i), int(j)] for i, j in zip(rows, cols)]
