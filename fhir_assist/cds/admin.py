"""The admin credential: one bearer secret, configured as its SHA-256 so the
settings never hold the secret itself (`FHIR_ASSIST_ADMIN_TOKEN_SHA256`).

EHR tokens never grant admin functions, whatever their claims say.
"""
from __future__ import annotations

import hashlib
import hmac

from .errors import CdsError, unauthorized


def check_admin(settings, authorization: str | None, *, digest: str | None = None) -> None:
    """`digest`: another credential's SHA-256 (e.g. the metrics scraper's) instead of the admin's."""
    expected = (digest or settings.admin_token_sha256 or "").lower()
    if not expected:
        raise CdsError(404, "not-found", "admin functions are not enabled on this service "
                       "(set FHIR_ASSIST_ADMIN_TOKEN_SHA256)")
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the admin credential is required (Authorization: Bearer <admin token>)")
    given = hashlib.sha256(token.strip().encode("utf-8", "surrogatepass")).hexdigest()
    if not hmac.compare_digest(given, expected):
        raise CdsError(403, "security", "this credential does not grant admin functions")
