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

from ..fhir.references import reference_id, typed_reference_id
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
        pid = typed_reference_id(resource.get(name), "Patient")
        if pid:
            return pid
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
            if patient_of(resource) != reference_id(value, "Patient"):
                return False
    return True


def draft_orders(resources: list[dict], patient_id: str, encounter_id: str | None,
                 limit: int | None = 3) -> list[dict]:
    """Draft MedicationRequests for an ordering session: the encounter's orders, as drafts."""
    meds = [r for r in resources if r.get("resourceType") == "MedicationRequest"]
    if encounter_id:
        here = [r for r in meds if _references_encounter(r, encounter_id)]
        meds = here or meds
    drafts = []
    seen = set()
    for med in (meds[-limit:] if limit else meds):
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
                  encounter_orders_as_drafts: bool | None = None,
                  hook_instance: str | None = None, user_id: str = EXAMPLE_USER) -> dict:
    """A CDS Hooks request for `entry` about `patient_id` (encounter: the latest one by default).

    On encounter-discharge the encounter's own diagnoses are left out by default:
    at discharge they are typically not coded yet, which is what the service is for.
    On order-select / order-sign the encounter's medication orders become the session's
    draft orders (and leave the prefetch: drafts are not stored yet); with
    `encounter_orders_as_drafts=False` they stay in the prefetch and up to three are
    re-drafted, which keeps the prefetch equal to what a FHIR server holding the whole
    record would answer.
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
        as_drafts = encounter_orders_as_drafts is not False and encounter_id is not None
        drafts = draft_orders(resources, patient_id, encounter_id, limit=None if as_drafts else 3)
        if as_drafts:
            resources = [r for r in resources if not (r.get("resourceType") == "MedicationRequest"
                                                      and _references_encounter(r, encounter_id))]
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
    return copy.deepcopy(body)    # callers may edit it without touching the source resources


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


# ------------------------------------------------------------ example files
EXAMPLE_FHIR_SERVER = "http://127.0.0.1:8081/fhir"


def pick_example_patient(by_patient: dict[str, list[dict]]) -> str:
    """A patient with several visits and medications: the most telling examples."""
    def weight(pid: str) -> tuple:
        items = by_patient[pid]
        meds = sum(1 for r in items if r.get("resourceType") == "MedicationRequest")
        return (min(len(encounters_of(items)), 4), min(meds, 12), pid)
    candidates = [pid for pid, items in by_patient.items()
                  if len(encounters_of(items)) >= 2 and any(r.get("resourceType") == "MedicationRequest" for r in items)]
    if not candidates:
        raise ValueError("no patient with two encounters and medications in this cohort")
    return max(candidates, key=weight)


def write_examples(resources: Iterable[dict], out_dir, *, patient_id: str | None = None,
                   fhir_server: str = EXAMPLE_FHIR_SERVER) -> list[str]:
    """Write one request per service id with prefetch, one without (fhirServer), and the
    patient's resources as a batch Bundle to load into a FHIR server. Returns file names."""
    import json
    from pathlib import Path

    from .catalog import SERVICES

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_patient = group_by_patient(resources)
    pid = patient_id or pick_example_patient(by_patient)
    items = by_patient[pid]
    written = []
    for entry in SERVICES:
        for with_prefetch in (True, False):
            name = f"{entry.id}.json" if with_prefetch else f"{entry.id}.no-prefetch.json"
            instance = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fhir-assist-example/{name}"))
            body = build_request(entry, items, pid, prefetch=with_prefetch, hook_instance=instance,
                                 fhir_server=None if with_prefetch else fhir_server,
                                 access_token=None if with_prefetch else "replace-with-an-access-token")
            (out / name).write_text(json.dumps(body, indent=2) + "\n")
            written.append(name)
    # A transaction, not a batch: Encounters cite Conditions that cite them back, which a
    # server enforcing referential integrity (HAPI) only accepts when written together.
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in sorted(items, key=lambda r: {"Patient": 0, "Encounter": 1}.get(r["resourceType"], 2))
        if r.get("id")]}
    (out / "patient-bundle.json").write_text(json.dumps(bundle, indent=2) + "\n")
    written.append("patient-bundle.json")
    return written


def main(argv: list[str] | None = None) -> int:
    """python -m fhir_assist.cds.hook_requests --cohort DIR --out examples/hooks [--patient ID]"""
    import argparse

    from fhir_assist.adapter.files import iter_resources

    parser = argparse.ArgumentParser(description="Write example CDS Hooks requests from a FHIR cohort.")
    parser.add_argument("--cohort", required=True, help="cohort directory (NDJSON or Bundles)")
    parser.add_argument("--out", required=True, help="directory to write the examples to")
    parser.add_argument("--patient", default=None, help="patient id (default: a multi-visit patient)")
    parser.add_argument("--fhir-server", default=EXAMPLE_FHIR_SERVER,
                        help=f"fhirServer of the no-prefetch requests (default {EXAMPLE_FHIR_SERVER})")
    args = parser.parse_args(argv)
    names = write_examples(iter_resources(args.cohort), args.out, patient_id=args.patient,
                           fhir_server=args.fhir_server)
    print(f"wrote {len(names)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
