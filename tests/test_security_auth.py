"""Token and session attacks on the running service: audiences from the Host header,
non-finite or far-future exp/iat, JWKS over plain http, and the coder worklist's bearer
mode, session cookie and `next` redirect."""
from __future__ import annotations

import base64
import json
import time
import uuid
from contextlib import contextmanager

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from fhir_assist.config import Settings, SettingsError, TrustedIssuerSpec
from tests.conftest import free_port

pytestmark = pytest.mark.integration
EHR = "https://ehr.example.org"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    key = ECKey.generate_key("P-384", parameters={"kid": "k1"})
    path = tmp_path_factory.mktemp("keys") / "jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return key, str(path)


@contextmanager
def service(demo_models, key_file, **changes):
    from fhir_assist.commands.demo import running_service
    port = free_port()
    settings = Settings(**{"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}",
                           "trust": (TrustedIssuerSpec(EHR, key_file[1]),), **changes})
    with running_service(settings, models=demo_models) as base_url:
        yield base_url


def raw_token(key, claims: dict) -> str:
    """Signed with the issuer's key, claims serialised as given (NaN and Infinity included)."""
    return jwt.encode({"alg": "ES384", "kid": "k1", "typ": "JWT"}, claims, key, algorithms=["ES384"])


def test_audience_never_comes_from_the_host_header(demo_models, key_file):
    key = key_file[0]
    with service(demo_models, key_file) as base_url:
        now = int(time.time())
        foreign = raw_token(key, {"iss": EHR, "aud": "http://other-cds.example.org/cds-services", "exp": now + 60,
                                  "iat": now, "jti": str(uuid.uuid4())})
        spoofed = requests.get(f"{base_url}/cds-services", timeout=10, headers={
            "Authorization": f"Bearer {foreign}", "Host": "other-cds.example.org",
            "X-Forwarded-Host": "other-cds.example.org"})
        assert spoofed.status_code == 401
        mine = raw_token(key, {"iss": EHR, "aud": f"{base_url}/cds-services", "exp": now + 60, "iat": now,
                               "jti": str(uuid.uuid4())})
        assert requests.get(f"{base_url}/cds-services", timeout=10,
                            headers={"Authorization": f"Bearer {mine}"}).status_code == 200
    with pytest.raises(SettingsError, match="PUBLIC_URL"):
        Settings(trust=(TrustedIssuerSpec(EHR, key_file[1]),)).checked()


@pytest.mark.parametrize("exp, iat", [(float("nan"), 0), (float("inf"), 0), (0, float("nan")),
                                      (0, float("-inf")), (1e20, 0)])
def test_non_finite_and_far_future_times_are_refused(demo_models, key_file, exp, iat):
    now = int(time.time())
    with service(demo_models, key_file) as base_url:
        token = raw_token(key_file[0], {"iss": EHR, "aud": f"{base_url}/cds-services", "jti": str(uuid.uuid4()),
                                        "exp": exp if exp else now + 60, "iat": iat if iat else now})
        payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
        assert b"NaN" in payload or b"Infinity" in payload or b"1e+20" in payload or exp == 1e20
        response = requests.get(f"{base_url}/cds-services", timeout=10, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, response.text


def test_jwks_over_plain_http_is_refused():
    with pytest.raises(SettingsError, match="https"):
        Settings(public_url="https://cds.example.org",
                 trust=(TrustedIssuerSpec(EHR, "http://ehr.example.org/jwks.json"),)).checked()


# ----------------------------------------------------------------- the worklist
from tests.test_review_views import make_app, review, tenant  # noqa: E402,F401


def test_worklist_bearer_mode_needs_an_audience_and_names_coders_by_subject(fhir_base_url, redis_url, tenant,
                                                                              monkeypatch, tmp_path):
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeySet([key]).as_dict(private=False)))
    monkeypatch.delenv("FHIR_ASSIST_REVIEW_USER")
    monkeypatch.setenv("FHIR_ASSIST_REVIEW_OIDC_ISSUER", "https://idp.example.org")
    monkeypatch.setenv("FHIR_ASSIST_REVIEW_OIDC_JWKS", str(jwks))
    now = int(time.time())
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, {
        "iss": "https://idp.example.org", "aud": "some-other-app", "sub": "u-42", "preferred_username": "coder.bob",
        "iat": now, "exp": now + 300}, key)
    app, _, _ = make_app(fhir_base_url, redis_url)
    # No audience configured: no token is accepted (any app's token would be otherwise).
    assert app.test_client().get("/review/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    monkeypatch.setenv("FHIR_ASSIST_REVIEW_OIDC_AUDIENCE", "some-other-app")
    app, _, _ = make_app(fhir_base_url, redis_url)
    ok = app.test_client().get("/review/", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    from fhir_assist.config import ReviewSettings
    from fhir_assist.review.auth import Authenticator
    settings = ReviewSettings(oidc_issuer="https://idp.example.org", oidc_jwks=str(jwks), oidc_audience="some-other-app")
    who = Authenticator(settings).authenticate({"Authorization": f"Bearer {token}"})
    assert who.id == "https://idp.example.org#u-42" and who.name == "coder.bob"


def test_worklist_session_cookie_is_secure_and_next_never_leaves_the_site(review):
    client = review["client"]
    page = client.get("/review/")
    assert page.status_code == 200
    cookie = page.headers.get("Set-Cookie", "")
    assert "Secure" in cookie and "HttpOnly" in cookie
    html = page.get_data(as_text=True)
    marker = '<meta name="csrf-token" content="'
    csrf = html[html.index(marker) + len(marker):].split('"', 1)[0]
    for evil in ("/\t/evil.example", "/\\evil.example", "//evil.example", "https://evil.example/",
                 "/\n/evil.example"):
        response = client.post("/review/pending/retry-all", data={"csrf_token": csrf, "next": evil})
        location = response.headers.get("Location", "")
        assert response.status_code == 302 and "evil.example" not in location, location


def test_a_token_used_during_a_redis_outage_is_not_replayable_after_it(demo_models, key_file, restartable_redis):
    with service(demo_models, key_file, redis_url=restartable_redis.url) as base_url:
        now = int(time.time())
        token = raw_token(key_file[0], {"iss": EHR, "aud": f"{base_url}/cds-services", "exp": now + 120,
                                        "iat": now, "jti": str(uuid.uuid4())})
        headers = {"Authorization": f"Bearer {token}"}
        restartable_redis.stop()
        assert requests.get(f"{base_url}/cds-services", headers=headers, timeout=20).status_code == 200
        restartable_redis.start()                 # back, and knows nothing of that token
        time.sleep(2.5)                           # past the store's fail-fast window
        assert requests.get(f"{base_url}/cds-services", headers=headers, timeout=20).status_code == 401


def test_metrics_need_their_own_credential_when_configured(demo_models, key_file):
    import hashlib
    with service(demo_models, key_file, metrics_token_sha256=hashlib.sha256(b"scraper").hexdigest()) as base_url:
        assert requests.get(f"{base_url}/metrics", timeout=10).status_code == 401
        assert requests.get(f"{base_url}/metrics", timeout=10,
                            headers={"Authorization": "Bearer wrong"}).status_code == 403
        ok = requests.get(f"{base_url}/metrics", timeout=10, headers={"Authorization": "Bearer scraper"})
        assert ok.status_code == 200 and "fhir_assist_http_requests_total" in ok.text


def test_newlines_from_the_caller_never_forge_a_log_line(demo_models, key_file, caplog):
    import logging
    with caplog.at_level(logging.INFO, logger="fhir_assist"):
        with service(demo_models, key_file) as base_url:
            r = requests.post(f"{base_url}/cds-services/x%0AINFO%20forged%20entry", json={}, timeout=10,
                              headers={"Authorization": "Bearer a.b.c"})
            assert r.status_code == 401
    messages = [rec.getMessage() for rec in caplog.records]
    assert messages and not any("\n" in m for m in messages), [m for m in messages if "\n" in m]
