"""Strict checks of the parts of a hook request that the first pass only shape-checks.

Each check raises a 400 CdsError naming the field: ids that are not FHIR ids,
`fhirAuthorization` members of the wrong type, draft orders without resources,
selections that name no draft order, prefetch values of the wrong resource type or
Bundle type, and JSON nested deeper than any FHIR resource needs.
"""
from __future__ import annotations

from typing import Any

from ..fhir.datetimes import is_fhir_instant
from ..fhir.ids import RELATIVE_REFERENCE, is_fhir_id
from .errors import bad_request
from .prefetch import Query, TemplateError, render

MAX_JSON_DEPTH = 64      # a FHIR resource in a Bundle needs well under 20 levels


def check_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise 400 for JSON nested deeper than `limit`. The recursion stops at `limit`, so a
    hostile nesting cannot exhaust the stack; recursion rather than an explicit stack
    because this runs on every hook body and is several times faster."""
    if type(value) is dict or type(value) is list:
        _check_depth(value, 1, limit)


def _check_depth(item: Any, depth: int, limit: int) -> None:
    if depth > limit:
        raise bad_request(f"the request body is nested deeper than {limit} levels", code="too-costly")
    for child in (item.values() if type(item) is dict else item):
        if type(child) is dict or type(child) is list:
            _check_depth(child, depth + 1, limit)


def check_ids(context: dict) -> None:
    for name in ("patientId", "encounterId"):
        value = context.get(name)
        if value is not None and not is_fhir_id(value):
            raise bad_request(f"context.{name} must be a FHIR id (letters, digits, '-' and '.', at most 64; "
                              "not a reference)", expression=f"context.{name}")
    user = context.get("userId")
    if user is not None and not (isinstance(user, str) and RELATIVE_REFERENCE.fullmatch(user)):
        raise bad_request("context.userId must be a FHIR reference such as 'Practitioner/123'",
                          expression="context.userId")


def check_fhir_authorization(auth: dict) -> None:
    """CDS Hooks 2.0 §fhirAuthorization: every member is required, with these JSON types."""
    for name, kind, label in (("access_token", str, "a string"), ("token_type", str, "a string"),
                              ("expires_in", int, "a whole number of seconds"),
                              ("scope", str, "a string of space-separated scopes"),
                              ("subject", str, "a string")):
        value = auth.get(name)
        if value is None:
            raise bad_request(f"'fhirAuthorization.{name}' is required", code="required",
                              expression=f"fhirAuthorization.{name}")
        if not isinstance(value, kind) or isinstance(value, bool) or value == "":
            raise bad_request(f"'fhirAuthorization.{name}' must be {label}",
                              expression=f"fhirAuthorization.{name}")
    if auth["expires_in"] < 0:
        raise bad_request("'fhirAuthorization.expires_in' must not be negative",
                          expression="fhirAuthorization.expires_in")


def check_draft_orders(context: dict) -> None:
    drafts = context.get("draftOrders")
    if drafts is None:
        return
    entries = drafts.get("entry", [])
    where = "context.draftOrders"
    if not isinstance(entries, list):
        raise bad_request("context.draftOrders.entry must be a list", expression=f"{where}.entry")
    refs = set()
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not (isinstance(resource, dict) and isinstance(resource.get("resourceType"), str)):
            raise bad_request(f"context.draftOrders.entry[{i}] has no resource",
                              expression=f"{where}.entry[{i}]", code="structure")
        if isinstance(resource.get("id"), str):
            refs.add(f"{resource['resourceType']}/{resource['id']}")
    check_bundle_fields(drafts, where)
    for i, selection in enumerate(context.get("selections") or []):
        if selection not in refs:
            raise bad_request(f"context.selections[{i}] names no order in context.draftOrders",
                              expression=f"context.selections[{i}]")


def check_prefetch(templates: dict[str, str], context: dict, prefetch: dict) -> None:
    """Each prefetch value must be what its template asked for: the resource read, or a
    searchset Bundle for a search (an OperationOutcome says the EHR could not get it)."""
    for key, value in prefetch.items():
        where = f"prefetch.{key}"
        if value is None or value.get("resourceType") == "OperationOutcome" or key not in templates:
            continue
        try:
            query = Query.parse(render(templates[key], context))
        except TemplateError:
            continue
        rtype = value.get("resourceType")
        if query.resource_id is not None:
            if rtype != query.resource_type or value.get("id") not in (None, query.resource_id):
                raise bad_request(f"{where} must be {query.resource_type}/{query.resource_id}, "
                                  f"as its template asks", expression=where, code="structure")
        elif rtype != "Bundle" or value.get("type") != "searchset":
            raise bad_request(f"{where} must be a searchset Bundle (its template is a search)",
                              expression=where, code="structure")
        check_bundle_fields(value, where)


def check_bundle_fields(value: Any, where: str) -> None:
    """Bundle.type / total and meta.lastUpdated, in this value and every resource under it."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if not isinstance(item, dict):
            continue
        meta = item.get("meta")
        if meta is not None:
            updated = meta.get("lastUpdated") if isinstance(meta, dict) else None
            if not isinstance(meta, dict) or ("lastUpdated" in meta and not (
                    is_fhir_instant(updated))):
                raise bad_request(f"{path}.meta.lastUpdated must be a FHIR instant",
                                  expression=f"{path}.meta.lastUpdated")
        if item.get("resourceType") != "Bundle":
            continue
        if not isinstance(item.get("type"), str):
            raise bad_request(f"{path}.type must be a string", expression=f"{path}.type")
        total = item.get("total")
        if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
            raise bad_request(f"{path}.total must be a whole number", expression=f"{path}.total")
        entries = item.get("entry", [])
        if not isinstance(entries, list):
            raise bad_request(f"{path}.entry must be a list", expression=f"{path}.entry")
        for i, entry in enumerate(entries):
            if isinstance(entry, dict):
                stack.append((entry.get("resource"), f"{path}.entry[{i}].resource"))
