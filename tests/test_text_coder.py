"""MARN-style text coder: shapes, gradients, padding invariance, focal loss, attribution."""
import math

import pytest
import torch

from model_zoo import attribution, text_coder
from model_zoo.losses import focal_loss, multitask_focal_loss


def _model(**kw):
    cfg = text_coder.TextCoderConfig(vocab_size=50, n_icd=7, n_ccs=3, embed_dim=16, hidden=16, **kw)
    torch.manual_seed(0)
    return text_coder.TextCoder(cfg)


def test_forward_backward_shapes_and_gradients():
    model = _model()
    tokens = text_coder.pad_batch([[2, 3, 4, 5, 6], [7, 8, 9]], max_len=100)
    icd, ccs = model(tokens)
    assert icd.shape == (2, 7) and ccs.shape == (2, 3)
    y_icd = torch.zeros(2, 7)
    y_icd[0, 1] = 1
    y_ccs = torch.zeros(2, 3)
    y_ccs[1, 2] = 1
    loss = multitask_focal_loss(icd, y_icd, ccs, y_ccs)
    loss.backward()
    for name in ("embedding.weight", "gru.weight_ih_l0", "ram.down1.change.weight",
                 "icd.query.weight", "ccs.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_padding_does_not_change_scores():
    model = _model().eval()
    alone = model(text_coder.pad_batch([[2, 3, 4]], 10))
    padded = model(text_coder.pad_batch([[2, 3, 4], list(range(2, 12))], 10))
    # BatchNorm is in eval mode: a note scores the same alone or in a padded batch
    assert torch.allclose(alone[0][0], padded[0][0], atol=1e-5)
    assert torch.allclose(alone[1][0], padded[1][0], atol=1e-5)


def test_upper_levels_read_the_pooled_note():
    model = _model(n_icd_pooled=4).eval()
    icd, ccs = model(text_coder.pad_batch([[2, 3], [4, 5, 6]], 5))
    assert icd.shape == (2, 7) and model.icd.weight.shape[0] == 3 and model.upper.out_features == 4
    model.init_output_prior(torch.full((7,), 0.1), torch.full((3,), 0.2))
    assert torch.allclose(model.upper.bias, torch.full((4,), math.log(0.1 / 0.9)))


def test_ram_can_be_ablated_and_empty_notes_work():
    model = _model(use_ram=False).eval()
    icd, _ = model(text_coder.pad_batch([[], [3]], 5))
    assert torch.isfinite(icd).all()


def test_focal_loss_by_hand():
    logit = torch.zeros(1, 2)                       # p = 0.5 for both labels
    y = torch.tensor([[1.0, 0.0]])
    a, g = 0.999, 2.0
    expected = a * 0.25 * math.log(2) + (1 - a) * 0.25 * math.log(2)
    assert focal_loss(logit, y, alpha=a, gamma=g).item() == pytest.approx(expected, rel=1e-5)
    # γ = 0, α = 0.5 is half the binary cross-entropy
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, reduction="sum").item()
    assert focal_loss(logit, y, alpha=0.5, gamma=0.0).item() == pytest.approx(bce / 2, rel=1e-5)
    # confident correct predictions cost (almost) nothing, and stay finite when extreme
    sure = torch.tensor([[40.0, -40.0]])
    assert focal_loss(sure, y).item() < 1e-10
    assert torch.isfinite(focal_loss(-sure, y))


def test_multitask_weights_are_the_papers():
    icd, ccs = torch.zeros(1, 3), torch.zeros(1, 2)
    yi, yc = torch.ones(1, 3), torch.zeros(1, 2)
    total = multitask_focal_loss(icd, yi, ccs, yc)
    assert total.item() == pytest.approx(0.7 * focal_loss(icd, yi).item() + 0.3 * focal_loss(ccs, yc).item())


def test_learns_a_keyword_rule():
    """Notes with token 5 carry label 0, with token 6 label 1: a few steps suffice."""
    torch.manual_seed(1)
    model = _model()
    notes = [[2, 3, 5, 4], [3, 6, 2], [5, 2, 2, 2, 3], [4, 4, 6, 3, 2]] * 4
    y = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]] * 4, dtype=torch.float)
    y_icd = torch.cat([y, torch.zeros(16, 5)], 1)
    tokens = text_coder.pad_batch(notes, 10)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(40):
        icd, ccs = model(tokens)
        loss = multitask_focal_loss(icd, y_icd, ccs, torch.zeros(16, 3), alpha=0.75)
        opt.zero_grad()
        loss.backward()
        opt.step()
    icd, _ = text_coder.predict_proba(model, notes[:4], max_len=10)
    assert (icd[[0, 2], 0] > icd[[0, 2], 1]).all() and (icd[[1, 3], 1] > icd[[1, 3], 0]).all()


def test_token_attribution_and_spans():
    model = _model()
    tokens = torch.tensor([2, 3, 4, 5, 6, 7, 8, 9])
    scores = attribution.token_attribution(model, tokens, [("icd", 0), ("ccs", 2)])
    assert scores.shape == (2, 8) and torch.isfinite(scores).all()
    spans = attribution.top_spans(torch.tensor([0.0, 1.0, 2.0, 0.0, -1.0, 3.0]), width=2, top=2)
    assert spans == [(1, 3, 3.0), (5, 6, 3.0)] or spans[0][2] == 3.0
    assert all(b - a <= 2 for a, b, _ in spans)


def test_word_embeddings_train_on_notes():
    seqs = [[2, 3, 4, 5], [2, 3, 6, 7], [4, 5, 2, 3]] * 20
    emb = text_coder.train_word_embeddings(seqs, vocab_size=8, dim=8, max_pairs=2000, seed=0)
    assert emb.shape == (8, 8) and torch.isfinite(emb).all()
