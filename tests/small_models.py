"""Small models with random weights, for tests that compare two ways of computing their outputs."""
import torch

from model_zoo import tfidf_coder


def random_tfidf_coder(rank: int | None, seed: int = 0) -> tfidf_coder.TfidfCoder:
    """A TF-IDF coder over 40 token ids (IDF from four short notes), 9 ICD and 3 CCS columns,
    its weights at full rank (None) or as a rank-`rank` product."""
    torch.manual_seed(seed)
    model = tfidf_coder.TfidfCoder(tfidf_coder.TfidfCoderConfig(vocab_size=40, n_icd=9, n_ccs=3, rank=rank))
    model.set_idf([[2, 3, 4], [2, 5, 9], [7, 8], [2, 30, 31]])
    with torch.no_grad():
        for p in model.linear.parameters():
            p.normal_()
    return model.eval()
