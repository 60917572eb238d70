"""TF-IDF text coder: note tokens → ICD and CCS code scores by one linear layer.

A note becomes the L2-normalised sum of its tokens' inverse document frequencies
(term frequency × IDF over the whole note vocabulary), and one-vs-rest logistic
regression maps it to every label column of the coding label space. On our cohorts
this beats the BiGRU + label attention coder (`model_zoo.text_coder`), which needs
far more steps than a CPU gives it to learn what each word says about each code,
and the binary bag of the 1,000 most frequent words (the `logistic-notes`
baseline), which drops the rarer words that name the rarer codes and weighs a
word said once like a word said ten times.

The module takes the same inputs as `TextCoder` (padded token ids, 0 padding,
1 out-of-vocabulary) and returns the same (ICD logits, CCS logits), so the
service, the evaluation and the note attribution (gradient × embedding: here the
"embedding" of a token is its IDF weight) work unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .row_products import KeptTranspose, sliced_product, sparse_product
from .stored_config import StoredConfig

PAD = 0
OOV = 1


@dataclass
class TfidfCoderConfig(StoredConfig):
    vocab_size: int            # note token ids, padding and OOV included
    n_icd: int
    n_ccs: int
    l2: float = 1e-5           # chosen on validation (`fit_tfidf_coder`)
    logit_shift: float = 0.0   # scores are plain logistic probabilities
    rank: int | None = None    # the weights as a rank-r product (`compress`); None: full


class LowRankLinear(nn.Module):
    """x → up(down(x)): a [out, in] weight stored as [out, r] × [r, in] factors."""

    def __init__(self, n_in: int, rank: int, n_out: int):
        super().__init__()
        self.down = nn.Linear(n_in, rank, bias=False)
        self.up = nn.Linear(rank, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


class TfidfCoder(nn.Module):
    def __init__(self, config: TfidfCoderConfig):
        super().__init__()
        self.config = config
        # one weight per token: its IDF (padding 0); an embedding so that attribution
        # can take the gradient with respect to it
        self.embedding = nn.Embedding(config.vocab_size, 1, padding_idx=PAD)
        self.embedding.weight.requires_grad_(False)
        n_out = config.n_icd + config.n_ccs
        self.linear = (nn.Linear(config.vocab_size, n_out) if config.rank is None
                       else LowRankLinear(config.vocab_size, config.rank, n_out))
        self._by_token = KeptTranspose()     # logits_for: the weight on the tokens as [vocab, ·]
        self._up_by_rank = KeptTranspose()   # and a low-rank weight's second factor as [rank, labels]

    def features(self, tokens: torch.Tensor, embedded: torch.Tensor | None = None) -> torch.Tensor:
        """[B, n] token ids → [B, vocab] L2-normalised TF-IDF rows."""
        weights = (self.embedding(tokens) if embedded is None else embedded).squeeze(-1)
        x = torch.zeros(tokens.shape[0], self.config.vocab_size, device=weights.device,
                        dtype=weights.dtype)
        x = x.scatter_add(1, tokens, weights)
        x[:, PAD] = 0.0
        return x / x.norm(dim=1, keepdim=True).clamp(min=1e-6)

    def forward(self, tokens: torch.Tensor, embedded: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.linear(self.features(tokens, embedded))
        return logits[:, :self.config.n_icd], logits[:, self.config.n_icd:]

    def logits_for(self, tokens: torch.Tensor, columns: slice) -> torch.Tensor:
        """[B, columns' width]: the same as cat(forward(tokens))[:, columns], computing only
        those outputs (a suggestion list needs the billing codes, under half the columns)."""
        x = self.features(tokens)           # a note sets a small part of the vocabulary
        layer = self.linear
        if isinstance(layer, LowRankLinear):
            x = sparse_product(x, self._by_token.of(layer.down.weight))
            return sliced_product(x, self._up_by_rank.of(layer.up.weight), layer.up.bias, columns)
        return sparse_product(x, self._by_token.of(layer.weight), layer.bias)[:, columns]

    def token_weights(self, columns: list[int], tokens: torch.Tensor | None = None) -> torch.Tensor:
        """[len(columns), vocab] (or [len(columns), len(tokens)]): each output column's weight
        on every token's (or these tokens') TF-IDF value."""
        index = torch.as_tensor(columns, dtype=torch.long, device=self.embedding.weight.device)
        if isinstance(self.linear, LowRankLinear):
            down = self.linear.down.weight
            return self.linear.up.weight[index] @ (down if tokens is None else down.index_select(1, tokens))
        weight = self.linear.weight[index]
        return weight if tokens is None else weight.index_select(1, tokens)

    @torch.no_grad()
    def token_contributions(self, tokens: torch.Tensor, columns: list[int]) -> torch.Tensor:
        """[len(columns), n]: what each token position of one note ([n] ids) adds to each
        output column's logit. A linear model's logit is its bias plus these, exactly, so
        evidence needs no gradient and no re-run: weight × IDF / the note's TF-IDF norm."""
        tokens = tokens.reshape(-1).to(self.embedding.weight.device)
        weights = self.embedding(tokens).squeeze(-1)
        counts = weights.new_zeros(self.config.vocab_size).scatter_add(0, tokens, weights)
        counts[PAD] = 0.0
        norm = counts.norm().clamp(min=1e-6)
        per_position = (weights / norm) * (tokens != PAD)
        return (self.token_weights(columns, tokens) * per_position).cpu()

    def set_idf(self, sequences: list[list[int]]) -> None:
        """IDF of every token id over the training notes: log((1 + N) / (1 + df)) + 1."""
        df = torch.zeros(self.config.vocab_size)
        for seq in sequences:
            if seq:
                df[torch.as_tensor(sorted(set(seq)), dtype=torch.long)] += 1
        idf = torch.log((1.0 + len(sequences)) / (1.0 + df)) + 1.0
        idf[PAD] = 0.0
        with torch.no_grad():
            self.embedding.weight.copy_(idf.unsqueeze(1))


def tfidf_matrix(model: TfidfCoder, sequences: list[list[int]], max_len: int,
                 batch_size: int = 256) -> torch.Tensor:
    """[N, vocab] TF-IDF rows of `sequences` (on the CPU)."""
    from .text_coder import pad_batch

    rows = []
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            rows.append(model.features(pad_batch(sequences[start:start + batch_size], max_len)))
    return torch.cat(rows) if rows else torch.zeros(0, model.config.vocab_size)


@torch.no_grad()
def compress(model: TfidfCoder, rank: int) -> TfidfCoder:
    """The same coder with its weights replaced by their best rank-`rank` approximation
    (truncated SVD): (vocab + labels) × rank numbers instead of vocab × labels, so a
    bundled artifact stays small and a call multiplies two thin matrices."""
    weight = model.token_weights(list(range(model.config.n_icd + model.config.n_ccs))).float()
    rank = max(1, min(rank, *weight.shape))
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    config = TfidfCoderConfig(**{**model.config.to_dict(), "rank": rank})
    out = TfidfCoder(config)
    out.embedding.weight.copy_(model.embedding.weight)
    out.linear.up.weight.copy_(u[:, :rank] * s[:rank])
    out.linear.down.weight.copy_(vh[:rank])
    bias = model.linear.up.bias if isinstance(model.linear, LowRankLinear) else model.linear.bias
    out.linear.up.bias.copy_(bias)
    return out.eval()


def fit_tfidf_coder(config: TfidfCoderConfig, train: list[list[int]], y_train: torch.Tensor,
                    validation: list[list[int]], score, *, max_len: int,
                    l2_grid: tuple[float, ...] = (1e-6, 1e-5), epochs: int = 15, lr: float = 0.05,
                    seed: int = 0, device=None, progress: bool = False) -> tuple[TfidfCoder, dict]:
    """IDF from the training notes, then one-vs-rest logistic regression per L2 of
    `l2_grid`, keeping the one (and its best epoch) with the highest `score(probabilities
    [N_val, labels]) -> float` on validation. Returns (model, {l2: validation score})."""
    from .classical import fit_logistic
    from .icd_ranker import predict_proba

    model = TfidfCoder(config)
    model.set_idf(train)
    x_tr, x_va = tfidf_matrix(model, train, max_len), tfidf_matrix(model, validation, max_len)
    best, scores = None, {}
    for l2 in l2_grid:
        fitted = fit_logistic(x_tr, y_train, l2=l2, epochs=epochs, lr=lr, seed=seed, device=device,
                              progress=progress,
                              validate=lambda m: {"score": score(predict_proba(m, x_va))})
        value = float(score(predict_proba(fitted, x_va)))
        scores[l2] = value
        if best is None or value > best[0]:
            best = (value, l2, fitted)
    _, config.l2, fitted = best
    with torch.no_grad():
        model.linear.weight.copy_(fitted.linear.weight)
        model.linear.bias.copy_(fitted.linear.bias)
    return model.eval(), scores


__all__ = ["TfidfCoderConfig", "TfidfCoder", "LowRankLinear", "tfidf_matrix", "fit_tfidf_coder", "compress"]
