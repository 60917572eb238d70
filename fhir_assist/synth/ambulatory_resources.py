"""Ambulatory-profile patient records → FHIR R4 resources, as an EHR's Bulk Data export writes them.

Unlike the inpatient profile, a chronic problem is one problem-list Condition per
patient (no `Condition.encounter`) cited again from each visit's
`Encounter.diagnosis`, dated as exports date them (recordedDate, often an onset,
abatement and resolved/inactive status once the problem left the patient's
course or was recoded); clinic diagnoses are linked only that way too; check-ups
carry only `Encounter.reasonCode`; encounters name the one they continue through
`partOf`; procedures come in CPT, HCPCS, SNOMED CT and a local system; some
medications are text only or named by brand. Notes exist only for ED visits and
finished stays.
"""
from __future__ import annotations

import base64
import random
from datetime import timedelta

from mappings import codesystems

from .ambulatory import CPT, HCPCS
from .resources import (ACT_CODE, DIAGNOSIS_ROLE, DISCHARGE_SUMMARY, DOC_CATEGORY, ResourceWriter, _encode,
                        _instant, patient_id)
from .records import PatientRecord, VisitRecord

CLASS_DISPLAY = {"IMP": "inpatient encounter", "EMER": "emergency", "AMB": "ambulatory", "VR": "virtual"}
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
# Salt forms prescribers and pharmacy systems write after the ingredient name.
SALTS = {"metformin": "hydrochloride", "metoprolol": "tartrate", "atorvastatin": "calcium",
         "losartan": "potassium", "amlodipine": "besylate", "sertraline": "hydrochloride",
         "levothyroxine": "sodium", "pantoprazole": "sodium", "clopidogrel": "bisulfate",
         "diltiazem": "hydrochloride", "montelukast": "sodium", "bupropion": "hydrochloride",
         "tramadol": "hydrochloride", "hydralazine": "hydrochloride", "potassium chloride": ""}
STRENGTHS = ("5 MG", "10 MG", "20 MG", "25 MG", "40 MG", "50 MG", "100 MG", "500 MG")
P_TEXT_ONLY = 0.12            # a medication known only by its text
P_BRAND_DISPLAY = 0.05        # coded, but displayed by brand
# Problem-list dating, drawn from a stream of its own (the other resources do not change):
P_RECORDED_BEFORE = 0.5       # a problem present at the first encounter was listed before the export window
P_ONSET = 0.85                # problems with an onset (the rest have only recordedDate)
P_ONSET_DATE_ONLY = 0.3       # onsets written as a bare date
P_INACTIVE = 0.3              # an ended problem marked inactive rather than resolved


def _brand(synonyms) -> str | None:
    return next((s for s in synonyms if s[:1].isupper() and not s.isupper() and " " not in s), None)


class AmbulatoryWriter(ResourceWriter):
    """All resources of one patient of the ambulatory profile."""

    def __init__(self, k, seed: int, icd_version: str):
        super().__init__(k, seed, icd_version)
        from mappings import rxnorm
        self._ingredients = rxnorm.ingredients()

    def record(self, record: PatientRecord, note_for) -> dict[str, list[str]]:
        """NDJSON lines of every visit; `note_for(visit)` gives the text of its note."""
        pid = patient_id(self.seed, record.index)
        rng = random.Random(f"fhir-assist-synth:ambulatory-resources:{self.seed}:{record.index}")
        out: dict[str, list[str]] = {t: [] for t in ("Encounter", "Condition", "Procedure",
                                                     "MedicationRequest", "DocumentReference")}
        problems = self._problem_list(record, pid, out["Condition"])   # chronic code → Condition id
        for visit in record.visits:
            eid = f"{pid}-e{visit.index}"
            cited = self._conditions(record, visit, eid, problems, out["Condition"])
            out["Encounter"].append(_encode(self._encounter(record, visit, eid, cited)))
            out["Procedure"].extend(self._procedures(record, visit, eid))
            out["MedicationRequest"].extend(self._medications(record, visit, eid, rng))
            if visit.setting in ("EMER", "IMP") and not visit.open:
                out["DocumentReference"].append(self._note(record, visit, eid, note_for(visit)))
        return out

    def _conditions(self, record, visit: VisitRecord, eid: str, problems: dict, lines: list) -> list[str]:
        """Condition ids cited by the visit, in rank order; new Conditions appended to `lines`."""
        pid = patient_id(self.seed, record.index)
        icd9 = self._uses_icd9(visit)
        start = _instant(visit.start, record.tz)
        stay = visit.setting == "IMP"      # only the hospital's own coding names the encounter
        cited = []
        for code10, role in visit.diagnoses:
            coding = self._dx_coding(code10, icd9)
            if coding is None:
                continue
            if role == "chronic":
                cid = problems.get(coding["code"])
                if cid is None:
                    cid = problems[coding["code"]] = f"{pid}-pl{len(problems)}"
                    lines.append(self._condition(cid, pid, coding, "problem-list-item", "active",
                                                 {"recordedDate": start}, None))
            else:
                cid = f"{eid}-c{len(cited)}"
                status = "resolved" if role == "acute" else "active"
                lines.append(self._condition(cid, pid, coding, "encounter-diagnosis", status,
                                             {"recordedDate": start}, eid if stay else None))
            if cid not in cited:
                cited.append(cid)
        return cited

    def _problem_list(self, record: PatientRecord, pid: str, lines: list) -> dict[str, str]:
        """One problem-list Condition per chronic code the patient had at some encounter
        (cited or not), appended to `lines`; returns code → Condition id.

        A problem is recorded at the first encounter it was in force (or, for one present
        from the start, often before the export window), with an onset before that; one no
        longer in force at the patient's last encounter ended between the last encounter
        that had it and the next (its code changed, the smoker quit, the mood disorder remitted)."""
        rng = random.Random(f"fhir-assist-synth:ambulatory-problems:{self.seed}:{record.index}")
        visits = record.visits
        spans: dict[str, list] = {}                # code → [coding, first visit, last visit]
        for i, visit in enumerate(visits):
            icd9 = self._uses_icd9(visit)
            for code10 in visit.chronic_codes.values():
                coding = self._dx_coding(code10, icd9)
                if coding is not None:
                    spans.setdefault(coding["code"], [coding, i, i])[2] = i
        ids = {}
        for n, (code, (coding, first, last)) in enumerate(spans.items()):
            start = visits[first].start
            recorded = start
            if first == 0 and rng.random() < P_RECORDED_BEFORE:
                recorded = start - timedelta(days=rng.uniform(30, 1500))
            earliest = visits[first - 1].end if first > 0 else recorded - timedelta(days=1100)
            onset = earliest + (min(recorded, start) - earliest) * rng.random() if earliest < recorded else recorded
            dates = {"recordedDate": _instant(recorded, record.tz)}
            if rng.random() < P_ONSET:
                dates["onsetDateTime"] = (onset.date().isoformat() if rng.random() < P_ONSET_DATE_ONLY
                                          else _instant(onset, record.tz))
            status = "active"
            if last < len(visits) - 1:
                ended, following = visits[last].end, visits[last + 1].start
                abated = ended + (following - ended) * rng.random() if following > ended else following
                dates["abatementDateTime"] = _instant(abated, record.tz)
                status = "inactive" if rng.random() < P_INACTIVE else "resolved"
            cid = ids[code] = f"{pid}-pl{n}"
            lines.append(self._condition(cid, pid, coding, "problem-list-item", status, dates, None))
        return ids

    def _condition(self, cid, pid, coding, category, status, dates, eid) -> str:
        """`dates`: recordedDate, and onsetDateTime / abatementDateTime where known."""
        resource = {"resourceType": "Condition", "id": cid,
                    "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": status}]},
                    "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": category}]}],
                    "code": {"coding": [coding], "text": coding["display"]},
                    "subject": {"reference": f"Patient/{pid}"}, **dates}
        if eid is not None:
            resource["encounter"] = {"reference": f"Encounter/{eid}"}
        return _encode(resource)

    def _encounter(self, record, visit: VisitRecord, eid: str, cited: list[str]) -> dict:
        pid = patient_id(self.seed, record.index)
        period = {"start": _instant(visit.start, record.tz)}
        if not visit.open:
            period["end"] = _instant(visit.end, record.tz)
        encounter = {"resourceType": "Encounter", "id": eid, "status": "in-progress" if visit.open else "finished",
                     "class": {"system": ACT_CODE, "code": visit.setting, "display": CLASS_DISPLAY[visit.setting]},
                     "serviceType": {"text": visit.service}, "subject": {"reference": f"Patient/{pid}"},
                     "period": period}
        role = "DD" if visit.setting == "IMP" else "billing"
        if cited:
            encounter["diagnosis"] = [{"condition": {"reference": f"Condition/{cid}"},
                                       "use": {"coding": [{"system": DIAGNOSIS_ROLE, "code": role}]},
                                       "rank": rank} for rank, cid in enumerate(cited, 1)]
        if visit.reasons:
            icd9 = self._uses_icd9(visit)
            codings = [c for c in (self._dx_coding(code, icd9) for code in visit.reasons) if c]
            encounter["reasonCode"] = [{"coding": [c], "text": c["display"]} for c in codings]
        if visit.part_of is not None:
            encounter["partOf"] = {"reference": f"Encounter/{pid}-e{visit.part_of}"}
        if visit.setting == "IMP" and not visit.open:
            encounter["hospitalization"] = {"dischargeDisposition": {"text": visit.disposition}}
        return encounter

    def _procedures(self, record, visit: VisitRecord, eid: str) -> list[str]:
        icd9 = self._uses_icd9(visit)
        codings = [c for c in (self._proc_coding(pair, icd9) for pair in visit.procedures) if c]
        for system, code, text in visit.outpatient_procedures:
            coding = {"system": system, "code": code}
            if system not in (CPT, HCPCS):      # no licence to ship their descriptions
                coding["display"] = text
            codings.append(dict(coding, _text=text))
        lines = []
        span = ((visit.end - visit.start) if not visit.open else timedelta(hours=6)).total_seconds()
        for j, coding in enumerate(codings):
            text = coding.pop("_text", coding.get("display"))
            when = visit.start + timedelta(seconds=span * (0.1 + 0.6 * j / max(1, len(codings))))
            lines.append(_encode({"resourceType": "Procedure", "id": f"{eid}-x{j}", "status": "completed",
                                  "code": {"coding": [coding], "text": text},
                                  "subject": {"reference": f"Patient/{patient_id(self.seed, record.index)}"},
                                  "encounter": {"reference": f"Encounter/{eid}"},
                                  "performedDateTime": _instant(when, record.tz)}))
        return lines

    def _medication_concept(self, rxcui: str, rng: random.Random) -> dict:
        name = self.k.drug_names.get(rxcui, rxcui)
        ingredient = self._ingredients.get(rxcui)
        brand = _brand(ingredient.synonyms) if ingredient is not None else None
        r = rng.random()
        if r < P_TEXT_ONLY:
            salt = SALTS.get(name, "")
            strength = rng.choice(STRENGTHS)
            forms = [f"{name} {salt} {strength} Oral Tablet".replace("  ", " "),
                     f"{name}_{salt}".rstrip("_") + f" {strength.lower()}"]
            if brand:
                forms += [f"{brand} ({name} {salt})".replace(" )", ")") + f" {strength} tablet", brand.upper()]
            return {"text": rng.choice(forms)}
        display = brand if brand and r < P_TEXT_ONLY + P_BRAND_DISPLAY else name
        return {"coding": [{"system": codesystems.RXNORM, "code": rxcui, "display": display}], "text": display}

    def _medications(self, record, visit: VisitRecord, eid: str, rng: random.Random) -> list[str]:
        pid = patient_id(self.seed, record.index)
        status = "completed" if visit.setting == "IMP" and not visit.open else "active"
        concepts = [self._medication_concept(rxcui, rng) for rxcui in visit.medications]
        concepts += [{"coding": [{"system": codesystems.RXNORM, "code": rxcui, "display": name}], "text": name}
                     for rxcui, name in visit.other_drugs]
        authored = _instant(visit.start + timedelta(minutes=10), record.tz)
        return [_encode({"resourceType": "MedicationRequest", "id": f"{eid}-m{j}", "status": status,
                         "intent": "order", "medicationCodeableConcept": concept,
                         "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/{eid}"},
                         "authoredOn": authored}) for j, concept in enumerate(concepts)]

    def _note(self, record, visit: VisitRecord, eid: str, note: str) -> str:
        start, end = _instant(visit.start, record.tz), _instant(visit.end, record.tz)
        title = "Discharge summary" if visit.setting == "IMP" else "Emergency department note"
        return _encode({
            "resourceType": "DocumentReference", "id": f"{eid}-n", "status": "current", "docStatus": "final",
            "type": {"coding": [DISCHARGE_SUMMARY], "text": title} if visit.setting == "IMP" else {"text": title},
            "category": [{"coding": [{"system": DOC_CATEGORY, "code": "clinical-note"}]}],
            "subject": {"reference": f"Patient/{patient_id(self.seed, record.index)}"}, "date": end,
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "title": title,
                                        "data": base64.b64encode(note.encode("utf-8")).decode("ascii")}}],
            "context": {"encounter": [{"reference": f"Encounter/{eid}"}], "period": {"start": start, "end": end}},
        })
