"""Validation of a CDS Hooks service request body.

Everything a request can get wrong is answered here with 400 and an
OperationOutcome whose `expression` points at the offending field, before any
data is fetched or any model runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
import re

from .. import url_policy
from .catalog import HOOKS, ServiceEntry
from .errors import bad_request
from .request_checks import check_draft_orders, check_fhir_authorization, check_ids, check_prefetch

_STRING_FIELDS = ("userId", "patientId", "encounterId")
_HOOK_INSTANCE = re.compile(r"[\x21-\x7e]{1,128}")


@dataclass
class HookCall:
    entry: ServiceEntry
    hook_instance: str
    context: dict
    fhir_server: str | None
    fhir_authorization: dict | None
    prefetch: dict | None
    raw: dict
    review_url: str | None = None     # absolute URL of the coder worklist, when served
    fhir_server_refused: bool = False  # named a fhirServer outside the allow-list (not contacted)
    configured_server_allowed: bool = True   # the caller may use --fhir-base-url without naming it
    compact: Any = None               # compact_call.CompactPrefetch: the prefetch's resources as JSON bytes

    @property
    def patient_id(self) -> str:
        return _bare(self.context["patientId"], "Patient")

    @property
    def encounter_id(self) -> str | None:
        value = self.context.get("encounterId")
        return _bare(value, "Encounter") if value else None

    @property
    def user_id(self) -> str:
        return self.context["userId"]

    @property
    def access_token(self) -> str | None:
        auth = self.fhir_authorization or {}
        token = auth.get("access_token")
        return token if isinstance(token, str) and token else None

    @property
    def token_expires_in(self) -> float | None:
        value = (self.fhir_authorization or {}).get("expires_in")
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _bare(value: str, resource_type: str) -> str:
    prefix = f"{resource_type}/"
    return value[len(prefix):] if value.startswith(prefix) else value


def parse_hook_call(entry: ServiceEntry, body: Any, *, allowed_fhir_servers: tuple = ()) -> HookCall:
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object", code="structure")
    hook = body.get("hook")
    if not isinstance(hook, str) or not hook:
        raise bad_request("'hook' is required", expression="hook", code="required")
    if hook not in HOOKS:
        raise bad_request(f"unknown hook {hook!r}; this service answers {entry.hook!r}",
                          expression="hook", code="not-supported")
    if hook != entry.hook:
        raise bad_request(f"service {entry.id!r} answers the {entry.hook!r} hook, not {hook!r}",
                          expression="hook", code="not-supported")
    hook_instance = body.get("hookInstance")
    if not isinstance(hook_instance, str) or not hook_instance.strip():
        raise bad_request("'hookInstance' is required (a unique id of this hook call)",
                          expression="hookInstance", code="required")
    if not _HOOK_INSTANCE.fullmatch(hook_instance):
        # It is logged: no control characters (a newline would forge a log line).
        raise bad_request("'hookInstance' must be a short id (a UUID) of printable characters",
                          expression="hookInstance")
    context = body.get("context")
    if not isinstance(context, dict):
        raise bad_request("'context' is required and must be an object", expression="context",
                          code="required")
    _check_context(hook, context)

    for name in ("fhirServer", "fhirAuthorization", "prefetch"):
        if name in body and body[name] is None:
            raise bad_request(f"'{name}' must not be null (leave it out instead)", expression=name)
    fhir_server = body.get("fhirServer")
    refused = False
    if fhir_server is not None:
        try:
            url_policy.parse(fhir_server)
        except url_policy.UrlRefused as exc:
            raise bad_request(f"'fhirServer' must be an absolute http(s) URL ({exc})",
                              expression="fhirServer") from None
        # The service would send the EHR's token there: only to servers agreed on. Any
        # other is never contacted; the call can still be answered from its prefetch.
        refused = not url_policy.allowed(fhir_server, allowed_fhir_servers)
    auth = body.get("fhirAuthorization")
    if auth is not None:
        if not isinstance(auth, dict):
            raise bad_request("'fhirAuthorization' must be an object", expression="fhirAuthorization")
        if fhir_server is None:
            raise bad_request("'fhirAuthorization' is given, so 'fhirServer' is required",
                              expression="fhirServer", code="required")
        check_fhir_authorization(auth)
        if auth["token_type"].lower() != "bearer":
            raise bad_request("'fhirAuthorization.token_type' must be 'Bearer'",
                              expression="fhirAuthorization.token_type")
    prefetch = body.get("prefetch")
    if prefetch is not None and not isinstance(prefetch, dict):
        raise bad_request("'prefetch' must be an object of prefetch keys", expression="prefetch",
                          code="structure")
    if prefetch:
        for key, value in prefetch.items():
            if value is None or isinstance(value, dict) and isinstance(value.get("resourceType"), str):
                continue
            raise bad_request(f"prefetch key {key!r} must hold a FHIR resource, a Bundle or null",
                              expression=f"prefetch.{key}", code="structure")
        check_prefetch(entry.prefetch, context, prefetch)
    usable_server = fhir_server.rstrip("/") if fhir_server and not refused else None
    return HookCall(entry, hook_instance, context, usable_server, auth if usable_server else None,
                    prefetch, body, fhir_server_refused=refused)


def _check_context(hook: str, context: dict) -> None:
    spec = HOOKS[hook]
    for name in spec.required:
        if name not in context or context[name] in (None, "", [], {}):
            raise bad_request(f"the {hook} context requires '{name}'", expression=f"context.{name}",
                              code="required")
    for name in _STRING_FIELDS:
        if name in context and context[name] is not None:
            value = context[name]
            if not isinstance(value, str) or not value.strip():
                raise bad_request(f"context.{name} must be a non-empty string", expression=f"context.{name}")
    check_ids(context)
    if "selections" in context:
        selections = context["selections"]
        if not isinstance(selections, list) or not all(isinstance(s, str) and s for s in selections):
            raise bad_request("context.selections must be a list of 'Type/id' references",
                              expression="context.selections")
    if "draftOrders" in context:
        drafts = context["draftOrders"]
        if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
            raise bad_request("context.draftOrders must be a FHIR Bundle", expression="context.draftOrders",
                              code="structure")
        check_draft_orders(context)
