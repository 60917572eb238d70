"""Visits as text for the language-model entries (MERA coding, LAMO medications).

A prompt reads like a short chart summary: the patient, the last few earlier visits with
their diagnoses as code tokens, then the visit at hand (class, length, reasons, procedures,
medications, the start of its note) and the question. Diagnoses of the visit at hand never
appear in a coding prompt: they are what is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass, field


from fhir_assist.adapter.visits import Code, PatientTimeline, Visit
from model_zoo.llm.vocab import code_token

ICD_LEVELS = ("chapter", "block", "3char", "4char", "billing")
HISTORY_VISITS = 3
NOTE_WORDS = 60


def icd_nodes(code: Code) -> dict[str, str]:
    """The code and its ancestors by level ({} for a code outside ICD-10-CM/ICD-9-CM)."""
    from mappings import icd

    hierarchy = icd.hierarchy_for(code.system)
    return hierarchy.rollup(code.code) if hierarchy else {}


def dx_token(level: str, node: str) -> str:
    # chapters are numbered ("4"): the level keeps them apart from codes
    return code_token("dx", f"ch{node}" if level == "chapter" else node)


def medication_name(rxcui: str) -> str:
    from mappings import rxnorm

    ingredient = rxnorm.ingredients().get(rxcui)
    return ingredient.name if ingredient else f"rxcui {rxcui}"


def _age(timeline: PatientTimeline, visit: Visit) -> str:
    if visit.age is not None:
        return f"aged {int(visit.age)}"
    if timeline.birth_date and visit.start:
        return f"aged {(visit.start.date() - timeline.birth_date).days // 365}"
    return "age unknown"


def _length(visit: Visit) -> str:
    if visit.start and visit.end:
        days = (visit.end - visit.start).total_seconds() / 86400
        return f"{days:.0f} days" if days >= 1 else "same day"
    return "open" if visit.open else "length unknown"


def _words(codes: list[Code]) -> str:
    return " ; ".join(c.display or f"{c.system.rsplit('/', 1)[-1]} {c.code}" for c in codes) or "none"


def _diagnosis_tokens(visit: Visit) -> str:
    tokens = [dx_token("billing", n["billing"]) for n in map(icd_nodes, visit.diagnoses) if "billing" in n]
    return " ".join(tokens) or "none"


def _earlier(timeline: PatientTimeline, index: int) -> list[str]:
    lines = []
    for visit in timeline.visits[max(0, index - HISTORY_VISITS):index]:
        meds = ", ".join(medication_name(m) for m in visit.medications) or "none"
        lines.append(f"earlier {(visit.encounter_class or 'visit').lower()} visit : diagnoses "
                     f"{_diagnosis_tokens(visit)} ; medications {meds} .")
    return lines


def _this_visit(visit: Visit, *, with_medications: bool) -> str:
    parts = [f"this {(visit.encounter_class or 'visit').lower()} visit , {_length(visit)} :",
             f"reason {_words(visit.reason_codes)} ;", f"procedures {_words(visit.procedures)} ;"]
    if with_medications:
        parts.append("medications " + (", ".join(medication_name(m) for m in visit.medications) or "none") + " ;")
    note = " ".join(" ".join(visit.notes).split()[:NOTE_WORDS])
    if note:
        parts.append(f"note {note}")
    return " ".join(parts)


def _patient(timeline: PatientTimeline, visit: Visit) -> str:
    return f"patient {timeline.sex or 'unknown sex'} {_age(timeline, visit)} ."


def timeline_at(visit: Visit, patient: PatientTimeline | None = None,
                history: list[Visit] | None = None) -> tuple[PatientTimeline, int]:
    """(timeline, index of `visit` in it) for a visit seen at serving time: the patient's record
    with `visit` in its place, or the visits before it (`history`, oldest first) then `visit`."""
    earlier = list(history or [])
    if patient is not None:
        ids = [v.encounter_id for v in patient.visits]
        if visit.encounter_id in ids:
            visits = list(patient.visits)
            index = ids.index(visit.encounter_id)
            visits[index] = visit
            return PatientTimeline(patient.patient_id, patient.sex, patient.birth_date, visits), index
        earlier = [v for v in patient.visits
                   if v.start is not None and visit.start is not None and v.start < visit.start]
    earlier = [v for v in earlier if v.encounter_id != visit.encounter_id]
    who = patient or PatientTimeline("", None, None)
    return PatientTimeline(who.patient_id, who.sex, who.birth_date, earlier + [visit]), len(earlier)


def coding_prompt(timeline: PatientTimeline, index: int) -> str:
    visit = timeline.visits[index]
    return " ".join([_patient(timeline, visit), *_earlier(timeline, index),
                     _this_visit(visit, with_medications=True), ". diagnoses :"])


def medication_prompt(timeline: PatientTimeline, index: int) -> str:
    visit = timeline.visits[index]
    previous = timeline.visits[index - 1].medications if index else []
    return " ".join([_patient(timeline, visit), *_earlier(timeline, index),
                     _this_visit(visit, with_medications=False),
                     f"diagnoses {_diagnosis_tokens(visit)} ;",
                     "medications before " + (", ".join(map(medication_name, previous)) or "none"),
                     ". medications :"])


@dataclass
class Example:
    patient_id: str
    encounter_id: str
    prompt: str
    labels: list[str] = field(default_factory=list)    # code tokens (MERA: every level) or RxCUIs


def coding_examples(timelines: list[PatientTimeline]) -> list[Example]:
    """One example per visit with at least one billing ICD code; labels at every level."""
    out = []
    for timeline in timelines:
        for index, visit in enumerate(timeline.visits):
            nodes = [icd_nodes(c) for c in visit.diagnoses]
            if not any("billing" in n for n in nodes):
                continue
            labels = sorted({dx_token(level, node) for n in nodes for level, node in n.items()})
            out.append(Example(timeline.patient_id, visit.encounter_id, coding_prompt(timeline, index), labels))
    return out


def medication_examples(timelines: list[PatientTimeline]) -> list[Example]:
    """One example per visit with medications, from the second visit of a patient on."""
    return [Example(t.patient_id, v.encounter_id, medication_prompt(t, i), list(v.medications))
            for t in timelines for i, v in enumerate(t.visits) if i and v.medications]


def level_of(token: str) -> list[str]:
    """The ICD levels a dx token stands for (a 3-character code can also be a billing code)."""
    from mappings import icd

    node = token[len("[dx:"):-1]
    if node.startswith("ch"):
        return ["chapter"]
    if "-" in node:
        return ["block"]
    levels = []
    for hierarchy in (icd.icd10cm(), icd.icd9cm()):
        rollup = hierarchy.rollup(node)
        levels += [level for level, value in rollup.items() if value == node and level != "chapter"]
    return sorted(set(levels), key=ICD_LEVELS.index) or ["billing"]


def token_description(token: str) -> str:
    from mappings import icd

    node = token[len("[dx:"):-1]
    for hierarchy in (icd.icd10cm(), icd.icd9cm()):
        for level in ICD_LEVELS:
            name = node[2:] if level == "chapter" and node.startswith("ch") else node
            text = hierarchy.node_description(level, name)
            if text:
                return text
    return node


