"""The coder worklist's views against a real FHIR server and a real Redis.

Conditions are seeded the way the service writes them (`write_suggested_conditions`);
every decision is checked on the FHIR server and in the feedback store.
"""
from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

pytestmark = pytest.mark.integration

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


# ---------------------------------------------------------------------- seeding
def put(base_url: str, resource: dict) -> None:
    response = requests.put(f"{base_url}/{resource['resourceType']}/{resource['id']}", json=resource,
                            headers={"Content-Type": "application/fhir+json"}, timeout=10)
    response.raise_for_status()


def seed_encounter(base_url: str, codes: list[tuple[str, float]], *, start: datetime | None = None,
                   name: tuple[str, str] = ("Ann", "Lee"), model_version: str = "icd-ranker@test") -> dict:
    """A patient, one finished inpatient encounter and its suggested codes (rank order)."""
    from fhir_assist.fhir_server import FhirServer

    patient, encounter = f"p-{uuid.uuid4().hex[:10]}", f"e-{uuid.uuid4().hex[:10]}"
    start = start or datetime(2024, 3, 1, 9, tzinfo=timezone.utc)
    put(base_url, {"resourceType": "Patient", "id": patient, "gender": "female", "birthDate": "1951-04-12",
                   "name": [{"given": [name[0]], "family": name[1]}]})
    put(base_url, {"resourceType": "Encounter", "id": encounter, "status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP",
                             "display": "inpatient encounter"},
                   "subject": {"reference": f"Patient/{patient}"},
                   "period": {"start": start.isoformat(), "end": (start + timedelta(days=4)).isoformat()}})
    with FhirServer(base_url) as fhir:
        stored = fhir.write_suggested_conditions(
            patient, encounter,
            [{"system": ICD10, "code": code, "rank": i + 1, "score": score} for i, (code, score) in enumerate(codes)],
            model_version)
    return {"patient": patient, "encounter": encounter, "model_version": model_version,
            "conditions": {c["code"]["coding"][0]["code"]: c["id"] for c in stored}}


def conditions_of(base_url: str, encounter: str) -> dict[str, list[dict]]:
    """code → Conditions on the FHIR server for this encounter."""
    from fhir_assist.fhir_server import FhirServer

    with FhirServer(base_url) as fhir:
        found = fhir.search("Condition", {"encounter": f"Encounter/{encounter}"})
    out: dict[str, list[dict]] = {}
    for c in found:
        out.setdefault(c["code"]["coding"][0]["code"], []).append(c)
    return out


def status_of(condition: dict) -> str:
    return condition["verificationStatus"]["coding"][0]["code"]


class SwitchableFhir:
    """A factory for the blueprint whose FHIR base URL a test can point at a closed port
    (a real refused connection) and back."""

    def __init__(self, url: str):
        self.url = url

    def __call__(self):
        from fhir_assist.fhir_server import FhirServer
        return FhirServer(self.url, timeout=2, retries=0)


def closed_port_url() -> str:
    from tests.conftest import free_port
    return f"http://127.0.0.1:{free_port()}/fhir"


# ---------------------------------------------------------------------- app
@pytest.fixture
def tenant(monkeypatch) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("FHIR_ASSIST_REVIEW_TENANT", name)
    monkeypatch.setenv("FHIR_ASSIST_REVIEW_USER", "coder.ann")
    monkeypatch.setenv("FHIR_ASSIST_SECRET_KEY", "test-secret-" + name)
    for var in ("FHIR_ASSIST_REVIEW_OIDC_ISSUER", "FHIR_ASSIST_REVIEW_OIDC_JWKS", "FHIR_ASSIST_REVIEW_OIDC_AUDIENCE"):
        monkeypatch.delenv(var, raising=False)
    return name


def make_app(fhir_base_url: str, redis_url: str, factory=None):
    from flask import Flask

    from fhir_assist.config import Settings
    from fhir_assist.review import init_app
    from fhir_assist.store import open_store

    settings = Settings.from_env().with_(fhir_base_url=fhir_base_url, redis_url=redis_url)
    store = open_store(redis_url)
    factory = factory or SwitchableFhir(fhir_base_url)
    app = Flask("review-test")
    init_app(app, settings, store, factory)
    return app, store, factory


@pytest.fixture
def review(fhir_base_url, redis_url, tenant):
    app, store, factory = make_app(fhir_base_url, redis_url)
    client = app.test_client()
    return {"app": app, "client": client, "store": store, "factory": factory, "tenant": tenant,
            "base_url": fhir_base_url}


def csrf_of(client, path: str) -> str:
    html = client.get(path).get_data(as_text=True)
    marker = '<meta name="csrf-token" content="'
    start = html.index(marker) + len(marker)
    return html[start:html.index('"', start)]


def post(client, path: str, data: dict, page: str):
    return client.post(path, data={"csrf_token": csrf_of(client, page), **data})


def feedback(store, tenant: str) -> list[dict]:
    return store.list_feedback(tenant=tenant, source="coder-review")


# ---------------------------------------------------------------------- tests
def test_worklist_lists_encounters_newest_first_and_filters_by_status(review):
    older = seed_encounter(review["base_url"], [("E11.65", 0.9)], start=datetime(2023, 1, 5, tzinfo=timezone.utc),
                           name=("Olga", "Older"))
    newer = seed_encounter(review["base_url"], [("I10", 0.8), ("N17.9", 0.4)],
                           start=datetime(2025, 6, 1, tzinfo=timezone.utc), name=("Nina", "Newer"))
    client = review["client"]
    html = client.get("/review/").get_data(as_text=True)
    assert "Nina Newer" in html and "Olga Older" in html
    assert html.index(newer["encounter"]) < html.index(older["encounter"])
    assert "To review" in html

    # decide the older encounter's only code: it moves to "done"
    page = f"/review/encounter/{older['encounter']}"
    cid = older["conditions"]["E11.65"]
    response = post(client, f"{page}/conditions/{cid}/accept", {}, page)
    assert response.status_code == 302
    todo = client.get("/review/?status=todo").get_data(as_text=True)
    done = client.get("/review/?status=done").get_data(as_text=True)
    assert older["encounter"] not in todo and older["encounter"] in done
    assert newer["encounter"] in todo and newer["encounter"] not in done


def test_encounter_page_shows_ranked_codes_with_hierarchy_and_score(review):
    seeded = seed_encounter(review["base_url"], [("E11.65", 0.91), ("I10", 0.55)])
    html = review["client"].get(f"/review/encounter/{seeded['encounter']}").get_data(as_text=True)
    assert html.index("E11.65") < html.index("I10")
    assert "Type 2 diabetes mellitus with hyperglycemia" in html
    assert "Diabetes mellitus (E08-E13)" in html            # block of the hierarchy path
    assert "Endocrine, nutritional and metabolic diseases" in html   # chapter
    assert "0.91" in html and "icd-ranker@test" in html
    assert 'data-key="a"' in html and 'data-key="r"' in html
    assert "Content-Security-Policy" in review["client"].get(f"/review/encounter/{seeded['encounter']}").headers


def test_accept_reject_with_reason_and_add_are_written_and_recorded(review):
    client, base, store, tenant = review["client"], review["base_url"], review["store"], review["tenant"]
    seeded = seed_encounter(base, [("E11.65", 0.9), ("J18.9", 0.3)])
    page = f"/review/encounter/{seeded['encounter']}"
    accept = post(client, f"{page}/conditions/{seeded['conditions']['E11.65']}/accept", {}, page)
    reject = post(client, f"{page}/conditions/{seeded['conditions']['J18.9']}/reject",
                  {"reason": "no imaging evidence of pneumonia"}, page)
    add = post(client, f"{page}/add", {"code": "n17.9"}, page)
    assert {accept.status_code, reject.status_code, add.status_code} == {302}

    on_server = conditions_of(base, seeded["encounter"])
    assert status_of(on_server["E11.65"][0]) == "confirmed"
    assert status_of(on_server["J18.9"][0]) == "refuted"
    assert on_server["J18.9"][0]["note"][-1]["text"] == "no imaging evidence of pneumonia"
    assert len(on_server["N17.9"]) == 1 and status_of(on_server["N17.9"][0]) == "confirmed"

    events = feedback(store, tenant)
    by_code = {e["code"]: e for e in events}
    assert len(events) == 3
    assert by_code["E11.65"]["label"] == 1 and by_code["E11.65"]["action"] == "accept"
    assert by_code["J18.9"]["label"] == 0 and by_code["J18.9"]["reason"] == "no imaging evidence of pneumonia"
    assert by_code["N17.9"]["label"] == 1 and by_code["N17.9"]["action"] == "add"
    for event in events:
        assert event["user"] == "coder.ann"
        assert event["patient"] == seeded["patient"] and event["encounter"] == seeded["encounter"]
        assert event["system"] == ICD10 and event["source"] == "coder-review"
        datetime.fromisoformat(event["at"].replace("Z", "+00:00"))
    assert by_code["E11.65"]["model_version"] == "icd-ranker@test"

    html = client.get(page).get_data(as_text=True)
    assert "Codes on this encounter" in html and "added by a coder" in html


def test_repeated_actions_never_duplicate(review):
    client, base, store, tenant = review["client"], review["base_url"], review["store"], review["tenant"]
    seeded = seed_encounter(base, [("E11.65", 0.9)])
    page = f"/review/encounter/{seeded['encounter']}"
    cid = seeded["conditions"]["E11.65"]
    for _ in range(3):
        post(client, f"{page}/conditions/{cid}/accept", {}, page)
        post(client, f"{page}/add", {"code": "I10"}, page)
    on_server = conditions_of(base, seeded["encounter"])
    assert len(on_server["E11.65"]) == 1 and len(on_server["I10"]) == 1
    assert sorted(e["code"] for e in feedback(store, tenant)) == ["E11.65", "I10"]
    # adding a suggested code confirms that Condition instead of creating another
    other = seed_encounter(base, [("E78.5", 0.5)])
    other_page = f"/review/encounter/{other['encounter']}"
    post(client, f"{other_page}/add", {"code": "E78.5"}, other_page)
    on_server = conditions_of(base, other["encounter"])
    assert len(on_server["E78.5"]) == 1 and status_of(on_server["E78.5"][0]) == "confirmed"


def test_undo_reopens_and_withdraws_the_label(review, tmp_path, redis_url):
    from fhir_assist.cli import main

    client, base, tenant = review["client"], review["base_url"], review["tenant"]
    seeded = seed_encounter(base, [("E11.65", 0.9), ("I10", 0.8)])
    page = f"/review/encounter/{seeded['encounter']}"
    post(client, f"{page}/conditions/{seeded['conditions']['E11.65']}/reject", {"reason": "typo"}, page)
    post(client, f"{page}/conditions/{seeded['conditions']['E11.65']}/reopen", {}, page)
    post(client, f"{page}/conditions/{seeded['conditions']['I10']}/reject", {}, page)
    post(client, f"{page}/conditions/{seeded['conditions']['I10']}/reopen", {}, page)
    post(client, f"{page}/conditions/{seeded['conditions']['I10']}/accept", {}, page)
    assert status_of(conditions_of(base, seeded["encounter"])["E11.65"][0]) == "provisional"

    out = tmp_path / "labels.jsonl"
    assert main(["feedback", "export", "--out", str(out), "--redis-url", redis_url, "--tenant", tenant]) == 0
    labels = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(l["code"], l["label"]) for l in labels] == [("I10", 1)]


def test_fhir_server_refusal_keeps_the_decision_for_retry(review):
    client, base, store, tenant = review["client"], review["base_url"], review["store"], review["tenant"]
    seeded = seed_encounter(base, [("E11.65", 0.9), ("I10", 0.7)])
    page = f"/review/encounter/{seeded['encounter']}"
    cid = seeded["conditions"]["I10"]
    token = csrf_of(client, page)
    fields = {"csrf_token": token, "patient": seeded["patient"], "system": ICD10, "code": "I10",
              "model_version": seeded["model_version"], "reason": "not documented"}

    review["factory"].url = closed_port_url()            # the FHIR server goes away
    response = client.post(f"{page}/conditions/{cid}/reject", data=fields, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "did not take" in html and "Retry" in html     # a clear message, and the way out
    ctx = review["app"].extensions["fhir_assist.review"]
    [kept] = ctx.pending.all(tenant)
    assert (kept.kind, kept.code, kept.reason) == ("reject", "I10", "not documented")
    assert feedback(store, tenant) == []
    # the same decision again while down: still one pending entry, nothing recorded
    client.post(f"{page}/conditions/{cid}/reject", data=fields)
    assert len(ctx.pending.all(tenant)) == 1

    review["factory"].url = base                           # back
    html = client.get(page).get_data(as_text=True)
    assert "Not saved yet" in html
    retry = post(client, f"/review/pending/{kept.id}/retry", {"next": page}, page)
    assert retry.status_code == 302
    assert ctx.pending.all(tenant) == []
    assert status_of(conditions_of(base, seeded["encounter"])["I10"][0]) == "refuted"
    events = feedback(store, tenant)
    assert len(events) == 1 and events[0]["label"] == 0 and events[0]["reason"] == "not documented"
    # retrying an already-saved decision is harmless
    post(client, f"/review/pending/{kept.id}/retry", {"next": page}, page)
    assert len(feedback(store, tenant)) == 1


def test_redis_stopped_mid_run_keeps_the_label_in_process_until_it_is_back(fhir_base_url, restartable_redis, tenant):
    import redis

    app, store, _ = make_app(fhir_base_url, restartable_redis.url)
    client = app.test_client()
    seeded = seed_encounter(fhir_base_url, [("E11.65", 0.9)])
    page = f"/review/encounter/{seeded['encounter']}"
    cid = seeded["conditions"]["E11.65"]
    token = csrf_of(client, page)

    restartable_redis.stop()                               # the feedback store goes away
    html = client.post(f"{page}/conditions/{cid}/accept", data={"csrf_token": token},
                       follow_redirects=True).get_data(as_text=True)
    assert "feedback store is unreachable" in html
    assert status_of(conditions_of(fhir_base_url, seeded["encounter"])["E11.65"][0]) == "confirmed"
    ctx = app.extensions["fhir_assist.review"]
    [kept] = ctx.pending.all(tenant)                       # kept in this process, shown for retry
    assert kept.fhir_done and kept.code == "E11.65"

    restartable_redis.start()                              # back, empty
    assert store.ping()
    assert post(client, f"/review/pending/{kept.id}/retry", {"next": page}, page).status_code == 302
    assert ctx.pending.all(tenant) == []
    [event] = feedback(store, tenant)
    assert (event["code"], event["label"]) == ("E11.65", 1)
    with redis.Redis.from_url(restartable_redis.url) as r:
        assert not r.exists(f"fhir-assist:{tenant}:review:pending")


def test_posts_without_csrf_token_are_refused(review):
    seeded = seed_encounter(review["base_url"], [("E11.65", 0.9)])
    client = review["client"]
    page = f"/review/encounter/{seeded['encounter']}"
    client.get(page)
    cid = seeded["conditions"]["E11.65"]
    assert client.post(f"{page}/conditions/{cid}/accept").status_code == 400
    assert client.post(f"{page}/conditions/{cid}/accept", data={"csrf_token": "forged"}).status_code == 400
    other = review["app"].test_client()                  # another browser session's token
    assert other.post(f"{page}/conditions/{cid}/accept",
                      data={"csrf_token": csrf_of(client, page)}).status_code == 400
    cross_site = client.post(f"{page}/conditions/{cid}/accept", data={"csrf_token": csrf_of(client, page)},
                             headers={"Origin": "https://evil.example"})
    assert cross_site.status_code == 400
    assert status_of(conditions_of(review["base_url"], seeded["encounter"])["E11.65"][0]) == "provisional"
    assert feedback(review["store"], review["tenant"]) == []


def test_sign_in_is_required(fhir_base_url, redis_url, tenant, monkeypatch):
    monkeypatch.delenv("FHIR_ASSIST_REVIEW_USER")
    app, _, _ = make_app(fhir_base_url, redis_url)
    response = app.test_client().get("/review/")
    assert response.status_code == 401
    assert "FHIR_ASSIST_REVIEW_USER" in response.get_data(as_text=True)


def test_bearer_tokens_are_verified_against_the_issuers_jwks(fhir_base_url, redis_url, tenant, monkeypatch, tmp_path):
    from joserfc import jwt
    from joserfc.jwk import KeySet, RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeySet([key]).as_dict(private=False)))
    monkeypatch.delenv("FHIR_ASSIST_REVIEW_USER")
    monkeypatch.setenv("FHIR_ASSIST_REVIEW_OIDC_ISSUER", "https://idp.example.org")
    monkeypatch.setenv("FHIR_ASSIST_REVIEW_OIDC_JWKS", str(jwks))
    monkeypatch.setenv("FHIR_ASSIST_REVIEW_OIDC_AUDIENCE", "fhir-assist-review")
    app, _, _ = make_app(fhir_base_url, redis_url)
    client = app.test_client()

    def token(signer=key, **claims):
        now = int(time.time())
        body = {"iss": "https://idp.example.org", "aud": "fhir-assist-review", "sub": "u-17",
                "preferred_username": "coder.bob", "iat": now, "exp": now + 300, **claims}
        return jwt.encode({"alg": "RS256", "kid": "k1"}, body, signer)

    def get(tok):
        return client.get("/review/", headers={"Authorization": f"Bearer {tok}"})

    ok = get(token())
    assert ok.status_code == 200 and "coder.bob" in ok.get_data(as_text=True)
    assert client.get("/review/").status_code == 401
    assert get(token(exp=int(time.time()) - 120)).status_code == 401
    assert get(token(iss="https://other.example.org")).status_code == 401
    assert get(token(aud="someone-else")).status_code == 401
    assert get(token(signer=stranger)).status_code == 401


def test_code_search_finds_billable_icd10_codes(review):
    found = review["client"].get("/review/icd/search?q=E11.6").get_json()["results"]
    assert found and all(hit["code"].startswith("E11.6") for hit in found)
    words = review["client"].get("/review/icd/search?q=hyperglycemia").get_json()["results"]
    assert any(hit["code"] == "E11.65" for hit in words)
    assert review["client"].get("/review/icd/search?q=x").get_json()["results"] == []


def test_feedback_export_writes_the_label_format(review, tmp_path, redis_url):
    from fhir_assist.cli import main

    client, base, store, tenant = review["client"], review["base_url"], review["store"], review["tenant"]
    seeded = seed_encounter(base, [("E11.65", 0.9), ("I10", 0.6)])
    page = f"/review/encounter/{seeded['encounter']}"
    post(client, f"{page}/conditions/{seeded['conditions']['E11.65']}/accept", {}, page)
    post(client, f"{page}/conditions/{seeded['conditions']['I10']}/reject", {"reason": "resolved"}, page)
    # a CDS feedback event in the shared format, and a medication one without a code label
    store.record_feedback(tenant, {"patient": seeded["patient"], "encounter": seeded["encounter"],
                                   "system": ICD10, "code": "E78.5", "label": 0, "source": "cds-feedback",
                                   "user": "dr.who", "at": "2026-01-02T03:04:05Z", "model_version": "v9"})
    store.record_feedback(tenant, {"source": "cds-feedback", "service": "medication-change", "outcome": "accepted"})

    out = tmp_path / "out" / "labels.jsonl"
    assert main(["feedback", "export", "--out", str(out), "--redis-url", redis_url, "--tenant", tenant]) == 0
    labels = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(l["code"], l["label"], l["source"]) for l in labels] == [
        ("E11.65", 1, "coder-review"), ("I10", 0, "coder-review"), ("E78.5", 0, "cds-feedback")]
    required = {"patient", "encounter", "system", "code", "label", "source", "user", "at", "model_version"}
    assert all(required <= set(l) for l in labels)
    assert labels[1]["reason"] == "resolved" and "reason" not in labels[0]

    only_review = tmp_path / "review.jsonl"
    main(["feedback", "export", "--out", str(only_review), "--redis-url", redis_url, "--tenant", tenant,
          "--source", "coder-review", "--since", "2000-01-01"])
    assert len(only_review.read_text().splitlines()) == 2
    future = tmp_path / "none.jsonl"
    main(["feedback", "export", "--out", str(future), "--redis-url", redis_url, "--tenant", tenant,
          "--since", "2999-01-01T00:00:00Z"])
    assert future.read_text() == ""


def test_feedback_export_errors_are_clear(capsys, monkeypatch, tmp_path):
    from fhir_assist.cli import main

    monkeypatch.delenv("FHIR_ASSIST_REVIEW_TENANT", raising=False)
    monkeypatch.delenv("FHIR_ASSIST_REDIS_URL", raising=False)
    assert main(["feedback", "export", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "--redis-url" in capsys.readouterr().err
    assert main(["feedback", "export", "--out", str(tmp_path / "x.jsonl"), "--redis-url", "redis://127.0.0.1:1/0",
                 "--since", "yesterday"]) == 2
    assert "ISO-8601" in capsys.readouterr().err
    assert main(["feedback", "export", "--out", str(tmp_path / "x.jsonl"),
                 "--redis-url", f"redis://127.0.0.1:{_closed_port()}/0"]) == 2
    assert "cannot read feedback" in capsys.readouterr().err


def _closed_port() -> int:
    from tests.conftest import free_port
    return free_port()


def test_unknown_and_malformed_ids_get_a_page_not_a_traceback(review):
    client = review["client"]
    missing = client.get("/review/encounter/does-not-exist")
    assert missing.status_code == 404 and "no encounter" in missing.get_data(as_text=True)
    bad = client.get("/review/encounter/bad$id")
    assert bad.status_code == 404 and "<html" in bad.get_data(as_text=True)
    page = "/review/encounter/does-not-exist"
    gone = post(client, f"{page}/conditions/no-such-condition/accept", {}, "/review/")
    assert gone.status_code == 302
    assert "no longer exists" in client.get(gone.headers["Location"]).get_data(as_text=True)


def test_next_encounter_follows_the_worklist_order(review):
    base, client = review["base_url"], review["client"]
    far_future = datetime(2099, 1, 1, tzinfo=timezone.utc)       # above anything other tests seed
    top = seed_encounter(base, [("E11.65", 0.9)], start=far_future + timedelta(days=3))
    middle = seed_encounter(base, [("I10", 0.9)], start=far_future + timedelta(days=2))
    below = seed_encounter(base, [("J18.9", 0.9)], start=far_future + timedelta(days=1))
    nxt = client.get(f"/review/next?after={top['encounter']}")
    assert nxt.headers["Location"].endswith(f"/review/encounter/{middle['encounter']}")
    page = f"/review/encounter/{middle['encounter']}"
    post(client, f"{page}/conditions/{middle['conditions']['I10']}/accept", {}, page)
    nxt = client.get(f"/review/next?after={middle['encounter']}")
    assert nxt.headers["Location"].endswith(f"/review/encounter/{below['encounter']}")


def test_redis_outage_keeps_the_label_for_retry(fhir_base_url, restartable_redis, tenant):
    app, store, _ = make_app(fhir_base_url, restartable_redis.url)
    client = app.test_client()
    seeded = seed_encounter(fhir_base_url, [("E11.65", 0.9)])
    page = f"/review/encounter/{seeded['encounter']}"
    token = csrf_of(client, page)
    restartable_redis.stop()
    response = client.post(f"{page}/conditions/{seeded['conditions']['E11.65']}/accept",
                           data={"csrf_token": token}, follow_redirects=True)
    assert "feedback store is unreachable" in response.get_data(as_text=True)
    assert status_of(conditions_of(fhir_base_url, seeded["encounter"])["E11.65"][0]) == "confirmed"
    restartable_redis.start()                       # back, and empty
    time.sleep(2.1)                                 # the store fails fast for 2 s after an error
    html = client.get(page).get_data(as_text=True)
    assert "Not saved yet" in html                  # kept in the process through the outage
    ctx = app.extensions["fhir_assist.review"]
    [kept] = ctx.pending.all(tenant)
    assert kept.fhir_done
    post(client, f"/review/pending/{kept.id}/retry", {"next": page}, page)
    assert ctx.pending.all(tenant) == []
    [event] = feedback(store, tenant)
    assert (event["code"], event["label"]) == ("E11.65", 1)
