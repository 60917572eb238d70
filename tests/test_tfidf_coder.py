"""TF-IDF text coder: features, padding invariance, learning word → code, attribution."""
import random

import pytest
import torch

from model_zoo import attribution, text_coder, tfidf_coder


def _config(**kw):
    return tfidf_coder.TfidfCoderConfig(vocab_size=30, n_icd=4, n_ccs=2, **kw)


def test_features_are_normalised_tfidf_and_ignore_padding():
    model = tfidf_coder.TfidfCoder(_config())
    notes = [[2, 3, 3], [2, 4], [2, 5]]
    model.set_idf(notes)
    x = model.features(text_coder.pad_batch(notes[:1], 10))[0]
    # token 2 is in every note, token 3 in one of three: rarer words weigh more
    assert x[3] > 2 * x[2] > 0
    assert torch.linalg.norm(x) == pytest.approx(1.0, abs=1e-6)
    alone = model(text_coder.pad_batch([[2, 3]], 10))
    padded = model(text_coder.pad_batch([[2, 3], list(range(2, 12))], 10))
    assert torch.allclose(alone[0][0], padded[0][0]) and torch.allclose(alone[1][0], padded[1][0])


def _toy_notes(n: int, seed: int):
    """Token 10 + c names ICD column c (c < 4); other tokens are noise."""
    rng = random.Random(seed)
    notes, labels = [], torch.zeros(n, 6)
    for i in range(n):
        code = rng.randrange(4)
        notes.append([rng.randrange(2, 10) for _ in range(8)] + [10 + code])
        labels[i, code] = 1
        labels[i, 4 + code % 2] = 1
    return notes, labels


def test_fit_learns_which_word_names_which_code_and_attributes_it():
    train, y_train = _toy_notes(300, 0)
    val, y_val = _toy_notes(60, 1)

    def accuracy(probs):   # share of validation notes whose top ICD column is right
        return float((probs[:, :4].argmax(1) == y_val[:, :4].argmax(1)).float().mean())

    model, scores = tfidf_coder.fit_tfidf_coder(_config(), train, y_train, val, accuracy, max_len=50,
                                                l2_grid=(1e-6, 1e-3), epochs=40, lr=0.1)
    assert set(scores) == {1e-6, 1e-3} and model.config.l2 in scores
    probs, _ = text_coder.predict_proba(model, val, max_len=50)
    assert accuracy(probs) == 1.0
    # the word that names the code carries the evidence
    note = torch.as_tensor([3, 4, 5, 12, 6])
    weights = attribution.token_attribution(model, note, [("icd", 2)])[0]
    assert int(weights.argmax()) == 3


def _fitted():
    train, y_train = _toy_notes(300, 0)
    val, y_val = _toy_notes(60, 1)
    model, _ = tfidf_coder.fit_tfidf_coder(_config(), train, y_train, val,
                                           lambda p: float((p[:, :4].argmax(1) == y_val[:, :4].argmax(1)).float().mean()),
                                           max_len=50, l2_grid=(1e-6,), epochs=40, lr=0.1)
    return model


@pytest.mark.parametrize("rank", [None, 3])
def test_token_contributions_add_up_to_the_logit_and_name_the_word(rank):
    model = _fitted()
    if rank is not None:
        model = tfidf_coder.compress(model, rank)
    note = torch.as_tensor([3, 4, 5, 12, 6, 4, 0, 0])      # a repeated word and padding
    icd, ccs = model(note.unsqueeze(0))
    logits = torch.cat([icd, ccs], dim=1)[0]
    columns = [2, 0, 5]
    parts = model.token_contributions(note, columns)
    assert parts.shape == (3, note.numel()) and bool((parts[:, 6:] == 0).all())
    bias = (model.linear.bias if rank is None else model.linear.up.bias).detach()
    assert torch.allclose(parts.sum(1) + bias[columns], logits[columns], atol=1e-5)
    assert int(parts[0].argmax()) == 3                     # token 12 names ICD column 2


def test_compress_keeps_the_ranking_in_far_fewer_numbers():
    model = _fitted()
    weights = model.linear.weight.numel()
    full = tfidf_coder.compress(model, 100)                # rank capped at min(labels, vocab)
    assert full.config.rank == 6
    note = text_coder.pad_batch([[3, 4, 5, 12, 6]], 10)
    assert torch.allclose(torch.cat(full(note), 1), torch.cat(model(note), 1), atol=1e-4)
    small = tfidf_coder.compress(model, 4)
    assert sum(p.numel() for p in small.linear.parameters()) < weights
    val, y_val = _toy_notes(60, 1)
    probs, _ = text_coder.predict_proba(small, val, max_len=50)
    assert float((probs[:, :4].argmax(1) == y_val[:, :4].argmax(1)).float().mean()) == 1.0
    # the stored form loads back into a coder built from its config
    again = tfidf_coder.TfidfCoder(tfidf_coder.TfidfCoderConfig.from_dict(small.config.to_dict()))
    again.load_state_dict(small.state_dict())
    assert torch.equal(torch.cat(again(note), 1), torch.cat(small(note), 1))
