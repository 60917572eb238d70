"""The worklist's blueprint `bp` (module level), what its handlers share (`ReviewContext`,
read from `current_app.extensions` by `context()`), and the guards every request passes:
sign-in, CSRF and same-origin checks on posts, FHIR id checks, security headers and
error pages. The routes are in `pages.py` and `decisions.py`."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, render_template, request
from werkzeug.exceptions import HTTPException

from fhir_assist.config import ReviewSettings
from fhir_assist.cds.http import loggable
from fhir_assist.fhir.ids import is_fhir_id
from fhir_assist.fhir_server import error_kind
from fhir_assist.store import StoreUnavailable

from . import csrf
from .actions import ActionRunner, describe_fhir_error
from .auth import AuthError, Authenticator
from .evidence import EvidenceSource
from .pending import Action, PendingActions
from .worklist import STATUSES, EncounterDirectory

log = logging.getLogger(__name__)

EXTENSION = "fhir_assist.review"      # app.extensions key of the ReviewContext

bp = Blueprint("review", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")


@dataclass
class ReviewContext:
    config: ReviewSettings
    store: object
    open_fhir: object            # () -> FhirServer
    pending: PendingActions
    runner: ActionRunner
    evidence: EvidenceSource
    directory: EncounterDirectory
    auth: Authenticator


class NotConfigured(RuntimeError):
    pass


def context() -> ReviewContext:
    return current_app.extensions[EXTENSION]


# ---------------------------------------------------------------------- guards
@bp.before_request
def authenticate():
    try:
        g.coder = context().auth.authenticate(request.headers)
    except AuthError as exc:
        response = current_app.make_response((render_template(
            "review_error.html", title="Sign-in required", message=str(exc), coder=None), 401))
        response.headers["WWW-Authenticate"] = 'Bearer realm="fhir-assist review"'
        return response
    if request.method == "POST":
        if not csrf.is_valid(request) or not _same_origin(request):
            return render_template(
                "review_error.html", title="Action refused",
                message="This form has expired or did not come from this page. "
                        "Reload the page and try again.", coder=g.coder), 400
    return None


@bp.after_request
def security_headers(response):
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.context_processor
def template_globals():
    return {"csrf_token": csrf.token, "coder": g.get("coder"), "statuses": STATUSES}


@bp.url_value_preprocessor
def check_ids(endpoint, values):
    # ids end up in FHIR URLs: refuse anything that is not a FHIR id before using it
    for name in ("encounter_id", "condition_id"):
        if values and name in values and not is_fhir_id(values[name]):
            abort(404, f"“{values[name]}” is not a FHIR resource id.")


# ---------------------------------------------------------------- error pages
@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    # pages for people, not the JSON OperationOutcome the CDS endpoints answer with
    titles = {400: "Request not understood", 404: "Not found", 405: "Not allowed"}
    return render_template("review_error.html", title=titles.get(exc.code, exc.name),
                           message=exc.description), exc.code


@bp.errorhandler(Exception)
def unexpected(exc: Exception):
    reference = uuid.uuid4().hex[:12]
    log.exception("review: unexpected error on %s %s (reference %s)", loggable(request.method),
                  loggable(request.path), reference)
    return render_template("review_error.html", title="Something went wrong",
                           message=f"The page could not be shown (reference {reference} in the service "
                                   "log). Decisions already made are kept."), 500


@bp.errorhandler(StoreUnavailable)
def store_down(exc):
    return render_template("review_error.html", title="The state store cannot be reached",
                           message=f"{exc}. Decisions cannot be kept for retry until it is back."), 503


@bp.errorhandler(NotConfigured)
def not_configured(exc):
    return render_template("review_error.html", title="FHIR server not configured",
                           message=str(exc)), 503


def fhir_error_page(exc: Exception, what: str):
    log.warning("review: %s failed: %s", what, error_kind(exc))
    return render_template(
        "review_error.html", title="The FHIR server cannot be reached",
        message=f"Could not {what}: {describe_fhir_error(exc)}.", retry_url=request.url,
        pending=pending_all()), 502


# ---------------------------------------------------------------------- helpers
def pending_all() -> list[Action]:
    ctx = context()
    try:
        return ctx.pending.all(ctx.config.tenant)
    except StoreUnavailable as exc:
        flash(str(exc), "error")
        return []


def pending_for(encounter_id: str) -> list[Action]:
    ctx = context()
    try:
        return ctx.pending.for_encounter(ctx.config.tenant, encounter_id)
    except StoreUnavailable as exc:
        flash(str(exc), "error")
        return []


def _same_origin(req) -> bool:
    """Refuse cross-site posts that carry an Origin header naming another site."""
    origin = req.headers.get("Origin")
    if not origin or origin == "null":
        return origin != "null"
    return urlsplit(origin).netloc == req.host


def safe_next(url: str | None) -> str | None:
    # Only same-site paths: never redirect a coder to another origin. Browsers drop tabs
    # and newlines and read "\\" as "/", so "/\t/evil.example" would become "//evil.example".
    if not url or not url.startswith("/") or any(ch.isspace() or ch == "\\" or ord(ch) < 32 for ch in url):
        return None
    parts = urlsplit(url)
    if url.startswith("//") or parts.scheme or parts.netloc:
        return None
    return url