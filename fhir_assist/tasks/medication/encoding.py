"""Timelines → MICRON index lists. `encode_visit` is THE visit encoder: training,
evaluation and the service's per-visit update all call it, so they cannot drift apart.

Vocabularies are built on training patients only; codes first seen elsewhere land in
the out-of-vocabulary slot 0. Unseen diagnosis/procedure codes keep that slot (they
still move the health representation); medicines outside the vocabulary are dropped
from the index list (a medicine outside M cannot be predicted) and only reported.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

DX_MIN_COUNT = 2      # diagnosis/procedure codes seen once in training share the OOV slot
PROC_MIN_COUNT = 2
MED_MIN_COUNT = 1


def visit_tokens(visit) -> tuple[list[str], list[str], list[str]]:
    """(diagnosis, procedure, medication) tokens of a visit, in record order."""
    from fhir_assist.adapter import encode

    return (encode.diagnosis_tokens(visit), encode.procedure_tokens(visit),
            encode.medication_tokens(visit))


def is_usable(visit) -> bool:
    """A visit with an order for a medicine we can name (RxNorm). One without says nothing
    about the patient's list: outpatient check-ups, vaccinations and many sick visits order
    nothing while the patient takes the same drugs (and orders known only by text encode
    as nothing), and read as an empty list they teach every model, and the first-visit
    anchor, that lists vanish. Empty encounters would make a spurious 'change' too."""
    return bool(visit.medications)


def usable_visits(timeline) -> list:
    return [v for v in timeline.visits if is_usable(v)]


@dataclass
class EncodedVisit:
    """Sorted unique indices per vocabulary, and what the vocabularies did not know."""

    dx: list[int]
    proc: list[int]
    med: list[int]
    unknown_codes: list = field(default_factory=list)         # dx / procedure Codes (in slot 0)
    unknown_medications: list[str] = field(default_factory=list)  # RxCUIs left out

    @property
    def n_unknown(self) -> int:
        return len(self.unknown_codes) + len(self.unknown_medications)


def encode_visit(visit, vocabularies: dict[str, Any]) -> EncodedVisit:
    from fhir_assist.adapter import encode

    dx, proc, med = set(), set(), set()
    unknown, unknown_meds = [], []
    for code in visit.diagnoses:
        index = vocabularies["dx"].index(encode.code_token(code, "dx"))
        dx.add(index)
        if not index:
            unknown.append(code)
    for code in visit.procedures:
        index = vocabularies["proc"].index(encode.code_token(code, "procedure"))
        proc.add(index)
        if not index:
            unknown.append(code)
    for rxcui in visit.medications:
        index = vocabularies["med"].index(rxcui)
        if index:
            med.add(index)
        else:
            unknown_meds.append(rxcui)
    return EncodedVisit(sorted(dx), sorted(proc), sorted(med), unknown, unknown_meds)


def build_vocabularies(train_timelines: Sequence) -> dict[str, Any]:
    from fhir_assist.adapter.encode import Vocabulary

    dx, proc, med = [], [], []
    for timeline in train_timelines:
        for visit in usable_visits(timeline):
            d, p, m = visit_tokens(visit)
            dx.append(d)
            proc.append(p)
            med.append(m)
    return {"dx": Vocabulary.build(dx, min_count=DX_MIN_COUNT),
            "proc": Vocabulary.build(proc, min_count=PROC_MIN_COUNT),
            "med": Vocabulary.build(med, min_count=MED_MIN_COUNT)}


def vocabulary_min_counts() -> dict[str, int]:
    return {"dx": DX_MIN_COUNT, "proc": PROC_MIN_COUNT, "med": MED_MIN_COUNT}


def encode_timeline(timeline, vocabularies: dict[str, Any]):
    """PatientSequence of one timeline, and the number of out-of-vocabulary codes."""
    from model_zoo.micron import PatientSequence

    dx, proc, med = [], [], []
    unknown = 0
    for visit in usable_visits(timeline):
        encoded = encode_visit(visit, vocabularies)
        unknown += encoded.n_unknown
        dx.append(encoded.dx)
        proc.append(encoded.proc)
        med.append(encoded.med)
    return PatientSequence(timeline.patient_id, dx, proc, med), unknown


def data_fingerprint(timelines: Sequence) -> str:
    """sha256 of the cohort's coded content (patient ids, visit tokens), order independent."""
    digest = hashlib.sha256()
    for timeline in sorted(timelines, key=lambda t: t.patient_id):
        digest.update(timeline.patient_id.encode())
        for visit in usable_visits(timeline):
            d, p, m = visit_tokens(visit)
            digest.update(json.dumps([sorted(d), sorted(p), sorted(m)]).encode())
    return digest.hexdigest()


@dataclass
class EncodedCohort:
    """Index-encoded splits, the vocabularies and what was left out."""

    vocabularies: dict[str, Any]                     # name → encode.Vocabulary
    splits: dict[str, list] = field(default_factory=dict)   # name → [PatientSequence]
    fingerprint: str = ""
    skipped_visits: int = 0
    patients: int = 0
    unknown_codes: int = 0

    @property
    def sizes(self) -> tuple[int, int, int]:
        return (len(self.vocabularies["dx"]), len(self.vocabularies["proc"]),
                len(self.vocabularies["med"]))


def encode_cohort(timelines: Sequence, split_seed: int,
                  vocabularies: dict[str, Any] | None = None) -> EncodedCohort:
    """Split by patient, build (or reuse) vocabularies on train, encode every split."""
    from fhir_assist.adapter import encode

    assignment = encode.split_patients([t.patient_id for t in timelines], split_seed)
    by_split: dict[str, list] = {"train": [], "validation": [], "test": []}
    for timeline in timelines:
        by_split[assignment[timeline.patient_id]].append(timeline)
    if vocabularies is None:
        vocabularies = build_vocabularies(by_split["train"])
    encoded = EncodedCohort(vocabularies=vocabularies, patients=len(timelines),
                            fingerprint=data_fingerprint(timelines))
    for name, members in by_split.items():
        sequences = []
        for timeline in members:
            sequence, unknown = encode_timeline(timeline, vocabularies)
            encoded.unknown_codes += unknown
            encoded.skipped_visits += len(timeline.visits) - len(sequence)
            if len(sequence):
                sequences.append(sequence)
        encoded.splits[name] = sequences
    return encoded
