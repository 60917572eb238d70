"""Training settings of the two coding models, each default written once."""
from __future__ import annotations

from typing import Any

RANKER_DEFAULTS: dict[str, Any] = {
    "hidden": [2048, 2048], "dropout": 0.6, "input_dropout": 0.0, "mode": "multitask",
    "head_weighting": "naive", "epochs": 30, "lr": 1e-3, "weight_decay": 0.0, "batch_size": 256,
    "patience": 6, "logistic_l2": 1e-4, "logistic_epochs": 25, "min_count": 1,
}
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
# vocabulary ("architecture": "tfidf", `model_zoo.tfidf_coder`): on our cohorts the BiGRU
# coder ("bigru") ranked billing codes well below a logistic regression on the binary bag
# of the 1,000 most frequent words (the `logistic` baseline of text artifacts), and TF-IDF
# over every word seen ≥ twice beats both. The BiGRU's settings below apply to "bigru".
TEXT_DEFAULTS: dict[str, Any] = {
    "architecture": "tfidf", "tfidf_min_count": 2, "tfidf_l2": [1e-6, 1e-5], "tfidf_epochs": 15,
    "embed_dim": 100, "hidden": 32, "dropout": 0.2, "embed_dropout": 0.2, "use_ram": True,
    "epochs": 10, "lr": 1e-2, "batch_size": 32, "patience": 3, "max_len": 1000,
    "min_count": 3, "focal_alpha": 0.75, "focal_gamma": 2.0, "lambda_icd": 0.7, "lambda_ccs": 0.3,
    "pretrain_embeddings": True, "w2v_pairs": 2_000_000, "logistic_l2": 1e-4, "logistic_epochs": 10,
    "bow_size": 1000,
}

