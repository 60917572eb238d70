"""MARN-style text coder: clinical note tokens → ICD and CCS code scores.

Architecture (after "Multitask Balanced and Recalibrated Network", Sec. 3):
  token embeddings → BiGRU (H, [B, n, 2d])
  → Recalibrated Aggregation Module (RAM): two down-sample conv blocks halve the
    feature channels (D1, D2), a lateral block smooths (L1), two transposed-conv
    up-sample blocks restore them, fused with D1 by addition and with H by
    multiplication: O = tanh(Up(Up(L1) + D1) ⊙ H), then dropout
  → one label-wise attention branch per coding system (ICD hierarchy nodes, CCS):
    A = softmax_n(O Q), V = Aᵀ O, score_l = ⟨w_l, V_l⟩ + b_l.
The two branches are trained jointly with focal loss, λ_icd · FL_icd + λ_ccs · FL_ccs
(`model_zoo.losses.multitask_focal_loss`).

Padding (token id 0 is reserved for padding here; the out-of-vocabulary token is 1)
is masked out of the attention, so batches of different note lengths give the same
scores as one note at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .stored_config import StoredConfig

PAD = 0
OOV = 1


@dataclass
class TextCoderConfig(StoredConfig):
    vocab_size: int
    n_icd: int                 # all ICD label columns: n_icd_pooled upper-level nodes, then billing codes
    n_ccs: int
    n_icd_pooled: int = 0      # chapter/block/3-char/4-char nodes, scored from the pooled note
    embed_dim: int = 100
    hidden: int = 128          # per direction (d_r); the BiGRU output has 2·hidden channels
    dropout: float = 0.2       # after the RAM, as in the paper
    embed_dropout: float = 0.2
    use_ram: bool = True       # ablation switch
    # Focal loss with α ≠ 0.5 moves the optimum of every label's log-odds by about
    # log(α / (1 − α)) — the same for all labels, so rankings are unaffected. Training
    # starts the output biases there; `predict_proba` subtracts it again so that scores
    # read as probabilities (thresholds, calibration).
    logit_shift: float = 0.0


class _ConvBlock(nn.Module):
    """conv(k=3, same channels) → tanh → conv/deconv changing channels → BatchNorm."""

    def __init__(self, c_in: int, c_out: int, transpose: bool = False):
        super().__init__()
        self.lateral = nn.Conv1d(c_in, c_in, 3, padding=1)
        conv = nn.ConvTranspose1d if transpose else nn.Conv1d
        self.change = conv(c_in, c_out, 3, padding=1)
        self.norm = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:  # [B, C, n], mask [B, 1, n]
        # re-zero padding after every conv so a note's features never depend on the
        # padding its batch happens to have
        return self.norm(self.change(torch.tanh(self.lateral(x)) * m)) * m


class RecalibratedAggregation(nn.Module):
    def __init__(self, channels: int, dropout: float):
        super().__init__()
        half, quarter = channels // 2, channels // 4
        self.down1 = _ConvBlock(channels, half)
        self.down2 = _ConvBlock(half, quarter)
        self.lateral = _ConvBlock(quarter, quarter)
        self.up1 = _ConvBlock(quarter, half, transpose=True)
        self.up2 = _ConvBlock(half, channels, transpose=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h: [B, n, C], mask: [B, n] (1 = token) → recalibrated features [B, n, C]."""
        m = mask.unsqueeze(1).to(h.dtype)
        x = h.transpose(1, 2) * m                   # zero padding so convolutions ignore it
        d1 = self.down1(x, m)
        d2 = self.down2(d1, m)
        l1 = self.lateral(d2, m)
        u1 = self.up1(l1, m) + d1
        o = torch.tanh(self.up2(u1, m) * x)
        return self.dropout(o.transpose(1, 2))


class LabelAttention(nn.Module):
    """Label-wise attention classifier over [B, n, C] features."""

    def __init__(self, channels: int, n_labels: int):
        super().__init__()
        self.query = nn.Linear(channels, n_labels, bias=False)   # Q
        self.weight = nn.Parameter(torch.empty(n_labels, channels))
        self.bias = nn.Parameter(torch.zeros(n_labels))
        nn.init.xavier_uniform_(self.weight)

    def attention(self, o: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, n_labels, n]: where in the note each label looks."""
        scores = self.query(o).transpose(1, 2)                # [B, L, n]
        scores = scores.masked_fill(~mask.bool().unsqueeze(1), float("-inf"))
        return torch.softmax(scores, dim=-1)

    def forward(self, o: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.attention(o, mask)
        v = torch.bmm(a, o)                                  # [B, L, C]
        return (v * self.weight.unsqueeze(0)).sum(-1) + self.bias


class TextCoder(nn.Module):
    def __init__(self, config: TextCoderConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=PAD)
        self.embed_dropout = nn.Dropout(config.embed_dropout)
        self.gru = nn.GRU(config.embed_dim, config.hidden, batch_first=True, bidirectional=True)
        channels = 2 * config.hidden
        self.ram = RecalibratedAggregation(channels, config.dropout) if config.use_ram else None
        # tanh(· ⊙ H) leaves the recalibrated features small (|O| ≈ 0.05 at the start);
        # normalising them gives the label attention unit-scale inputs, without which the
        # output layers learn little more than each code's frequency in a few epochs
        self.norm = nn.LayerNorm(channels)
        # Label-wise attention for billing codes and CCS categories, as in MARN. The upper
        # levels of the hierarchy (a few hundred to a few thousand broad nodes) read the
        # max-pooled note instead: per-label attention over every node would more than
        # double the cost for nodes that the pooled features already separate well.
        self.icd = LabelAttention(channels, config.n_icd - config.n_icd_pooled)
        self.upper = nn.Linear(channels, config.n_icd_pooled) if config.n_icd_pooled else None
        self.ccs = LabelAttention(channels, config.n_ccs)

    def features(self, tokens: torch.Tensor, embedded: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, n] → (O [B, n, C], mask [B, n]). `embedded` replaces the embedding
        lookup (used by gradient × input attribution)."""
        mask = tokens != PAD
        mask[:, 0] |= ~mask.any(dim=1)  # an empty note still attends to one (padding) position
        x = self.embed_dropout(self.embedding(tokens) if embedded is None else embedded)
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.gru(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=tokens.shape[1])
        o = self.ram(h, mask) if self.ram is not None else h
        return self.norm(o), mask

    def forward(self, tokens: torch.Tensor, embedded: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """→ (ICD logits [B, n_icd], CCS logits [B, n_ccs])."""
        o, mask = self.features(tokens, embedded)
        icd = self.icd(o, mask)
        if self.upper is not None:
            pooled = o.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
            icd = torch.cat([self.upper(pooled), icd], dim=1)
        return icd, self.ccs(o, mask)

    def init_output_prior(self, icd_prevalence: torch.Tensor, ccs_prevalence: torch.Tensor) -> None:
        """Start each label at its training log-odds (+ the focal shift): the model begins
        as the frequency ranker and learns what the note adds."""
        k = self.config.n_icd_pooled
        heads = [(self.icd.bias, icd_prevalence[k:]), (self.ccs.bias, ccs_prevalence)]
        if self.upper is not None:
            heads.append((self.upper.bias, icd_prevalence[:k]))
        for bias, p in heads:
            p = p.clamp(1e-4, 1 - 1e-4)
            with torch.no_grad():
                bias.copy_(torch.log(p) - torch.log1p(-p) + self.config.logit_shift)


def pad_batch(sequences: list[list[int]], max_len: int) -> torch.Tensor:
    """Right-padded [B, n] token tensor, n = longest sequence (capped at max_len)."""
    n = max(1, min(max_len, max((len(s) for s in sequences), default=1)))
    out = torch.full((len(sequences), n), PAD, dtype=torch.long)
    for i, s in enumerate(sequences):
        s = s[:n]
        if s:
            out[i, :len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


@torch.no_grad()
def predict_proba(model: TextCoder, sequences: list[list[int]], *, max_len: int = 1000,
                  batch_size: int = 64, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid scores for every note, batched by similar length, returned on the CPU."""
    device = device or next(model.parameters()).device
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    icd = torch.zeros(len(sequences), model.config.n_icd)
    ccs = torch.zeros(len(sequences), model.config.n_ccs)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        tokens = pad_batch([sequences[i] for i in idx], max_len).to(device)
        a, b = model(tokens)
        icd[idx] = torch.sigmoid(a - model.config.logit_shift).float().cpu()
        ccs[idx] = torch.sigmoid(b - model.config.logit_shift).float().cpu()
    return icd, ccs


def train_word_embeddings(sequences: list[list[int]], vocab_size: int, dim: int = 100, *,
                          window: int = 4, negatives: int = 5, max_pairs: int = 2_000_000,
                          epochs: int = 1, batch_size: int = 4096, lr: float = 0.01, seed: int = 0,
                          device: torch.device | None = None) -> torch.Tensor:
    """Skip-gram with negative sampling on the cohort's own notes (word2vec's objective),
    to initialise the text coder's embeddings without downloading any. Pairs are
    subsampled to `max_pairs` so the cost stays bounded on large cohorts."""
    g = torch.Generator().manual_seed(seed)
    device = device or torch.device("cpu")
    centers, contexts = [], []
    for seq in sequences:
        s = torch.as_tensor(seq, dtype=torch.long)
        for off in range(1, window + 1):
            if len(s) > off:
                centers += [s[:-off], s[off:]]
                contexts += [s[off:], s[:-off]]
    if not centers:
        return torch.randn(vocab_size, dim, generator=g) * 0.1
    c, o = torch.cat(centers), torch.cat(contexts)
    keep = (c > OOV) & (o > OOV)
    c, o = c[keep], o[keep]
    if len(c) > max_pairs:
        pick = torch.randperm(len(c), generator=g)[:max_pairs]
        c, o = c[pick], o[pick]
    counts = torch.bincount(torch.cat([torch.as_tensor(s, dtype=torch.long) for s in sequences if s]),
                            minlength=vocab_size).float()
    noise = counts.pow(0.75)
    noise[:OOV + 1] = 0
    noise = noise / noise.sum()
    w_in = nn.Embedding(vocab_size, dim).to(device)
    w_out = nn.Embedding(vocab_size, dim).to(device)
    nn.init.uniform_(w_in.weight, -0.5 / dim, 0.5 / dim)
    nn.init.zeros_(w_out.weight)
    opt = torch.optim.Adam(list(w_in.parameters()) + list(w_out.parameters()), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(c), generator=g)
        for start in range(0, len(c), batch_size):
            idx = perm[start:start + batch_size]
            cb, ob = c[idx].to(device), o[idx].to(device)
            neg = torch.multinomial(noise, len(idx) * negatives, replacement=True, generator=g)
            neg = neg.view(len(idx), negatives).to(device)
            vc = w_in(cb)
            pos = (vc * w_out(ob)).sum(-1)
            negs = torch.bmm(w_out(neg), vc.unsqueeze(-1)).squeeze(-1)
            loss = -(nn.functional.logsigmoid(pos).mean() + nn.functional.logsigmoid(-negs).sum(-1).mean())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return w_in.weight.detach().cpu()
