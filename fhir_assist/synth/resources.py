"""Synthetic patient records → FHIR R4 resources, as NDJSON lines.

Plain dicts and `json` (not model objects) because the generator writes half a
million resources a minute; the two most numerous types (Condition,
MedicationRequest) are assembled from JSON fragments encoded once and cached
(their codes repeat), which halves the encoding cost. `tests/test_synth.py`
validates every resource type with `fhir.resources.R4B`. Ids are deterministic:
derived from the seed, the patient's index and the resource's position.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from mappings import codesystems

from . import ICD_VERSIONS
from .knowledge import ICD9_CUTOVER, Knowledge
from .records import PatientRecord, VisitRecord

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CLASS_DISPLAY = {"IMP": "inpatient encounter", "EMER": "emergency", "AMB": "ambulatory"}
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
DOC_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
DISCHARGE_SUMMARY = {"system": "http://loinc.org", "code": "18842-5", "display": "Discharge summary"}
MRN_SYSTEM = "urn:fhir-assist:synthetic:mrn"


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode

# Constant fragments of every Condition (encoded once).
_CLINICAL = {status: _encode({"coding": [{"system": CONDITION_CLINICAL, "code": status}]})
             for status in ("active", "resolved")}
_CONDITION_FIXED = ('"verificationStatus":' + _encode({"coding": [{"system": CONDITION_VERIFICATION,
                                                                   "code": "confirmed"}]})
                    + ',"category":' + _encode([{"coding": [{"system": CONDITION_CATEGORY,
                                                             "code": "encounter-diagnosis",
                                                             "display": "Encounter Diagnosis"}]}]))


def patient_id(seed: int, index: int) -> str:
    return f"s{seed}-p{index:06d}"


def _instant(dt: datetime, tz: str) -> str:
    return dt.isoformat(timespec="seconds") + tz


class ResourceWriter:
    """Builds the resources of one patient record in the chosen ICD version."""

    def __init__(self, k: Knowledge, seed: int, icd_version: str):
        if icd_version not in ICD_VERSIONS:
            raise ValueError(f"icd_version must be one of {', '.join(ICD_VERSIONS)}, not {icd_version!r}")
        from mappings import icd, procedures
        self.k, self.seed, self.icd_version = k, seed, icd_version
        self._h10, self._h9 = icd.icd10cm(), icd.icd9cm()
        self._proc_description = procedures.procedure_description
        self._display: dict = {}
        self._concepts: dict = {}          # (system, code) → encoded CodeableConcept
        self.icd9_unmapped = 0

    # -- code helpers --------------------------------------------------------
    def _uses_icd9(self, visit: VisitRecord) -> bool:
        if self.icd_version == "icd9cm":
            return True
        if self.icd_version == "mixed":
            return visit.end.date().isoformat() < ICD9_CUTOVER
        return False

    def _dx_coding(self, code10: str, icd9: bool) -> dict | None:
        if icd9:
            code = self.k.icd9_for(code10)
            if code is None:
                self.icd9_unmapped += 1
                return None
            system, hierarchy = codesystems.ICD9CM, self._h9
        else:
            code, system, hierarchy = code10, codesystems.ICD10CM, self._h10
        key = (system, code)
        display = self._display.get(key)
        if display is None:
            display = hierarchy.description(code) or code
            self._display[key] = display
        return {"system": system, "code": code, "display": display}

    def _proc_coding(self, pair: tuple, icd9: bool) -> dict | None:
        pcs, icd9_code = pair
        system, code = (codesystems.ICD9CM_PROC, icd9_code) if icd9 else (codesystems.ICD10PCS, pcs)
        if code is None:
            return None
        key = (system, code)
        display = self._display.get(key)
        if display is None:
            display = self._proc_description(system, code) or code
            self._display[key] = display
        return {"system": system, "code": code, "display": display}

    # -- resources -----------------------------------------------------------
    def _concept(self, coding: dict) -> str:
        key = (coding["system"], coding["code"])
        text = self._concepts.get(key)
        if text is None:
            text = self._concepts[key] = _encode({"coding": [coding], "text": coding["display"]})
        return text

    def patient(self, record: PatientRecord) -> str:
        pid = patient_id(self.seed, record.index)
        return _encode({
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{"system": MRN_SYSTEM, "value": f"MRN{self.seed}{record.index:07d}"}],
            "name": [{"use": "official", "family": record.family, "given": [record.given]}],
            "gender": record.sex,
            "birthDate": record.birth_date.isoformat(),
        })

    def visit(self, record: PatientRecord, visit: VisitRecord, note: str) -> dict[str, list[str]]:
        """NDJSON lines of one visit: Encounter, Conditions, Procedures, MedicationRequests, discharge summary."""
        refs = _StayRefs.of(self.seed, record, visit, self._uses_icd9(visit))
        conditions, condition_ids = self._stay_conditions(visit, refs)
        encounter = _stay_encounter(visit, refs, condition_ids)
        return {"Encounter": [_encode(encounter)], "Condition": conditions,
                "Procedure": self._stay_procedures(visit, refs),
                "MedicationRequest": self._stay_medication_requests(visit, refs),
                "DocumentReference": [_encode(_discharge_summary(refs, note))]}

    def _stay_conditions(self, visit: VisitRecord, refs: _StayRefs) -> tuple[list[str], list[str]]:
        """Condition lines and their ids, one per distinct code in the chosen ICD version."""
        conditions, condition_ids, seen = [], [], set()
        chronic_codes = set(visit.chronic_codes.values())
        for code10, role in visit.diagnoses:
            coding = self._dx_coding(code10, refs.icd9)
            if coding is None or coding["code"] in seen:
                continue
            seen.add(coding["code"])
            cid = f"{refs.eid}-c{len(conditions)}"
            condition_ids.append(cid)
            # Problems treated during the stay are resolved at discharge; chronic ones stay active.
            status = "resolved" if role == "acute" and code10 not in chronic_codes else "active"
            conditions.append(
                f'{{"resourceType":"Condition","id":"{cid}","clinicalStatus":{_CLINICAL[status]},'
                f'{_CONDITION_FIXED},"code":{self._concept(coding)},{refs.links},"recordedDate":"{refs.end}"}}')
        return conditions, condition_ids

    def _stay_procedures(self, visit: VisitRecord, refs: _StayRefs) -> list[str]:
        procedures = []
        for j, pair in enumerate(visit.procedures):
            coding = self._proc_coding(pair, refs.icd9)
            if coding is None:
                continue
            when = visit.start + timedelta(seconds=refs.span * (0.15 + 0.6 * j / max(1, len(visit.procedures))))
            procedures.append(_encode({
                "resourceType": "Procedure",
                "id": f"{refs.eid}-x{len(procedures)}",
                "status": "completed",
                "code": {"coding": [coding], "text": coding["display"]},
                "subject": refs.subject,
                "encounter": refs.encounter_ref,
                "performedDateTime": _instant(when, refs.tz),
            }))
        return procedures

    def _stay_medication_requests(self, visit: VisitRecord, refs: _StayRefs) -> list[str]:
        requests = []
        status = "completed" if visit.setting == "IMP" else "active"
        for j, rxcui in enumerate(visit.medications):
            concept = self._concepts.get(("rx", rxcui))
            if concept is None:
                name = self.k.drug_names.get(rxcui, rxcui)
                concept = self._concepts[("rx", rxcui)] = _encode(
                    {"coding": [{"system": codesystems.RXNORM, "code": rxcui, "display": name}], "text": name})
            authored = visit.start + timedelta(seconds=int(refs.span * (0.02 + 0.5 * ((j * 7919) % 97) / 97)))
            requests.append(
                f'{{"resourceType":"MedicationRequest","id":"{refs.eid}-m{j}","status":"{status}","intent":"order",'
                f'"medicationCodeableConcept":{concept},{refs.links},"authoredOn":"{_instant(authored, refs.tz)}"}}')
        return requests


@dataclass(frozen=True)
class _StayRefs:
    """What every resource of one stay refers to: its ids, references, instants and ICD version."""

    eid: str
    subject: dict
    encounter_ref: dict
    links: str                      # subject and encounter references as a JSON fragment
    start: str
    end: str
    tz: str
    span: float                     # seconds from admission to discharge
    icd9: bool

    @classmethod
    def of(cls, seed: int, record: PatientRecord, visit: VisitRecord, icd9: bool) -> _StayRefs:
        pid = patient_id(seed, record.index)
        eid = f"{pid}-e{visit.index}"
        # Ids and instants are plain ASCII ([A-Za-z0-9-.:+]), safe to place between quotes as they are.
        links = f'"subject":{{"reference":"Patient/{pid}"}},"encounter":{{"reference":"Encounter/{eid}"}}'
        return cls(eid=eid, subject={"reference": f"Patient/{pid}"}, encounter_ref={"reference": f"Encounter/{eid}"},
                   links=links, start=_instant(visit.start, record.tz), end=_instant(visit.end, record.tz),
                   tz=record.tz, span=(visit.end - visit.start).total_seconds(), icd9=icd9)


def _stay_encounter(visit: VisitRecord, refs: _StayRefs, condition_ids: list[str]) -> dict:
    encounter = {
        "resourceType": "Encounter",
        "id": refs.eid,
        "status": "finished",
        "class": {"system": ACT_CODE, "code": visit.setting, "display": CLASS_DISPLAY[visit.setting]},
        "serviceType": {"text": visit.service},
        "subject": refs.subject,
        "period": {"start": refs.start, "end": refs.end},
    }
    if condition_ids:
        encounter["diagnosis"] = [
            {"condition": {"reference": f"Condition/{cid}"},
             "use": {"coding": [{"system": DIAGNOSIS_ROLE, "code": "billing", "display": "Billing"}]},
             "rank": rank}
            for rank, cid in enumerate(condition_ids, 1)]
    if visit.setting == "IMP":
        encounter["hospitalization"] = {"dischargeDisposition": {"text": visit.disposition}}
    return encounter


def _discharge_summary(refs: _StayRefs, note: str) -> dict:
    return {
        "resourceType": "DocumentReference",
        "id": f"{refs.eid}-n",
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [DISCHARGE_SUMMARY], "text": "Discharge summary"},
        "category": [{"coding": [{"system": DOC_CATEGORY, "code": "clinical-note",
                                  "display": "Clinical Note"}]}],
        "subject": refs.subject,
        "date": refs.end,
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "data": base64.b64encode(note.encode("utf-8")).decode("ascii"),
            "title": "Discharge summary"}}],
        "context": {"encounter": [refs.encounter_ref], "period": {"start": refs.start, "end": refs.end}},
    }
