"""MERA's and LAMO's losses and decision rules, worked by hand on tiny score matrices."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model_zoo.llm import lamo, mera


def test_info_nce_of_one_positive_matches_the_formula():
    # logits [2.1, 1.5, 0.8] for [positive, negative, negative]
    scores = torch.tensor([[2.1, 1.5, 0.8, 0.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    levels = mera.CodeLevels({"billing": torch.tensor([0, 1, 2])}, eov=3)
    expected = -2.1 + math.log(math.exp(2.1) + math.exp(1.5) + math.exp(0.8))
    assert mera.hierarchical_info_nce(scores, targets, levels).item() == pytest.approx(expected, rel=1e-5)


def test_each_positive_is_contrasted_with_negatives_only():
    # two positives: neither counts as the other's negative
    scores = torch.tensor([[3.0, 1.0, 0.0, 0.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    levels = mera.CodeLevels({"billing": torch.tensor([0, 1, 2])}, eov=3)
    per = [-s + math.log(math.exp(s) + math.exp(0.0)) for s in (3.0, 1.0)]
    assert mera.hierarchical_info_nce(scores, targets, levels).item() == pytest.approx(sum(per) / 2, rel=1e-5)


def test_levels_add_up():
    scores = torch.tensor([[1.0, 0.0, 2.0, 0.5, 0.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0]])
    chapter = mera.CodeLevels({"chapter": torch.tensor([0, 1])}, eov=4)
    billing = mera.CodeLevels({"billing": torch.tensor([2, 3])}, eov=4)
    both = mera.CodeLevels({"chapter": torch.tensor([0, 1]), "billing": torch.tensor([2, 3])}, eov=4)
    total = mera.hierarchical_info_nce(scores, targets, both).item()
    assert total == pytest.approx(mera.hierarchical_info_nce(scores, targets, chapter).item()
                                  + mera.hierarchical_info_nce(scores, targets, billing).item())


def test_threshold_loss_falls_as_eov_separates_positives_from_negatives():
    targets = torch.tensor([[1.0, 0.0, 0.0]])
    billing = torch.tensor([0, 1])
    between = mera.dynamic_threshold_loss(torch.tensor([[3.0, -3.0, 0.0]]), targets, billing, eov=2)
    above_all = mera.dynamic_threshold_loss(torch.tensor([[3.0, -3.0, 5.0]]), targets, billing, eov=2)
    below_all = mera.dynamic_threshold_loss(torch.tensor([[3.0, -3.0, -5.0]]), targets, billing, eov=2)
    assert between < above_all and between < below_all


def test_eov_cut_counts_codes_above_eov_and_keeps_at_least_one():
    scores = torch.tensor([[3.0, 2.0, 1.0], [0.1, 0.0, -1.0]])
    assert mera.eov_cut(scores, torch.tensor([1.5, 5.0])).tolist() == [2, 1]


def test_threshold_calibration_pays_for_overprescription():
    truth = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
    probabilities = np.array([[0.9, 0.6, 0.6, 0.6], [0.6, 0.9, 0.6, 0.6]])
    strict = lamo.calibrate_threshold(probabilities, truth, overprescription_penalty=0.5)
    assert strict["threshold"] > 0.6 and strict["validation_drug_count"] == 1.0
    assert strict["validation_f1"] == pytest.approx(1.0)


def test_cut_summary_compares_eov_and_expected_recall():
    from fhir_assist.recipes.language_model_tables import cut_summary

    scores = np.array([[5.0, 0.0, -5.0], [4.0, 4.0, -9.0]])
    labels = np.array([[1, 0, 0], [1, 1, 0]])
    summary = cut_summary(scores, np.array([1.0, 1.0]), labels)
    assert summary["eov"]["mean_recommended"] == 1.5
    assert summary["eov"]["recall_at_cut"] == 1.0 and summary["eov"]["re_at_cut"] == 0.0
    assert summary["expected_recall_0.9"]["mean_recommended"] == 1.5
