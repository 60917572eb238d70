"""What the coder worklist needs from the service settings.

Each value is read from the service `Settings` object when it has the attribute,
else from the `FHIR_ASSIST_REVIEW_*` environment variable, so the worklist also
runs under a `Settings` that predates it (and under the Helm chart's env config).
"""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewConfig:
    tenant: str = "default"                 # feedback and pending actions are kept per tenant
    user: str | None = None                 # demo: every request is this coder
    oidc_issuer: str | None = None          # bearer mode: expected `iss`
    oidc_jwks: str | None = None            # JWKS file path or http(s) URL
    oidc_audience: str | None = None        # expected `aud`
    oidc_user_claim: str = "preferred_username"
    secret_key: str | None = None           # signs the Flask session (CSRF token, flashes)
    secure_cookies: bool = True             # off only for plain-http development (…_SECURE_COOKIES=false)
    model: str = "icd-ranker"               # coding artifact for evidence and the cut-off K
    models_dir: str | None = None
    page_size: int = 50
    max_conditions: int = 5000              # upper bound of suggested Conditions read per worklist

    @property
    def auth_mode(self) -> str:
        if self.oidc_issuer and self.oidc_jwks:
            return "bearer"
        if self.user:
            return "single-user"
        return "none"

    @classmethod
    def from_settings(cls, settings) -> "ReviewConfig":
        def pick(attr: str, env: str, default=None):
            value = getattr(settings, attr, None) if settings is not None else None
            if value in (None, ""):
                value = os.environ.get(env, "")
            return value if value not in (None, "") else default

        secret = pick("secret_key", "FHIR_ASSIST_SECRET_KEY")
        if not secret:
            # A per-process secret still protects the forms; sessions just do not
            # survive a restart or span replicas, so say how to make it stable.
            log.warning("no FHIR_ASSIST_SECRET_KEY set: review sessions are signed with a "
                        "random per-process key (set one when running several replicas)")
            secret = secrets.token_hex(32)
        models_dir = pick("models_dir", "FHIR_ASSIST_MODELS")
        return cls(
            tenant=pick("review_tenant", "FHIR_ASSIST_REVIEW_TENANT", "default"),
            user=pick("review_user", "FHIR_ASSIST_REVIEW_USER"),
            oidc_issuer=pick("review_oidc_issuer", "FHIR_ASSIST_REVIEW_OIDC_ISSUER"),
            oidc_jwks=pick("review_oidc_jwks", "FHIR_ASSIST_REVIEW_OIDC_JWKS"),
            oidc_audience=pick("review_oidc_audience", "FHIR_ASSIST_REVIEW_OIDC_AUDIENCE"),
            oidc_user_claim=pick("review_oidc_user_claim", "FHIR_ASSIST_REVIEW_OIDC_USER_CLAIM",
                                 "preferred_username"),
            secret_key=str(secret),
            secure_cookies=str(pick("review_secure_cookies", "FHIR_ASSIST_REVIEW_SECURE_COOKIES",
                                    "true")).lower() not in ("0", "false", "no", "off"),
            model=pick("review_model", "FHIR_ASSIST_REVIEW_MODEL", "icd-ranker"),
            models_dir=str(models_dir) if models_dir else None,
        )
