"""HTTP plumbing shared by every route of the service: JSON bodies, caller authentication,
and the app-wide request hooks (timing, metrics, CORS) and error answers.

`plumbing` is a blueprint without routes: registering it installs the hooks and error
handlers on the app. Every error is a JSON OperationOutcome with a 4xx/5xx status; no
traceback ever reaches the caller (the catch-all handler logs it with a reference id).
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .auth import AuthError, Caller
from .errors import CdsError, bad_request, operation_outcome
from .heap import release_freed_heap
from .metrics import method_label
from .request_checks import check_depth

log = logging.getLogger(__name__)

JSON = "application/json"
EXTENSION = "fhir_assist"          # app.extensions key of the service's collaborators (CdsApp)
_CORS_PATHS = ("/cds-services",)

plumbing = Blueprint("cds_plumbing", __name__)


def loggable(text: str, limit: int = 200) -> str:
    """Caller-chosen text as one log line: control characters escaped (a newline would forge
    a log record), and cut short."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text)[:limit])


def service():
    """The running service's collaborators (`cds.app.CdsApp`)."""
    return current_app.extensions[EXTENSION]


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    try:
        payload = orjson.dumps(body)
    except TypeError:      # what orjson refuses (e.g. non-string keys), the standard library writes
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(payload, status=status, mimetype=JSON, headers=headers)


def read_json() -> Any:
    return parse_json(read_body())


def read_body() -> bytes | bytearray:
    """The request's JSON body as bytes: 400/413/415 for a wrong type, an empty or oversized body."""
    if request.mimetype != JSON:
        raise bad_request(f"the request body must be sent as Content-Type: {JSON}", code="not-supported")
    raw = _read_body()
    if not raw or raw.isspace():
        raise bad_request("the request body is empty; expected a JSON object", code="required")
    return raw


def parse_json(raw: bytes | bytearray) -> Any:
    # orjson: a hook call carries the patient's record as prefetch (~100 KB); the standard
    # library takes several times longer to parse it.
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):     # orjson stops at 1024 levels
            raise bad_request("the request body is nested too deeply", code="too-costly") from None
        body = _strict_json(bytes(raw))   # what orjson refuses (lone surrogates) the checks below name
    check_depth(body)
    return body


def _read_body() -> bytes | bytearray:
    """The body in one buffer of its declared length (werkzeug's get_data reads pieces and
    joins them, holding the body twice). A chunked body (no length) is read up to the limit."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    length = request.content_length
    if length is None:
        raw = request.get_data(cache=False)
        if limit and len(raw) >= limit:
            # werkzeug cuts a chunked body at the limit without a word: refuse it.
            raise RequestEntityTooLarge()
        return raw
    if limit and length > limit:
        raise RequestEntityTooLarge()
    buffer = bytearray(length)
    view, got = memoryview(buffer), 0
    while got < length:
        n = request.stream.readinto(view[got:])
        if not n:
            break
        got += n
    view.release()
    if got < length:
        raise bad_request("the request body ended before its Content-Length", code="incomplete")
    return buffer


def _strict_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise bad_request("the request body is nested too deeply", code="too-costly") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}", code="structure") from None


def _expected_audiences(settings, *extra_paths: str) -> list[str]:
    # Only the configured public URL: never the Host or X-Forwarded-* headers, which
    # the caller chooses (Settings refuses authentication without a public URL).
    if not settings.public_url:
        return []
    base = settings.public_url
    return [base + request.path, *(base + p for p in extra_paths)]


def authenticate(*extra_paths: str) -> Caller:
    """The caller of this request (anonymous with --no-auth); 401 when its token is refused."""
    state = service()
    if state.verifier is None:
        return Caller.anonymous()
    try:
        caller = state.verifier.verify(request.headers.get("Authorization"),
                                       _expected_audiences(state.settings, *extra_paths))
    except AuthError as exc:
        state.metrics.auth_failures.labels(reason=exc.reason).inc()
        log.info("refused a call to %s: %s", loggable(request.path), loggable(str(exc)))
        raise exc.as_cds_error() from None
    g.caller = caller
    return caller


# ------------------------------------------------------------ request hooks
def _route_label() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


@plumbing.before_app_request
def start_timer():
    g.started = time.perf_counter()
    # Queued write-backs are retried by a thread of each server process; a forked worker starts its own.
    service().runtime.writebacks.resume()


@plumbing.after_app_request
def finish(response: Response) -> Response:
    state = service()
    if request.path.startswith(_CORS_PATHS):
        _add_cors(response, state.settings.cors_origins)
    route = _route_label()
    elapsed = time.perf_counter() - getattr(g, "started", time.perf_counter())
    state.metrics.http_requests.labels(route=route, method=method_label(request.method),
                                       status=str(response.status_code)).inc()
    state.metrics.http_latency.labels(route=route).observe(elapsed)
    service_id = getattr(g, "service_id", None)
    if service_id and request.method == "POST" and not request.path.endswith("/feedback"):
        outcome = "ok" if response.status_code < 400 else str(response.status_code)
        state.metrics.hook_calls.labels(service=service_id, hook=getattr(g, "hook", "?"),
                                        outcome=outcome).inc()
    return response


@plumbing.teardown_app_request
def release_heap(_exc) -> None:
    # The call's objects are gone once the view has returned; their pages go back to the OS.
    release_freed_heap(request.content_length)


def _add_cors(response: Response, origins: tuple[str, ...]) -> None:
    """CORS for browser-based CDS clients. Tokens travel in a header, never in cookies,
    so no credentials are allowed whatever the origin list says."""
    origin = request.headers.get("Origin")
    if not origin or not origins:
        return
    if "*" in origins:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif origin.rstrip("/") in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    else:
        return
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Accept"
    response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate, Retry-After"
    response.headers["Access-Control-Max-Age"] = "600"


# ------------------------------------------------------------ error answers
@plumbing.app_errorhandler(CdsError)
def cds_error(exc: CdsError):
    return json_response(exc.outcome(), exc.status, exc.headers)


@plumbing.app_errorhandler(HTTPException)
def http_error(exc: HTTPException):
    code = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}.get(
        exc.code or 500, "processing")
    message = {404: f"no such endpoint: {request.path}",
               405: f"{request.method} is not allowed on {request.path}",
               413: f"the request body is larger than {service().settings.max_request_mb} MB"}.get(
        exc.code or 500, exc.description or exc.name)
    response = json_response(operation_outcome(message, code=code), exc.code or 500)
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


@plumbing.app_errorhandler(Exception)
def unexpected(exc: Exception):
    reference = uuid.uuid4().hex[:12]
    log.exception("unexpected error answering %s %s (reference %s)", loggable(request.method),
                  loggable(request.path), reference)
    return json_response(operation_outcome(
        f"the service could not answer this request (internal error, reference {reference})",
        code="exception"), 500)
