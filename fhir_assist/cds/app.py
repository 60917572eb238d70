"""The Flask app: builds the service's collaborators (`CdsApp`, kept in
`app.extensions["fhir_assist"]`) and registers the module-level blueprints that use them:
`routes.routes` (discovery, hook calls, feedback, health, metrics), `http.plumbing`
(request hooks and error answers) and the coder worklist at /review when
`fhir_assist.review` is installed.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask

from ..config import Settings
from ..suggest.model_set import ModelSet, load_models
from .auth import TokenVerifier
from .catalog import CODING_SUGGESTIONS
from .http import EXTENSION, plumbing
from .metrics import ServiceMetrics
from .coding_service import CodingService
from .routes import routes
from .services import MedicationChangeService, ServiceRuntime
from .writeback import WriteBacks

log = logging.getLogger(__name__)


@dataclass
class CdsApp:
    """What the request handlers share (kept in `app.extensions["fhir_assist"]`, read by `http.service()`)."""

    settings: Settings
    store: Any
    models: ModelSet
    metrics: ServiceMetrics
    verifier: TokenVerifier | None
    executor: ThreadPoolExecutor
    runtime: ServiceRuntime
    services: dict[str, Any]
    fhir_server_factory: Callable[..., Any]

    def close(self) -> None:
        self.runtime.writebacks.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)


def make_fhir_server_factory(settings: Settings) -> Callable[..., Any]:
    """(base_url=None, token=None) → FhirServer; base_url defaults to --fhir-base-url."""

    def factory(base_url: str | None = None, token: str | None = None, **options):
        from fhir_assist.fhir_server import FhirServer
        url = base_url or settings.fhir_base_url
        if not url:
            raise ValueError("no FHIR server: give --fhir-base-url or send fhirServer in the hook request")
        options.setdefault("timeout", settings.fhir_timeout)
        options.setdefault("max_response_bytes", settings.fhir_max_response_mb * 1024 * 1024)
        options.setdefault("retries", 1)
        return FhirServer(url, token=token, **options)

    return factory


def create_app(settings: Settings | None = None, *, store: Any = None, models: ModelSet | None = None,
               fhir_server_factory: Callable[..., Any] | None = None) -> Flask:
    settings = settings or Settings()
    if store is None:
        from fhir_assist.store import open_store
        store = open_store(settings.redis_url, settings.state_file, durable=settings.state_file_durable)
    if models is None:
        models = load_models(settings.models_dir, settings.device)
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

    runtime = ServiceRuntime(settings, models, store, metrics, fhir_factory,
                             WriteBacks(store, settings, metrics, fhir_factory))
    state = CdsApp(settings, store, models, metrics, verifier,
                   ThreadPoolExecutor(max_workers=8, thread_name_prefix="fhir-fetch"), runtime,
                   {"medication-change": MedicationChangeService(runtime), CODING_SUGGESTIONS: CodingService(runtime)},
                   fhir_factory)
    app.extensions[EXTENSION] = state
    _register_review(app, settings, store, fhir_factory)
    app.register_blueprint(routes)
    app.register_blueprint(plumbing)
    return app


def _register_review(app: Flask, settings: Settings, store: Any, fhir_factory) -> None:
    try:
        from fhir_assist import review
    except ImportError as exc:
        log.info("coder review UI not installed (%s)", exc)
        return
    try:
        review.init_app(app, settings, store, fhir_factory)
    except Exception:  # noqa: BLE001 - the CDS services must start even if the worklist cannot
        log.exception("the coder review UI could not start; serving the CDS services without it")
        return
    log.info("coder review UI served at /review")
