"""Authentication of CDS clients (CDS Hooks 2.0 "Trusting CDS Clients"), with keys made here."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from fhir_assist.cds import create_app
from fhir_assist.suggest.model_set import ModelSet
from fhir_assist.config import Settings, TrustedIssuerSpec
from fhir_assist.store import MemoryStore

EHR = "https://ehr.example.org"
OTHER_EHR = "https://other-ehr.example.org"
BASE = "http://localhost"
DISCOVERY = f"{BASE}/cds-services"
SERVICE = "medication-change-order-sign"


@pytest.fixture(scope="module")
def keys():
    return {
        "ec": ECKey.generate_key("P-384", parameters={"kid": "ehr-ec-1"}),
        "rsa": RSAKey.generate_key(2048),
        "stranger": ECKey.generate_key("P-384", parameters={"kid": "ehr-ec-1"}),
    }


@pytest.fixture(scope="module")
def trust_files(keys, tmp_path_factory):
    folder = tmp_path_factory.mktemp("trust")
    jwks = folder / "ehr-jwks.json"
    jwks.write_text(json.dumps({"keys": [{**keys["ec"].as_dict(private=False), "use": "sig", "alg": "ES384"}]}))
    pem = folder / "other-ehr.pem"
    pem.write_bytes(keys["rsa"].as_pem(private=False))
    return {"jwks": jwks, "pem": pem}


def _app(trust_files, **changes):
    settings = Settings(trust=(TrustedIssuerSpec(EHR, str(trust_files["jwks"])),
                               TrustedIssuerSpec(OTHER_EHR, str(trust_files["pem"]))),
                        **{"public_url": BASE, **changes})
    return create_app(settings, store=MemoryStore(), models=ModelSet(Path("/no-models")))


@pytest.fixture()
def client(trust_files):
    return _app(trust_files).test_client()


def token(key, *, alg="ES384", iss=EHR, aud=DISCOVERY, exp_in=300, iat_shift=0, jti=None, kid="ehr-ec-1",
          **claims):
    now = int(time.time())
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    payload = {"iss": iss, "aud": aud, "exp": now + exp_in, "iat": now + iat_shift,
               "jti": jti or str(uuid.uuid4()), **claims}
    return jwt.encode(header, payload, key, algorithms=[alg])


def bearer(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def _refusal(response) -> str:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "security"
    return body["issue"][0]["details"]["text"]


def test_es384_token_from_jwks_file_is_accepted(client, keys):
    r = client.get("/cds-services", headers=bearer(token(keys["ec"])))
    assert r.status_code == 200
    assert len(r.get_json()["services"]) == 5


def test_rs384_token_verified_with_pem_key(client, keys):
    tok = token(keys["rsa"], alg="RS384", iss=OTHER_EHR, kid=None)
    assert client.get("/cds-services", headers=bearer(tok)).status_code == 200


def test_audience_may_be_a_list(client, keys):
    tok = token(keys["ec"], aud=["https://elsewhere.example.org", DISCOVERY])
    assert client.get("/cds-services", headers=bearer(tok)).status_code == 200


def test_missing_token_is_refused(client):
    assert "Authorization" in _refusal(client.get("/cds-services"))
    assert "Bearer" in _refusal(client.get("/cds-services", headers={"Authorization": "Basic dXNlcjpwdw=="}))
    assert "JWT" in _refusal(client.get("/cds-services", headers=bearer("not-a-jwt")))


def test_expired_token_is_refused(client, keys):
    tok = token(keys["ec"], exp_in=-3600, iat_shift=-3700)
    assert "expired" in _refusal(client.get("/cds-services", headers=bearer(tok)))


def test_wrong_audience_is_refused(client, keys):
    tok = token(keys["ec"], aud=f"{BASE}/cds-services/another-service")
    assert "audience" in _refusal(client.get("/cds-services", headers=bearer(tok)))


def test_unknown_issuer_is_refused(client, keys):
    tok = token(keys["ec"], iss="https://evil.example.org")
    assert "not trusted" in _refusal(client.get("/cds-services", headers=bearer(tok)))


def test_bad_signature_is_refused(client, keys):
    forged = token(keys["stranger"])          # same kid, another private key
    assert "signature" in _refusal(client.get("/cds-services", headers=bearer(forged)))
    good = token(keys["ec"])
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert "signature" in _refusal(client.get("/cds-services", headers=bearer(tampered)))


def test_replayed_jti_is_refused(client, keys):
    tok = token(keys["ec"], jti="only-once")
    assert client.get("/cds-services", headers=bearer(tok)).status_code == 200
    assert "replayed" in _refusal(client.get("/cds-services", headers=bearer(tok)))


def test_symmetric_and_unsigned_tokens_are_refused(client):
    secret = OctKey.generate_key(256)
    hs = token(secret, alg="HS256")
    assert "algorithm" in _refusal(client.get("/cds-services", headers=bearer(hs)))
    import base64

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'iss': EHR, 'aud': DISCOVERY})}."
    assert "algorithm" in _refusal(client.get("/cds-services", headers=bearer(unsigned)))


def test_missing_claims_and_future_iat_are_refused(client, keys):
    now = int(time.time())
    no_jti = jwt.encode({"alg": "ES384", "kid": "ehr-ec-1", "typ": "JWT"},
                        {"iss": EHR, "aud": DISCOVERY, "exp": now + 60, "iat": now}, keys["ec"],
                        algorithms=["ES384"])
    assert "jti" in _refusal(client.get("/cds-services", headers=bearer(no_jti)))
    future = token(keys["ec"], iat_shift=3600, exp_in=7200)
    assert "future" in _refusal(client.get("/cds-services", headers=bearer(future)))


def test_tenant_claim_scopes_feedback(trust_files, keys):
    client = _app(trust_files, admin_token_sha256=hashlib.sha256(b"admin-secret").hexdigest(),
                  issuer_tenants_spec=((EHR, ("hospital-a", "hospital-b")),)).test_client()
    admin = bearer("admin-secret")
    feedback_url = f"{BASE}/cds-services/{SERVICE}/feedback"
    body = {"feedback": [{"card": str(uuid.uuid4()), "outcome": "overridden",
                          "outcomeTimestamp": "2026-11-23T10:00:00Z"}]}
    r = client.post(f"/cds-services/{SERVICE}/feedback", json=body,
                    headers=bearer(token(keys["ec"], aud=feedback_url, tenant="hospital-a")))
    assert r.status_code == 200, r.get_json()
    mine = client.get(f"/admin/feedback?tenant=hospital-a&issuer={EHR}", headers=admin).get_json()
    theirs = client.get(f"/admin/feedback?tenant=hospital-b&issuer={EHR}", headers=admin).get_json()
    assert mine["count"] == 1 and mine["tenant"] == "hospital-a"
    assert theirs["count"] == 0
    # An EHR token reads no feedback, whatever its tenant.
    ehr = bearer(token(keys["ec"], aud=feedback_url, tenant="hospital-a"))
    assert client.get(f"/cds-services/{SERVICE}/feedback", headers=ehr).status_code == 405
    assert client.get("/admin/feedback?tenant=hospital-a", headers=ehr).status_code == 403
    _refusal(client.get("/admin/feedback?tenant=hospital-a"))
    bad_tenant = token(keys["ec"], aud=feedback_url, tenant="a tenant with spaces")
    assert "tenant" in _refusal(client.post(f"/cds-services/{SERVICE}/feedback", json=body,
                                            headers=bearer(bad_tenant)))


def test_service_call_needs_the_service_url_as_audience(client, keys):
    url = f"{BASE}/cds-services/{SERVICE}"
    # Authenticated, then validated: an empty context is the caller's next problem (400, not 401).
    r = client.post(f"/cds-services/{SERVICE}", json={"hook": "order-sign", "hookInstance": "h1", "context": {}},
                    headers=bearer(token(keys["ec"], aud=url)))
    assert r.status_code == 400
    r = client.post(f"/cds-services/{SERVICE}", json={"hook": "order-sign"},
                    headers=bearer(token(keys["ec"], aud=DISCOVERY)))
    assert r.status_code == 401


def test_public_url_sets_the_expected_audience(trust_files, keys):
    client = _app(trust_files, public_url="https://cds.example.org").test_client()
    assert client.get("/cds-services", headers=bearer(token(keys["ec"]))).status_code == 401
    ok = token(keys["ec"], aud="https://cds.example.org/cds-services")
    assert client.get("/cds-services", headers=bearer(ok)).status_code == 200


class _JwksHandler(BaseHTTPRequestHandler):
    document: dict = {}
    hits = 0

    def do_GET(self):  # noqa: N802 - http.server API
        type(self).hits += 1
        payload = json.dumps(type(self).document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_jwks_url_is_fetched_and_refreshed_on_key_rotation(keys):
    first = ECKey.generate_key("P-384", parameters={"kid": "k-2025"})
    second = ECKey.generate_key("P-384", parameters={"kid": "k-2026"})
    _JwksHandler.document = {"keys": [first.as_dict(private=False)]}
    server = HTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/jwks.json"
        app = create_app(Settings(trust=(TrustedIssuerSpec(EHR, url),), public_url=BASE), store=MemoryStore(),
                         models=ModelSet(Path("/no-models")))
        client = app.test_client()
        assert client.get("/cds-services", headers=bearer(token(first, kid="k-2025"))).status_code == 200
        # The EHR rotates its key: an unknown kid makes the service re-read the JWK Set once.
        _JwksHandler.document = {"keys": [first.as_dict(private=False), second.as_dict(private=False)]}
        verifier = app.extensions["fhir_assist"].verifier
        verifier.issuers[EHR]._fetched_at -= 60          # past the minimum refresh interval
        assert client.get("/cds-services", headers=bearer(token(second, kid="k-2026"))).status_code == 200
        assert _JwksHandler.hits == 2
    finally:
        server.shutdown()
        server.server_close()


def test_no_auth_logs_a_warning_each_start(caplog):
    with caplog.at_level(logging.WARNING, logger="fhir_assist.cds.app"):
        app = create_app(Settings(no_auth=True), store=MemoryStore(), models=ModelSet(Path("/no-models")))
    assert any("authentication is OFF" in r.getMessage() for r in caplog.records)
    assert app.test_client().get("/cds-services").status_code == 200


def test_trust_option_parsing(trust_files):
    from fhir_assist.config import SettingsError, parse_trust
    spec = parse_trust(f"{EHR}={trust_files['jwks']}")
    assert spec.issuer == EHR and spec.source == str(trust_files["jwks"])
    assert parse_trust(f"{EHR}=https://ehr.example.org/jwks").is_url
    with pytest.raises(SettingsError):
        Settings(trust=(TrustedIssuerSpec(EHR, "/no/such/key.pem"),)).checked()
    with pytest.raises(SettingsError):
        parse_trust("no-equals-sign")
    private = Path(trust_files["jwks"]).with_name("private.pem")
    private.write_bytes(ECKey.generate_key("P-384").as_pem(private=True))
    from fhir_assist.cds.auth import load_keys_from_file
    with pytest.raises(SettingsError, match="private key"):
        load_keys_from_file(private)
