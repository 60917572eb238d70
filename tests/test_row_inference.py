"""The numpy one-row path of the ranker and the TF-IDF coder: the same outputs as the torch
models, for the rows, columns and weights a hook call can bring."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from model_zoo import attribution, icd_ranker, row_inference
from model_zoo.text_coder import pad_batch
from tests.small_models import random_tfidf_coder

N_INPUTS, HEADS = 12, [3, 5, 6]


def _ranker(seed: int, **options) -> icd_ranker.IcdRanker:
    torch.manual_seed(seed)
    cfg = icd_ranker.RankerConfig(n_inputs=N_INPUTS, head_names=["a", "b", "c"], head_sizes=HEADS,
                                  **{"hidden": [16, 8], **options})
    model = icd_ranker.IcdRanker(cfg)
    if cfg.copy_pairs:
        # a code in the record reaching its code at several levels; a second source with none
        model.set_copy_pairs([(torch.tensor([0, 0, 1, 2, 3, 3, 5]), torch.tensor([0, 3, 3, 5, 7, 13, 9])),
                              (torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))])
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return model.eval()


RANKERS = [{}, {"wide": True}, {"copy_pairs": [7, 0]}, {"wide": True, "copy_pairs": [7, 0]},
           {"hidden": [16]}, {"hidden": [16, 8, 8], "wide": True}]
rows = st.lists(st.sampled_from([0.0, 0.0, 1.0, 0.35, 0.8]), min_size=N_INPUTS, max_size=N_INPUTS)
column_lists = st.lists(st.integers(0, sum(HEADS) - 1), min_size=1, max_size=6)   # repeats allowed
slices = st.sampled_from([slice(0, 3), slice(3, 8), slice(8, 14), slice(0, 14), slice(2, 12, 3)])


@settings(max_examples=60, deadline=None)
@given(options=st.sampled_from(RANKERS), values=rows, columns=st.one_of(column_lists, slices))
def test_a_rankers_row_logits_are_its_forward_pass_columns(options, values, columns):
    model = _ranker(1, **options)
    row = row_inference.for_ranker(model)
    x = torch.tensor(values)
    expected = model(x[None])[0, columns].detach().numpy()
    assert np.allclose(row.logits_for(x.numpy(), columns), expected, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(options=st.sampled_from(RANKERS), values=rows, columns=column_lists, data=st.data())
def test_occlusion_logits_are_the_occluded_rows_forward_pass(options, values, columns, data):
    model = _ranker(2, **options)
    x = torch.tensor(values)
    active = attribution.active_features(x)
    switched = data.draw(st.lists(st.sampled_from(active), unique=True)) if active else []
    got = row_inference.for_ranker(model).occlusion_logits(x.numpy(), switched, columns)
    with torch.no_grad():
        expected = model(attribution.occluded_rows(x, switched))[:, columns].numpy()
    assert got.shape == (len(switched) + 1, len(columns))
    assert np.allclose(got, expected, atol=1e-5)


def test_the_row_path_is_kept_until_a_weight_changes_and_absent_where_torch_must_run():
    model = _ranker(3, wide=True, copy_pairs=[7, 0])
    x = np.zeros(N_INPUTS, dtype=np.float32)
    x[[0, 3, 5]] = 1.0
    row = row_inference.for_ranker(model)
    assert row_inference.for_ranker(model) is row           # kept between calls
    with torch.no_grad():
        model.out.bias.add_(1.0)                              # retrained in place
        model.copy_delta.mul_(2.0)
    again = row_inference.for_ranker(model)
    assert again is not row
    assert np.allclose(again.logits_for(x, slice(0, 14)), model(torch.from_numpy(x)[None])[0].detach().numpy(),
                       atol=1e-5)
    assert row_inference.for_ranker(model.train()) is None    # dropout belongs to torch
    assert row_inference.for_ranker(_ranker(4, mode="per-level")) is None
    assert row_inference.for_ranker(_ranker(4, hidden=[])) is None        # no trunk: a linear model


@pytest.mark.parametrize("rank", [None, 4])
@settings(max_examples=40, deadline=None)
@given(note=st.lists(st.integers(1, 39), max_size=30),    # 1: out of vocabulary; empty: no note text
       columns=st.sampled_from([slice(0, 9), slice(9, 12), slice(0, 12), slice(3, 7)]))
def test_a_tfidf_notes_row_logits_are_its_forward_pass_columns(rank, note, columns):
    model = random_tfidf_coder(rank, seed=5)
    expected = torch.cat(model(pad_batch([note], len(note) or 1)), 1)[0, columns].detach().numpy()
    assert np.allclose(row_inference.for_tfidf(model).logits_for(note, columns), expected, atol=1e-5)


def test_only_a_tfidf_coder_has_a_row_path():
    from model_zoo.text_coder import TextCoder, TextCoderConfig

    coder = TextCoder(TextCoderConfig(vocab_size=20, n_icd=4, n_ccs=2)).eval()
    assert row_inference.for_tfidf(coder) is None
    assert row_inference.for_tfidf(random_tfidf_coder(None)) is not None


def test_one_thread_for_numpys_products():
    from threadpoolctl import threadpool_info

    row_inference.single_thread_blas()
    assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")


@settings(max_examples=40, deadline=None)
@given(dx=st.lists(st.integers(0, 19), max_size=8), proc=st.lists(st.integers(0, 9), max_size=4),
       earlier_dx=st.lists(st.integers(0, 19), max_size=8))
def test_a_micron_visit_in_numpy_is_the_torch_encoder_and_prescription_network(dx, proc, earlier_dx):
    from model_zoo.micron import Micron

    torch.manual_seed(6)
    model = Micron(20, 10, 15, dim=8, hidden=12).eval()       # codes repeated, or none at all
    row = row_inference.for_micron(model)
    with torch.no_grad():
        health = model.encoder.encode_visit(dx, proc)
        earlier = model.encoder.encode_visit(earlier_dx, [])
        assert np.allclose(row.health(dx, proc), health.numpy(), atol=1e-5)
        assert np.allclose(row.net_med(row.health(dx, proc) - row.health(earlier_dx, [])),
                           model.net_med(health - earlier).numpy(), atol=1e-5)
    assert row_inference.for_micron(model.train()) is None
