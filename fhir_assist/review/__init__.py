"""The coder worklist: review suggested ICD codes in the browser, accept or reject them.

`create_blueprint(settings, store, fhir_server_factory)` returns a Flask blueprint
that the service registers at `/review`:

* `settings` — the service `Settings` (FHIR base URL, Redis URL, models directory);
  the worklist's own options come from `FHIR_ASSIST_REVIEW_*` (see `config.py`);
* `store` — the service's store (`fhir_assist.store`): decisions are recorded there as
  feedback labels;
* `fhir_server_factory` — returns a `FhirServer` for the configured FHIR base URL.

Every decision goes to the FHIR server (Condition.verificationStatus) and to the
feedback store; a decision either refuses is kept for retry (`pending.py`).
"""
from __future__ import annotations

import inspect
import logging

from flask import Blueprint

from .actions import ActionRunner
from .auth import Authenticator
from .config import ReviewConfig
from .evidence import EvidenceSource
from .pending import PendingActions
from .views import NotConfigured, ReviewContext, register_routes
from .worklist import EncounterDirectory

__all__ = ["create_blueprint", "ReviewConfig"]

log = logging.getLogger(__name__)


def create_blueprint(settings, store, fhir_server_factory) -> Blueprint:
    config = ReviewConfig.from_settings(settings)
    pending = PendingActions(store)
    ctx = ReviewContext(
        config=config,
        store=store,
        open_fhir=_fhir_opener(settings, fhir_server_factory),
        pending=pending,
        runner=ActionRunner(store, pending, config.tenant),
        evidence=EvidenceSource(config.model, config.models_dir),
        directory=EncounterDirectory(),
        auth=Authenticator(config),
    )
    bp = Blueprint("review", __name__, template_folder="templates", static_folder="static",
                   static_url_path="/static")

    @bp.record_once
    def _configure_app(state):
        app = state.app
        # Flask sessions carry the CSRF token and the one-shot messages of the worklist.
        if not app.secret_key:
            app.secret_key = config.secret_key
        app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
        if not app.config.get("SESSION_COOKIE_SAMESITE"):
            app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
        if config.secure_cookies:
            app.config["SESSION_COOKIE_SECURE"] = True
        log.info("coder worklist: sign-in %s, pending decisions in %s, feedback in %s",
                 config.auth_mode, pending.kind, getattr(store, "kind", "?"))
        if config.auth_mode == "none":
            log.warning("coder worklist: no sign-in configured; set FHIR_ASSIST_REVIEW_USER (demo) "
                        "or FHIR_ASSIST_REVIEW_OIDC_ISSUER + FHIR_ASSIST_REVIEW_OIDC_JWKS")

    register_routes(bp, ctx)
    bp.review_context = ctx       # for tests and the service's readiness checks
    return bp


def _fhir_opener(settings, factory):
    """() -> FhirServer for the configured FHIR base URL, whatever the factory's signature."""
    base_url = getattr(settings, "fhir_base_url", None)
    takes_url = _takes_positional(factory)

    def open_fhir():
        if not base_url and takes_url:
            raise NotConfigured("The worklist reads suggested codes from a FHIR server: start the "
                                "service with --fhir-base-url (FHIR_ASSIST_FHIR_BASE_URL).")
        try:
            server = factory(base_url) if takes_url else factory()
        except ValueError as exc:     # the service's factory: no FHIR base URL configured
            raise NotConfigured(f"The worklist reads suggested codes from a FHIR server: {exc}.") from None
        if server is None:
            raise NotConfigured("No FHIR server is configured: start the service with "
                                "--fhir-base-url (FHIR_ASSIST_FHIR_BASE_URL).")
        return server

    return open_fhir


def _takes_positional(factory) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
               and p.default is p.empty for p in params)
