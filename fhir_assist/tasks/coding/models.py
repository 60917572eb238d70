"""The two coding models behind one protocol: the structured multitask ranker (inputs:
medications, procedures, age, sex) and the text coder (inputs: the encounter's notes).
Evaluation, recipes and the service ask a `CodingModel` for scores, one visit's input
and evidence, instead of switching on the artifact's kind.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from fhir_assist.tasks.coding.artifact import RankerBundle, TextBundle, load_ranker, load_text
from fhir_assist.tasks.coding.encounters import NOTE_BUCKETS, Encounter, input_stratum, note_tokens, visit_inputs
from fhir_assist.tasks.coding.spaces import LabelSpace, bag_of_words, note_ids

Evidence = list[tuple[str, str, float]]   # (kind, label, weight)


@dataclass
class VisitInput:
    """One visit as the model reads it, the stratum its cut-off is looked up in, and
    the input codes the model does not know."""

    value: Any
    stratum: int
    unknown: list


class CodingModel(Protocol):
    kind: str            # the artifact kind: "icd-ranker" | "text-coder"
    name: str            # the model's name in reports and cut-offs
    reads_notes: bool    # its encounters need note tokens (and are skipped without notes)
    bundle: Any

    @property
    def labels(self) -> LabelSpace: ...

    @property
    def network(self) -> torch.nn.Module: ...

    def baseline_inputs(self, encounters: list[Encounter]) -> torch.Tensor: ...

    def retrain_options(self) -> dict: ...

    def scores(self, encounters: list[Encounter], device=None,
               stats: Counter | None = None) -> dict[str, torch.Tensor]: ...

    def visit_input(self, visit, patient) -> VisitInput: ...

    def probabilities(self, value, device, columns: slice | None = None) -> torch.Tensor:
        """Scores of every label column, or of `columns` only (computed alone where the network can)."""

    def evidence(self, value, columns: list[int], top: int, device, feature_name) -> list[Evidence]: ...


def visit_age(visit, patient) -> float | None:
    if visit.age is not None:
        return visit.age
    if patient is not None and patient.birth_date and visit.start:
        return (visit.start.date() - patient.birth_date).days / 365.25
    return None


def record_before(visit, patient) -> tuple[dict[str, float], list[str]]:
    """(earlier visits' codes, context tokens) of `visit` from the patient's timeline:
    the visits that started before it (the visit itself when it is in the timeline)."""
    from fhir_assist.tasks.coding.history import visit_history

    visits = list(patient.visits) if patient is not None else []
    ids = [v.encounter_id for v in visits]
    if visit.encounter_id in ids:
        index = ids.index(visit.encounter_id)
    else:
        earlier = [v for v in visits if v.start is not None and visit.start is not None and v.start < visit.start]
        visits, index = earlier + [visit], len(earlier)
    visits[index] = visit
    return visit_history(visits, index)


def previous_visit_scores(encounters: list[Encounter], labels: LabelSpace,
                          frequency: torch.Tensor) -> torch.Tensor:
    """The sceptic's rule: every code of the earlier visits, at every level, scored by how
    recently it was seen (1 for the previous visit, halving per visit back); codes never
    seen rank below them by training frequency (the tie-break is < 0.01)."""
    return _record_rule(encounters, labels, frequency, lambda enc: enc.previous)


def problem_list_scores(encounters: list[Encounter], labels: LabelSpace,
                        frequency: torch.Tensor) -> torch.Tensor:
    """The other sceptic's rule: the codes on the active problem list as of the visit, at
    every level, all alike; the rest by training frequency below them."""
    return _record_rule(encounters, labels, frequency, lambda enc: dict.fromkeys(enc.problems, 1.0))


def record_rules(encounters: list[Encounter], labels: LabelSpace, frequency: torch.Tensor) -> dict:
    """The rules that copy the record: `previous-visit` and `problem-list`."""
    return {"previous-visit": previous_visit_scores(encounters, labels, frequency),
            "problem-list": problem_list_scores(encounters, labels, frequency)}


def _record_rule(encounters, labels: LabelSpace, frequency: torch.Tensor, weights_of) -> torch.Tensor:
    """Codes of `weights_of(encounter)` {billing token: weight in (0, 1]} at every level
    scored 0.01 + 0.98 × weight (+ a frequency tie-break), every other code 0.01 × frequency."""
    from fhir_assist.tasks.coding.ontology import code_labels, parse_label

    out = frequency.clone() * 0.01
    for row, enc in enumerate(encounters):
        for token, weight in weights_of(enc).items():
            system, code = parse_label(token)
            for head, label in (code_labels(system, code) or {}).items() if system else ():
                col = labels.column(head, label)
                if col is not None:
                    out[row, col] = max(float(out[row, col]),
                                        0.01 + 0.98 * weight + 0.01 * float(frequency[row, col]))
    return out


def _baseline_scores(bundle, x: torch.Tensor, device) -> dict[str, torch.Tensor]:
    from model_zoo import icd_ranker

    out = {"frequency": icd_ranker.predict_proba(bundle.frequency, x)}
    if bundle.logistic is not None:
        out["logistic"] = icd_ranker.predict_proba(bundle.logistic.to(device or "cpu"), x, device=device)
    return out


class _BundledModel:
    """A trained bundle seen as a CodingModel: its label space and network."""

    def __init__(self, bundle):
        self.bundle = bundle

    @property
    def labels(self) -> LabelSpace:
        return self.bundle.labels


class StructuredRanker(_BundledModel):
    """The multitask ICD/CCS ranker over structured inputs, with its frequency and logistic peers."""

    kind = "icd-ranker"
    name = "multitask-ranker"
    reads_notes = False
    bundle: RankerBundle

    def __init__(self, bundle):
        super().__init__(bundle)
        self._feature_labels: dict[int, tuple[str, str]] = {}

    def retrain_options(self) -> dict:
        """Retraining on the same split keeps the artifact's input and label spaces."""
        return {"features": self.bundle.features, "labels": self.labels}

    @property
    def network(self) -> torch.nn.Module:
        return self.bundle.ranker

    def baseline_inputs(self, encounters: list[Encounter], stats: Counter | None = None) -> torch.Tensor:
        return self.bundle.features.encode(encounters, stats)

    def scores(self, encounters, device=None, stats=None) -> dict[str, torch.Tensor]:
        from model_zoo import icd_ranker

        x = self.baseline_inputs(encounters, stats)
        out = {self.name: icd_ranker.predict_proba(self.bundle.ranker.to(device or "cpu"), x, device=device)}
        out |= _baseline_scores(self.bundle, x, device)
        return out | record_rules(encounters, self.labels, out["frequency"])

    def visit_input(self, visit, patient) -> VisitInput:
        from fhir_assist.adapter.encode import reason_tokens
        from fhir_assist.adapter.timeline import Code
        from fhir_assist.tasks.coding.encounters import procedure_token
        from fhir_assist.tasks.coding.history import problem_tokens
        from mappings.codesystems import RXNORM

        meds, procs = visit_inputs(visit)
        feats = self.bundle.features
        unknown = [Code(RXNORM, m) for m in meds if m not in feats.medications]
        unknown += list(visit.unmapped_medications)
        proc_codes = {procedure_token(p): p for p in visit.procedures}
        proc_codes.update(zip(reason_tokens(visit), visit.reason_codes))
        unknown += [proc_codes[p] for p in procs if p not in feats.procedures]
        previous, context = record_before(visit, patient)
        x = feats.encode_one(meds, procs, visit_age(visit, patient), patient.sex if patient else None,
                             previous=previous, context=context, problems=problem_tokens(visit, patient))
        return VisitInput(x, input_stratum(len(meds) + len(procs)), unknown)

    def probabilities(self, value, device, columns: slice | None = None) -> torch.Tensor:
        from model_zoo import row_inference

        net = self.network
        row = row_inference.for_ranker(net) if columns is not None else None
        if row is not None:
            return torch.from_numpy(row_inference.sigmoid(row.logits_for(value.numpy(), columns)))
        with torch.inference_mode():
            x = value.unsqueeze(0).to(device)
            if columns is not None and hasattr(net, "logits_for"):
                logits = net.logits_for(x, columns)
            else:
                logits = net(x)[:, columns or slice(None)]
            return torch.sigmoid(logits)[0].float().cpu()

    def evidence(self, value, columns, top, device, feature_name) -> list[Evidence]:
        """Occlusion: the inputs whose removal lowers each column's score most."""
        from model_zoo import attribution, row_inference

        net = self.network
        row = row_inference.for_ranker(net)
        if row is not None:
            x = value.numpy()
            features = np.flatnonzero(x).tolist()
            probs = row_inference.sigmoid(row.occlusion_logits(x, features, columns))
            delta = (probs[0:1] - probs[1:]).T
        else:
            with torch.inference_mode():
                if hasattr(net, "occlusion_logits"):    # only the explained codes' outputs
                    features = attribution.active_features(value)
                    delta = attribution.occlusion_deltas(net.occlusion_logits(value.to(device), features, columns))
                else:
                    delta, features = attribution.occlusion(lambda b: net(b.to(device)), value, columns)
            delta = delta.numpy()
        # Each code's `top` largest drops, ties in feature order (a stable sort, as before).
        order = np.argsort(-delta, axis=1, kind="stable")[:, :top]
        weights = np.take_along_axis(delta, order, axis=1)
        out = []
        for row_weights, row_order in zip(weights.tolist(), order.tolist()):
            out.append([(kind, feature_name(kind, tok), round(w, 4))
                        for j, w in zip(row_order, row_weights) if w > 0
                        for kind, tok in [self._feature_label(features[j])]])
        return out

    def _feature_label(self, column: int) -> tuple[str, str]:
        """(kind, token) of an input column, kept per process."""
        found = self._feature_labels.get(column)
        if found is None:
            found = self._feature_labels[column] = self.bundle.features.feature_label(column)
        return found


def text_predict(model, sequences, max_len, device) -> torch.Tensor:
    from model_zoo import text_coder
    icd, ccs = text_coder.predict_proba(model, sequences, max_len=max_len, device=device)
    return torch.cat([icd, ccs], dim=1)


class NoteCoder(_BundledModel):
    """The text coder over an encounter's notes, with frequency and bag-of-words logistic peers."""

    kind = "text-coder"
    name = "text-coder"
    reads_notes = True
    bundle: TextBundle

    def retrain_options(self) -> dict:
        """Retraining rebuilds the vocabularies from the same split: the same tokens."""
        return {}

    @property
    def network(self) -> torch.nn.Module:
        return self.bundle.coder

    @property
    def max_len(self) -> int:
        return self.bundle.settings.max_len

    def sequences(self, encounters: list[Encounter]) -> list[list[int]]:
        return [note_ids(self.bundle.notes, e.note_tokens, self.max_len) for e in encounters]

    def _bag(self, sequences) -> torch.Tensor:
        return bag_of_words(sequences, self.bundle.settings.bag_size(len(self.bundle.notes)))

    def baseline_inputs(self, encounters: list[Encounter]) -> torch.Tensor:
        return self._bag(self.sequences(encounters))

    def scores(self, encounters, device=None, stats=None) -> dict[str, torch.Tensor]:
        seqs = self.sequences(encounters)
        if stats is not None:
            stats["note tokens unknown to the model"] += sum(s.count(1) for s in seqs)
        out = {self.name: text_predict(self.bundle.coder.to(device or "cpu"), seqs, self.max_len, device)}
        out |= _baseline_scores(self.bundle, self._bag(seqs), device)
        return out | record_rules(encounters, self.labels, out["frequency"])

    def visit_input(self, visit, patient) -> VisitInput:
        tokens = note_tokens(visit, self.max_len)
        ids = note_ids(self.bundle.notes, tokens, self.max_len)
        return VisitInput((tokens, ids), input_stratum(len(ids), NOTE_BUCKETS), [])

    def probabilities(self, value, device, columns: slice | None = None) -> torch.Tensor:
        from model_zoo import row_inference, text_coder

        _tokens, ids = value
        net = self.network
        row = row_inference.for_tfidf(net) if columns is not None else None
        if row is not None:
            return torch.from_numpy(row_inference.sigmoid(row.logits_for(ids, columns) - net.config.logit_shift))
        with torch.inference_mode():
            batch = text_coder.pad_batch([ids], len(ids) or 1).to(device)
            if columns is not None and hasattr(net, "logits_for"):
                logits = net.logits_for(batch, columns)
            else:
                logits = torch.cat(net(batch), dim=1)[:, columns or slice(None)]
            return torch.sigmoid(logits - net.config.logit_shift)[0].float().cpu()

    def evidence(self, value, columns, top, device, feature_name) -> list[Evidence]:
        """The passages of the note that pushed each column up: for a linear (TF-IDF) coder
        each token's exact share of the logit, for the BiGRU gradient × input."""
        from model_zoo import attribution
        from model_zoo import text_coder as tc

        tokens, ids = value
        if not ids:
            return [[] for _ in columns]
        batch = tc.pad_batch([ids], len(ids))
        if hasattr(self.network, "token_contributions"):
            scores = self.network.token_contributions(batch[0], list(columns))
        else:
            icd_stop = self.labels.slices()["billing"].stop
            branch = [("icd", c) if c < icd_stop else ("ccs", c - icd_stop) for c in columns]
            with torch.enable_grad():
                scores = attribution.token_attribution(self.network, batch[0].to(device), branch)
        return [[("note", " ".join(tokens[a:b]), round(w, 4)) for a, b, w in spans]
                for spans in attribution.top_spans_rows(scores, width=6, top=min(top, 3), length=len(tokens))]


MODEL_CLASSES = {StructuredRanker.kind: StructuredRanker, NoteCoder.kind: NoteCoder}
LOADERS = {StructuredRanker.kind: load_ranker, NoteCoder.kind: load_text}


def kind_of(artifact) -> str:
    return artifact.hyperparameters.get("kind", "icd-ranker")


def from_bundle(kind: str, bundle) -> CodingModel:
    return MODEL_CLASSES[kind](bundle)


def load_model(artifact) -> CodingModel:
    """The coding model of an "icd-coding" artifact."""
    kind = kind_of(artifact)
    return from_bundle(kind, LOADERS[kind](artifact))
