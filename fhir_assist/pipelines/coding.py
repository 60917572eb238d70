"""ICD/CCS coding: cohort → encounters → tensors → models → artifact, and back for evaluation.

`fhir-assist train icd-ranker|text-coder` and `fhir-assist evaluate` (for artifacts of
task "icd-coding") land here.

An *encounter* is a Visit with at least one ICD-10-CM or ICD-9-CM diagnosis. Its
labels are every node of the ICD hierarchy above (and at) its codes — chapter, block,
3-char category, 4-char subcategory, billable code — plus their CCS/CCSR categories:
six label "heads". Label tokens carry the code system ("icd10|E11.65",
"icd9|428.0"), so ICD-9 and ICD-10 cohorts, or a mix, share one code path.

Inputs of the structured ranker: RxNorm ingredients, procedures, age and sex. Inputs of
the text coder: the encounter's discharge notes (DocumentReference). Codes the model
never saw in training are counted and reported, never fatal.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

log = logging.getLogger(__name__)

ICD_LEVELS = ("chapter", "block", "3char", "4char", "billing")
HEADS = ICD_LEVELS + ("ccs",)
SELECT_METRICS = ("ndcg", "auprc", "f1")
INPUT_BUCKETS = (0, 3, 6, 10, 15, 25)        # number of input codes → stratum for cut-offs
NOTE_BUCKETS = (0, 100, 200, 400, 800)       # note tokens → stratum for the text coder
SYSTEM_SHORT = {"icd10": "http://hl7.org/fhir/sid/icd-10-cm", "icd9": "http://hl7.org/fhir/sid/icd-9-cm"}
SHORT_OF_SYSTEM = {v: k for k, v in SYSTEM_SHORT.items()}
FEEDBACK_WEIGHT = 3.0                        # loss weight of a coder-reviewed label

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
TEXT_DEFAULTS: dict[str, Any] = {
    "embed_dim": 100, "hidden": 32, "dropout": 0.2, "embed_dropout": 0.2, "use_ram": True,
    "epochs": 10, "lr": 1e-2, "batch_size": 32, "patience": 3, "max_len": 1000,
    "min_count": 3, "focal_alpha": 0.75, "focal_gamma": 2.0, "lambda_icd": 0.7, "lambda_ccs": 0.3,
    "pretrain_embeddings": True, "w2v_pairs": 2_000_000, "logistic_l2": 1e-4, "logistic_epochs": 10,
    "bow_size": 1000,
}


def _cli_error(message: str) -> Exception:
    from fhir_assist.cli import CliError
    return CliError(message)


# ============================================================================ labels

def _hierarchy(system: str):
    from mappings import icd
    return icd.hierarchy_for(system)


@functools.lru_cache(maxsize=65536)
def code_labels(system: str, code: str) -> dict[str, str] | None:
    """{head: label token} for one diagnosis code (None when it is not a valid ICD code).
    Cached: a cohort repeats the same few thousand codes; callers must not mutate it."""
    from mappings import ccs

    short = SHORT_OF_SYSTEM.get(system)
    if short is None:
        return None
    hierarchy = _hierarchy(system)
    normalized = hierarchy.normalize(code)
    if normalized is None:
        return None
    out = {level: f"{short}|{node}" for level, node in hierarchy.rollup(normalized).items()}
    category = ccs.category_for(system, normalized)
    if category:
        out["ccs"] = category
    return out


def parse_label(token: str) -> tuple[str | None, str]:
    """"icd10|E11.65" → (ICD-10-CM URL, "E11.65"); CCS tokens → (None, token)."""
    short, sep, node = token.partition("|")
    if sep and short in SYSTEM_SHORT:
        return SYSTEM_SHORT[short], node
    return None, token


def label_description(head: str, token: str) -> str | None:
    system, node = parse_label(token)
    try:
        if system is None:
            from mappings import ccs
            return ccs.category_description(token)
        hierarchy = _hierarchy(system)
        if head == "billing":
            return hierarchy.description(node)
        return hierarchy.node_description(head, node)
    except Exception:  # a description is a nicety; never fail a ranking for it
        return None


def _icd_system(code) -> str | None:
    from mappings import codesystems

    system = codesystems.canonical_system(code.system) if code.system else None
    if system in SHORT_OF_SYSTEM:
        return system
    if system is None:
        return codesystems.detect_icd_system(code.code)
    return None


# ============================================================================ encounters

@dataclass
class Encounter:
    patient_id: str
    encounter_id: str
    split: str
    medications: list[str]
    procedures: list[str]
    age: float | None
    sex: str | None
    labels: dict[str, set[str]]
    note_tokens: list[str] = field(default_factory=list)
    feedback: dict[str, dict[str, float]] = field(default_factory=dict)  # head → token → weight

    @property
    def n_inputs(self) -> int:
        return len(self.medications) + len(self.procedures)


def procedure_token(code) -> str:
    from fhir_assist.adapter import encode
    return encode.code_token(code, "procedure")


def visit_inputs(visit) -> tuple[list[str], list[str]]:
    """(medication RxCUIs, procedure and reason tokens) of a visit, sorted and unique.

    The visit's reasons (Encounter.reasonCode, "reason:icd10:Z00.00") go with the procedures:
    a check-up known only by its reason then has an input that says what it was."""
    from fhir_assist.adapter import encode
    procs = {t for t in (procedure_token(p) for p in visit.procedures) if t}
    procs.update(encode.reason_tokens(visit))
    return sorted(set(visit.medications)), sorted(procs)


def note_tokens(visit, max_len: int | None = None) -> list[str]:
    from fhir_assist.adapter import encode

    tokens: list[str] = []
    for text in visit.notes:
        tokens += encode.tokenize_note(text)
    return tokens[:max_len] if max_len else tokens


def diagnosis_labels(visit, stats: Counter, confirmed=(), refuted=()) -> dict[str, set[str]]:
    """Label tokens per head for a visit's ICD diagnoses, with coder feedback applied:
    `confirmed` codes are added, `refuted` ones left out."""
    labels: dict[str, set[str]] = defaultdict(set)
    refuted_keys = {(s, c) for s, c in refuted}
    # A visit known only by its reason (a check-up, Z00.00) is coded with that reason.
    if not visit.diagnoses and getattr(visit, "reason_codes", None):
        stats["reason-only visits labelled with their reasons"] += 1
    codes = [(_icd_system(d), d.code) for d in (visit.diagnoses or getattr(visit, "reason_codes", None) or ())]
    for system, code in list(codes) + list(confirmed):
        if system is None:
            stats["non-ICD diagnoses"] += 1
            continue
        hierarchy = _hierarchy(system)
        normalized = hierarchy.normalize(code)
        if normalized is None:
            stats["invalid ICD codes"] += 1
            continue
        if (system, normalized) in refuted_keys:
            continue
        for head, token in (code_labels(system, normalized) or {}).items():
            labels[head].add(token)
        if not hierarchy.is_billable(normalized):
            stats["non-billable diagnosis codes"] += 1
    return dict(labels)


def collect_encounters(timelines, seed: int, *, feedback: "Feedback | None" = None,
                       with_notes: bool = False, progress: bool = True) -> tuple[list[Encounter], Counter]:
    """Encounters of a cohort with their deterministic patient-level split."""
    from tqdm.auto import tqdm

    from fhir_assist.adapter import encode

    split = encode.split_patients([t.patient_id for t in timelines], seed)
    stats: Counter = Counter()
    out: list[Encounter] = []
    for timeline in tqdm(timelines, desc="encounters", unit="patient", disable=not progress,
                         file=sys.stderr, dynamic_ncols=True):
        for visit in timeline.visits:
            stats["visits"] += 1
            key = (timeline.patient_id, visit.encounter_id)
            confirmed, refuted = feedback.for_encounter(key) if feedback else ((), ())
            labels = diagnosis_labels(visit, stats, confirmed, refuted)
            if not labels.get("chapter"):
                stats["visits without an ICD diagnosis"] += 1
                continue
            meds, procs = visit_inputs(visit)
            enc = Encounter(timeline.patient_id, visit.encounter_id, split[timeline.patient_id],
                            meds, procs, visit.age, timeline.sex, labels)
            if with_notes:
                enc.note_tokens = note_tokens(visit)
                if not enc.note_tokens:
                    stats["encounters without notes"] += 1
                    continue
            if feedback:
                enc.feedback = feedback.weights_for(key)
                if enc.feedback:
                    stats[f"feedback-labelled encounters ({enc.split})"] += 1
            stats[f"encounters ({enc.split})"] += 1
            out.append(enc)
    return out, stats


def input_stratum(n: int, edges: Sequence[int] = INPUT_BUCKETS) -> int:
    """Index of the bucket `n` falls in (edges are lower bounds)."""
    return max(i for i, lo in enumerate(edges) if n >= lo)


# ============================================================================ feedback

class Feedback:
    """Coder / clinician feedback labels (`fhir-assist feedback export` JSON Lines)."""

    def __init__(self):
        self.by_encounter: dict[tuple[str, str], dict[tuple[str, str], int]] = defaultdict(dict)
        self.stats: Counter = Counter()

    @classmethod
    def read(cls, path: str | Path) -> "Feedback":
        from mappings import codesystems

        fb = cls()
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise _cli_error(f"cannot read feedback file {path}: {exc}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                patient, encounter = str(item["patient"]), str(item["encounter"])
                label = int(item["label"])
                if label not in (0, 1):
                    raise ValueError("label must be 0 or 1")
                system = codesystems.canonical_system(item.get("system"))
                if system not in SHORT_OF_SYSTEM:
                    system = codesystems.detect_icd_system(str(item["code"]))
                if system not in SHORT_OF_SYSTEM:
                    fb.stats["feedback on non-ICD codes (skipped)"] += 1
                    continue
                code = _hierarchy(system).normalize(str(item["code"]))
                if code is None:
                    fb.stats["feedback with invalid ICD codes (skipped)"] += 1
                    continue
            except (ValueError, KeyError, TypeError) as exc:
                fb.stats["unreadable feedback lines (skipped)"] += 1
                log.debug("%s:%d: %s", path, number, exc)
                continue
            # the latest word on a code for an encounter wins
            fb.by_encounter[(patient, encounter)][(system, code)] = label
            fb.stats["feedback labels"] += 1
        return fb

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_encounter.values())

    def for_encounter(self, key) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        items = self.by_encounter.get(key, {})
        return ([k for k, v in items.items() if v == 1], [k for k, v in items.items() if v == 0])

    def weights_for(self, key) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for (system, code), _label in self.by_encounter.get(key, {}).items():
            for head, token in (code_labels(system, code) or {}).items():
                out[head][token] = FEEDBACK_WEIGHT
        return dict(out)


# ============================================================================ label space & tensors

class LabelSpace:
    """The label columns: one block per head, tokens sorted within a head."""

    def __init__(self, tokens: dict[str, list[str]]):
        self.heads = [h for h in HEADS if h in tokens]
        self.tokens = {h: list(tokens[h]) for h in self.heads}
        self.index = {h: {t: i for i, t in enumerate(self.tokens[h])} for h in self.heads}
        self.offsets, start = {}, 0
        for h in self.heads:
            self.offsets[h] = start
            start += len(self.tokens[h])
        self.size = start

    @classmethod
    def build(cls, encounters: Iterable[Encounter]) -> "LabelSpace":
        seen: dict[str, set[str]] = {h: set() for h in HEADS}
        for enc in encounters:
            for head, toks in enc.labels.items():
                seen[head].update(toks)
        return cls({h: sorted(seen[h]) for h in HEADS})

    @property
    def sizes(self) -> list[int]:
        return [len(self.tokens[h]) for h in self.heads]

    def slices(self) -> dict[str, slice]:
        return {h: slice(self.offsets[h], self.offsets[h] + len(self.tokens[h])) for h in self.heads}

    def column(self, head: str, token: str) -> int | None:
        i = self.index.get(head, {}).get(token)
        return None if i is None else self.offsets[head] + i

    def token_of(self, column: int) -> tuple[str, str]:
        for h in self.heads:
            off = self.offsets[h]
            if off <= column < off + len(self.tokens[h]):
                return h, self.tokens[h][column - off]
        raise IndexError(column)

    def vocabularies(self) -> dict[str, dict]:
        return {f"labels-{h}": {"tokens": self.tokens[h]} for h in self.heads}

    @classmethod
    def from_vocabularies(cls, vocabularies: dict[str, dict]) -> "LabelSpace":
        return cls({h: vocabularies[f"labels-{h}"]["tokens"] for h in HEADS
                    if f"labels-{h}" in vocabularies})

    def encode(self, encounters: Sequence[Encounter], stats: Counter | None = None) -> torch.Tensor:
        y = torch.zeros(len(encounters), self.size, dtype=torch.uint8)
        for row, enc in enumerate(encounters):
            for head, toks in enc.labels.items():
                for tok in toks:
                    col = self.column(head, tok)
                    if col is None:
                        if stats is not None:
                            stats[f"labels not in the model ({head})"] += 1
                    else:
                        y[row, col] = 1
        return y

    def feedback_edits(self, encounters: Sequence[Encounter]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, cols, weights = [], [], []
        for row, enc in enumerate(encounters):
            for head, toks in enc.feedback.items():
                for tok, w in toks.items():
                    col = self.column(head, tok)
                    if col is not None:
                        rows.append(row), cols.append(col), weights.append(w)
        return (torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long),
                torch.tensor(weights, dtype=torch.float32))


class FeatureSpace:
    """Structured inputs: medications ‖ procedures ‖ [age/90, female, male, age missing]."""

    EXTRA = 4

    def __init__(self, medications, procedures):
        self.medications = medications      # encode.Vocabulary
        self.procedures = procedures

    @classmethod
    def build(cls, encounters: Sequence[Encounter], min_count: int = 1) -> "FeatureSpace":
        from fhir_assist.adapter.encode import Vocabulary

        return cls(Vocabulary.build([e.medications for e in encounters], min_count=min_count),
                   Vocabulary.build([e.procedures for e in encounters], min_count=min_count))

    @property
    def size(self) -> int:
        return len(self.medications) + len(self.procedures) + self.EXTRA

    def vocabularies(self) -> dict[str, Any]:
        return {"medications": self.medications.to_dict(), "procedures": self.procedures.to_dict()}

    @classmethod
    def from_vocabularies(cls, vocabularies: dict[str, dict]) -> "FeatureSpace":
        from fhir_assist.adapter.encode import Vocabulary

        return cls(Vocabulary.from_dict(vocabularies["medications"]),
                   Vocabulary.from_dict(vocabularies["procedures"]))

    def encode_one(self, meds, procs, age, sex, stats: Counter | None = None) -> torch.Tensor:
        x = torch.zeros(self.size)
        n_med = len(self.medications)
        for tok in meds:
            i = self.medications.index(tok)
            x[i] = 1.0
            if i == 0 and stats is not None:
                stats["medications unknown to the model"] += 1
        for tok in procs:
            i = self.procedures.index(tok)
            x[n_med + i] = 1.0
            if i == 0 and stats is not None:
                stats["procedures unknown to the model"] += 1
        base = n_med + len(self.procedures)
        if age is None:
            x[base + 3] = 1.0
        else:
            x[base] = min(max(float(age), 0.0), 90.0) / 90.0
        sex = (sex or "").lower()
        x[base + 1] = 1.0 if sex == "female" else 0.0
        x[base + 2] = 1.0 if sex == "male" else 0.0
        return x

    def encode(self, encounters: Sequence[Encounter], stats: Counter | None = None) -> torch.Tensor:
        if not encounters:
            return torch.zeros(0, self.size)
        return torch.stack([self.encode_one(e.medications, e.procedures, e.age, e.sex, stats)
                            for e in encounters])

    def feature_label(self, column: int) -> tuple[str, str]:
        """(kind, token) of an input column: ("medication", rxcui) | ("procedure", token) | ("demographic", …)."""
        n_med, n_proc = len(self.medications), len(self.procedures)
        if column < n_med:
            return "medication", self.medications.tokens[column]
        if column < n_med + n_proc:
            return "procedure", self.procedures.tokens[column - n_med]
        return "demographic", ("age", "female", "male", "age unknown")[column - n_med - n_proc]


# ============================================================================ evaluation helpers

def head_metrics(scores: torch.Tensor, labels: torch.Tensor, slices: dict[str, slice],
                 thresholds: dict[str, float] | None = None) -> dict[str, dict[str, float | None]]:
    from model_zoo.metrics.ranking import ranking_summary

    s, y = _numpy(scores), _numpy(labels)
    out = {}
    for head, sl in slices.items():
        t = (thresholds or {}).get(head, 0.5)
        out[head] = ranking_summary(s[:, sl], y[:, sl], threshold=t)
    return out


def selection_score(scores: torch.Tensor, labels: torch.Tensor, slices: dict[str, slice],
                    metric: str) -> float:
    """Validation figure for model selection: the mean over heads of NDCG, μAUPRC or μF1 (at 0.5)."""
    from model_zoo.metrics import ranking as rk

    s, y = _numpy(scores), _numpy(labels)
    fn = {"ndcg": rk.ndcg, "auprc": rk.auprc_micro, "f1": lambda a, b: rk.f1_micro(a, b, 0.5)}[metric]
    values = [fn(s[:, sl], y[:, sl]) for sl in slices.values() if sl.stop > sl.start]
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else 0.0


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def cutoffs_for(scores: torch.Tensor, labels: torch.Tensor, strata: Sequence[int],
                slices: dict[str, slice], target_recall: float = 0.9) -> dict[str, dict]:
    from model_zoo.thresholds import stratified_recall_cutoffs

    s, y = _numpy(scores), _numpy(labels)
    return {head: stratified_recall_cutoffs(s[:, sl], y[:, sl], list(strata), target_recall)
            for head, sl in slices.items()}


def _batches(tensors: dict[str, torch.Tensor], batch_size: int, seed: int) -> list[dict]:
    n = len(next(iter(tensors.values())))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [{k: v[order[i:i + batch_size]] for k, v in tensors.items()}
            for i in range(0, n, batch_size)]


def _feedback_weight_fn(edits, n_rows: int):
    """Per-batch dense loss weights from sparse feedback edits (row, col, weight)."""
    rows, cols, weights = edits
    if len(rows) == 0:
        return None
    by_row: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(rows.tolist()):
        by_row[r].append(i)

    def build(batch_rows: torch.Tensor, n_labels: int, device) -> torch.Tensor | None:
        picks = [(j, i) for j, r in enumerate(batch_rows.tolist()) for i in by_row.get(r, ())]
        if not picks:
            return None
        w = torch.ones(len(batch_rows), n_labels, device=device)
        local = torch.tensor([p[0] for p in picks], device=device)
        edit = torch.tensor([p[1] for p in picks])
        w[local, cols[edit].to(device)] = weights[edit].to(device)
        return w
    return build


# ============================================================================ training: structured ranker

@dataclass
class RankerBundle:
    """Everything a trained structured ranker needs at inference and evaluation."""
    features: FeatureSpace
    labels: LabelSpace
    ranker: Any
    frequency: Any
    logistic: Any
    hyper: dict
    thresholds: dict
    cutoffs: dict
    history: list


def train_ranker_models(encounters: list[Encounter], *, hyper: dict, seed: int, select: str,
                        device=None, progress: bool = True, features: FeatureSpace | None = None,
                        labels: LabelSpace | None = None, train_baselines: bool = True,
                        snapshot=None) -> RankerBundle:
    """Train the multitask ranker (+ frequency and logistic baselines) on the train split,
    select on validation, fit μF1 thresholds and RE@R cut-offs on validation."""
    from model_zoo import classical, icd_ranker
    from model_zoo.thresholds import f1_thresholds_per_level
    from model_zoo.train import fit, pick_device

    train = [e for e in encounters if e.split == "train"]
    val = [e for e in encounters if e.split == "validation"]
    if len(train) < 10 or len(val) < 2:
        raise _cli_error(f"too few coded encounters to train on ({len(train)} train, {len(val)} "
                         "validation); need a larger cohort")
    features = features or FeatureSpace.build(train, hyper.get("min_count", 1))
    labels = labels or LabelSpace.build(train)
    x_tr, y_tr = features.encode(train), labels.encode(train)
    x_va, y_va = features.encode(val), labels.encode(val)
    slices = labels.slices()
    device = pick_device(device)

    config = icd_ranker.RankerConfig(
        n_inputs=features.size, head_names=labels.heads, head_sizes=labels.sizes,
        hidden=list(hyper["hidden"]), dropout=hyper["dropout"],
        input_dropout=hyper.get("input_dropout", 0.0), mode=hyper["mode"])
    from model_zoo.train import seed_everything
    seed_everything(seed)
    model = icd_ranker.IcdRanker(config)
    sample_w = torch.tensor([2.0 if e.feedback else 1.0 for e in train])
    model.set_output_prior(y_tr.float().mul(sample_w[:, None]).sum(0) / sample_w.sum())
    column_w = icd_ranker.head_weights(labels.sizes, hyper.get("head_weighting", "naive"))
    fb_weights = _feedback_weight_fn(labels.feedback_edits(train), len(train))
    batches = _batches({"x": x_tr, "y": y_tr, "row": torch.arange(len(train)), "w": sample_w},
                       hyper["batch_size"], seed)

    def loss_fn(m, batch):
        logits = m(batch["x"])
        bce = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, batch["y"].float(), reduction="none") * column_w.to(logits.device)
        if fb_weights is not None:
            w = fb_weights(batch["row"], logits.shape[1], logits.device)
            if w is not None:
                bce = bce * w
        return (bce.sum(1) * batch["w"]).sum() / batch["w"].sum()

    def validate(m):
        scores = icd_ranker.predict_proba(m, x_va, device=device)
        out = {metric: selection_score(scores, y_va, slices, metric) for metric in SELECT_METRICS}
        if snapshot is not None:
            snapshot(m, out)
        return out

    result = fit(model, batches, loss_fn, epochs=hyper["epochs"], lr=hyper["lr"],
                 weight_decay=hyper.get("weight_decay", 0.0), validate=validate, select=select,
                 mode="max", seed=seed, device=device, progress=progress, desc="icd-ranker",
                 patience=hyper.get("patience"))
    model = model.to(device).eval()

    freq = classical.FrequencyRanker.fit(y_tr, sample_w)
    logistic = None
    if train_baselines:
        logistic = classical.fit_logistic(
            x_tr, y_tr, sample_weights=sample_w, l2=hyper.get("logistic_l2", 1e-4),
            epochs=hyper.get("logistic_epochs", 25), seed=seed, device=device, progress=progress,
            validate=lambda m: {"score": selection_score(icd_ranker.predict_proba(m, x_va, device=device),
                                                         y_va, slices, select)})
    # thresholds and cut-offs on validation, per model
    thresholds, cutoffs = {}, {}
    strata = [input_stratum(e.n_inputs) for e in val]
    for name, m in (("multitask-ranker", model), ("frequency", freq), ("logistic", logistic)):
        if m is None:
            continue
        scores = icd_ranker.predict_proba(m.to(device), x_va, device=device)
        thresholds[name] = f1_thresholds_per_level(_numpy(scores), _numpy(y_va), slices)
        cutoffs[name] = cutoffs_for(scores, y_va, strata, slices, hyper.get("target_recall", 0.9))
    return RankerBundle(features, labels, model.cpu(), freq, logistic.cpu() if logistic else None,
                        hyper, thresholds, cutoffs, result.history)


# ============================================================================ training: text coder

@dataclass
class TextBundle:
    notes: Any                      # encode.Vocabulary of note tokens
    labels: LabelSpace
    coder: Any
    frequency: Any
    logistic: Any
    hyper: dict
    thresholds: dict
    cutoffs: dict
    history: list


def note_ids(vocab, tokens: list[str], max_len: int) -> list[int]:
    """Vocabulary indices shifted by one: 0 is padding in the text coder, 1 out-of-vocabulary."""
    return [i + 1 for i in vocab.encode(tokens[:max_len])]


def bag_of_words(sequences: list[list[int]], size: int) -> torch.Tensor:
    """Binary bag of words over the `size` most frequent note tokens (the vocabulary is
    ordered by frequency, so that is ids 2 … size + 1), for the logistic baseline."""
    x = torch.zeros(len(sequences), size)
    for row, seq in enumerate(sequences):
        ids = [i - 2 for i in seq if 2 <= i < size + 2]
        if ids:
            x[row, torch.as_tensor(ids)] = 1.0
    return x


def text_strata(sequences: list[list[int]]) -> list[int]:
    return [input_stratum(len(s), NOTE_BUCKETS) for s in sequences]


def _split_icd_ccs(labels: LabelSpace) -> tuple[slice, slice]:
    sl = labels.slices()
    icd = slice(sl[ICD_LEVELS[0]].start, sl[ICD_LEVELS[-1]].stop)
    return icd, sl.get("ccs", slice(icd.stop, icd.stop))


def text_predict(model, sequences, max_len, device) -> torch.Tensor:
    from model_zoo import text_coder
    icd, ccs = text_coder.predict_proba(model, sequences, max_len=max_len, device=device)
    return torch.cat([icd, ccs], dim=1)


def train_text_models(encounters: list[Encounter], *, hyper: dict, seed: int, select: str = "ndcg",
                      device=None, progress: bool = True) -> TextBundle:
    from fhir_assist.adapter.encode import Vocabulary
    from model_zoo import classical, icd_ranker, text_coder
    from model_zoo.losses import multitask_focal_loss
    from model_zoo.thresholds import f1_thresholds_per_level
    from model_zoo.train import fit, pick_device, seed_everything

    train = [e for e in encounters if e.split == "train"]
    val = [e for e in encounters if e.split == "validation"]
    if len(train) < 10 or len(val) < 2:
        raise _cli_error(f"too few encounters with notes to train on ({len(train)} train, "
                         f"{len(val)} validation); does the cohort have DocumentReference notes?")
    device = pick_device(device)
    max_len = hyper["max_len"]
    min_count = hyper["min_count"] if len(train) >= 200 else 1
    vocab = Vocabulary.build([e.note_tokens for e in train], min_count=min_count)
    labels = LabelSpace.build(train)
    seq_tr = [note_ids(vocab, e.note_tokens, max_len) for e in train]
    seq_va = [note_ids(vocab, e.note_tokens, max_len) for e in val]
    y_tr, y_va = labels.encode(train), labels.encode(val)
    icd_sl, ccs_sl = _split_icd_ccs(labels)
    slices = labels.slices()

    seed_everything(seed)
    config = text_coder.TextCoderConfig(
        vocab_size=len(vocab) + 1, n_icd=icd_sl.stop - icd_sl.start, n_ccs=ccs_sl.stop - ccs_sl.start,
        n_icd_pooled=slices["billing"].start - icd_sl.start,
        embed_dim=hyper["embed_dim"], hidden=hyper["hidden"], dropout=hyper["dropout"],
        embed_dropout=hyper["embed_dropout"], use_ram=hyper["use_ram"],
        logit_shift=math.log(hyper["focal_alpha"] / (1 - hyper["focal_alpha"])))
    model = text_coder.TextCoder(config)
    if hyper.get("pretrain_embeddings", True):
        emb = text_coder.train_word_embeddings(seq_tr, config.vocab_size, config.embed_dim,
                                               max_pairs=hyper.get("w2v_pairs", 2_000_000), seed=seed,
                                               device=device)
        with torch.no_grad():
            model.embedding.weight.copy_(emb * (0.5 / emb.std().clamp(min=1e-6)))
            model.embedding.weight[text_coder.PAD].zero_()
    prevalence = y_tr.float().mean(0)
    model.init_output_prior(prevalence[icd_sl], prevalence[ccs_sl])

    # batches of similar length: less padding, faster GRU
    order = sorted(range(len(train)), key=lambda i: (len(seq_tr[i]), i))
    bs = hyper["batch_size"]
    batches = []
    for start in range(0, len(order), bs):
        idx = order[start:start + bs]
        batches.append({"tokens": text_coder.pad_batch([seq_tr[i] for i in idx], max_len),
                        "y": y_tr[idx]})

    def loss_fn(m, batch):
        icd_logits, ccs_logits = m(batch["tokens"])
        y = batch["y"].float()
        return multitask_focal_loss(icd_logits, y[:, icd_sl], ccs_logits, y[:, ccs_sl],
                                    lambda_icd=hyper["lambda_icd"], lambda_ccs=hyper["lambda_ccs"],
                                    alpha=hyper["focal_alpha"], gamma=hyper["focal_gamma"])

    def validate(m):
        scores = text_predict(m, seq_va, max_len, device)
        return {metric: selection_score(scores, y_va, slices, metric) for metric in SELECT_METRICS}

    result = fit(model, batches, loss_fn, epochs=hyper["epochs"], lr=hyper["lr"], validate=validate,
                 select=select, seed=seed, device=device, progress=progress, desc="text-coder",
                 patience=hyper.get("patience"))
    model = model.to(device).eval()

    freq = classical.FrequencyRanker.fit(y_tr)
    bow = min(hyper.get("bow_size", 1000), len(vocab) - 1)
    hyper["bow_size"] = bow
    x_tr, x_va = bag_of_words(seq_tr, bow), bag_of_words(seq_va, bow)
    logistic = classical.fit_logistic(
        x_tr, y_tr, l2=hyper.get("logistic_l2", 1e-4), epochs=hyper.get("logistic_epochs", 25),
        seed=seed, device=device, progress=progress,
        validate=lambda m: {"score": selection_score(icd_ranker.predict_proba(m, x_va, device=device),
                                                     y_va, slices, select)})
    thresholds, cutoffs = {}, {}
    strata = text_strata(seq_va)
    for name, scores in (("text-coder", text_predict(model, seq_va, max_len, device)),
                         ("frequency", icd_ranker.predict_proba(freq, x_va)),
                         ("logistic", icd_ranker.predict_proba(logistic.to(device), x_va, device=device))):
        thresholds[name] = f1_thresholds_per_level(_numpy(scores), _numpy(y_va), slices)
        cutoffs[name] = cutoffs_for(scores, y_va, strata, slices, hyper.get("target_recall", 0.9))
    return TextBundle(vocab, labels, model.cpu(), freq, logistic.cpu(), hyper, thresholds, cutoffs,
                      result.history)


# ============================================================================ artifacts

def _half(state: dict) -> dict:
    """Baseline weights stored as float16: half the size, no measurable ranking change."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}


def save_ranker(bundle: RankerBundle, out: str | Path, *, seed: int, select: str, metrics=None,
                data_fingerprint=None, cohort_stats=None, keep_baselines: bool = True,
                half: bool = False) -> Path:
    """keep_baselines=False leaves the logistic weights out (small bundled demo models);
    `evaluate` then refits it on the evaluation cohort's training patients. half=True
    stores the ranker in float16 (loaded back as float32)."""
    config = {
        "kind": "icd-ranker", "model": "multitask-ranker", "split_seed": seed, "select": select,
        "ranker": bundle.ranker.config.to_dict(), "training": bundle.hyper,
        "heads": bundle.labels.heads, "input_buckets": list(INPUT_BUCKETS),
        "history": bundle.history, "cohort": dict(cohort_stats or {}),
    }
    vocabularies = {**bundle.features.vocabularies(), **bundle.labels.vocabularies()}
    return _save_coding_artifact(bundle, out, "ranker", bundle.ranker, config, vocabularies,
                                 metrics=metrics, data_fingerprint=data_fingerprint,
                                 keep_baselines=keep_baselines, half=half)


def save_text(bundle: TextBundle, out: str | Path, *, seed: int, select: str, metrics=None,
              data_fingerprint=None, cohort_stats=None, keep_baselines: bool = True,
              half: bool = False) -> Path:
    config = {
        "kind": "text-coder", "model": "text-coder", "split_seed": seed, "select": select,
        "text_coder": bundle.coder.config.to_dict(), "training": bundle.hyper,
        "heads": bundle.labels.heads, "note_buckets": list(NOTE_BUCKETS),
        "history": bundle.history, "cohort": dict(cohort_stats or {}),
    }
    vocabularies = {"notes": bundle.notes.to_dict(), **bundle.labels.vocabularies()}
    return _save_coding_artifact(bundle, out, "text-coder", bundle.coder, config, vocabularies,
                                 metrics=metrics, data_fingerprint=data_fingerprint,
                                 keep_baselines=keep_baselines, half=half)


def _save_coding_artifact(bundle, out, name: str, model, config: dict, vocabularies: dict, *,
                          metrics, data_fingerprint, keep_baselines: bool, half: bool) -> Path:
    """The model, its frequency floor and (optionally) its logistic peer as one artifact."""
    from model_zoo import registry

    state = model.state_dict()
    weights = {name: _half(state) if half else state, "frequency": bundle.frequency.state_dict()}
    if bundle.logistic is not None and keep_baselines:
        weights["logistic"] = _half(bundle.logistic.state_dict())
    return registry.save_artifact(out, task="icd-coding", weights=weights, config=config,
                                  vocabularies=vocabularies,
                                  thresholds={"f1": bundle.thresholds, "cutoffs": bundle.cutoffs},
                                  metrics=metrics, data_fingerprint=data_fingerprint)


def _float_state(state: dict) -> dict:
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def load_ranker(artifact) -> RankerBundle:
    from model_zoo import classical, icd_ranker

    hp = artifact.hyperparameters
    features = FeatureSpace.from_vocabularies(artifact.vocabularies)
    labels = LabelSpace.from_vocabularies(artifact.vocabularies)
    ranker = icd_ranker.IcdRanker(icd_ranker.RankerConfig.from_dict(hp["ranker"]))
    ranker.load_state_dict(_float_state(artifact.weights["ranker"]))
    freq = classical.FrequencyRanker(labels.size)
    freq.load_state_dict(_float_state(artifact.weights["frequency"]))
    logistic = None
    if "logistic" in artifact.weights:
        logistic = classical.LogisticRanker(features.size, labels.size)
        logistic.load_state_dict(_float_state(artifact.weights["logistic"]))
    th = artifact.thresholds or {}
    return RankerBundle(features, labels, ranker.eval(), freq.eval(),
                        logistic.eval() if logistic else None, hp.get("training", {}),
                        th.get("f1", {}), th.get("cutoffs", {}), hp.get("history", []))


def load_text(artifact) -> TextBundle:
    from fhir_assist.adapter.encode import Vocabulary
    from model_zoo import classical, text_coder

    hp = artifact.hyperparameters
    vocab = Vocabulary.from_dict(artifact.vocabularies["notes"])
    labels = LabelSpace.from_vocabularies(artifact.vocabularies)
    coder = text_coder.TextCoder(text_coder.TextCoderConfig.from_dict(hp["text_coder"]))
    coder.load_state_dict(_float_state(artifact.weights["text-coder"]))
    freq = classical.FrequencyRanker(labels.size)
    freq.load_state_dict(_float_state(artifact.weights["frequency"]))
    logistic = None
    if "logistic" in artifact.weights:
        logistic = classical.LogisticRanker(hp["training"]["bow_size"], labels.size)
        logistic.load_state_dict(_float_state(artifact.weights["logistic"]))
    th = artifact.thresholds or {}
    return TextBundle(vocab, labels, coder.eval(), freq.eval(), logistic.eval() if logistic else None,
                      hp.get("training", {}),
                      th.get("f1", {}), th.get("cutoffs", {}), hp.get("history", []))


# ============================================================================ commands

def _load_timelines(data: str, progress: bool = True):
    from fhir_assist.adapter.timeline import load_cohort

    path = Path(data)
    if not path.exists():
        raise _cli_error(f"--data {data}: no such file or directory")
    cohort = load_cohort(path, progress=progress)
    if not cohort.timelines:
        raise _cli_error(f"--data {data}: no patients could be read ({cohort.report.summary()})")
    return cohort


def _data_fingerprint(encounters: list[Encounter]) -> str:
    from model_zoo import registry
    return registry.fingerprint(sorted(f"{e.patient_id}/{e.encounter_id}" for e in encounters))


def _hyper(defaults: dict, args) -> dict:
    hyper = dict(defaults)
    if getattr(args, "epochs", None):
        hyper["epochs"] = int(args.epochs)
    for key in ("hidden", "mode", "dropout", "lr", "batch_size", "max_len", "target_recall", "embed_dim",
                "focal_alpha", "focal_gamma"):
        value = getattr(args, key, None)
        if value is not None:
            hyper[key] = value
    return hyper


def _print_stats(title: str, stats: Counter) -> None:
    print(title, file=sys.stderr)
    for key in sorted(stats):
        print(f"  {key}: {stats[key]}", file=sys.stderr)


def train_command(args, kind: str) -> int:
    """`fhir-assist train icd-ranker|text-coder --data DIR --out ARTIFACT`."""
    # kind → default hyperparameters, trainer, artifact writer, model whose test line is printed
    recipes = {"icd-ranker": (RANKER_DEFAULTS, train_ranker_models, save_ranker, "multitask-ranker"),
               "text-coder": (TEXT_DEFAULTS, train_text_models, save_text, "text-coder")}
    if kind not in recipes:
        raise _cli_error(f"unknown coding model {kind!r}")
    defaults, train_models, save_artifact, label = recipes[kind]
    progress = not getattr(args, "quiet", False)
    seed = int(getattr(args, "seed", 0) or 0)
    select = getattr(args, "select", None) or "ndcg"
    if select not in SELECT_METRICS:
        raise _cli_error(f"--select must be one of {', '.join(SELECT_METRICS)}")
    try:
        from model_zoo.train import pick_device
        device = pick_device(getattr(args, "device", None))
    except ValueError as exc:
        raise _cli_error(str(exc)) from None
    feedback = None
    if getattr(args, "feedback", None):
        feedback = Feedback.read(args.feedback)
        _print_stats(f"feedback {args.feedback}:", feedback.stats)
    cohort = _load_timelines(args.data, progress)
    encounters, stats = collect_encounters(cohort.timelines, seed, feedback=feedback,
                                           with_notes=(kind == "text-coder"), progress=progress)
    _print_stats(f"cohort {args.data}: {len(cohort.timelines)} patients", stats)
    bundle = train_models(encounters, hyper=_hyper(defaults, args), seed=seed, select=select,
                          device=device, progress=progress)
    metrics = _test_metrics(bundle, encounters, kind, device)
    path = save_artifact(bundle, args.out, seed=seed, select=select, metrics=metrics,
                         data_fingerprint=_data_fingerprint(encounters), cohort_stats=stats)
    billing = (metrics or {}).get(label, {}).get("billing", {})
    print(f"saved {path}  (test billing: NDCG {_fmt(billing.get('ndcg'))}, RE@90 "
          f"{_fmt(billing.get('re@90'))}, Recall@20 {_fmt(billing.get('recall@20'))})")
    return 0


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _test_metrics(bundle, encounters, kind, device) -> dict:
    test = [e for e in encounters if e.split == "test"]
    if not test:
        return {}
    scores, y = model_scores(bundle, test, kind, device)
    slices = bundle.labels.slices()
    return {name: head_metrics(s, y, slices, bundle.thresholds.get(name)) for name, s in scores.items()}


def model_scores(bundle, encounters: list[Encounter], kind: str, device=None,
                 stats: Counter | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """{model name: [N, labels] probabilities} on `encounters`, and their label matrix."""
    from model_zoo import icd_ranker

    y = bundle.labels.encode(encounters, stats)
    out = {}
    if kind == "icd-ranker":
        x = bundle.features.encode(encounters, stats)
        out["multitask-ranker"] = icd_ranker.predict_proba(bundle.ranker.to(device or "cpu"), x, device=device)
        out["frequency"] = icd_ranker.predict_proba(bundle.frequency, x)
        if bundle.logistic is not None:
            out["logistic"] = icd_ranker.predict_proba(bundle.logistic.to(device or "cpu"), x, device=device)
    else:
        max_len = bundle.hyper.get("max_len", TEXT_DEFAULTS["max_len"])
        seqs = [note_ids(bundle.notes, e.note_tokens, max_len) for e in encounters]
        if stats is not None:
            stats["note tokens unknown to the model"] += sum(s.count(1) for s in seqs)
        out["text-coder"] = text_predict(bundle.coder.to(device or "cpu"), seqs, max_len, device)
        x = bag_of_words(seqs, bundle.hyper.get("bow_size", len(bundle.notes) - 1))
        out["frequency"] = icd_ranker.predict_proba(bundle.frequency, x)
        if bundle.logistic is not None:
            out["logistic"] = icd_ranker.predict_proba(bundle.logistic.to(device or "cpu"), x, device=device)
    return out, y


def evaluate_command(args) -> int:
    """`fhir-assist evaluate ARTIFACT --data DIR [--json] [--plots DIR] [--feedback FILE] [--seeds N]`."""
    from model_zoo import registry
    from model_zoo.train import pick_device

    try:
        device = pick_device(getattr(args, "device", None))
    except ValueError as exc:
        raise _cli_error(str(exc)) from None
    try:
        artifact = registry.load(args.artifact)
    except (FileNotFoundError, ValueError) as exc:
        raise _cli_error(f"cannot load {args.artifact!r}: {exc}") from None
    hp = artifact.hyperparameters
    kind = hp.get("kind", "icd-ranker")
    seed = int(hp.get("split_seed", 0))
    progress = not getattr(args, "json", False) or sys.stderr.isatty()
    bundle = load_ranker(artifact) if kind == "icd-ranker" else load_text(artifact)
    feedback = Feedback.read(args.feedback) if getattr(args, "feedback", None) else None
    cohort = _load_timelines(args.data, progress)
    encounters, stats = collect_encounters(cohort.timelines, seed, feedback=feedback,
                                           with_notes=(kind == "text-coder"), progress=progress)
    test = [e for e in encounters if e.split == "test"]
    if not test:
        raise _cli_error(f"--data {args.data}: no coded test encounters (split seed {seed}); the "
                         "cohort is too small or has no ICD diagnoses")
    if bundle.logistic is None:     # bundled demo models ship without it: refit on this cohort
        bundle.logistic = refit_logistic(bundle, kind, encounters, device, progress)
    unknown: Counter = Counter()
    scores, y = model_scores(bundle, test, kind, device, unknown)
    thresholds = dict(bundle.thresholds)
    std = {}
    seeds = int(getattr(args, "seeds", 1) or 1)
    if seeds > 1:
        scores, std = _retrain_seeds(bundle, kind, encounters, test, seeds, seed, hp, device, progress)
    if feedback is not None:
        if kind != "icd-ranker":
            raise _cli_error("--feedback applies to icd-ranker artifacts")
        _print_stats(f"feedback {args.feedback}:", feedback.stats | stats)
        retrained = train_ranker_models(encounters, hyper=bundle.hyper, seed=seed,
                                        select=hp.get("select", "ndcg"), device=device,
                                        progress=progress, features=bundle.features,
                                        labels=bundle.labels, train_baselines=False)
        name = "multitask-ranker+feedback"
        scores[name] = model_scores(retrained, test, kind, device)[0]["multitask-ranker"]
        thresholds[name] = retrained.thresholds["multitask-ranker"]
    slices = bundle.labels.slices()
    report = {
        "task": "icd-coding", "test_encounters": len(test), "artifact": str(artifact.path),
        "kind": kind, "split_seed": seed,
        "unknown": dict(unknown),
        "models": [],
    }
    for name, s in scores.items():
        if isinstance(s, list):      # several seeds: mean of the per-seed metrics
            levels = _mean_levels([head_metrics(si, y, slices, thresholds.get(name)) for si in s])
        else:
            levels = head_metrics(s, y, slices, thresholds.get(name))
        entry = {"model": name, "levels": levels}
        if name in std:
            entry["std"] = std[name]
        report["models"].append(entry)
    if getattr(args, "plots", None):
        report["plots"] = write_plots({k: (v[0] if isinstance(v, list) else v) for k, v in scores.items()},
                                      y, slices, args.plots)
    if getattr(args, "json", False):
        print(json.dumps(report, allow_nan=False))
    else:
        print(format_table(report))
    return 0


def refit_logistic(bundle, kind: str, encounters: list[Encounter], device, progress: bool):
    """The logistic baseline fitted on the training patients of `encounters`, with the
    artifact's vocabularies and label space."""
    from model_zoo import classical

    train = [e for e in encounters if e.split == "train"]
    if not train:
        return None
    y = bundle.labels.encode(train)
    if kind == "icd-ranker":
        x = bundle.features.encode(train)
    else:
        max_len = bundle.hyper.get("max_len", TEXT_DEFAULTS["max_len"])
        x = bag_of_words([note_ids(bundle.notes, e.note_tokens, max_len) for e in train],
                         bundle.hyper.get("bow_size", TEXT_DEFAULTS["bow_size"]))
    return classical.fit_logistic(x, y, l2=bundle.hyper.get("logistic_l2", 1e-4),
                                  epochs=bundle.hyper.get("logistic_epochs", 10), device=device,
                                  progress=progress).eval()


def _mean_levels(runs: list[dict]) -> dict:
    out = {}
    for head in runs[0]:
        out[head] = {}
        for key in runs[0][head]:
            vals = [r[head][key] for r in runs if r[head][key] is not None]
            out[head][key] = float(np.mean(vals)) if vals else None
    return out


def _retrain_seeds(bundle, kind, encounters, test, seeds, split_seed, hp, device, progress):
    """Retrain with `seeds` initialisation seeds on the same split; per-seed scores + std."""
    per_model: dict[str, list] = defaultdict(list)
    for s in range(seeds):
        if kind == "icd-ranker":
            b = train_ranker_models(encounters, hyper=bundle.hyper, seed=split_seed + s,
                                    select=hp.get("select", "ndcg"), device=device, progress=progress,
                                    features=bundle.features, labels=bundle.labels)
        else:
            b = train_text_models(encounters, hyper=bundle.hyper, seed=split_seed + s,
                                  select=hp.get("select", "ndcg"), device=device, progress=progress)
            # text models rebuild their vocabularies from the same split: same tokens
        for name, sc in model_scores(b, test, kind, device)[0].items():
            per_model[name].append(sc)
    y = bundle.labels.encode(test)
    slices = bundle.labels.slices()
    std = {}
    for name, runs in per_model.items():
        metrics = [head_metrics(r, y, slices, bundle.thresholds.get(name)) for r in runs]
        std[name] = {h: {k: (float(np.std([m[h][k] for m in metrics if m[h][k] is not None]))
                             if any(m[h][k] is not None for m in metrics) else None)
                         for k in metrics[0][h]} for h in metrics[0]}
    return dict(per_model), std


def write_plots(scores: dict[str, torch.Tensor], y: torch.Tensor, slices: dict[str, slice],
                out_dir: str | Path) -> list[str]:
    from model_zoo import plots
    from model_zoo.metrics import ranking as rk

    out = Path(out_dir)
    yn = _numpy(y)
    re_curves, recall_curves, calibration = {}, {}, {}
    ks = [1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 75, 100]
    for name, s in scores.items():
        sn = _numpy(s)
        re_curves[name] = {h: rk.re_at_r_curve(sn[:, sl], yn[:, sl]) for h, sl in slices.items()}
        recall_curves[name] = {h: rk.recall_at_k_curve(sn[:, sl], yn[:, sl], ks) for h, sl in slices.items()}
        calibration[name] = rk.calibration_bins(sn, yn, 10)
    return [str(plots.plot_re_at_r(re_curves, out / "re_at_r.png")),
            str(plots.plot_recall_at_k(recall_curves, out / "recall_at_k.png")),
            str(plots.plot_calibration(calibration, out / "calibration.png"))]


def format_table(report: dict) -> str:
    from model_zoo.metrics.ranking import RANKING_KEYS

    lines = [f"ICD/CCS coding — {report['test_encounters']} test encounters "
             f"({report['kind']}, split seed {report['split_seed']})"]
    if report.get("unknown"):
        lines.append("not in the model's vocabularies: " +
                     ", ".join(f"{k} {v}" for k, v in sorted(report["unknown"].items())))
    name_w = max(len(m["model"]) for m in report["models"]) + 2
    header = "level".ljust(8) + "model".ljust(name_w) + "".join(k.rjust(12) for k in RANKING_KEYS)
    for head in HEADS:
        rows = [m for m in report["models"] if head in m["levels"]]
        if not rows:
            continue
        lines += ["", header, "-" * len(header)]
        for m in rows:
            vals = m["levels"][head]
            cells = []
            for k in RANKING_KEYS:
                v = vals.get(k)
                cells.append(("n/a" if v is None else (f"{v:.2f}" if k.startswith("re@") else f"{v:.3f}")).rjust(12))
            lines.append(head.ljust(8) + m["model"].ljust(name_w) + "".join(cells))
    lines += ["", "RE@R: wrong codes read before R % of the true codes are found (lower is better); "
              "Recall@K, NDCG, AUPRC, F1: higher is better."]
    if report.get("plots"):
        lines.append("plots: " + ", ".join(report["plots"]))
    return "\n".join(lines)


# ============================================================================ bundled demo models

DEMO_OVERRIDES = {
    # small enough to ship (< 5 MB) and to rebuild in a couple of minutes on a laptop CPU
    "icd-ranker": {"hidden": [256, 256], "dropout": 0.5, "epochs": 15, "patience": 4},
    "text-coder": {"embed_dim": 48, "hidden": 32, "epochs": 4, "patience": None, "w2v_pairs": 300_000,
                   "max_len": 400},
}


def build_demo_model(kind: str, data: str, out: str, *, seed: int = 0, progress: bool = True) -> Path:
    """Train a bundled demo artifact: the product's pipeline with DEMO_OVERRIDES, baseline
    weights left out and the text coder stored in float16 to stay small."""
    from model_zoo.train import pick_device

    device = pick_device("cpu")
    cohort = _load_timelines(data, progress)
    encounters, stats = collect_encounters(cohort.timelines, seed, with_notes=(kind == "text-coder"),
                                           progress=progress)
    if kind == "icd-ranker":
        hyper = dict(RANKER_DEFAULTS, **DEMO_OVERRIDES[kind])
        bundle = train_ranker_models(encounters, hyper=hyper, seed=seed, select="ndcg", device=device,
                                     progress=progress)
        metrics = _test_metrics(bundle, encounters, kind, device)
        return save_ranker(bundle, out, seed=seed, select="ndcg", metrics=metrics,
                           data_fingerprint=_data_fingerprint(encounters), cohort_stats=stats,
                           keep_baselines=False, half=True)
    hyper = dict(TEXT_DEFAULTS, **DEMO_OVERRIDES[kind])
    bundle = train_text_models(encounters, hyper=hyper, seed=seed, device=device, progress=progress)
    metrics = _test_metrics(bundle, encounters, kind, device)
    return save_text(bundle, out, seed=seed, select="ndcg", metrics=metrics,
                     data_fingerprint=_data_fingerprint(encounters), cohort_stats=stats,
                     keep_baselines=False, half=True)
