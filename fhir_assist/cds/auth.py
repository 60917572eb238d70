"""Authentication of the calling EHR ("Trusting CDS Clients" in CDS Hooks 2.0).

Every call carries `Authorization: Bearer <JWT>` signed with the EHR's private
key. A token is accepted when:

* its `iss` is on the allow-list (`--trust ISS=SOURCE`), and the signature
  verifies with one of that issuer's public keys — from a PEM file, a JWK / JWK
  Set file, or a JWKS URL fetched by us (never from the token's own `jku`
  unless it is exactly the configured URL);
* it uses an asymmetric algorithm from the configured list (RS384 and ES384 are
  the ones the spec recommends; `none` and HMAC are always refused);
* `aud` names the endpoint being called (string or list);
* `exp` is in the future, `iat` is not in the future and not too old (leeway
  for clock skew);
* its `jti` has not been seen before from this issuer (replay protection in
  the state store, with an in-process fallback while the store is down).

The optional `tenant` claim scopes state and feedback to one organisation.
"""
from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from ..config import FORBIDDEN_ALGORITHMS, Settings, SettingsError, TrustedIssuerSpec
from ..store import Scope
from .errors import unauthorized

log = logging.getLogger(__name__)

DEFAULT_TENANT = "default"
_TENANT_RE = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")
_JWKS_TTL_S = 600          # how long a fetched JWK Set is trusted before re-fetching
_JWKS_REFRESH_MIN_S = 30   # an unknown kid triggers a re-fetch at most this often


class AuthError(Exception):
    """The token is missing or not acceptable; `reason` is a short metric label."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    def as_cds_error(self):
        return unauthorized(str(self))


@dataclass
class Caller:
    """Who is calling, once the token is accepted."""

    issuer: str | None
    tenant: str
    subject: str | None = None
    jti: str | None = None
    claims: dict = field(default_factory=dict)

    @classmethod
    def anonymous(cls) -> "Caller":
        return cls(issuer=None, tenant=DEFAULT_TENANT)

    @property
    def scope(self) -> Scope:
        """Whose records this call reads and writes: the tenant within its issuer, so two
        issuers naming the same tenant never share state, feedback or cards."""
        return Scope(tenant=self.tenant, issuer=self.issuer)


# --------------------------------------------------------------------------- keys
def _public_key_from_pem(data: bytes, origin: str):
    """A PEM public key or certificate → joserfc key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if b"PRIVATE KEY" in data:
        raise SettingsError(f"{origin} holds a private key; give the issuer's public key instead")
    if b"BEGIN CERTIFICATE" in data:
        public = x509.load_pem_x509_certificate(data).public_key()
        data = public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    for key_type in ("RSA", "EC", "OKP"):
        try:
            return import_key(data, key_type)
        except Exception:  # noqa: BLE001 - try the next key type
            continue
    raise SettingsError(f"{origin}: not a PEM public key (RSA, EC or OKP) or certificate")


def _keys_from_jwk_json(doc: object, origin: str) -> list:
    if isinstance(doc, dict) and isinstance(doc.get("keys"), list):
        entries = doc["keys"]
    elif isinstance(doc, dict) and "kty" in doc:
        entries = [doc]
    else:
        raise SettingsError(f"{origin}: expected a JWK or a JWK Set ({{\"keys\": [...]}})")
    keys = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise SettingsError(f"{origin}: a JWK Set entry is not an object")
        if entry.get("kty") == "oct":
            raise SettingsError(f"{origin}: symmetric ('oct') keys cannot identify a CDS client")
        if "d" in entry:
            raise SettingsError(f"{origin}: holds a private key (member 'd'); publish only public keys")
        if entry.get("use") not in (None, "sig"):
            continue  # encryption keys are not for signatures
        try:
            keys.append(import_key(entry))
        except Exception as exc:  # noqa: BLE001 - report which key is unusable
            raise SettingsError(f"{origin}: key {entry.get('kid')!r} cannot be read: {exc}") from None
    if not keys:
        raise SettingsError(f"{origin}: no signature keys found")
    return keys


def load_keys_from_file(path: str | Path) -> list:
    path = Path(path)
    data = path.read_bytes()
    if data.lstrip().startswith(b"{"):
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise SettingsError(f"{path}: not valid JSON: {exc}") from None
        return _keys_from_jwk_json(doc, str(path))
    return [_public_key_from_pem(data, str(path))]


class TrustedIssuer:
    """One allow-listed issuer and its public keys (static, or a JWKS URL cached with a TTL)."""

    def __init__(self, spec: TrustedIssuerSpec, *, http_timeout: float = 5.0,
                 fetch: Callable[[str, float], dict] | None = None) -> None:
        self.issuer = spec.issuer
        self.jwks_url = spec.source if spec.is_url else None
        self._static = [] if spec.is_url else load_keys_from_file(spec.source)
        self._fetched: list = []
        self._fetched_at = 0.0
        self._timeout = http_timeout
        self._fetch = fetch or _fetch_json
        self._lock = threading.Lock()

    def keys(self, *, refresh: bool = False) -> list:
        if not self.jwks_url:
            return self._static
        now = time.monotonic()
        stale = now - self._fetched_at > _JWKS_TTL_S
        may_refresh = now - self._fetched_at > _JWKS_REFRESH_MIN_S
        if not self._fetched or stale or (refresh and may_refresh):
            with self._lock:
                try:
                    doc = self._fetch(self.jwks_url, self._timeout)
                    self._fetched = _keys_from_jwk_json(doc, self.jwks_url)
                    self._fetched_at = time.monotonic()
                except (requests.RequestException, ValueError, SettingsError) as exc:
                    # Keep serving with the last good key set; say so once per failure.
                    log.warning("could not fetch the JWK Set of %s from %s: %s",
                                self.issuer, self.jwks_url, exc)
                    if not self._fetched:
                        raise AuthError(f"the public keys of issuer {self.issuer!r} cannot be "
                                        "fetched right now", "jwks-unavailable") from None
        return self._fetched

    def candidates(self, kid: str | None) -> list:
        keys = self.keys()
        chosen = _match_kid(keys, kid)
        if not chosen and kid and self.jwks_url:
            chosen = _match_kid(self.keys(refresh=True), kid)   # the issuer may have rotated keys
        return chosen


def _match_kid(keys: list, kid: str | None) -> list:
    if kid:
        exact = [k for k in keys if k.kid == kid]
        if exact:
            return exact
    # Keys loaded from PEM files carry no kid: any of them may have signed.
    return [k for k in keys if not k.kid] or (keys if len(keys) == 1 and not kid else [])


def _fetch_json(url: str, timeout: float) -> dict:
    response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
    response.raise_for_status()
    return response.json()


# ---------------------------------------------------------------------- replay
class LocalJtiCache:
    """Seen (issuer, jti) pairs kept in memory until they expire; used while the store is down."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def claim(self, issuer: str, jti: str, expires_at: float) -> bool:
        now = time.time()
        with self._lock:
            while self._seen:
                key, exp = next(iter(self._seen.items()))
                if exp > now and len(self._seen) < self._max:
                    break
                self._seen.popitem(last=False)
            if (issuer, jti) in self._seen:
                return False
            self._seen[(issuer, jti)] = expires_at
            return True


# -------------------------------------------------------------------- verifier
class TokenVerifier:
    def __init__(self, settings: Settings, *, claim_jti: Callable[[str, str, float], bool],
                 on_store_error: Callable[[Exception], None] | None = None,
                 fetch: Callable[[str, float], dict] | None = None) -> None:
        self.settings = settings
        self.algorithms = [a for a in settings.jwt_algorithms if a not in FORBIDDEN_ALGORITHMS]
        self.issuers = {spec.issuer: TrustedIssuer(spec, http_timeout=settings.fhir_timeout, fetch=fetch)
                        for spec in settings.trust}
        self._claim_jti = claim_jti
        self._local_jti = LocalJtiCache()
        self._on_store_error = on_store_error

    def verify(self, authorization: str | None, audiences: Iterable[str]) -> Caller:
        token = _bearer_token(authorization)
        header, unverified = _peek(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg in FORBIDDEN_ALGORITHMS or alg not in self.algorithms:
            raise AuthError(f"signature algorithm {alg!r} is not accepted "
                            f"(accepted: {', '.join(self.algorithms)})", "algorithm")
        typ = header.get("typ")
        if typ is not None and str(typ).upper() != "JWT":
            raise AuthError(f"token type {typ!r} is not JWT", "malformed")
        iss = unverified.get("iss")
        if not isinstance(iss, str) or not iss:
            raise AuthError("the token has no 'iss' claim", "claims")
        issuer = self.issuers.get(iss)
        if issuer is None:
            raise AuthError(f"issuer {iss!r} is not trusted by this service", "unknown-issuer")
        jku = header.get("jku")
        if jku is not None and jku != issuer.jwks_url:
            # We never fetch keys from a URL the token names itself.
            log.debug("ignoring jku %r of issuer %r (not the configured JWKS URL)", jku, iss)
        claims = self._check_signature(token, issuer, header.get("kid"))
        self._check_claims(claims, iss, list(audiences))
        tenant = claims.get("tenant")
        allowed = self.settings.issuer_tenants.get(iss, (DEFAULT_TENANT,))
        if tenant is None:
            tenant = allowed[0]
        elif not isinstance(tenant, str) or not _TENANT_RE.match(tenant):
            raise AuthError("the 'tenant' claim must be a short identifier "
                            "(letters, digits, . _ : @ -)", "claims")
        if tenant not in allowed:
            # An issuer speaks only for the tenants configured for it (FHIR_ASSIST_ISSUER_TENANTS).
            raise AuthError(f"issuer {iss!r} may not act for tenant {tenant!r}", "tenant")
        self._check_replay(iss, claims["jti"], float(claims["exp"]))
        return Caller(issuer=iss, tenant=tenant, subject=claims.get("sub"), jti=claims["jti"],
                      claims=claims)

    # -- steps
    def _check_signature(self, token: str, issuer: TrustedIssuer, kid: object) -> dict:
        kid = kid if isinstance(kid, str) and kid else None
        candidates = issuer.candidates(kid)
        if not candidates:
            raise AuthError(f"issuer {issuer.issuer!r} has no key with kid {kid!r}", "unknown-key")
        for key in candidates:
            try:
                return dict(jwt.decode(token, key, algorithms=self.algorithms).claims)
            except JoseError as exc:
                last = exc
            except (ValueError, TypeError) as exc:  # malformed segments
                last = exc
        log.debug("signature check failed for %s: %s", issuer.issuer, last)
        raise AuthError("the token's signature does not verify with the issuer's keys", "signature")

    def _check_claims(self, claims: dict, iss: str, audiences: list[str]) -> None:
        now = time.time()
        leeway = self.settings.jwt_leeway_s
        if claims.get("iss") != iss:
            raise AuthError("the 'iss' claim changed between header check and verification", "claims")
        for name in ("aud", "exp", "iat", "jti"):
            if name not in claims:
                raise AuthError(f"the token has no '{name}' claim", "claims")
        exp, iat = claims["exp"], claims["iat"]
        if not _is_number(exp) or not _is_number(iat):
            raise AuthError("'exp' and 'iat' must be finite numbers of seconds since the epoch", "claims")
        if self.settings.jwt_max_age_s and exp - iat > self.settings.jwt_max_age_s + leeway:
            # A far-future exp would keep its jti in the replay store for ever.
            raise AuthError("the token's lifetime ('exp' - 'iat') is too long", "claims")
        if exp + leeway <= now:
            raise AuthError("the token has expired", "expired")
        if iat - leeway > now:
            raise AuthError("the token is issued in the future ('iat')", "claims")
        if self.settings.jwt_max_age_s and now - iat > self.settings.jwt_max_age_s + leeway:
            raise AuthError("the token was issued too long ago ('iat')", "expired")
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise AuthError("'jti' must be a non-empty string", "claims")
        aud = claims["aud"]
        given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        wanted = {_norm_url(a) for a in audiences}
        if not any(isinstance(a, str) and _norm_url(a) in wanted for a in given):
            raise AuthError(f"the token's audience {aud!r} is not this endpoint "
                            f"({sorted(wanted)[0] if wanted else '?'})", "audience")

    def _check_replay(self, iss: str, jti: str, exp: float) -> None:
        # Every token is also claimed in this process: one first seen while the store was
        # down (claimed only here) must stay refused once the store is back and empty of it.
        seen_here = not self._local_jti.claim(iss, jti, exp)
        try:
            fresh = self._claim_jti(iss, jti, exp)
        except Exception as exc:  # noqa: BLE001 - the store is down: fall back, say so
            if self._on_store_error:
                self._on_store_error(exc)
            log.warning("replay check falls back to this process (state store unavailable: %s)",
                        type(exc).__name__)
            fresh = True
        if seen_here or not fresh:
            raise AuthError("this token was already used ('jti' replayed)", "replayed")


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("an 'Authorization: Bearer <JWT>' header is required", "missing")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("the Authorization header must use the Bearer scheme", "missing")
    return token.strip()


def _peek(token: str) -> tuple[dict, dict]:
    """Header and claims before verification, only to choose the issuer and key."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("the bearer token is not a signed JWT (expected three dot-separated parts)",
                        "malformed")
    try:
        decoded = [json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in parts[:2]]
    except (ValueError, UnicodeDecodeError):
        raise AuthError("the bearer token is not a readable JWT", "malformed") from None
    if not all(isinstance(d, dict) for d in decoded):
        raise AuthError("the bearer token is not a readable JWT", "malformed")
    return decoded[0], decoded[1]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _norm_url(url: str) -> str:
    return url.strip().rstrip("/")


__all__ = ["AuthError", "Caller", "TokenVerifier", "TrustedIssuer", "LocalJtiCache",
           "load_keys_from_file", "DEFAULT_TENANT"]
