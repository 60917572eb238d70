"""Timelines → coding examples: one Encounter per visit with an ICD diagnosis, its inputs
(RxNorm ingredients, procedures, age, sex, note tokens), labels per head and split.
Codes the model never saw are counted and reported, never fatal."""
from __future__ import annotations

import functools
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Sequence

from fhir_assist.tasks.coding.ontology import code_labels, hierarchy, icd_system

if TYPE_CHECKING:
    from fhir_assist.tasks.coding.feedback import Feedback

INPUT_BUCKETS = (0, 3, 6, 10, 15, 25)        # number of input codes → stratum for cut-offs
NOTE_BUCKETS = (0, 100, 200, 400, 800)       # note tokens → stratum for the text coder


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
    # the record before the visit (`history`): earlier visits' billing codes by recency
    # weight, and the visit's class, service, stay, gap since the last visit and reason codes
    previous: dict[str, float] = field(default_factory=dict)
    context: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # active problem list (billing tokens)

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
    recorded = visit.diagnoses or getattr(visit, "reason_codes", None) or ()
    entries = [_code_entry(d.system, d.code) for d in recorded] + [_labelled(s, c) for s, c in confirmed]
    for system, normalized, heads, billable in entries:
        if system is None:
            stats["non-ICD diagnoses"] += 1
            continue
        if normalized is None:
            stats["invalid ICD codes"] += 1
            continue
        if (system, normalized) in refuted_keys:
            continue
        for head, token in heads:
            labels[head].add(token)
        if not billable:
            stats["non-billable diagnosis codes"] += 1
    return dict(labels)


def _labelled(system: str | None, code: str) -> tuple:
    """(system, normalized code or None, ((head, label token), …), billable) of one ICD code."""
    if system is None:
        return None, None, (), False
    tree = hierarchy(system)
    normalized = tree.normalize(code)
    if normalized is None:
        return system, None, (), False
    return system, normalized, tuple((code_labels(system, normalized) or {}).items()), tree.is_billable(normalized)


@functools.lru_cache(maxsize=65536)
def _code_entry(system: str | None, code: str) -> tuple:
    """`_labelled` of a diagnosis as recorded (its system as written): a hook call re-reads
    the same codes of the patient's every visit, and a cohort repeats a few thousand."""
    return _labelled(icd_system(SimpleNamespace(system=system, code=code)), code)


def collect_encounters(timelines, seed: int, *, feedback: "Feedback | None" = None,
                       with_notes: bool = False, progress: bool = True) -> tuple[list[Encounter], Counter]:
    """Encounters of a cohort with their deterministic patient-level split."""
    from tqdm.auto import tqdm

    from fhir_assist.adapter import encode
    from fhir_assist.tasks.coding.history import billing_tokens, problem_tokens, visit_history

    split = encode.split_patients([t.patient_id for t in timelines], seed)
    stats: Counter = Counter()
    out: list[Encounter] = []
    for timeline in tqdm(timelines, desc="encounters", unit="patient", disable=not progress,
                         file=sys.stderr, dynamic_ncols=True):
        coded = [billing_tokens(v) for v in timeline.visits]
        for index, visit in enumerate(timeline.visits):
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
            enc.previous, enc.context = visit_history(timeline.visits, index, coded)
            enc.problems = problem_tokens(visit)
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


def data_fingerprint(encounters: list[Encounter]) -> str:
    """Which encounters a model was trained and evaluated on (ids, order independent)."""
    from model_zoo import registry


    return registry.fingerprint(sorted(f"{e.patient_id}/{e.encounter_id}" for e in encounters))
