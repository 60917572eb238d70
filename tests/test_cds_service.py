"""The CDS Hooks service in-process: discovery, every service and hook, validation errors,
cards checked against the CDS Hooks 2.0 response rules, feedback, health and metrics.

Runs the bundled demo models on a small synthetic cohort; the data comes in as prefetch.
The tests against a real FHIR server and a real Redis are in test_cds_integration.py.
"""
from __future__ import annotations

import copy
import hashlib
import json
import uuid

import pytest

from fhir_assist.cds import create_app
from fhir_assist.cds.catalog import BY_ID, SERVICES
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.config import Settings
from fhir_assist.store import MemoryStore
from tests.cds_rules import assert_valid_response, validate_discovery


@pytest.fixture(scope="module")
def models(demo_models):
    return demo_models


@pytest.fixture(scope="module")
def cohort(hook_cohort):
    by_patient, usable = hook_cohort
    return by_patient, usable


ADMIN_SECRET = "admin-secret-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_SECRET}"}


def make_app(models, **changes):
    changes.setdefault("admin_token_sha256", hashlib.sha256(ADMIN_SECRET.encode()).hexdigest())
    # Evidence (attribution per suggested code) is the slow part of a coding call and has its
    # own test; the other tests leave it off to stay fast.
    changes.setdefault("evidence", False)
    return create_app(Settings(no_auth=True, **changes), store=MemoryStore(), models=models)


@pytest.fixture(scope="module")
def client(models):
    return make_app(models).test_client()


def request_for(cohort, service_id, index=0, **options):
    by_patient, usable = cohort
    pid = usable[index % len(usable)]
    return build_request(BY_ID[service_id], by_patient[pid], pid, **options)


def post(client, service_id, body):
    return client.post(f"/cds-services/{service_id}", data=json.dumps(body), content_type="application/json")


def assert_outcome(response, status, *, expression=None, text=None):
    from fhir.resources.R4B.operationoutcome import OperationOutcome

    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body = response.get_json()
    OperationOutcome.model_validate(body)           # a valid FHIR OperationOutcome
    issue = body["issue"][0]
    assert "Traceback" not in json.dumps(body)
    if expression:
        assert expression in issue.get("expression", []), issue
    if text:
        assert text in issue["details"]["text"], issue
    return issue


# ------------------------------------------------------------------ discovery
def test_discovery_lists_each_service_and_hook(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    body = response.get_json()
    assert not validate_discovery(body), validate_discovery(body)
    pairs = {(s["id"], s["hook"]) for s in body["services"]}
    assert pairs == {
        ("medication-change-order-select", "order-select"),
        ("medication-change-order-sign", "order-sign"),
        ("medication-change-patient-view", "patient-view"),
        ("coding-suggestions-encounter-discharge", "encounter-discharge"),
        ("coding-suggestions-patient-view", "patient-view"),
    }
    for service in body["services"]:
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert all("{{context.patientId}}" in t for t in service["prefetch"].values())
        assert service["usageRequirements"] and service["title"] and service["description"]


# --------------------------------------------------------- every service/hook
@pytest.mark.parametrize("service_id", [s.id for s in SERVICES])
def test_each_service_answers_valid_cards_from_prefetch(models, cohort, service_id):
    client = make_app(models).test_client()
    kinds = {"medication-change": {"MedicationRequest"}, "coding-suggestions": {"Condition"}}[BY_ID[service_id].service]
    cards_seen = 0
    for i in range(6):
        response = post(client, service_id, request_for(cohort, service_id, i))
        assert response.status_code == 200, response.get_data(as_text=True)[:800]
        body = response.get_json()
        assert_valid_response(body)
        for card in body["cards"]:
            cards_seen += 1
            for s in card.get("suggestions", []):
                for action in s.get("actions", []):
                    rtype = action["resource"]["resourceType"] if "resource" in action else \
                        action["resourceId"].split("/")[0]
                    assert rtype in kinds, action
    if BY_ID[service_id].service == "coding-suggestions":
        assert cards_seen >= 6, "every encounter gets a coding card"
    else:
        assert cards_seen >= 1, "some of six patients should get medication advice"


def test_coding_card_content(models, cohort):
    client = make_app(models, evidence=True).test_client()
    body = post(client, "coding-suggestions-encounter-discharge",
                request_for(cohort, "coding-suggestions-encounter-discharge", 1)).get_json()
    card = body["cards"][0]
    assert card["indicator"] == "info"
    assert card["source"]["label"].startswith("fhir-assist") and card["source"]["url"] and card["source"]["topic"]
    assert card["selectionBehavior"] == "any"
    assert any(s.get("isRecommended") for s in card["suggestions"])
    assert all(r["display"] for r in card["overrideReasons"])
    condition = card["suggestions"][0]["actions"][0]["resource"]
    assert condition["verificationStatus"]["coding"][0]["code"] == "provisional"
    assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert condition["encounter"]["reference"].startswith("Encounter/")
    assert "| rank | code |" in card["detail"]
    assert "medication: " in card["detail"] or "procedure: " in card["detail"], "evidence is shown"


def test_medication_suggestions_use_create_update_and_delete(models, cohort):
    client = make_app(models).test_client()
    types = set()
    for i in range(len(cohort[1])):
        body = post(client, "medication-change-order-sign", request_for(cohort, "medication-change-order-sign", i)).get_json()
        for card in body["cards"]:
            for s in card.get("suggestions", []):
                types |= {a["type"] for a in s["actions"]}
        if {"create", "delete"} <= types or i > 40:
            break
    assert "create" in types or "delete" in types or "update" in types


def test_repeated_calls_for_one_encounter_give_the_same_advice(models, cohort):
    """The stored state is re-applied, not advanced, when the same encounter calls again."""
    client = make_app(models).test_client()
    body = request_for(cohort, "medication-change-patient-view", 2)

    def advice():
        cards = post(client, "medication-change-patient-view", body).get_json()["cards"]
        return sorted((c["summary"], tuple(s["label"] for s in c.get("suggestions", []))) for c in cards)
    first = advice()
    assert advice() == first
    assert advice() == first


def test_unknown_codes_are_reported_not_fatal(client, cohort):
    body = request_for(cohort, "coding-suggestions-patient-view", 3)
    encounter = body["context"]["encounterId"]
    odd = {"resourceType": "Condition", "id": "odd-code",
           "subject": {"reference": f"Patient/{body['context']['patientId']}"},
           "encounter": {"reference": f"Encounter/{encounter}"},
           "code": {"coding": [{"system": "http://example.org/local-dx", "code": "LOCAL-42"}]}}
    body["prefetch"]["conditions"]["entry"].append({"resource": odd})
    response = post(client, "coding-suggestions-patient-view", body)
    assert response.status_code == 200
    answer = response.get_json()
    assert_valid_response(answer)
    assert any("LOCAL-42" in card.get("detail", "") for card in answer["cards"])


def test_system_actions_only_when_configured(models, cohort):
    body = request_for(cohort, "coding-suggestions-encounter-discharge", 4)
    plain = post(make_app(models).test_client(), "coding-suggestions-encounter-discharge", body).get_json()
    assert "systemActions" not in plain
    configured = make_app(models, system_actions=True, write_back=False).test_client()
    answer = post(configured, "coding-suggestions-encounter-discharge", body).get_json()
    assert_valid_response(answer)
    assert answer["systemActions"] and all(a["resource"]["resourceType"] == "Condition"
                                           for a in answer["systemActions"])


def test_ddi_warning_card_for_interacting_drafts(client, cohort):
    from mappings import rxnorm

    pairs = sorted(tuple(sorted(p)) for p in rxnorm.ddi_pairs())
    a, b = pairs[0]
    body = request_for(cohort, "medication-change-order-select", 5)
    pid = body["context"]["patientId"]
    drafts = []
    for rx in (a, b):
        drafts.append({"resourceType": "MedicationRequest", "id": f"draft-{rx}", "status": "draft", "intent": "order",
                       "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                                 "code": rx}]},
                       "subject": {"reference": f"Patient/{pid}"}})
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                      "entry": [{"resource": d} for d in drafts]}
    body["context"]["selections"] = [f"MedicationRequest/draft-{b}"]
    answer = post(client, "medication-change-order-select", body).get_json()
    assert_valid_response(answer)
    warnings = [c for c in answer["cards"] if c["indicator"] == "warning"]
    assert warnings, answer
    card = warnings[0]
    assert card["selectionBehavior"] == "at-most-one"
    assert {a["type"] for s in card["suggestions"] for a in s["actions"]} == {"delete"}
    assert {a["resourceId"] for s in card["suggestions"] for a in s["actions"]} == \
        {f"MedicationRequest/draft-{a}", f"MedicationRequest/draft-{b}"}


def test_weak_interacting_medicine_is_suggested_for_stopping_with_its_partner_named(models, cohort):
    """The interaction stop: of two interacting medicines on the list, the one the model
    scores below its cut-off is suggested for stopping, and the card says why."""
    from fhir_assist.suggest.model_set import MEDICATION
    from mappings import rxnorm

    cut_off = models.models[MEDICATION].suggester.thresholds.ddi_stop_below
    assert cut_off > 0, "the demo MICRON model stops weak interacting medicines"
    client = make_app(models).test_client()
    names = {rx: ingredient.name for rx, ingredient in rxnorm.ingredients().items()}
    by_name = {name: rx for rx, name in names.items()}
    for i in range(len(cohort[1])):
        answer = post(client, "medication-change-order-sign",
                      request_for(cohort, "medication-change-order-sign", i)).get_json()
        for card in answer["cards"]:
            rows = [line.strip("| ").split(" | ") for line in card.get("detail", "").splitlines()
                    if line.startswith("| stop |") and "interacts with" in line]
            if not rows:
                continue
            assert_valid_response(answer)
            _, name, rx, score, note = rows[0]
            partner = by_name[note.removeprefix("interacts with ")]
            assert rxnorm.interacts(rx, partner)
            assert float(score) <= cut_off   # shown to two decimals
            assert f"Stop {name}" in {s["label"] for s in card["suggestions"]}
            return
    pytest.fail("no order-sign call stopped a weak interacting medicine")


# ------------------------------------------------------------- bad requests
@pytest.mark.parametrize("raw, expression, text", [
    ("{not json", None, "not valid JSON"),
    ("", None, "empty"),
    ("[1, 2]", None, "JSON object"),
    (json.dumps({"hookInstance": "x", "context": {}}), "hook", "'hook' is required"),
    (json.dumps({"hook": "no-such-hook", "hookInstance": "x", "context": {}}), "hook", "unknown hook"),
    (json.dumps({"hook": "patient-view", "hookInstance": "x", "context": {}}), "hook", "answers the 'order-sign'"),
    (json.dumps({"hook": "order-sign", "context": {}}), "hookInstance", "hookInstance"),
    (json.dumps({"hook": "order-sign", "hookInstance": "x"}), "context", "'context' is required"),
])
def test_malformed_requests_get_400(client, raw, expression, text):
    response = client.post("/cds-services/medication-change-order-sign", data=raw, content_type="application/json")
    assert_outcome(response, 400, expression=expression, text=text)


@pytest.mark.parametrize("service_id, missing", [
    ("medication-change-order-select", "selections"),
    ("medication-change-order-select", "draftOrders"),
    ("medication-change-order-sign", "draftOrders"),
    ("medication-change-order-sign", "userId"),
    ("medication-change-patient-view", "patientId"),
    ("coding-suggestions-encounter-discharge", "encounterId"),
    ("coding-suggestions-patient-view", "userId"),
])
def test_missing_context_fields_get_400(client, cohort, service_id, missing):
    body = request_for(cohort, service_id)
    body["context"].pop(missing, None)
    assert_outcome(post(client, service_id, body), 400, expression=f"context.{missing}")


def test_bad_fhir_in_prefetch_gets_400_naming_the_field(client, cohort):
    body = request_for(cohort, "medication-change-patient-view")
    encounter = body["prefetch"]["encounters"]["entry"][0]["resource"]
    encounter["period"] = {"start": "last tuesday"}
    issue = assert_outcome(post(client, "medication-change-patient-view", body), 400, text="invalid FHIR data")
    assert "period.start" in issue["details"]["text"]
    body = request_for(cohort, "medication-change-patient-view")
    body["prefetch"]["patient"] = "Patient/123"
    assert_outcome(post(client, "medication-change-patient-view", body), 400, expression="prefetch.patient")
    body = request_for(cohort, "medication-change-order-sign")
    body["context"]["draftOrders"] = {"resourceType": "Patient"}
    assert_outcome(post(client, "medication-change-order-sign", body), 400, expression="context.draftOrders")


def test_other_request_errors(client, cohort):
    body = request_for(cohort, "medication-change-patient-view")
    body["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "expires_in": 300, "scope": "x",
                                 "subject": "s"}
    assert_outcome(post(client, "medication-change-patient-view", body), 400, expression="fhirServer")
    assert_outcome(post(client, "no-such-service", body), 404, expression="id")
    assert_outcome(client.get("/cds-services/medication-change-patient-view"), 405)
    assert_outcome(client.get("/no/such/path"), 404)
    huge = make_app(client.application.extensions["fhir_assist"].models, max_request_mb=1).test_client()
    assert_outcome(huge.post("/cds-services/medication-change-patient-view", data="x" * (2 * 1024 * 1024),
                             content_type="application/json"), 413)


def test_no_prefetch_and_no_fhir_server_gets_412(client, cohort):
    body = request_for(cohort, "medication-change-patient-view", prefetch=False)
    issue = assert_outcome(post(client, "medication-change-patient-view", body), 412)
    assert "prefetch.encounters" in issue["expression"]
    # An EHR that reports a failed prefetch with an OperationOutcome: same answer.
    body = request_for(cohort, "medication-change-patient-view")
    body["prefetch"]["encounters"] = {"resourceType": "OperationOutcome",
                                      "issue": [{"severity": "error", "code": "timeout"}]}
    assert_outcome(post(client, "medication-change-patient-view", body), 412)


def test_unknown_encounter_on_discharge_gets_412(client, cohort):
    body = request_for(cohort, "coding-suggestions-encounter-discharge")
    body["context"]["encounterId"] = "not-in-the-data"
    assert_outcome(post(client, "coding-suggestions-encounter-discharge", body), 412,
                   expression="context.encounterId")


# ----------------------------------------------------------------- feedback
def test_feedback_round_trip(models, cohort):
    client = make_app(models).test_client()
    service_id = "coding-suggestions-encounter-discharge"
    body = request_for(cohort, service_id, 6)
    card = post(client, service_id, body).get_json()["cards"][0]
    chosen = card["suggestions"][0]
    other = post(client, service_id, request_for(cohort, service_id, 7)).get_json()["cards"][0]
    feedback = {"feedback": [
        {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": chosen["uuid"]}],
         "outcomeTimestamp": "2026-11-23T09:00:00Z"},
        {"card": other["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T09:01:00Z",
         "overrideReason": {"reason": other["overrideReasons"][0], "userComment": "not documented"}},
    ]}
    response = client.post(f"/cds-services/{service_id}/feedback", json=feedback)
    assert response.status_code == 200 and response.get_json()["stored"] >= 2
    assert_outcome(client.get(f"/cds-services/{service_id}/feedback"), 405)   # not for EHR tokens
    listed = client.get(f"/admin/feedback?tenant=default&service={service_id}", headers=ADMIN).get_json()["feedback"]
    accepted = [e for e in listed if e["card"] == card["uuid"]]
    assert len(accepted) == 1
    label = accepted[0]
    action = chosen["actions"][0]["resource"]["code"]["coding"][0]
    assert (label["code"], label["system"], label["label"]) == (action["code"], action["system"], 1)
    assert label["patient"] == body["context"]["patientId"] and label["encounter"] == body["context"]["encounterId"]
    assert label["source"] == "cds-feedback" and label["user"] == body["context"]["userId"] and label["model_version"]
    refuted = [e for e in listed if e["card"] == other["uuid"]]
    recommended = [s for s in other["suggestions"] if s.get("isRecommended")]
    assert len(refuted) == len(recommended) and all(e["label"] == 0 and "not documented" in e["reason"]
                                                   for e in refuted)
    only_overridden = client.get(f"/admin/feedback?tenant=default&service={service_id}&outcome=overridden",
                                 headers=ADMIN).get_json()
    assert only_overridden["count"] == len(refuted)


@pytest.mark.parametrize("entry, expression", [
    ({"outcome": "accepted", "acceptedSuggestions": [{"id": "s"}], "outcomeTimestamp": "2026-01-01T00:00:00Z"},
     "feedback[0].card"),
    ({"card": "c", "outcome": "maybe", "outcomeTimestamp": "2026-01-01T00:00:00Z"}, "feedback[0].outcome"),
    ({"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"},
     "feedback[0].acceptedSuggestions"),
    ({"card": "c", "outcome": "overridden", "outcomeTimestamp": "yesterday"}, "feedback[0].outcomeTimestamp"),
    ({"card": "c", "outcome": "overridden", "overrideReason": {}, "outcomeTimestamp": "2026-01-01T00:00:00Z"},
     "feedback[0].overrideReason"),
])
def test_malformed_feedback_gets_400(client, entry, expression):
    response = client.post("/cds-services/medication-change-order-sign/feedback", json={"feedback": [entry]})
    assert_outcome(response, 400, expression=expression)
    assert_outcome(client.post("/cds-services/medication-change-order-sign/feedback", json={"feedback": []}), 400)


def test_feedback_for_an_unknown_card_is_kept_for_audit(client):
    card = str(uuid.uuid4())
    response = client.post("/cds-services/medication-change-order-sign/feedback", json={"feedback": [
        {"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T09:00:00Z"}]})
    assert response.status_code == 200
    listed = client.get(f"/admin/feedback?tenant=default&card={card}", headers=ADMIN).get_json()
    assert listed["count"] == 1 and "label" not in listed["feedback"][0]


def test_feedback_accepts_the_cds_hooks_1_1_single_object_body(models, cohort):
    """HAPI FHIR's CDS Hooks module and older EHRs post one feedback object, not a list."""
    client = make_app(models).test_client()
    service_id = "coding-suggestions-encounter-discharge"
    card = post(client, service_id, request_for(cohort, service_id, 8)).get_json()["cards"][0]
    chosen = card["suggestions"][0]
    response = client.post(f"/cds-services/{service_id}/feedback", json={
        "card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": chosen["uuid"]}],
        "outcomeTimestamp": "2026-11-23T09:00:00Z"})
    assert response.status_code == 200 and response.get_json()["stored"] >= 1
    listed = client.get(f"/admin/feedback?tenant=default&service={service_id}&card={card['uuid']}",
                        headers=ADMIN).get_json()["feedback"]
    action = chosen["actions"][0]["resource"]["code"]["coding"][0]
    assert [(e["code"], e["label"]) for e in listed] == [(action["code"], 1)]
    # a single object still has to be a valid feedback item
    bad = client.post(f"/cds-services/{service_id}/feedback", json={"card": card["uuid"], "outcome": "maybe",
                                                                   "outcomeTimestamp": "2026-11-23T09:00:00Z"})
    assert_outcome(bad, 400, expression="feedback[0].outcome")


# ------------------------------------------------- health, metrics, CORS
def test_health_readiness_and_metrics(client, models, cohort):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["store_reachable"]
    post(client, "medication-change-patient-view", request_for(cohort, "medication-change-patient-view"))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fhir_assist_cds_calls_total{hook="patient-view",outcome="ok",service="medication-change-patient-view"}' in text
    assert "fhir_assist_cds_call_seconds_bucket" in text
    for name, model in models.models.items():
        assert f'model="{name}"' in text and model.version in text
    from fhir_assist.suggest.model_set import ModelSet
    empty = create_app(Settings(no_auth=True), store=MemoryStore(),
                       models=ModelSet(models.directory, errors={"micron": "x"}))
    assert empty.test_client().get("/readyz").status_code == 503
    issue = assert_outcome(post(empty.test_client(), "medication-change-patient-view",
                                request_for(cohort, "medication-change-patient-view")), 503)
    assert "micron" in issue["details"]["text"]


def test_cors_preflight_and_allow_list(models):
    client = make_app(models, cors_origins=("https://sandbox.example.org",)).test_client()
    ok = client.options("/cds-services/medication-change-order-sign",
                        headers={"Origin": "https://sandbox.example.org", "Access-Control-Request-Method": "POST",
                                 "Access-Control-Request-Headers": "authorization, content-type"})
    assert ok.status_code == 200
    assert ok.headers["Access-Control-Allow-Origin"] == "https://sandbox.example.org"
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in ok.headers
    other = client.options("/cds-services", headers={"Origin": "https://evil.example.org",
                                                     "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_settings_from_environment_and_options():
    import argparse

    env = {"FHIR_ASSIST_PORT": "9000", "FHIR_ASSIST_NO_AUTH": "true", "FHIR_ASSIST_WRITE_BACK": "no",
           "FHIR_ASSIST_REDIS_URL": "redis://:secret@redis:6379/0", "FHIR_ASSIST_CORS_ORIGINS": "https://a.org, https://b.org"}
    settings = Settings.from_env(env)
    assert settings.port == 9000 and settings.no_auth and not settings.write_back
    assert settings.cors_origins == ("https://a.org", "https://b.org")
    assert "secret" not in json.dumps(settings.describe())
    args = argparse.Namespace(host="0.0.0.0", port=None, redis_url=None, fhir_base_url="http://fhir:8080/fhir",
                              trust=None, no_auth=None, models=None, debug=None)
    merged = Settings.from_args(args, env)
    assert merged.host == "0.0.0.0" and merged.port == 9000 and merged.fhir_base_url == "http://fhir:8080/fhir"
    from fhir_assist.config import SettingsError
    with pytest.raises(SettingsError):
        Settings.from_env({"FHIR_ASSIST_NO_AUTH": "perhaps"})
    with pytest.raises(SettingsError):
        Settings.from_env({"FHIR_ASSIST_JWT_ALGORITHMS": "HS256"})


def test_serve_and_demo_commands_are_registered(capsys):
    from fhir_assist.cli import build_parser
    parser = build_parser()
    args = parser.parse_args(["serve", "--port", "0", "--trust", "https://ehr=https://ehr/jwks", "--no-auth"])
    assert args.port == 0 and args.no_auth and args.trust == ["https://ehr=https://ehr/jwks"]
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--help"])
    assert "example hook calls" in capsys.readouterr().out


def test_example_hook_files_are_valid_requests():
    from pathlib import Path

    from fhir_assist.cds.request import parse_hook_call
    folder = Path(__file__).resolve().parents[1] / "examples" / "hooks"
    files = sorted(folder.glob("*.json"))
    assert files, "examples/hooks has the example hook requests"
    covered = set()
    for path in files:
        if path.name == "patient-bundle.json":
            continue
        body = json.loads(path.read_text())
        service_id = next(s for s in sorted(BY_ID, key=len, reverse=True) if path.stem.startswith(s))
        call = parse_hook_call(BY_ID[service_id], copy.deepcopy(body))
        covered.add((service_id, "prefetch" in body))
        assert call.hook_instance
    assert covered == {(s.id, p) for s in SERVICES for p in (True, False)}


def test_fhir_server_allow_list_and_lenient_readiness(models, cohort):
    client = make_app(models, allowed_fhir_servers=("https://ehr.example.org/fhir",)).test_client()
    body = request_for(cohort, "medication-change-patient-view", fhir_server="https://attacker.example.net/fhir")
    assert post(client, "medication-change-patient-view", body).status_code == 200   # never contacted
    body = request_for(cohort, "medication-change-patient-view", prefetch=False,
                       fhir_server="https://attacker.example.net/fhir")
    assert_outcome(post(client, "medication-change-patient-view", body), 412, text="may call")
    body = request_for(cohort, "medication-change-patient-view", fhir_server="https://ehr.example.org/fhir")
    assert post(client, "medication-change-patient-view", body).status_code == 200   # all prefetched

    class DownStore(MemoryStore):
        def ping(self):
            return False
    app = create_app(Settings(no_auth=True), store=DownStore(), models=models)
    assert app.test_client().get("/readyz").status_code == 503
    assert app.test_client().get("/readyz?store=optional").status_code == 200


def test_demo_command_prints_cohort_statistics_and_cards(models, capsys):
    from fhir_assist.cli import main

    assert main(["demo", "--patients", "12", "--models", str(models.directory)]) == 0
    out = capsys.readouterr().out
    assert "== Demo cohort ==" in out and "visits_per_patient" in out
    assert out.count("→ POST /cds-services/") == 5            # the five prefetch examples
    assert "HTTP 200" in out and "[info]" in out
    assert "feedback: accepted" in out
