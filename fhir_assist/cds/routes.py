"""The service's routes (module-level blueprint `routes`; collaborators from `current_app`):

    GET  /cds-services                      discovery (one entry per service and hook)
    POST /cds-services/{id}                 a hook call → {"cards": [...], "systemActions"?: [...]}
    POST /cds-services/{id}/feedback        outcomes of the cards (accepted / overridden)
    GET  /admin/feedback?tenant=T           stored feedback, for audit (admin credential only)
    GET  /admin/writebacks?tenant=T         write-backs queued for retry and given up (admin credential only)
    GET  /healthz   /readyz   /metrics      liveness, readiness (models + store), Prometheus
    GET  /openapi.json                      the OpenAPI description of the above
"""
from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app, g, request

from ..store import Scope
from .admin import check_admin
from .catalog import BY_ID, SERVICES, served_by
from .errors import CdsError, bad_request
from .feedback import SOURCE, feedback_events, parse_feedback
from .compact_call import decode_body
from .http import authenticate, json_response, parse_json, read_body, read_json, service
from .openapi import openapi_document
from .patient_data import load_patient_data, make_fetcher
from .prefetch import count_resources
from .request import parse_hook_call
from .services import keep_answer

log = logging.getLogger(__name__)

routes = Blueprint("cds", __name__)


def _known_service(service_id: str) -> None:
    if service_id not in BY_ID:
        raise CdsError(404, "not-found", f"no CDS service with id {service_id!r}", expression="id")


@routes.get("/cds-services")
def discovery():
    if not service().settings.public_discovery:
        authenticate()
    phrases = served_by(service().models)
    return json_response({"services": [entry.discovery(phrases.get(entry.service)) for entry in SERVICES]})


@routes.post("/cds-services/<service_id>")
def call_service(service_id: str):
    state = service()
    settings = state.settings
    caller = authenticate()
    entry = BY_ID.get(service_id)
    if entry is None:
        raise CdsError(404, "not-found", f"no CDS service with id {service_id!r}; see GET /cds-services",
                       expression="id")
    g.service_id = service_id
    call = _read_hook_call(entry, settings)
    _check_prefetch_size(call.prefetch, settings.max_prefetch_resources)
    if "review" in current_app.blueprints:
        call.review_url = (settings.public_url or request.host_url.rstrip("/") + request.script_root) + "/review/"
    # The service's own FHIR server, without the EHR's token, only for issuers allowed to use it.
    call.configured_server_allowed = caller.issuer is None or caller.issuer in settings.fhir_base_url_issuers
    g.hook = call.entry.hook
    started = time.perf_counter()
    server = _open_fhir_server(state, call)
    try:
        data = load_patient_data(call, fetcher=make_fetcher(server), executor=state.executor,
                                 deadline_s=settings.fhir_timeout * 3,
                                 on_gathered=lambda result: _count_gathered(state.metrics, result, server),
                                 server=server)
        answer = state.services[entry.service].answer(data, caller.scope)
    finally:
        if server is not None:
            server.close()
    keep_answer(state.store, state.metrics, caller.scope, answer)
    for card in answer.cards:
        state.metrics.cards.labels(service=service_id, indicator=card["indicator"]).inc()
    state.metrics.hook_latency.labels(service=service_id).observe(time.perf_counter() - started)
    log.info("%s hookInstance=%s: %d card(s) in %.0f ms", service_id, call.hook_instance,
             len(answer.cards), 1000 * (time.perf_counter() - started))
    return json_response(answer.body())


#: app.config switch: False reads every hook body the ordinary way (tests compare both paths)
COMPACT_BODIES = "FHIR_ASSIST_COMPACT_BODIES"


def _read_hook_call(entry, settings):
    """The checked hook call. Its prefetch is decoded straight into compact form where that
    mirrors the ordinary path exactly (`compact_call`), else the body is parsed into dicts."""
    raw = read_body()
    decoded = decode_body(raw) if current_app.config.get(COMPACT_BODIES, True) else None
    body = decoded.body if decoded is not None else parse_json(raw)
    call = parse_hook_call(entry, body, allowed_fhir_servers=settings.fhir_server_allow_list)
    call.compact = decoded.prefetch if decoded is not None else None
    return call


def _check_prefetch_size(prefetch, limit: int) -> None:
    # The body limit bounds the bytes; this bounds what the timeline and the models are given.
    count = count_resources(prefetch)
    if count > limit:
        raise CdsError(413, "too-costly", f"the prefetch holds {count} resources; this service reads at most "
                       f"{limit} per call (FHIR_ASSIST_MAX_PREFETCH_RESOURCES)", expression="prefetch")


def _open_fhir_server(state, call):
    """The FHIR server named by the call (with its token) or configured; None without either."""
    base_url = state.settings.fhir_base_url
    # A call that named a server we may not call gets neither it nor ours: prefetch only.
    if call.fhir_server_refused or not (call.fhir_server or (base_url and call.configured_server_allowed)):
        return None
    try:
        return state.fhir_server_factory(call.fhir_server or base_url,
                                         call.access_token if call.fhir_server else None,
                                         deadline_s=state.settings.fhir_timeout * 3)
    except ValueError as exc:
        raise bad_request(str(exc), expression="fhirServer") from None


def _count_gathered(metrics, result, server) -> None:
    for _ in result.from_prefetch:
        metrics.prefetch_keys.labels(source="prefetch").inc()
    for _ in result.fetched:
        metrics.prefetch_keys.labels(source="fetched").inc()
        metrics.fhir_fetches.labels(outcome="ok").inc()
    for _ in result.missing:
        metrics.prefetch_keys.labels(source="missing").inc()
        if server is not None:
            metrics.fhir_fetches.labels(outcome="failed").inc()
    if result.fetched or (result.missing and server is not None):
        metrics.fhir_fetch_latency.observe(result.fetch_seconds)


@routes.post("/cds-services/<service_id>/feedback")
def post_feedback(service_id: str):
    state = service()
    caller = authenticate(f"/cds-services/{service_id}")
    _known_service(service_id)
    items = parse_feedback(read_json())
    ids = []
    for item in items:
        info = state.store.get_card(caller.scope, item["card"])
        for event in feedback_events(service_id, item, info, caller.subject or caller.issuer):
            try:
                ids.append(state.store.record_feedback(caller.scope, event))
            except Exception as exc:  # noqa: BLE001 - StoreUnavailable: the client may resend
                state.metrics.store_errors.labels(operation="record_feedback").inc()
                log.warning("could not store feedback: %s", exc)
                raise CdsError(503, "transient", "feedback could not be stored right now; "
                               "please send it again", headers={"Retry-After": "5"}) from None
        state.metrics.feedback.labels(service=service_id, outcome=item["outcome"]).inc()
    return json_response({"stored": len(ids), "ids": ids})


@routes.get("/admin/feedback")
def list_feedback():
    # Feedback holds patient and encounter ids and coders' comments: an admin function
    # behind its own credential, never open to EHR tokens.
    state = service()
    scope = _admin_scope(state)
    tenant = scope.tenant
    try:
        events = state.store.list_feedback(scope, since=request.args.get("since") or None, source=SOURCE)
    except ValueError as exc:
        raise bad_request(str(exc), expression="since") from None
    except Exception:  # noqa: BLE001 - StoreUnavailable
        state.metrics.store_errors.labels(operation="list_feedback").inc()
        raise CdsError(503, "transient", "the feedback store is unavailable",
                       headers={"Retry-After": "5"}) from None
    for name in ("service", "outcome", "patient", "encounter", "card"):
        if request.args.get(name):
            events = [e for e in events if str(e.get(name)) == request.args[name]]
    return json_response({"service": request.args.get("service"), "tenant": tenant, "issuer": scope.issuer,
                          "count": len(events),
                          "feedback": events})


@routes.get("/admin/writebacks")
def list_writebacks():
    state = service()
    scope = _admin_scope(state)
    listing = state.runtime.writebacks.listing(scope)
    return json_response({"tenant": scope.tenant, "issuer": scope.issuer, **listing})


def _admin_scope(state) -> Scope:
    """An admin request's scope (?tenant=T&issuer=I), once its admin credential is checked."""
    check_admin(state.settings, request.headers.get("Authorization"))
    tenant = request.args.get("tenant")
    if not tenant:
        raise bad_request("the 'tenant' parameter is required", expression="tenant", code="required")
    return Scope(tenant=tenant, issuer=request.args.get("issuer") or None)


@routes.get("/openapi.json")
def openapi():
    return json_response(openapi_document())


@routes.get("/healthz")
def healthz():
    return json_response({"status": "ok"})


@routes.get("/readyz")
def readyz():
    # ?store=optional: ready while the store is down too (hook calls degrade gracefully,
    # recomputing state from history), so an orchestrator keeps the replicas in service.
    state = service()
    store_ok = bool(state.store.ping())
    store_needed = request.args.get("store", "required") != "optional"
    ready = state.models.ready and (store_ok or not store_needed)
    body = {"status": "ready" if ready else "not ready", "store": state.store.describe(),
            "store_reachable": store_ok, "models": state.models.describe()}
    return json_response(body, 200 if ready else 503)


@routes.get("/metrics")
def metrics():
    state = service()
    if state.settings.metrics_token_sha256:
        check_admin(state.settings, request.headers.get("Authorization"), digest=state.settings.metrics_token_sha256)
    payload, content_type = state.metrics.render()
    return Response(payload, mimetype=None, content_type=content_type)


@routes.get("/")
def index():
    return json_response({"service": "fhir-assist CDS Hooks service", "discovery": "/cds-services",
                          "health": "/healthz", "ready": "/readyz", "metrics": "/metrics"})
