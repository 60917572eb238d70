"""Products over a row's non-zero inputs and over a slice of a layer's outputs, and the models
that use them: the same numbers as the dense products they replace."""
import torch
from torch import nn

from model_zoo import text_coder
from model_zoo.row_products import KeptTranspose, sliced_product, sparse_product
from tests.small_models import random_tfidf_coder


def _sparse_rows(n_rows: int, n_in: int, per_row: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n_rows, n_in)
    for row in range(n_rows):
        x[row, torch.randperm(n_in, generator=g)[:per_row]] = torch.rand(per_row, generator=g) - 0.3
    return x


def test_sparse_product_is_the_dense_product_empty_rows_included():
    weight, bias = torch.randn(50, 7), torch.randn(7)
    x = _sparse_rows(4, 50, 6)
    x[2] = 0.0                                    # a row with nothing set
    assert torch.allclose(sparse_product(x, weight), x @ weight, atol=1e-6)
    assert torch.allclose(sparse_product(x, weight, bias), x @ weight + bias, atol=1e-6)
    nothing = torch.zeros(3, 50)
    assert torch.equal(sparse_product(nothing, weight, bias), bias.expand(3, -1))


def test_sliced_product_is_linear_on_the_slice():
    weight, bias = torch.randn(40, 9), torch.randn(40)
    x = torch.randn(3, 9)
    weight_t = weight.t().contiguous()
    for columns in (slice(0, 40), slice(5, 17), slice(3, 40, 4), slice(39, 40)):
        expected = nn.functional.linear(x, weight[columns], bias[columns])
        assert torch.allclose(sliced_product(x, weight_t, bias, columns), expected, atol=1e-6)
        assert torch.allclose(sliced_product(x, weight_t, None, columns), x @ weight[columns].t(), atol=1e-6)


def test_kept_transpose_follows_the_weight():
    layer = nn.Linear(6, 4)
    kept = KeptTranspose()
    first = kept.of(layer.weight)
    assert torch.equal(first, layer.weight.t()) and first.is_contiguous()
    assert kept.of(layer.weight) is first                 # unchanged: the same copy
    with torch.no_grad():
        layer.weight.mul_(2.0)                            # trained in place
    assert torch.equal(kept.of(layer.weight), layer.weight.t())
    layer.weight = nn.Parameter(torch.randn(4, 6))        # replaced
    assert torch.equal(kept.of(layer.weight), layer.weight.t())


def test_text_coder_logits_for_are_the_forward_pass_columns():
    notes = text_coder.pad_batch([[2, 3, 3, 17, 30], [], [1, 1, 8]], 12)   # an empty note, OOV only
    for rank in (None, 5):
        model = random_tfidf_coder(rank)
        whole = torch.cat(model(notes), 1)
        for columns in (slice(0, 9), slice(2, 7), slice(0, 12), slice(9, 12)):
            assert torch.allclose(model.logits_for(notes, columns), whole[:, columns], atol=1e-5), (rank, columns)
