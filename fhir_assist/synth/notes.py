"""Short discharge summaries for synthetic stays.

A note names the stay's problems the way clinicians write them — synonyms, lay
words, abbreviations (CHF, AFib, DM2) — mixed with pertinent negatives ("no
evidence of pneumonia") that must not be read as diagnoses, vitals, the
medication list, templated boilerplate and a few typos. A text model can learn
codes from it, but not by string matching. 80–250 words.
"""
from __future__ import annotations

import random

from . import note_vocabulary
from .knowledge import Knowledge
from .records import PatientRecord, VisitRecord

MIN_WORDS, MAX_WORDS = 80, 250
P_TYPO = 0.015

HEADERS = (
    "DISCHARGE SUMMARY\nService: {service}\nAdmission date: {admit}  Discharge date: {discharge}\n",
    "Discharge Summary - {service}\nAdmitted {admit}, discharged {discharge}.\n",
    "D/C SUMMARY ({service})\nAdm: {admit}   D/C: {discharge}\n",
    "Hospital Course Summary\nDates of stay: {admit} to {discharge}. Service: {service}.\n",
)
VISIT_HEADERS = {
    "EMER": "Emergency Department Visit Summary\nDate: {admit}\n",
    "AMB": "Outpatient Procedure / Visit Summary\nDate: {admit}\n",
}
OPENERS = (
    "{age} y/o {sex} with PMH of {pmh} who presented with {reason}.",
    "{age}-year-old {sex} with a history of {pmh}, admitted for {reason}.",
    "Pt is a {age}yo {sex} w/ {pmh} p/w {reason}.",
    "This is a {age} year old {sex} with {pmh} presenting with {reason}.",
)
VISIT_OPENERS = (
    "{age} y/o {sex} with PMH of {pmh} seen today for {reason}.",
    "{age}-year-old {sex} with a history of {pmh}, presenting with {reason}.",
    "Pt is a {age}yo {sex} w/ {pmh} here for {reason}.",
)
NO_PMH = ("no significant past medical history", "no known chronic illnesses", "unremarkable PMH")
COURSE_LINES = (
    "# {problem}: treated with {drugs}, improved.",
    "# {problem} - started on {drugs}; clinically better by discharge.",
    "{Problem} was managed with {drugs}.",
    "For {problem} {pronoun} received {drugs} with good response.",
)
COURSE_NO_DRUG = (
    "# {problem}: monitored, supportive care.",
    "{Problem} was addressed; no further intervention needed.",
    "# {problem} - stable, will follow up as outpatient.",
)
CHRONIC_LINES = (
    "# {problem}: continued home regimen.",
    "# {problem} - stable, continue current meds.",
    "Chronic {problem}, at baseline.",
    "h/o {problem}, no changes made.",
)
HELD_LINES = ("Held {drugs} during admission.", "{drugs} held in setting of acute illness.",
              "Home {drugs} was held.")
_NEGATIONS = tuple((text, frozenset(conflicts.split()), tuple(words.split("|")))
                   for text, conflicts, words in note_vocabulary.NEGATIONS)

# How notes name a drug class when they don't name the drug.
CLASS_LABELS = {
    "acei": "ACE inhibitor", "arb": "ARB", "loop": "diuretics", "thiazide": "thiazide", "mra": "spironolactone",
    "anticoagulant": "anticoagulation", "p2y12": "antiplatelet agent", "nsaid": "NSAIDs", "ccb": "CCB",
    "beta_blocker": "beta blocker", "sglt2": "SGLT2 inhibitor", "sulfonylurea": "sulfonylurea",
    "basal_insulin": "basal insulin", "metformin": "metformin", "aspirin": "aspirin",
}
FILLERS = (
    "Physical exam on discharge: NAD, lungs CTAB, RRR, abdomen soft, non-tender.",
    "Labs notable for stable hemoglobin and creatinine at baseline.",
    "Patient ambulating with PT, tolerating diet.",
    "Code status: full code. Discussed plan with patient and family at bedside.",
    "Pain controlled on oral regimen. Eating and drinking well.",
    "Seen and examined on day of discharge, stable for discharge.",
    "ROS otherwise negative except as noted in HPI.",
)


def _term(comp_terms: list, rng: random.Random) -> str:
    return comp_terms[int(rng.random() * len(comp_terms))] if comp_terms else ""


def _drug_name(k: Knowledge, rxcui: str, rng: random.Random) -> str:
    name = k.drug_names.get(rxcui, rxcui).lower()
    abbreviation = note_vocabulary.DRUG_ABBREVIATIONS.get(name)
    if abbreviation and rng.random() < 0.35:
        return abbreviation
    return name


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _typos(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    # About P_TYPO of the longer words get a swapped or dropped letter.
    for _ in range(int(len(words) * P_TYPO * 2 * rng.random() + 0.5)):
        i = int(rng.random() * len(words))
        word = words[i]
        if len(word) > 5 and word.isalpha():
            j = 1 + int(rng.random() * (len(word) - 2))
            if rng.random() < 0.5:
                words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2:]   # swapped letters
            else:
                words[i] = word[:j] + word[j + 1:]                           # dropped letter
    return " ".join(words)


def discharge_note(k: Knowledge, record: PatientRecord, visit: VisitRecord, rng: random.Random) -> str:
    # The helpers draw from `rng` in a fixed order: a cohort's notes depend on it.
    parts = _opening(k, record, visit, rng)
    course = _course(k, record, visit, rng)
    parts.append("Hospital course:\n" + "\n".join(course) if visit.setting == "IMP" else " ".join(course))
    optional = _secondary_mentions(k, visit, rng) + _pertinent_negatives(k, visit, rng)
    optional += _procedures_vitals_and_medications(k, visit, rng)
    closing = f"Disposition: {visit.disposition}. " + rng.choice(note_vocabulary.FOLLOW_UP)
    body = _fit_length(parts, optional, course, closing, rng)
    return _typos("\n".join(body), rng)


def _opening(k: Knowledge, record: PatientRecord, visit: VisitRecord, rng: random.Random) -> list[str]:
    """The header and the opening line: who the patient is, their history, why they came."""
    age = int((visit.start.date() - record.birth_date).days / 365.25)
    sex = rng.choice(("M", "male", "man")) if record.sex == "male" else rng.choice(("F", "female", "woman"))

    chronic_terms = []
    for key in visit.chronic:
        if rng.random() < 0.75:
            terms = k.chronic[key].terms
            if key == "cancer" and visit.cancer_site:
                site = next((s for s in k.cancer_sites if s.key == visit.cancer_site), None)
                terms = site.terms if site else terms
            chronic_terms.append(_term(terms, rng))
    principal = visit.acute[0] if visit.acute else None
    reason = _term(k.acute[principal].terms, rng) if principal else "routine care"

    dates = {"service": visit.service, "admit": visit.start.strftime("%m/%d/%Y"),
             "discharge": visit.end.strftime("%m/%d/%Y")}
    header = VISIT_HEADERS.get(visit.setting) or rng.choice(HEADERS)
    parts = [header.format(**dates)]
    openers = OPENERS if visit.setting == "IMP" else VISIT_OPENERS
    parts.append(rng.choice(openers).format(age=age, sex=sex, pmh=_join(chronic_terms) or rng.choice(NO_PMH),
                                            reason=reason))
    return parts


def _course(k: Knowledge, record: PatientRecord, visit: VisitRecord, rng: random.Random) -> list[str]:
    """One line per acute problem (with the drugs given for it), some chronic ones, held drugs."""
    meds = set(visit.medications)
    course = []
    for key in visit.acute:
        comp = k.acute[key]
        drugs = []
        for cls, _ in comp.meds:
            options = k.drug_classes.get(cls)
            if options is not None:
                drugs.extend(m for m in options.items if m in meds and m not in drugs)
        term = _term(comp.terms, rng)
        if drugs:
            names = [_drug_name(k, m, rng) for m in drugs[:3]]
            line = rng.choice(COURSE_LINES)
            course.append(line.format(problem=term, Problem=term[:1].upper() + term[1:], drugs=_join(names),
                                      pronoun="he" if record.sex == "male" else "she"))
        else:
            line = rng.choice(COURSE_NO_DRUG)
            course.append(line.format(problem=term, Problem=term[:1].upper() + term[1:]))
    for key in visit.chronic:
        if rng.random() < 0.3:
            course.append(rng.choice(CHRONIC_LINES).format(problem=_term(k.chronic[key].terms, rng)))
    if visit.held and rng.random() < 0.7:
        held_names = [CLASS_LABELS[cls] if cls in CLASS_LABELS and rng.random() < 0.3
                      else _drug_name(k, rxcui, rng) for cls, rxcui in zip(visit.held, visit.held_drugs)]
        line = rng.choice(HELD_LINES).format(drugs=_join(held_names))
        course.append(line[:1].upper() + line[1:])
    return course


def _secondary_mentions(k: Knowledge, visit: VisitRecord, rng: random.Random) -> list[str]:
    secondary = [code for code, role in visit.diagnoses
                 if role == "secondary" and not code.startswith(("Z", "Y", "W", "V"))]
    mentioned = [k.descriptions.get(code, "").lower() for code in secondary[:4] if rng.random() < 0.5]
    mentioned = [m for m in mentioned if m]
    if not mentioned:
        return []
    lead = rng.choice(("Also noted: ", "Other issues: ", "Additional dx: "))
    return [lead + "; ".join(mentioned) + "."]


def _pertinent_negatives(k: Knowledge, visit: VisitRecord, rng: random.Random) -> list[str]:
    """Negated findings that contradict neither the stay's problems nor any of its codes."""
    present = set(visit.acute) | set(visit.chronic)
    described = " ".join(k.descriptions.get(code, "") for code, _ in visit.diagnoses).lower()
    negatives = [text for text, conflicts, words in _NEGATIONS
                 if not (present & conflicts) and not any(w in described for w in words)]
    n_neg = min(len(negatives), 1 + int(rng.random() * 3))
    if not n_neg:
        return []
    lead = rng.choice(("Pertinent negatives: ", "Of note, ", ""))
    return [lead + "; ".join(rng.sample(negatives, n_neg)) + "."]


def _procedures_vitals_and_medications(k: Knowledge, visit: VisitRecord, rng: random.Random) -> list[str]:
    optional = []
    if visit.procedures and rng.random() < 0.8:
        names = []
        for pcs, icd9 in visit.procedures:
            text = k.procedure_names.get(pcs or icd9)
            if text:
                names.append(text.lower())
        if names:
            lead = rng.choice(("Procedures: ", "s/p ", "Procedures this admission: "))
            optional.append(lead + "; ".join(names) + ".")
    vitals = rng.choice(note_vocabulary.VITALS_TEMPLATES).format(
        t=round(rng.uniform(36.4, 37.8), 1), hr=rng.randrange(58, 104), sbp=rng.randrange(100, 162),
        dbp=rng.randrange(54, 92), rr=rng.randrange(12, 22), spo2=rng.randrange(91, 100),
        o2=rng.choice(note_vocabulary.O2_SUPPORT))
    optional.append(vitals)
    med_names = [_drug_name(k, m, rng) for m in visit.medications]
    if med_names:
        cut = max(3, int(len(med_names) * rng.uniform(0.5, 1.0)))
        optional.append(rng.choice(("Discharge medications: ", "Meds: ", "Medications on discharge: "))
                        + ", ".join(med_names[:cut]) + ".")
    return optional


def _words(chunks) -> int:
    return sum(len(c.split()) for c in chunks)


def _fit_length(parts: list[str], optional: list[str], course: list[str], closing: str,
                rng: random.Random) -> list[str]:
    """Between MIN_WORDS and MAX_WORDS: optional paragraphs go first, then course lines; short notes get filler."""
    body = parts + optional + [closing]
    while _words(body) > MAX_WORDS and optional:
        optional.pop(0)
        body = parts + optional + [closing]
    if _words(body) > MAX_WORDS:  # very long course: keep the first lines only
        budget = MAX_WORDS - _words(parts[:2]) - _words([closing])
        kept, used = [], 0
        for line in course:
            n = len(line.split())
            if used + n > budget:
                break
            kept.append(line)
            used += n
        body = parts[:2] + ["\n".join(kept)] + [closing]
    if _words(body) < MIN_WORDS:
        fillers = rng.sample(FILLERS, len(FILLERS))
        while _words(body) < MIN_WORDS and fillers:
            body.insert(len(body) - 1, fillers.pop())
    return body
