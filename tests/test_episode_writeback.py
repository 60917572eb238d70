"""Write-back goes to the encounter the hook names, even when the visit joins it to the ED visit before it.

Against the real test FHIR server over HTTP, with the service behind waitress.
"""
from __future__ import annotations

import copy
import json

import pytest
import requests

from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request, encounters_of
from tests.cds_rules import assert_valid_response
from tests.test_cds_integration import call, service

pytestmark = pytest.mark.integration
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _renamed_patient(resources: list[dict], old: str, new: str) -> list[dict]:
    # Every id of a synthetic patient's resources starts with the patient id: one text replacement
    # gives a separate patient, so other tests' data on the shared server is left as it is.
    return json.loads(json.dumps(resources).replace(old, new))


def _put_all(base_url: str, resources: list[dict]) -> None:
    order = {"Patient": 0, "Encounter": 1}
    entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
               for r in sorted(resources, key=lambda r: order.get(r["resourceType"], 2))]
    # One transaction: Encounters and Conditions cite each other, which HAPI's referential
    # integrity accepts only when they are written together.
    response = requests.post(base_url, json={"resourceType": "Bundle", "type": "transaction", "entry": entries},
                             headers={"Content-Type": "application/fhir+json"}, timeout=60)
    response.raise_for_status()
    assert all(str(e["response"]["status"]).startswith("20") for e in response.json()["entry"])


def test_discharge_of_an_admission_part_of_its_ed_visit_writes_on_the_admission(demo_models, hook_cohort,
                                                                                 fhir_base_url):
    from fhir_assist.fhir_server import FhirServer

    by_patient, usable = hook_cohort
    source = usable[-1]
    pid = f"{source}ep"
    resources = _renamed_patient(by_patient[source], source, pid)
    admission = encounters_of(resources)[-1]
    admission["class"] = {"system": ACT, "code": "IMP"}
    # The ED visit the patient came through: it ends when the admission starts.
    ed = copy.deepcopy(admission)
    ed.update(id=f"{admission['id']}-ed", **{"class": {"system": ACT, "code": "EMER"}})
    ed.pop("diagnosis", None)
    ed.pop("hospitalization", None)
    ed["period"] = {"start": admission["period"]["start"][:11] + "00:00:00" + admission["period"]["start"][19:],
                    "end": admission["period"]["start"]}
    admission["partOf"] = {"reference": f"Encounter/{ed['id']}"}
    resources.append(ed)
    _put_all(fhir_base_url, resources)

    body = build_request(BY_ID["coding-suggestions-encounter-discharge"], resources, pid,
                         encounter_id=admission["id"], fhir_server=fhir_base_url)
    # No precision floor: the bundled demo models carry no validation precision curve, and this
    # test is about where the codes are written, not how many.
    with service(demo_models, write_back_precision=0.0, allowed_fhir_servers=(fhir_base_url,)) as (base_url, _):
        response = call(base_url, "coding-suggestions-encounter-discharge", body)
    assert response.status_code == 200, response.text[:500]
    assert_valid_response(response.json())
    server = FhirServer(fhir_base_url)
    suggested = [c for c in server.search("Condition", {"patient": f"Patient/{pid}"})
                 if any(t.get("code") == "suggested" for t in (c.get("meta") or {}).get("tag", []))]
    assert suggested, "the discharge call wrote provisional Conditions"
    assert {c["encounter"]["reference"] for c in suggested} == {f"Encounter/{admission['id']}"}
    assert not server.search("Condition", {"encounter": f"Encounter/{ed['id']}"})
