"""The OpenAPI 3.0 description of the service, served at /openapi.json.

It describes what the service accepts (the CDS Hooks 2.0 request and feedback
bodies, as far as a schema can) and that every error is an OperationOutcome, so
clients and API testers can generate calls from it.
"""
from __future__ import annotations

from ..fhir.ids import FHIR_ID_PATTERN
from .catalog import HOOKS, SERVICES

_OUTCOME = {"description": "an error, as a FHIR OperationOutcome",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}}}
_ERRORS = {str(code): _OUTCOME for code in (400, 401, 404, 405, 412, 413, 503)}
_FHIR_ID = {"type": "string", "pattern": f"^{FHIR_ID_PATTERN}$"}
_RESOURCE = {"type": "object", "required": ["resourceType"],
             "properties": {"resourceType": {"type": "string"}}, "additionalProperties": True}

_SCHEMAS = {
    "OperationOutcome": {
        "type": "object", "required": ["resourceType", "issue"],
        "properties": {"resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                       "issue": {"type": "array", "items": {"type": "object"}}}},
    "FhirAuthorization": {
        "type": "object", "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
        "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string", "enum": ["Bearer"]},
                       "expires_in": {"type": "integer", "minimum": 0}, "scope": {"type": "string"},
                       "subject": {"type": "string"}}},
    "HookRequest": {
        "type": "object", "required": ["hook", "hookInstance", "context"],
        "properties": {
            "hook": {"type": "string", "enum": sorted(HOOKS)},
            "hookInstance": {"type": "string", "format": "uuid"},
            "fhirServer": {"type": "string", "format": "uri"},
            "fhirAuthorization": {"$ref": "#/components/schemas/FhirAuthorization"},
            "context": {"type": "object", "required": ["userId", "patientId"], "properties": {
                "userId": {"type": "string", "pattern": "^[A-Z][A-Za-z]+/[A-Za-z0-9.-]{1,64}$"},
                "patientId": _FHIR_ID, "encounterId": _FHIR_ID,
                "selections": {"type": "array", "items": {"type": "string"}},
                "draftOrders": _RESOURCE}},
            "prefetch": {"type": "object", "additionalProperties": {"oneOf": [_RESOURCE, {"type": "null"}]}},
        }},
    "Feedback": {
        "type": "object", "required": ["feedback"],
        "properties": {"feedback": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["card", "outcome", "outcomeTimestamp"],
            "properties": {
                "card": {"type": "string"}, "outcome": {"type": "string", "enum": ["accepted", "overridden"]},
                "acceptedSuggestions": {"type": "array", "items": {
                    "type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}},
                "overrideReason": {"type": "object", "properties": {
                    "reason": {"type": "object"}, "userComment": {"type": "string"}}},
                "outcomeTimestamp": {"type": "string"}}}}}},
}


def _json_body(ref: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _ok(description: str) -> dict:
    return {"200": {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}}


def _query(name: str, description: str, *, required: bool = False, fmt: str | None = None) -> dict:
    schema = {"type": "string", "minLength": 1 if required else 0}
    if fmt:
        schema["format"] = fmt
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


# Admin functions answer only the admin credential (`cds.admin`): 404 when none is configured,
# 401 without it, 403 for any other token (an EHR's JWT included).
_ADMIN_ERRORS = {str(code): _OUTCOME for code in (400, 401, 403, 404, 405, 503)}
_SCOPE = [_query("tenant", "the tenant whose data is listed", required=True),
          _query("issuer", "only this issuer's data of the tenant")]


def _admin_paths() -> dict:
    admin = [{"admin": []}]
    feedback_filters = [_query("since", "only feedback from this moment on (FHIR dateTime)"),
                        *(_query(name, f"only feedback with this {name}")
                          for name in ("service", "outcome", "patient", "encounter", "card"))]
    return {
        "/admin/feedback": {"get": {
            "summary": "stored feedback of a tenant, for audit", "security": admin,
            "parameters": [*_SCOPE, *feedback_filters],
            "responses": {**_ok("the feedback events"), **_ADMIN_ERRORS}}},
        "/admin/writebacks": {"get": {
            "summary": "write-backs of a tenant queued for retry and given up", "security": admin,
            "parameters": _SCOPE, "responses": {**_ok("the queued and given-up write-backs"), **_ADMIN_ERRORS}}},
    }


def openapi_document(version: str = "1") -> dict:
    service_id = {"name": "service_id", "in": "path", "required": True,
                  "schema": {"type": "string", "enum": [s.id for s in SERVICES]}}
    auth = [{"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "fhir-assist CDS Hooks service", "version": version},
        "components": {"schemas": _SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "admin": {"type": "http", "scheme": "bearer",
                      "description": "the admin credential (FHIR_ASSIST_ADMIN_TOKEN_SHA256 holds its SHA-256); "
                                     "EHR tokens never grant admin functions"}}},
        "paths": {
            **_admin_paths(),
            "/cds-services": {"get": {"summary": "discovery", "security": auth,
                                      "responses": {**_ok("the services"), **_ERRORS}}},
            "/cds-services/{service_id}": {"post": {
                "summary": "a hook call", "security": auth, "parameters": [service_id],
                "requestBody": _json_body("HookRequest"),
                "responses": {**_ok("cards"), **_ERRORS}}},
            "/cds-services/{service_id}/feedback": {"post": {
                "summary": "outcomes of cards", "security": auth, "parameters": [service_id],
                "requestBody": _json_body("Feedback"),
                "responses": {**_ok("what was stored"), **_ERRORS}}},
            "/healthz": {"get": {"summary": "liveness", "responses": _ok("alive")}},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (behind the scraper's credential when one is configured)",
                "security": [{}, {"admin": []}],
                "responses": {"200": {"description": "metrics in the Prometheus text format",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}},
                              **{k: v for k, v in _ADMIN_ERRORS.items() if k in ("401", "403")}}}},
            "/openapi.json": {"get": {"summary": "this description", "responses": _ok("the OpenAPI document")}},
            "/readyz": {"get": {"summary": "readiness", "responses": {**_ok("ready"), **_ERRORS}}},
        },
    }
