"""Hook requests built from a patient's FHIR resources, as an EHR would send them.

Used to write `examples/hooks/*.json`, by `fhir-assist demo` when the examples
are not at hand, by the latency benchmark and by the tests. With `prefetch=True`
each prefetch template of the service is satisfied from the resources (a
resource for reads, a searchset Bundle for searches); without, the request
names a `fhirServer` (and optionally a bearer token) for the service to query.
"""
from __future__ import annotations

import copy
import uuid
from collections import defaultdict
from typing import Iterable

from .catalog import ServiceEntry
from .prefetch import Query, render

EXAMPLE_USER = "Practitioner/example-clinician"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def group_by_patient(resources: Iterable[dict]) -> dict[str, list[dict]]:
    """patient id → that patient's resources (Patient first), from any mix of resources."""
    out: dict[str, list[dict]] = defaultdict(list)
    for resource in resources:
        pid = patient_of(resource)
        if pid:
            out[pid].append(resource)
    for pid, items in out.items():
        items.sort(key=lambda r: r.get("resourceType") != "Patient")
    return dict(out)


def patient_of(resource: dict) -> str | None:
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for name in ("subject", "patient"):
        ref = resource.get(name)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and ref["reference"].startswith("Patient/"):
            return ref["reference"].split("/", 1)[1]
    return None


def encounters_of(resources: list[dict]) -> list[dict]:
    encounters = [r for r in resources if r.get("resourceType") == "Encounter"]
    return sorted(encounters, key=lambda e: ((e.get("period") or {}).get("start") or ""))


def _references_encounter(resource: dict, encounter_id: str) -> bool:
    ref = resource.get("encounter") or (resource.get("context") or {}).get("encounter")
    refs = ref if isinstance(ref, list) else [ref]
    return any(isinstance(r, dict) and r.get("reference") == f"Encounter/{encounter_id}" for r in refs)


def _matches(resource: dict, query: Query, patient_id: str) -> bool:
    if resource.get("resourceType") != query.resource_type:
        return False
    if query.resource_id is not None:
        return resource.get("id") == query.resource_id
    for name, value in query.params:
        if name in ("patient", "subject"):
            if patient_of(resource) != value.rsplit("/", 1)[-1]:
                return False
    return True


def draft_orders(resources: list[dict], patient_id: str, encounter_id: str | None) -> list[dict]:
    """Draft MedicationRequests for an ordering session: the latest encounter's orders re-drafted."""
    meds = [r for r in resources if r.get("resourceType") == "MedicationRequest"]
    if encounter_id:
        here = [r for r in meds if _references_encounter(r, encounter_id)]
        meds = here or meds
    drafts = []
    seen = set()
    for med in meds[-3:]:
        concept = med.get("medicationCodeableConcept")
        if not isinstance(concept, dict):
            continue
        key = tuple((c.get("system"), c.get("code")) for c in concept.get("coding") or [] if isinstance(c, dict))
        if key in seen:
            continue
        seen.add(key)
        draft = {
            "resourceType": "MedicationRequest",
            "id": f"draft-{uuid.uuid5(uuid.NAMESPACE_URL, str(med.get('id')) + patient_id).hex[:12]}",
            "status": "draft",
            "intent": "order",
            "medicationCodeableConcept": copy.deepcopy(concept),
            "subject": {"reference": f"Patient/{patient_id}"},
        }
        if encounter_id:
            draft["encounter"] = {"reference": f"Encounter/{encounter_id}"}
        drafts.append(draft)
    return drafts


def build_request(entry: ServiceEntry, resources: list[dict], patient_id: str, *,
                  encounter_id: str | None = None, prefetch: bool = True, fhir_server: str | None = None,
                  access_token: str | None = None, strip_encounter_diagnoses: bool | None = None,
                  hook_instance: str | None = None, user_id: str = EXAMPLE_USER) -> dict:
    """A CDS Hooks request for `entry` about `patient_id` (encounter: the latest one by default).

    On encounter-discharge the encounter's own diagnoses are left out by default:
    at discharge they are typically not coded yet, which is what the service is for.
    """
    resources = [r for r in resources if patient_of(r) == patient_id or r.get("resourceType") == "Medication"]
    encounters = encounters_of(resources)
    if encounter_id is None and encounters:
        encounter_id = encounters[-1].get("id")
    if strip_encounter_diagnoses is None:
        strip_encounter_diagnoses = entry.hook == "encounter-discharge"
    if strip_encounter_diagnoses and encounter_id:
        resources = [r for r in resources if not (r.get("resourceType") == "Condition"
                                                  and _references_encounter(r, encounter_id))]
        resources = [_without_diagnoses(r) if r.get("resourceType") == "Encounter" and r.get("id") == encounter_id
                     else r for r in resources]
    context: dict = {"userId": user_id, "patientId": patient_id}
    if encounter_id:
        context["encounterId"] = encounter_id
    if entry.hook in ("order-select", "order-sign"):
        drafts = draft_orders(resources, patient_id, encounter_id)
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": d} for d in drafts]}
        if entry.hook == "order-select":
            # The order just chosen is the last draft (an EHR always has at least one).
            context["selections"] = [f"MedicationRequest/{d['id']}" for d in drafts[-1:]]
    body: dict = {"hookInstance": hook_instance or str(uuid.uuid4()), "hook": entry.hook, "context": context}
    if fhir_server:
        body["fhirServer"] = fhir_server
        if access_token:
            body["fhirAuthorization"] = {"access_token": access_token, "token_type": "Bearer",
                                         "expires_in": 300, "scope": "user/*.read user/Condition.write",
                                         "subject": "fhir-assist"}
    if prefetch:
        body["prefetch"] = build_prefetch(entry, resources, context, patient_id)
    return body


def build_prefetch(entry: ServiceEntry, resources: list[dict], context: dict, patient_id: str) -> dict:
    out = {}
    for key, template in entry.prefetch.items():
        query = Query.parse(render(template, context))
        matches = [r for r in resources if _matches(r, query, patient_id)]
        if query.resource_id is not None:
            out[key] = matches[0] if matches else None
        else:
            out[key] = {"resourceType": "Bundle", "type": "searchset", "total": len(matches),
                        "entry": [{"fullUrl": f"{r['resourceType']}/{r.get('id')}", "resource": r}
                                  for r in matches]}
    return out


def _without_diagnoses(encounter: dict) -> dict:
    out = dict(encounter)
    out.pop("diagnosis", None)
    return out
