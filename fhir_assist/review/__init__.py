"""The coder worklist: review suggested ICD codes in the browser, accept or reject them.

`init_app(app, settings, store, fhir_server_factory)` serves it at `/review` on a Flask app:

* `settings` — the service `Settings`: FHIR base URL, models directory, `session_key`, and
  the worklist's own `settings.review` (`FHIR_ASSIST_REVIEW_*`, see `fhir_assist/config.py`);
* `store` — the service's store (`fhir_assist.store`): decisions are recorded there as
  feedback labels, and kept there for retry while the FHIR server refuses them;
* `fhir_server_factory` — returns a `FhirServer` for the configured FHIR base URL.

Its collaborators go into `app.extensions["fhir_assist.review"]` (a `ReviewContext`);
the routes are the module-level blueprint `blueprint.bp` (`pages.py`, `decisions.py`).
Every decision goes to the FHIR server (Condition.verificationStatus) and to the
feedback store; a decision either refuses is kept for retry (`pending.py`).
"""
from __future__ import annotations

import inspect
import logging
import secrets

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from . import decisions, pages  # noqa: F401 - importing them adds their routes to `bp`
from .actions import ActionRunner
from .auth import Authenticator
from .blueprint import EXTENSION, NotConfigured, ReviewContext, bp
from .evidence import EvidenceSource
from .pending import PendingActions
from .worklist import EncounterDirectory

__all__ = ["init_app", "ReviewContext"]

log = logging.getLogger(__name__)


def init_app(app: Flask, settings, store, fhir_server_factory) -> ReviewContext:
    config = settings.review
    pending = PendingActions(store)
    ctx = ReviewContext(
        config=config,
        store=store,
        open_fhir=_fhir_opener(settings, fhir_server_factory),
        pending=pending,
        runner=ActionRunner(store, pending, config.tenant),
        evidence=EvidenceSource(config.model, settings.models_dir),
        directory=EncounterDirectory(),
        auth=Authenticator(config),
    )
    _configure_sessions(app, settings)
    app.extensions[EXTENSION] = ctx
    app.register_blueprint(bp, url_prefix="/review")
    log.info("coder worklist: sign-in %s, pending decisions and feedback in %s",
             config.auth_mode, getattr(store, "kind", "?"))
    if config.auth_mode == "none":
        log.warning("coder worklist: no sign-in configured; set FHIR_ASSIST_REVIEW_USER (demo) "
                    "or FHIR_ASSIST_REVIEW_OIDC_ISSUER + FHIR_ASSIST_REVIEW_OIDC_JWKS")
    return ctx


def _configure_sessions(app: Flask, settings) -> None:
    # Flask sessions carry the CSRF token and the one-shot messages of the worklist.
    if not app.secret_key:
        if not settings.session_key:
            # A per-process secret still protects the forms; sessions just do not
            # survive a restart or span replicas, so say how to make it stable.
            log.warning("no FHIR_ASSIST_SECRET_KEY set: review sessions are signed with a "
                        "random per-process key (set one when running several replicas)")
        app.secret_key = settings.session_key or secrets.token_hex(32)
    app.session_interface = _WorklistSessions()
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if settings.review.secure_cookies:
        app.config["SESSION_COOKIE_SECURE"] = True


class _WorklistSessions(SecureCookieSessionInterface):
    """Sessions for the worklist's pages only. Elsewhere (hook calls, health, metrics) the
    request gets Flask's null session: nothing reads one there, and opening the cookie
    session built a signing serializer on every hook call."""

    def open_session(self, app, request):
        if request.path != "/review" and not request.path.startswith("/review/"):
            return None                    # Flask substitutes its null session (never saved)
        return super().open_session(app, request)


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
