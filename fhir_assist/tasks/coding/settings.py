"""Training settings of the two coding models as typed dataclasses, each default written
once. They travel in an artifact's config.json under "training"; `from_dict` fills what an
older artifact lacks (`LEGACY_DEFAULTS` where today's default would misdescribe it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from model_zoo.stored_config import StoredConfig


@dataclass
class RankerSettings(StoredConfig):
    """The structured multitask ranker and its logistic peer."""

    # the paper's shallow net at 512 instead of 2,048 units: with the wide and copy paths beside
    # it, 512 × 2 beats every sceptic's rule on both profiles (README) for about a quarter of
    # the arithmetic per step; 2,048 × 2 was not measured with them
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    dropout: float = 0.6
    input_dropout: float = 0.0
    mode: str = "multitask"              # or "per-level": one network per hierarchy level
    head_weighting: str = "naive"
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    patience: int | None = 4
    logistic_l2: float = 1e-4
    logistic_epochs: int = 25
    min_count: int = 1
    target_recall: float = 0.9           # recall the per-stratum list cut-off K must reach
    # inputs from the record before the visit: earlier visits' codes by recency and the
    # visit's class, stay, gap and reason codes (an artifact's vocabularies say whether it
    # was trained with them, whatever its settings record)
    history: bool = True
    # the direct linear path from the inputs to every output beside the hidden layers
    # (wide & deep), with its own learning rate and L2 penalty (the logistic peer's)
    wide: bool = True
    wide_lr: float = 0.02
    wide_l2: float = 1e-2                # weaker, rare labels' weights fit noise and push true
                                         # codes down the tail: inpatient 1,000 patients, billing
                                         # RE@90 360 at 1e-2, 377 at 1e-3, 477 at 1e-4 (no copy path)
    # the copy path: a code in the record → the same code at every level (see icd_ranker)
    copy: bool = True

    # artifacts written before the wide and copy paths had neither
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"wide": False, "copy": False}


# MARN's structure and values where they matter (embedding size 100, RAM dropout 0.2,
# focal γ 2, λ_icd 0.7 / λ_ccs 0.3). Departures, measured on synthetic cohorts on CPU:
# - focal α 0.75 instead of the paper's 0.999: with 0.999 the negatives weigh 1/1000, so
#   nothing teaches the network which codes a note rules out and validation NDCG stayed at
#   the frequency ranker's level. α only shifts every label's optimum log-odds by the same
#   log(α/(1−α)), which the output bias starts at and `predict_proba` removes again. Set
#   focal_alpha to 0.999 to follow the paper.
# - learning rate 1e-2, batches of 32 and 10 epochs: each billing code has only a handful
#   of positive notes, and with 3e-3 / 64 / 6 epochs a 800-patient cohort gave the
#   optimiser ~100 steps — the label-wise attention and output weights barely left their
#   initialisation (scores varied by ~0.003 between notes and ranked like the frequency
#   baseline). Larger cohorts get more steps per epoch; `--epochs` lowers the count there.
# - a narrow BiGRU (32 per direction) so an epoch over ~8,000 notes takes minutes.
# The default text model is TF-IDF + one-vs-rest logistic regression over the whole note
# vocabulary (architecture "tfidf", `model_zoo.tfidf_coder`): on our cohorts the BiGRU
# coder ("bigru") ranked billing codes well below a logistic regression on the binary bag
# of the 1,000 most frequent words (the `logistic` peer of text artifacts), and TF-IDF
# over every word seen ≥ twice beats both. The BiGRU's settings below apply to "bigru".
@dataclass
class TextSettings(StoredConfig):
    """The note-based text coder and its bag-of-words logistic peer."""

    architecture: str = "tfidf"          # or "bigru": BiGRU + label-wise attention (MARN)
    tfidf_min_count: int = 2             # vocabulary of the TF-IDF coder (1 below 200 encounters)
    tfidf_l2: list[float] = field(default_factory=lambda: [1e-6, 1e-5])   # chosen on validation
    tfidf_epochs: int = 15
    tfidf_rank: int | None = None        # store the weights as a rank-r product (small artifacts)

    embed_dim: int = 100
    hidden: int = 32
    dropout: float = 0.2
    embed_dropout: float = 0.2
    use_ram: bool = True
    epochs: int = 10
    lr: float = 1e-2
    batch_size: int = 32
    patience: int | None = 3
    max_len: int = 1000                  # note tokens read per encounter
    min_count: int = 3                   # (1 below 200 training encounters)
    focal_alpha: float = 0.75
    focal_gamma: float = 2.0
    lambda_icd: float = 0.7
    lambda_ccs: float = 0.3
    pretrain_embeddings: bool = True
    w2v_pairs: int = 2_000_000
    logistic_l2: float = 1e-4
    logistic_epochs: int = 10
    bow_size: int | None = 1000          # most frequent note tokens the logistic peer reads
    target_recall: float = 0.9

    # an artifact that does not record its bag size read every token of its vocabulary, and
    # one that does not record its architecture is a BiGRU (the only text model then)
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"bow_size": None, "architecture": "bigru"}

    def vocabulary_min_count(self, n_train: int) -> int:
        """Least count of a note token in the vocabulary, for `n_train` training encounters."""
        if n_train < 200:
            return 1
        return self.tfidf_min_count if self.architecture == "tfidf" else self.min_count

    def bag_size(self, vocabulary_size: int) -> int:
        """Columns of the bag of words over a vocabulary of `vocabulary_size` (OOV included)."""
        if self.bow_size is None:
            return vocabulary_size - 1
        return min(self.bow_size, vocabulary_size - 1)
