"""Prefetch templates, token substitution, and the fallback queries to the EHR's FHIR server.

A service asks the EHR (in discovery) to prefetch a few FHIR queries. The EHR
may satisfy all, some or none of them; whatever is missing we fetch ourselves
from `fhirServer` with the bearer token the EHR passed in `fhirAuthorization`,
in parallel and with a timeout per request. When neither source can supply the
data a service needs, the caller gets 412 (Precondition Failed), as CDS Hooks
prescribes.
"""
from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qsl

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
# Resource types the templates may fetch (the service only ever asks for these).
_USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


class TemplateError(ValueError):
    """A prefetch token cannot be filled from the hook context."""


def render(template: str, context: dict) -> str:
    """Fill `{{context.X}}` and `{{userPractitionerId}}`-style tokens from the hook context."""

    def fill(match: re.Match) -> str:
        token = match.group(1)
        if token.startswith("context."):
            value: Any = context
            for part in token.split(".")[1:]:
                if not isinstance(value, dict) or part not in value:
                    raise TemplateError(f"the hook context has no '{token[8:]}'")
                value = value[part]
            if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
                raise TemplateError(f"context.{token[8:]} is not a simple value")
            return str(value)
        if token in _USER_TOKENS:
            user = str(context.get("userId") or "")
            rtype, _, rid = user.partition("/")
            if rtype != _USER_TOKENS[token] or not rid:
                raise TemplateError(f"the current user is not a {_USER_TOKENS[token]}")
            return rid
        raise TemplateError(f"unsupported prefetch token {{{{{token}}}}}")

    return _TOKEN.sub(fill, template)


@dataclass(frozen=True)
class Query:
    """A rendered template: a read (`Type/id`) or a type-level search (`Type?a=b`)."""

    resource_type: str
    resource_id: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, relative_url: str) -> "Query":
        path, _, query = relative_url.partition("?")
        parts = [p for p in path.strip("/").split("/") if p]
        if len(parts) == 2 and not query:
            return cls(parts[0], parts[1])
        if len(parts) == 1:
            return cls(parts[0], None, tuple(parse_qsl(query, keep_blank_values=False)))
        raise TemplateError(f"not a FHIR read or type-level search: {relative_url!r}")


@dataclass
class PrefetchResult:
    """The data a request provides, by prefetch key, and what could not be obtained."""

    values: dict[str, Any] = field(default_factory=dict)     # key → resource / Bundle / None
    from_prefetch: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)    # key → why it is missing
    partial: dict[str, str] = field(default_factory=dict)    # key → why only part of it is here
    fetch_seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return not self.missing


def count_resources(prefetch: dict | None) -> int:
    """How many resources a prefetch holds: one per resource, one per Bundle entry."""
    total = 0
    for value in (prefetch or {}).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and item.get("resourceType") == "Bundle":
                entries = item.get("entry")
                total += len(entries) if isinstance(entries, list) else 0
            elif item is not None:
                total += 1
    return total


def usable_prefetch(prefetch: dict) -> tuple[dict, dict[str, str]]:
    """Split the EHR's prefetch into usable values and keys it reported as failed.

    An OperationOutcome under a key means the EHR tried and failed: we treat the
    key as missing (and may fetch it ourselves) rather than as patient data.
    """
    usable: dict = {}
    failed: dict[str, str] = {}
    for key, value in prefetch.items():
        if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
            failed[key] = _outcome_text(value) or "the EHR reported an error"
            continue
        usable[key] = value
    return usable, failed


def gather(templates: dict[str, str], context: dict, prefetch: dict | None, *,
           fetcher: Callable[[Query], Any] | None, executor: ThreadPoolExecutor | None,
           required: set[str], deadline_s: float) -> PrefetchResult:
    """Collect every template's data from the prefetch, fetching missing keys with `fetcher`.

    `fetcher(query)` returns a resource (read) or a list of resources (search) and
    raises on failure; None means no FHIR server is available. Keys whose tokens
    cannot be rendered from the context (e.g. no encounterId on patient-view) are
    simply not needed for this call.
    """
    result = PrefetchResult()
    given, failed = usable_prefetch(prefetch or {})
    to_fetch: dict[str, Query] = {}
    for key, template in templates.items():
        if key in given:
            result.values[key] = given[key]
            result.from_prefetch.append(key)
            continue
        try:
            query = Query.parse(render(template, context))
        except TemplateError as exc:
            if key in required:
                result.missing[key] = str(exc)
            continue
        to_fetch[key] = query
    if not to_fetch:
        return result
    if fetcher is None:
        for key in to_fetch:
            result.missing[key] = failed.get(key, "not prefetched and no FHIR server to fetch it from")
        return result
    started = time.perf_counter()
    if executor is None or len(to_fetch) == 1:
        outcomes = {key: _attempt(fetcher, query) for key, query in to_fetch.items()}
    else:
        futures = {key: executor.submit(_attempt, fetcher, query) for key, query in to_fetch.items()}
        outcomes = {}
        for key, future in futures.items():
            remaining = max(0.1, deadline_s - (time.perf_counter() - started))
            try:
                outcomes[key] = future.result(timeout=remaining)
            except Exception as exc:  # noqa: BLE001 - timeout waiting for the worker
                outcomes[key] = (None, f"timed out after {deadline_s:.0f} s ({type(exc).__name__})")
    result.fetch_seconds = time.perf_counter() - started
    for key, (value, error) in outcomes.items():
        if error is None:
            result.values[key] = value
            result.fetched.append(key)
        else:
            result.missing[key] = error
    return result


def _attempt(fetcher: Callable[[Query], Any], query: Query) -> tuple[Any, str | None]:
    try:
        return fetcher(query), None
    except Exception as exc:  # noqa: BLE001 - reported per key, never raised into the request
        # Neither the log nor the caller gets the server's own text: it may hold patient
        # data, and an answer must not relay what a foreign server said.
        log.info("fetching %s failed: %s", query.resource_type, _describe_fetch_error(exc))
        return None, _describe_fetch_error(exc)


def _describe_fetch_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    if status:
        return f"the FHIR server answered HTTP {status}"
    return f"the FHIR server is unreachable or too slow ({type(exc).__name__})"


def _outcome_text(outcome: dict) -> str:
    texts = []
    for issue in outcome.get("issue") or []:
        if isinstance(issue, dict):
            text = (issue.get("details") or {}).get("text") if isinstance(issue.get("details"), dict) else None
            texts.append(text or issue.get("diagnostics") or issue.get("code") or "")
    return "; ".join(t for t in texts if t)


def as_bundle_value(resources: list[dict] | dict | None) -> Any:
    """What a fetched search looks like when put back under its prefetch key (a searchset)."""
    if resources is None or isinstance(resources, dict):
        return resources
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r} for r in resources]}
