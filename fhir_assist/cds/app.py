"""The Flask app: discovery, service calls, feedback, health, metrics, error answers.

    GET  /cds-services                      discovery (one entry per service and hook)
    POST /cds-services/{id}                 a hook call → {"cards": [...], "systemActions"?: [...]}
    POST /cds-services/{id}/feedback        outcomes of the cards (accepted / overridden)
    GET  /cds-services/{id}/feedback        stored feedback, for audit (authenticated, per tenant)
    GET  /healthz   /readyz   /metrics      liveness, readiness (models + store), Prometheus
    /review/…                               the coder worklist, when `fhir_assist.review` is installed

Every error is a JSON OperationOutcome with a 4xx/5xx status; no traceback ever
reaches the caller (the catch-all handler logs it with a reference id instead).
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from ..config import Settings
from .auth import AuthError, Caller, TokenVerifier
from .catalog import BY_ID, CODING_SUGGESTIONS, SERVICES
from .errors import CdsError, bad_request, operation_outcome
from .feedback import CardLedger, feedback_events, parse_feedback
from .metrics import ServiceMetrics
from .models import ModelSet, load_models
from .patient_data import load_patient_data, make_fetcher
from .request import parse_hook_call
from .coding_service import CodingService
from .services import MedicationChangeService, ServiceRuntime

log = logging.getLogger(__name__)

JSON = "application/json"
_CORS_PATHS = ("/cds-services",)


@dataclass
class CdsApp:
    """What the request handlers share (kept in `app.extensions["fhir_assist"]`)."""

    settings: Settings
    store: Any
    models: ModelSet
    metrics: ServiceMetrics
    verifier: TokenVerifier | None
    ledger: CardLedger
    executor: ThreadPoolExecutor
    runtime: ServiceRuntime
    services: dict[str, Any]
    fhir_server_factory: Callable[..., Any]

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def make_fhir_server_factory(settings: Settings) -> Callable[..., Any]:
    """(base_url=None, token=None) → FhirServer; base_url defaults to --fhir-base-url."""

    def factory(base_url: str | None = None, token: str | None = None, **options):
        from fhir_assist.fhir_server import FhirServer
        url = base_url or settings.fhir_base_url
        if not url:
            raise ValueError("no FHIR server: give --fhir-base-url or send fhirServer in the hook request")
        options.setdefault("timeout", settings.fhir_timeout)
        options.setdefault("retries", 1)
        return FhirServer(url, token=token, **options)

    return factory


def create_app(settings: Settings | None = None, *, store: Any = None, models: ModelSet | None = None,
               fhir_server_factory: Callable[..., Any] | None = None) -> Flask:
    settings = settings or Settings()
    if store is None:
        from fhir_assist.state import open_store
        store = open_store(settings.redis_url)
    if models is None:
        models = load_models(settings.models_dir)
    metrics = ServiceMetrics()
    metrics.set_models(models.versions(), models.ready)
    fhir_factory = fhir_server_factory or make_fhir_server_factory(settings)

    app = Flask("fhir_assist.cds")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_mb * 1024 * 1024
    app.config["JSON_SORT_KEYS"] = False
    if settings.trust_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)

    verifier = None
    if settings.no_auth:
        log.warning("authentication is OFF (--no-auth): any caller can use this service. "
                    "Only for the embedded demo; never expose it to a network.")
    else:
        verifier = TokenVerifier(settings, claim_jti=store.claim_jti,
                                 on_store_error=lambda exc: metrics.store_errors.labels(operation="claim_jti").inc())
        if not settings.trust:
            log.warning("no trusted issuers configured (--trust ISS=KEYFILE): every call will be refused "
                        "with 401 until one is added")

    runtime = ServiceRuntime(settings, models, store, metrics, fhir_factory)
    state = CdsApp(settings, store, models, metrics, verifier, CardLedger(settings.redis_url),
                   ThreadPoolExecutor(max_workers=8, thread_name_prefix="fhir-fetch"), runtime,
                   {"medication-change": MedicationChangeService(runtime), CODING_SUGGESTIONS: CodingService(runtime)},
                   fhir_factory)
    app.extensions["fhir_assist"] = state
    _register_review(app, settings, store, fhir_factory)
    _register_routes(app, state)
    _register_hooks(app, state)
    _register_errors(app, state)
    return app


def _register_review(app: Flask, settings: Settings, store: Any, fhir_factory) -> None:
    try:
        from fhir_assist import review
    except ImportError as exc:
        log.info("coder review UI not installed (%s)", exc)
        return
    create = getattr(review, "create_blueprint", None)
    if create is None:
        return
    try:
        blueprint = create(settings, store, fhir_factory)
    except Exception:  # noqa: BLE001 - the CDS services must start even if the worklist cannot
        log.exception("the coder review UI could not start; serving the CDS services without it")
        return
    app.register_blueprint(blueprint, url_prefix="/review")
    log.info("coder review UI served at /review")


# ------------------------------------------------------------------- routes
def _json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status=status,
                    mimetype=JSON, headers=headers)


def _read_json() -> Any:
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise bad_request("the request body is empty; expected a JSON object", code="required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}", code="structure") from None


def _expected_audiences(settings: Settings, *extra_paths: str) -> list[str]:
    base = settings.public_url or request.host_url.rstrip("/")
    root = request.script_root or ""
    base = base if settings.public_url else base + root
    return [base + request.path, *(base + p for p in extra_paths)]


def _authenticate(state: CdsApp, *extra_paths: str) -> Caller:
    if state.verifier is None:
        return Caller.anonymous()
    try:
        caller = state.verifier.verify(request.headers.get("Authorization"),
                                       _expected_audiences(state.settings, *extra_paths))
    except AuthError as exc:
        state.metrics.auth_failures.labels(reason=exc.reason).inc()
        log.info("refused a call to %s: %s", request.path, exc)
        raise exc.as_cds_error() from None
    g.caller = caller
    return caller


def _register_routes(app: Flask, state: CdsApp) -> None:
    settings = state.settings

    @app.get("/cds-services")
    def discovery():
        if not settings.public_discovery:
            _authenticate(state)
        return _json_response({"services": [entry.discovery() for entry in SERVICES]})

    @app.post("/cds-services/<service_id>")
    def call_service(service_id: str):
        caller = _authenticate(state)
        entry = BY_ID.get(service_id)
        if entry is None:
            raise CdsError(404, "not-found", f"no CDS service with id {service_id!r}; see GET /cds-services",
                           expression="id")
        g.service_id = service_id
        body = _read_json()
        call = parse_hook_call(entry, body, allowed_fhir_servers=settings.allowed_fhir_servers)
        if "review" in app.blueprints:
            call.review_url = (settings.public_url or request.host_url.rstrip("/") + request.script_root) + "/review/"
        g.hook = call.entry.hook
        started = time.perf_counter()
        server = None
        if call.fhir_server or settings.fhir_base_url:
            try:
                server = state.fhir_server_factory(call.fhir_server or settings.fhir_base_url,
                                                   call.access_token if call.fhir_server else None)
            except ValueError as exc:
                raise bad_request(str(exc), expression="fhirServer") from None

        def on_gathered(result):
            for _ in result.from_prefetch:
                state.metrics.prefetch_keys.labels(source="prefetch").inc()
            for _ in result.fetched:
                state.metrics.prefetch_keys.labels(source="fetched").inc()
                state.metrics.fhir_fetches.labels(outcome="ok").inc()
            for key in result.missing:
                state.metrics.prefetch_keys.labels(source="missing").inc()
                if server is not None:
                    state.metrics.fhir_fetches.labels(outcome="failed").inc()
            if result.fetched or (result.missing and server is not None):
                state.metrics.fhir_fetch_latency.observe(result.fetch_seconds)

        try:
            data = load_patient_data(call, fetcher=make_fetcher(server), executor=state.executor,
                                     deadline_s=settings.fhir_timeout * 3, on_gathered=on_gathered,
                                     server=server)
            answer = state.services[entry.service].answer(data, caller.tenant)
        finally:
            if server is not None:
                server.close()
        state.ledger.put_many(caller.tenant, answer.ledger)
        for card in answer.cards:
            state.metrics.cards.labels(service=service_id, indicator=card["indicator"]).inc()
        state.metrics.hook_latency.labels(service=service_id).observe(time.perf_counter() - started)
        log.info("%s hookInstance=%s: %d card(s) in %.0f ms", service_id, call.hook_instance,
                 len(answer.cards), 1000 * (time.perf_counter() - started))
        return _json_response(answer.body())

    @app.post("/cds-services/<service_id>/feedback")
    def post_feedback(service_id: str):
        caller = _authenticate(state, f"/cds-services/{service_id}")
        if service_id not in BY_ID:
            raise CdsError(404, "not-found", f"no CDS service with id {service_id!r}", expression="id")
        items = parse_feedback(_read_json())
        ids = []
        for item in items:
            info = state.ledger.get(caller.tenant, item["card"])
            for event in feedback_events(service_id, item, info, caller.subject or caller.issuer):
                try:
                    ids.append(state.store.record_feedback(caller.tenant, event))
                except Exception as exc:  # noqa: BLE001 - StoreUnavailable: the client may resend
                    state.metrics.store_errors.labels(operation="record_feedback").inc()
                    log.warning("could not store feedback: %s", exc)
                    raise CdsError(503, "transient", "feedback could not be stored right now; "
                                   "please send it again", headers={"Retry-After": "5"}) from None
            state.metrics.feedback.labels(service=service_id, outcome=item["outcome"]).inc()
        return _json_response({"stored": len(ids), "ids": ids})

    @app.get("/cds-services/<service_id>/feedback")
    def list_feedback(service_id: str):
        caller = _authenticate(state, f"/cds-services/{service_id}")
        if service_id not in BY_ID:
            raise CdsError(404, "not-found", f"no CDS service with id {service_id!r}", expression="id")
        since = request.args.get("since") or None
        try:
            events = state.store.list_feedback(caller.tenant, since=since, source="cds-feedback")
        except ValueError as exc:
            raise bad_request(str(exc), expression="since") from None
        except Exception as exc:  # noqa: BLE001 - StoreUnavailable
            state.metrics.store_errors.labels(operation="list_feedback").inc()
            raise CdsError(503, "transient", f"the feedback store is unavailable: {exc}",
                           headers={"Retry-After": "5"}) from None
        events = [e for e in events if e.get("service") == service_id]
        for name in ("outcome", "patient", "encounter", "card"):
            if request.args.get(name):
                events = [e for e in events if str(e.get(name)) == request.args[name]]
        return _json_response({"service": service_id, "tenant": caller.tenant, "count": len(events),
                               "feedback": events})

    @app.get("/healthz")
    def healthz():
        return _json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        # ?store=optional: ready while the store is down too (hook calls degrade gracefully,
        # recomputing state from history), so an orchestrator keeps the replicas in service.
        store_ok = bool(state.store.ping())
        store_needed = request.args.get("store", "required") != "optional"
        ready = state.models.ready and (store_ok or not store_needed)
        body = {"status": "ready" if ready else "not ready", "store": state.store.describe(),
                "store_reachable": store_ok, "models": state.models.describe()}
        return _json_response(body, 200 if ready else 503)

    @app.get("/metrics")
    def metrics():
        payload, content_type = state.metrics.render()
        return Response(payload, mimetype=None, content_type=content_type)

    @app.get("/")
    def index():
        return _json_response({"service": "fhir-assist CDS Hooks service", "discovery": "/cds-services",
                               "health": "/healthz", "ready": "/readyz", "metrics": "/metrics"})


# ------------------------------------------------------------ request hooks
def _route_label() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def _register_hooks(app: Flask, state: CdsApp) -> None:
    origins = state.settings.cors_origins

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        if request.path.startswith(_CORS_PATHS):
            _add_cors(response, origins)
        route = _route_label()
        elapsed = time.perf_counter() - getattr(g, "started", time.perf_counter())
        state.metrics.http_requests.labels(route=route, method=request.method,
                                           status=str(response.status_code)).inc()
        state.metrics.http_latency.labels(route=route).observe(elapsed)
        service_id = getattr(g, "service_id", None)
        if service_id and request.method == "POST" and not request.path.endswith("/feedback"):
            outcome = "ok" if response.status_code < 400 else str(response.status_code)
            state.metrics.hook_calls.labels(service=service_id, hook=getattr(g, "hook", "?"),
                                            outcome=outcome).inc()
        return response


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


def _register_errors(app: Flask, state: CdsApp) -> None:
    @app.errorhandler(CdsError)
    def cds_error(exc: CdsError):
        return _json_response(exc.outcome(), exc.status, exc.headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}.get(
            exc.code or 500, "processing")
        message = {404: f"no such endpoint: {request.path}",
                   405: f"{request.method} is not allowed on {request.path}",
                   413: f"the request body is larger than {state.settings.max_request_mb} MB"}.get(
            exc.code or 500, exc.description or exc.name)
        response = _json_response(operation_outcome(message, code=code), exc.code or 500)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error answering %s %s (reference %s)", request.method, request.path, reference)
        return _json_response(operation_outcome(
            f"the service could not answer this request (internal error, reference {reference})",
            code="exception"), 500)
