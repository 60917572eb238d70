"""Evaluation metrics of the zoo, one module per task family, re-exported here."""
from .medication import *  # noqa: F401,F403  (Jaccard, F1, PRAUC, DDI rate, Err(add/remove))
from .ranking import *  # noqa: F401,F403  (RE@R, Recall@K, NDCG, AUPRC, AUROC, F1, P@k, ECE/MCE)
