"""Who is the coder: a verified bearer token (OIDC-style) or the one configured demo user.

Bearer mode expects the identity provider's access/ID token in `Authorization: Bearer …`
(or `X-Forwarded-Access-Token`, as an authenticating reverse proxy forwards it),
verified against the issuer's JWKS: signature, `iss`, `aud`, `exp`/`nbf`.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fhir_assist.config import ReviewSettings

log = logging.getLogger(__name__)

# Asymmetric algorithms only: a shared-secret HS256 token would let anyone holding the
# secret mint coder identities.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "ES256", "ES384", "EdDSA"]
JWKS_TTL_S = 600
LEEWAY_S = 30


class AuthError(Exception):
    """The request carries no acceptable identity; the message is safe to show."""


@dataclass(frozen=True)
class Coder:
    id: str
    name: str


class JwksCache:
    """JWKS from a file or URL, reloaded after JWKS_TTL_S (keys rotate)."""

    def __init__(self, source: str):
        self.source = source
        self._keys: KeySet | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def keys(self, force: bool = False) -> KeySet:
        with self._lock:
            if force or self._keys is None or time.monotonic() - self._loaded_at > JWKS_TTL_S:
                self._keys = KeySet.import_key_set(self._read())
                self._loaded_at = time.monotonic()
            return self._keys

    def _read(self) -> dict:
        try:
            if self.source.startswith(("http://", "https://")):
                response = requests.get(self.source, timeout=5)
                response.raise_for_status()
                return response.json()
            return json.loads(Path(self.source).read_text())
        except (OSError, ValueError, requests.RequestException) as exc:
            log.error("cannot load the review JWKS from %s: %s", self.source, exc)
            raise AuthError("the identity provider's keys cannot be loaded") from None


class Authenticator:
    def __init__(self, config: ReviewSettings):
        self.config = config
        self.jwks = JwksCache(config.oidc_jwks) if config.auth_mode == "bearer" else None

    def authenticate(self, headers) -> Coder:
        mode = self.config.auth_mode
        if mode == "bearer":
            return self._bearer(headers)
        if mode == "single-user":
            return Coder(id=self.config.user, name=self.config.user)
        raise AuthError("coder sign-in is not configured: set FHIR_ASSIST_REVIEW_USER for a "
                        "single demo user, or FHIR_ASSIST_REVIEW_OIDC_ISSUER and "
                        "FHIR_ASSIST_REVIEW_OIDC_JWKS for bearer tokens")

    def _bearer(self, headers) -> Coder:
        if not self.config.oidc_audience:
            # A token the identity provider issued for any other application would do.
            raise AuthError("coder sign-in is misconfigured: set FHIR_ASSIST_REVIEW_OIDC_AUDIENCE "
                            "(the audience of this worklist's tokens)")
        token = None
        header = headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
        token = token or headers.get("X-Forwarded-Access-Token")
        if not token:
            raise AuthError("sign in required: no bearer token")
        try:
            try:
                decoded = jwt.decode(token, self.jwks.keys(), algorithms=ALGORITHMS)
            except (JoseError, ValueError):
                # an unknown `kid` after key rotation: reload once before refusing
                decoded = jwt.decode(token, self.jwks.keys(force=True), algorithms=ALGORITHMS)
            claims = decoded.claims
            options = {"iss": {"essential": True, "value": self.config.oidc_issuer},
                       "exp": {"essential": True}, "sub": {"essential": True},
                       "aud": {"essential": True, "value": self.config.oidc_audience}}
            jwt.JWTClaimsRegistry(leeway=LEEWAY_S, **options).validate(claims)
        except (JoseError, ValueError) as exc:
            log.info("review bearer token refused: %s", exc)
            raise AuthError("sign in required: the token is invalid or expired") from None
        # The id is the issuer's stable subject: a display name such as preferred_username
        # can be chosen or reused by another person.
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise AuthError("sign in required: the token names no user")
        shown = claims.get(self.config.oidc_user_claim) or claims.get("name") or subject
        return Coder(id=f"{claims['iss']}#{subject}", name=str(shown))
