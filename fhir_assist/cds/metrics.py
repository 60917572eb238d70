"""Prometheus metrics of the service, served at /metrics.

Each app gets its own registry so several apps (tests, the demo) can live in
one process without clashing metric names. Under several server processes
(`serve --workers N`) each process writes its values to files in
PROMETHEUS_MULTIPROC_DIR and /metrics adds them up, whichever process answers.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"     # set by `serve` when it runs several processes

# An HTTP method is chosen by the caller: as a label it would grow the registry without bound.
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in _METHODS else "other"


# Hook calls should answer in ~500 ms; buckets resolve the fast path finely.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)


_PLACEHOLDER_SYSTEMS = {"(text only)": "text-only", "(no code)": "no-code", "(no system)": "no-system"}


def system_label(system) -> str:
    """The `system` label of fhir_assist_unknown_codes: a known code system by its short name
    ("snomed", "ndc", …), else "other", so senders' own URLs cannot grow the label set."""
    from mappings import codesystems
    if not isinstance(system, str) or not system:
        return "no-system"
    return _PLACEHOLDER_SYSTEMS.get(system) or codesystems.short_name(system) or "other"


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "fhir_assist_http_requests", "HTTP requests answered, by route and status",
            ["route", "method", "status"], registry=r)
        self.http_latency = Histogram(
            "fhir_assist_http_request_seconds", "Time to answer an HTTP request, by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.hook_calls = Counter(
            "fhir_assist_cds_calls", "CDS service calls, by service id, hook and outcome",
            ["service", "hook", "outcome"], registry=r)
        self.hook_latency = Histogram(
            "fhir_assist_cds_call_seconds", "Time to answer a CDS service call, by service id",
            ["service"], buckets=LATENCY_BUCKETS, registry=r)
        self.model_latency = Histogram(
            "fhir_assist_model_seconds", "Time spent in a model per call", ["model"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.cards = Counter(
            "fhir_assist_cards", "Cards returned, by service and indicator",
            ["service", "indicator"], registry=r)
        self.model_info = Gauge(
            "fhir_assist_model_info", "Loaded model artifacts (value 1), with their versions",
            ["model", "version", "task"], registry=r, multiprocess_mode="max")
        self.models_loaded = Gauge(
            "fhir_assist_models_loaded", "1 when every model the services need is loaded", registry=r,
            multiprocess_mode="max")   # the workers are forks of one app: the loading process's value
        self.state_fallbacks = Counter(
            "fhir_assist_state_fallbacks",
            "Calls that recomputed the medication state from history, by reason",
            ["reason"], registry=r)
        self.store_errors = Counter(
            "fhir_assist_store_errors", "State store operations that failed, by operation",
            ["operation"], registry=r)
        self.fhir_fetches = Counter(
            "fhir_assist_fhir_fetches", "FHIR queries made for missing prefetch data, by outcome",
            ["outcome"], registry=r)
        self.fhir_fetch_latency = Histogram(
            "fhir_assist_fhir_fetch_seconds", "Time to fetch a call's missing data from the FHIR server",
            buckets=LATENCY_BUCKETS, registry=r)
        self.prefetch_keys = Counter(
            "fhir_assist_prefetch_keys", "Prefetch keys by where their data came from",
            ["source"], registry=r)
        self.written_conditions = Counter(
            "fhir_assist_written_conditions", "Suggested Conditions written back to the FHIR server",
            registry=r)
        self.writeback_failures = Counter(
            "fhir_assist_writeback_failures", "Write-backs the FHIR server refused or could not take",
            registry=r)
        self.writeback_queued = Counter(
            "fhir_assist_writeback_queued", "Write-backs kept for retry (the FHIR server could not take them)",
            registry=r)
        self.writeback_retries = Counter(
            "fhir_assist_writeback_retries", "Retries of queued write-backs, by outcome (written, failed, given-up)",
            ["outcome"], registry=r)
        self.writeback_pending = Gauge(
            "fhir_assist_writeback_pending", "Queued write-backs seen at the last retry round",
            registry=r, multiprocess_mode="max")   # every process sees the same Redis queue
        self.auth_failures = Counter(
            "fhir_assist_auth_failures", "Refused tokens, by reason", ["reason"], registry=r)
        self.feedback = Counter(
            "fhir_assist_feedback", "Feedback entries stored, by service and outcome",
            ["service", "outcome"], registry=r)
        self.unknown_codes = Counter(
            "fhir_assist_unknown_codes", "Codes in requests the models did not recognise, by system",
            ["system"], registry=r)

    def count_unknown_codes(self, items) -> None:
        """Count codes (Code objects or {"system", "code"} dicts) the models did not recognise."""
        for item in items:
            system = getattr(item, "system", None) or (item.get("system") if isinstance(item, dict) else None)
            self.unknown_codes.labels(system=system_label(system)).inc()

    def set_models(self, versions: dict[str, tuple[str, str]], all_loaded: bool) -> None:
        for name, (version, task) in versions.items():
            self.model_info.labels(model=name, version=version, task=task).set(1)
        self.models_loaded.set(1 if all_loaded else 0)

    def render(self) -> tuple[bytes, str]:
        if os.environ.get(MULTIPROCESS_DIR):
            from prometheus_client import multiprocess
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

