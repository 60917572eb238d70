"""Recipe: the note-based ICD/CCS text coder (multitask focal loss, optional word2vec
embeddings), with frequency and bag-of-words logistic baselines on the same split."""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from fhir_assist.recipes import RecipeError
from fhir_assist.tasks.coding.artifact import TextBundle
from fhir_assist.tasks.coding.encounters import Encounter
from fhir_assist.tasks.coding.settings import TextSettings
from fhir_assist.tasks.coding.evaluation import SELECT_METRICS, cutoffs_for, selection_score, to_numpy
from fhir_assist.tasks.coding.models import text_predict
from fhir_assist.tasks.coding.spaces import LabelSpace, bag_of_words, note_ids, split_icd_ccs, text_strata


def _initial_model(settings: TextSettings, vocab_size: int, labels: LabelSpace, seq_tr, y_tr, seed: int, device):
    """The text coder before training: word2vec-initialised embeddings (optional) and output
    biases at the training prevalence."""
    from model_zoo import text_coder

    icd_sl, ccs_sl = split_icd_ccs(labels)
    config = text_coder.TextCoderConfig(
        vocab_size=vocab_size + 1, n_icd=icd_sl.stop - icd_sl.start, n_ccs=ccs_sl.stop - ccs_sl.start,
        n_icd_pooled=labels.slices()["billing"].start - icd_sl.start,
        embed_dim=settings.embed_dim, hidden=settings.hidden, dropout=settings.dropout,
        embed_dropout=settings.embed_dropout, use_ram=settings.use_ram,
        logit_shift=math.log(settings.focal_alpha / (1 - settings.focal_alpha)))
    model = text_coder.TextCoder(config)
    if settings.pretrain_embeddings:
        emb = text_coder.train_word_embeddings(seq_tr, config.vocab_size, config.embed_dim,
                                               max_pairs=settings.w2v_pairs, seed=seed,
                                               device=device)
        with torch.no_grad():
            model.embedding.weight.copy_(emb * (0.5 / emb.std().clamp(min=1e-6)))
            model.embedding.weight[text_coder.PAD].zero_()
    prevalence = y_tr.float().mean(0)
    model.init_output_prior(prevalence[icd_sl], prevalence[ccs_sl])
    return model


def _fit_bigru(settings: TextSettings, vocab_size: int, labels: LabelSpace, seq_tr, y_tr, seq_va, y_va, *,
               seed: int, select: str, device, progress: bool):
    """The BiGRU + label-attention coder (architecture "bigru"): (model, history)."""
    from model_zoo import text_coder
    from model_zoo.losses import multitask_focal_loss
    from model_zoo.train import fit, seed_everything

    max_len = settings.max_len
    icd_sl, ccs_sl = split_icd_ccs(labels)
    slices = labels.slices()
    seed_everything(seed)
    model = _initial_model(settings, vocab_size, labels, seq_tr, y_tr, seed, device)
    # batches of similar length: less padding, faster GRU
    order = sorted(range(len(seq_tr)), key=lambda i: (len(seq_tr[i]), i))
    bs = settings.batch_size
    batches = [{"tokens": text_coder.pad_batch([seq_tr[i] for i in order[s:s + bs]], max_len),
                "y": y_tr[order[s:s + bs]]} for s in range(0, len(order), bs)]

    def loss_fn(m, batch):
        icd_logits, ccs_logits = m(batch["tokens"])
        y = batch["y"].float()
        return multitask_focal_loss(icd_logits, y[:, icd_sl], ccs_logits, y[:, ccs_sl],
                                    lambda_icd=settings.lambda_icd, lambda_ccs=settings.lambda_ccs,
                                    alpha=settings.focal_alpha, gamma=settings.focal_gamma)

    def validate(m):
        scores = text_predict(m, seq_va, max_len, device)
        return {metric: selection_score(scores, y_va, slices, metric) for metric in SELECT_METRICS}

    result = fit(model, batches, loss_fn, epochs=settings.epochs, lr=settings.lr, validate=validate,
                 select=select, seed=seed, device=device, progress=progress, desc="text-coder",
                 patience=settings.patience)
    return model.to(device).eval(), result.history


def _fit_tfidf(settings: TextSettings, vocab_size: int, labels: LabelSpace, seq_tr, y_tr, seq_va, y_va, *,
               seed: int, select: str, device, progress: bool):
    """TF-IDF + logistic regression (architecture "tfidf", the default): (model, history),
    the L2 weight chosen on validation."""
    from model_zoo import tfidf_coder

    icd_sl, ccs_sl = split_icd_ccs(labels)
    slices = labels.slices()
    config = tfidf_coder.TfidfCoderConfig(vocab_size=vocab_size + 1, n_icd=icd_sl.stop - icd_sl.start,
                                          n_ccs=ccs_sl.stop - ccs_sl.start)
    model, by_l2 = tfidf_coder.fit_tfidf_coder(
        config, seq_tr, y_tr, seq_va, lambda p: selection_score(p, y_va, slices, select),
        max_len=settings.max_len, l2_grid=tuple(settings.tfidf_l2), epochs=settings.tfidf_epochs,
        seed=seed, device=device, progress=progress)
    history = [{"l2": l2, select: value} for l2, value in by_l2.items()]
    if settings.tfidf_rank is not None:
        # thresholds and cut-offs are then fitted on the compressed coder, as it is served
        model = tfidf_coder.compress(model.cpu(), settings.tfidf_rank)
        history.append({"rank": model.config.rank,
                        select: float(selection_score(text_predict(model, seq_va, settings.max_len, device),
                                                      y_va, slices, select))})
    return model.to(device).eval(), history


def train_text_models(encounters: list[Encounter], *, settings: TextSettings, seed: int, select: str = "ndcg",
                      device=None, progress: bool = True) -> TextBundle:
    from fhir_assist.adapter.encode import Vocabulary
    from model_zoo import classical, icd_ranker
    from model_zoo.thresholds import f1_thresholds_per_level
    from model_zoo.train import pick_device

    train = [e for e in encounters if e.split == "train"]
    val = [e for e in encounters if e.split == "validation"]
    if len(train) < 10 or len(val) < 2:
        raise RecipeError(f"too few encounters with notes to train on ({len(train)} train, "
                         f"{len(val)} validation); does the cohort have DocumentReference notes?")
    if settings.architecture not in FITTERS:
        raise RecipeError(f"unknown text model architecture {settings.architecture!r} ({', '.join(FITTERS)})")
    device = pick_device(device)
    max_len = settings.max_len
    vocab = Vocabulary.build([e.note_tokens for e in train], min_count=settings.vocabulary_min_count(len(train)))
    labels = LabelSpace.build(train)
    seq_tr = [note_ids(vocab, e.note_tokens, max_len) for e in train]
    seq_va = [note_ids(vocab, e.note_tokens, max_len) for e in val]
    y_tr, y_va = labels.encode(train), labels.encode(val)
    slices = labels.slices()
    model, history = FITTERS[settings.architecture](settings, len(vocab), labels, seq_tr, y_tr, seq_va, y_va,
                                                    seed=seed, select=select, device=device,
                                                    progress=progress)

    freq = classical.FrequencyRanker.fit(y_tr)
    settings = replace(settings, bow_size=settings.bag_size(len(vocab)))   # stored as used
    bow = settings.bow_size
    x_tr, x_va = bag_of_words(seq_tr, bow), bag_of_words(seq_va, bow)
    logistic = classical.fit_logistic(
        x_tr, y_tr, l2=settings.logistic_l2, epochs=settings.logistic_epochs,
        seed=seed, device=device, progress=progress,
        validate=lambda m: {"score": selection_score(icd_ranker.predict_proba(m, x_va, device=device),
                                                     y_va, slices, select)})
    thresholds, cutoffs = {}, {}
    strata = text_strata(seq_va)
    for name, scores in (("text-coder", text_predict(model, seq_va, max_len, device)),
                         ("frequency", icd_ranker.predict_proba(freq, x_va)),
                         ("logistic", icd_ranker.predict_proba(logistic.to(device), x_va, device=device))):
        thresholds[name] = f1_thresholds_per_level(to_numpy(scores), to_numpy(y_va), slices)
        cutoffs[name] = cutoffs_for(scores, y_va, strata, slices, settings.target_recall)
    return TextBundle(vocab, labels, model.cpu(), freq, logistic.cpu(), settings, thresholds, cutoffs,
                      history)


FITTERS = {"tfidf": _fit_tfidf, "bigru": _fit_bigru}
