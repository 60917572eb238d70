"""Error answers of the service, as FHIR OperationOutcome bodies.

CDS Hooks asks for an OperationOutcome with any non-2xx answer; every error the
service returns goes through `CdsError` so its body has the same shape:
one `issue` with a FHIR issue-type code, a human-readable `details.text` and,
where the problem sits in the request, the JSON path in `expression`.
"""
from __future__ import annotations

import uuid


class CdsError(Exception):
    """An error answered to the caller with `status` and an OperationOutcome body."""

    def __init__(self, status: int, code: str, message: str, *, expression: str | list[str] | None = None,
                 diagnostics: str | None = None, headers: dict[str, str] | None = None,
                 severity: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.code = code                  # FHIR IssueType: invalid, required, security, not-found, …
        self.message = message
        self.expression = [expression] if isinstance(expression, str) else list(expression or [])
        self.diagnostics = diagnostics
        self.headers = headers or {}
        self.severity = severity

    def outcome(self) -> dict:
        return operation_outcome(self.message, code=self.code, expression=self.expression,
                                 diagnostics=self.diagnostics, severity=self.severity)


def operation_outcome(message: str, *, code: str = "processing", expression: list[str] | None = None,
                      diagnostics: str | None = None, severity: str = "error") -> dict:
    issue: dict = {"severity": severity, "code": code, "details": {"text": message}}
    if diagnostics:
        issue["diagnostics"] = diagnostics
    if expression:
        issue["expression"] = list(expression)
    return {"resourceType": "OperationOutcome", "id": str(uuid.uuid4()), "issue": [issue]}


def bad_request(message: str, *, expression: str | list[str] | None = None, code: str = "invalid",
                diagnostics: str | None = None) -> CdsError:
    return CdsError(400, code, message, expression=expression, diagnostics=diagnostics)


def unauthorized(message: str) -> CdsError:
    # RFC 6750: tell the client which scheme is expected and why the token failed.
    safe = message.replace('"', "'")
    return CdsError(401, "security", message,
                    headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{safe}"'})


def precondition_failed(message: str, *, diagnostics: str | None = None,
                        expression: str | list[str] | None = None) -> CdsError:
    return CdsError(412, "processing", message, diagnostics=diagnostics, expression=expression)
