"""`fhir-assist serve`: run the CDS Hooks service (and the coder worklist at /review)."""
from __future__ import annotations

import argparse
import logging
import shutil

from fhir_assist.cli import CliError
from fhir_assist.suggest.placement import PlacementError

log = logging.getLogger("fhir_assist.serve")


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    parser = sub.add_parser(
        "serve",
        help=help_text,
        description="Serve the CDS Hooks 2.0 services (medication-change on order-select, order-sign "
        "and patient-view; coding-suggestions on encounter-discharge and patient-view), the coder "
        "worklist at /review, /healthz, /readyz and Prometheus /metrics. With no options: the bundled "
        "demo models on 127.0.0.1:8080, in-process state, and a signed JWT required on every call "
        "(add issuers with --trust). Every option has a FHIR_ASSIST_* environment twin "
        "(FHIR_ASSIST_HOST, _PORT, _REDIS_URL, _FHIR_BASE_URL, _TRUST, _NO_AUTH, _MODELS, _DEBUG); "
        "see fhir_assist/config.py for the tuning variables.",
        epilog="example: fhir-assist serve --host 0.0.0.0 --redis-url redis://localhost:6379/0 "
        "--trust https://ehr.example.org=/etc/fhir-assist/ehr-jwks.json",
    )
    add_service_options(parser)
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="server processes (default: one per CPU core); without --redis-url they share "
                        "their state in a SQLite file (FHIR_ASSIST_STATE_FILE, else a temporary one), and "
                        "one process keeps it in process")
    parser.add_argument("--debug", action="store_true", default=None,
                        help="run Flask's development server with debug logging (never in production)")
    parser.set_defaults(func=_serve)


def add_service_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8080; 0 picks a free one)")
    parser.add_argument("--redis-url", default=None, metavar="URL",
                        help="Redis for patient state, feedback and token replay checks "
                        "(default: in-process, lost on restart, one replica only)")
    parser.add_argument("--fhir-base-url", default=None, metavar="URL",
                        help="FHIR server used when a hook call names none, for write-back and the worklist")
    parser.add_argument("--target-recall", type=float, default=None, metavar="R",
                        help="recall the recommended coding list aims at, per encounter (default 0.9)")
    parser.add_argument("--trust", action="append", default=None, metavar="ISS=FILE",
                        help="trust JWTs from issuer ISS verified with FILE: a PEM public key or "
                        "certificate, a JWK or JWK Set JSON file, or an https:// JWKS URL (repeatable)")
    parser.add_argument("--public-url", default=None, metavar="URL",
                        help="this service's external base URL (e.g. https://cds.example.org): the JWT "
                        "audience callers must name; required unless --no-auth (FHIR_ASSIST_PUBLIC_URL)")
    parser.add_argument("--no-auth", action="store_true", default=None,
                        help="accept calls without a JWT (embedded demo only; logged as a warning)")
    parser.add_argument("--models", default=None, metavar="DIR",
                        help="directory with micron/, icd-ranker/ and text-coder/ artifacts "
                        "(default: the bundled demo models)")
    parser.add_argument("--device", default=None, metavar="D",
                        help="where the models run: auto (default: the CPU for the small models, a GPU when "
                        "there is one for a language-model entry), cpu, cuda or cuda:N; a model on a GPU is "
                        "served by one process (FHIR_ASSIST_DEVICE)")


def build_settings(args: argparse.Namespace):
    from fhir_assist.config import Settings, SettingsError
    try:
        return Settings.from_args(args)
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def _serve(args: argparse.Namespace) -> int:
    settings = build_settings(args)
    if settings.debug:
        logging.getLogger().setLevel(logging.DEBUG)
    from .server_processes import choose_workers, shared_state_file
    try:
        workers = 1 if settings.debug else choose_workers(settings)
    except PlacementError as exc:
        raise CliError(str(exc)) from None
    state_dir = None
    if workers > 1:
        settings, state_dir = shared_state_file(settings)
    try:
        return _serve_with(settings, workers)
    finally:
        if state_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


def _serve_with(settings, workers: int) -> int:
    from .server_processes import (freeze_startup_objects, set_compute_threads, share_metrics_between_processes,
                                   torch_threads_per_worker)

    metrics_dir = share_metrics_between_processes() if workers > 1 else None   # before the app is built
    from fhir_assist.cds import create_app

    torch_threads = torch_threads_per_worker(workers)
    set_compute_threads(torch_threads)      # before the models load, so forked workers inherit it

    try:
        app = create_app(settings)
    except ValueError as exc:      # e.g. a malformed Redis URL or key file
        raise CliError(str(exc)) from None
    state = app.extensions["fhir_assist"]
    if not state.models.ready:
        log.warning("not all models loaded (%s): /readyz answers 503 and their services 503",
                    "; ".join(f"{k}: {v}" for k, v in state.models.errors.items()))
    log.info("settings: %s", settings.describe())
    log.info("state store: %s", state.store.describe())
    if settings.debug:
        log.warning("running Flask's development server (--debug); use the default server in production")
        app.run(host=settings.host, port=settings.port, debug=True, use_reloader=False, threaded=True)
        return 0
    log.info("%d server process(es), %d thread(s) and %d torch thread(s) each", workers, settings.threads,
             torch_threads)
    freeze_startup_objects()      # after the models are loaded and warm, before any fork
    if workers > 1:
        try:
            return _serve_processes(app, state, settings, workers, torch_threads)
        finally:
            if metrics_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    from waitress import create_server

    try:
        server = create_server(app, host=settings.host, port=settings.port, threads=settings.threads,
                               ident="fhir-assist", clear_untrusted_proxy_headers=not settings.trust_proxy,
                               max_request_body_size=settings.max_request_mb * 1024 * 1024)
    except OSError as exc:
        raise CliError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
    log.info("CDS Hooks discovery at http://%s:%s/cds-services", settings.host, server.effective_port)
    try:
        server.run()
    finally:
        state.close()
        state.store.close()
    return 0


def _serve_processes(app, state, settings, workers: int, torch_threads: int) -> int:
    from .server_processes import run_gunicorn

    port = settings.port or _free_port(settings.host)   # gunicorn's workers cannot report a port 0 picked
    try:
        run_gunicorn(app, host=settings.host, port=port, workers=workers, threads=settings.threads,
                     torch_threads=torch_threads, max_body_bytes=settings.max_request_mb * 1024 * 1024,
                     on_ready=lambda: log.info("CDS Hooks discovery at http://%s:%s/cds-services",
                                               settings.host, port))
    finally:
        state.close()
        state.store.close()
    return 0


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
