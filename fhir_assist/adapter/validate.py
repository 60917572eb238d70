"""Checking resources as they are read: "none", "fast" (the fields the timeline reads) or "full" R4.

Validation modes:
  "none"  only checks that each item is a JSON object with a resourceType;
  "fast"  cheap structural checks of the fields the timeline reads (ids,
          references, codings, dates, attachments) — the default, an order of
          magnitude faster than pydantic;
  "full"  complete FHIR R4 validation with `fhir.resources.R4B`.
"fast" can also run full validation on every Nth resource (`full_sample`) to
show how far the data strays from the specification without paying for all of it.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

from fhir_assist.fhir.datetimes import is_fhir_date, is_fhir_datetime
from fhir_assist.fhir.ids import is_fhir_id
from fhir_assist.fhir.validation import InvalidResource, is_resource_type, json_type_name, validate_r4

from .report import FhirInputError, IngestReport, record_problem

VALIDATION_MODES = ("none", "fast", "full")


# Checks follow FHIR except that a missing time zone is tolerated: many exports omit
# it, and the timeline reads such times as UTC (and says so in the report). "full"
# mode applies FHIR's rules.


class _Invalid(Exception):
    """Internal: a fast check failed. `path` is relative to the value checked
    (".start", "[2].condition"): callers prefix it as the error travels up, so the
    happy path never builds a field name."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


def _within(path: str, check, value: Any) -> None:
    try:
        check(value)
    except _Invalid as bad:
        raise _Invalid(path + bad.path, bad.message) from None


def _check_datetime(value: Any, kind: str = "dateTime") -> None:
    if type(value) is not str:
        raise _Invalid("", f"expected a string (FHIR {kind}), got {json_type_name(value)}")
    if not (is_fhir_date(value) if kind == "date" else is_fhir_datetime(value)):
        raise _Invalid("", f"{value!r} is not a FHIR {kind}")


def _check_date(value: Any) -> None:
    _check_datetime(value, "date")


def _check_string(value: Any) -> None:
    if type(value) is not str:
        raise _Invalid("", f"expected a string, got {json_type_name(value)}")


def _check_object(value: Any, kind: str) -> None:
    if type(value) is not dict:
        raise _Invalid("", f"expected an object ({kind}), got {json_type_name(value)}")


def _check_reference(value: Any) -> None:
    _check_object(value, "Reference")
    ref = value.get("reference")
    if ref is not None and (type(ref) is not str or not ref.strip()):
        raise _Invalid(".reference", f"expected a non-empty string, got {ref!r}")


def _check_coding(value: Any) -> None:
    _check_object(value, "Coding")
    code = value.get("code")
    if code is not None and (type(code) is not str or not code.strip()):
        raise _Invalid(".code", f"expected a non-empty string, got {code!r}")
    for key in ("system", "display"):
        item = value.get(key)
        if item is not None and type(item) is not str:
            raise _Invalid("." + key, f"expected a string, got {json_type_name(item)}")


def _check_list(value: Any, check) -> None:
    if type(value) is not list:
        raise _Invalid("", f"expected an array, got {json_type_name(value)}")
    for i, item in enumerate(value):
        try:
            check(item)
        except _Invalid as bad:
            raise _Invalid(f"[{i}]{bad.path}", bad.message) from None


def _listed(check):
    return lambda value: _check_list(value, check)


def _check_codeable_concept(value: Any) -> None:
    _check_object(value, "CodeableConcept")
    codings = value.get("coding")
    if codings is not None:
        if type(codings) is not list:
            raise _Invalid(".coding", f"expected an array, got {json_type_name(codings)}")
        for i, coding in enumerate(codings):
            try:
                _check_coding(coding)
            except _Invalid as bad:
                raise _Invalid(f".coding[{i}]{bad.path}", bad.message) from None
    text = value.get("text")
    if text is not None and type(text) is not str:
        raise _Invalid(".text", f"expected a string, got {json_type_name(text)}")


def _check_period(value: Any) -> None:
    _check_object(value, "Period")
    for key in ("start", "end"):
        if value.get(key) is not None:
            _within("." + key, _check_datetime, value[key])


def _check_attachment(value: Any) -> None:
    _check_object(value, "Attachment")
    for key in ("contentType", "url", "title"):
        item = value.get(key)
        if item is not None and type(item) is not str:
            raise _Invalid("." + key, f"expected a string, got {json_type_name(item)}")
    data = value.get("data")
    if data is not None:
        if type(data) is not str:
            raise _Invalid(".data", f"expected a base64 string, got {json_type_name(data)}")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid(".data", "not valid base64") from None


def _check_diagnosis(value: Any) -> None:
    _check_object(value, "Encounter.diagnosis")
    condition = value.get("condition")
    if condition is None:
        raise _Invalid(".condition", "required field is missing")
    if type(condition) is not dict or (condition.get("reference") is not None
                                       and type(condition["reference"]) is not str):
        _within(".condition", _check_reference, condition)
    if value.get("use") is not None:
        _within(".use", _check_codeable_concept, value["use"])
    rank = value.get("rank")
    if rank is not None and (type(rank) is not int or rank < 1):
        raise _Invalid(".rank", f"expected a positive integer, got {rank!r}")


def _check_content(value: Any) -> None:
    _check_object(value, "DocumentReference.content")
    if "attachment" not in value:
        raise _Invalid(".attachment", "required field is missing")
    _within(".attachment", _check_attachment, value["attachment"])


def _check_doc_context(value: Any) -> None:
    _check_object(value, "DocumentReference.context")
    if value.get("encounter") is not None:
        _within(".encounter", _listed(_check_reference), value["encounter"])
    if value.get("period") is not None:
        _within(".period", _check_period, value["period"])


# field -> check, per resource type: the fields the timeline reads.
_CHECKS: dict[str, dict[str, Any]] = {
    # gender is a code: its value set is not enforced by FHIR's schema either, and
    # exports that write "M"/"F" are read by the timeline.
    "Patient": {"gender": _check_string, "birthDate": _check_date},
    "Encounter": {
        "status": _check_string, "class": _check_coding,
        "subject": _check_reference, "period": _check_period, "partOf": _check_reference,
        "diagnosis": _listed(_check_diagnosis), "reasonCode": _listed(_check_codeable_concept),
        "reasonReference": _listed(_check_reference), "type": _listed(_check_codeable_concept),
    },
    "Condition": {
        "code": _check_codeable_concept, "subject": _check_reference,
        "encounter": _check_reference, "onsetDateTime": _check_datetime,
        "onsetPeriod": _check_period,
        "recordedDate": _check_datetime, "clinicalStatus": _check_codeable_concept,
        "verificationStatus": _check_codeable_concept, "category": _listed(_check_codeable_concept),
    },
    "Procedure": {
        "status": _check_string, "code": _check_codeable_concept, "subject": _check_reference,
        "encounter": _check_reference, "performedDateTime": _check_datetime,
        "performedPeriod": _check_period,
    },
    "MedicationRequest": {
        "status": _check_string, "intent": _check_string,
        "medicationCodeableConcept": _check_codeable_concept,
        "medicationReference": _check_reference, "subject": _check_reference,
        "encounter": _check_reference, "authoredOn": _check_datetime,
    },
    "Medication": {"code": _check_codeable_concept},
    "DocumentReference": {
        "status": _check_string, "subject": _check_reference, "date": _check_datetime,
        "content": _listed(_check_content), "context": _check_doc_context,
        "type": _check_codeable_concept,
    },
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "Condition": ("subject",),
    "Procedure": ("subject",),
    "MedicationRequest": ("subject",),
    "DocumentReference": ("content",),
}


def _fast_check(resource: dict, path_prefix: str = "") -> None:
    rtype = resource["resourceType"]
    rid = resource.get("id")
    if rid is not None and not is_fhir_id(rid):
        raise _Invalid(path_prefix + "id", f"{rid!r} is not a FHIR id "
                                           "(1-64 letters, digits, '-' or '.')")
    checks = _CHECKS.get(rtype)
    if checks is None:
        if not is_resource_type(rtype):
            raise _Invalid(path_prefix + "resourceType", f"{rtype!r} is not a FHIR R4 resource type")
        return
    for key in _REQUIRED.get(rtype, ()):
        if resource.get(key) is None:
            raise _Invalid(path_prefix + key, "required field is missing")
    if rtype == "MedicationRequest" and resource.get("medicationCodeableConcept") is None \
            and resource.get("medicationReference") is None:
        raise _Invalid(path_prefix + "medication[x]", "required field is missing")
    for key, value in resource.items():
        check = checks.get(key)
        if check is not None and value is not None:
            try:
                check(value)
            except _Invalid as bad:
                raise _Invalid(path_prefix + key + bad.path, bad.message) from None
    contained = resource.get("contained")
    if contained is not None:
        if type(contained) is not list:
            raise _Invalid(path_prefix + "contained", f"expected an array, got {json_type_name(contained)}")
        for i, inner in enumerate(contained):
            where = f"{path_prefix}contained[{i}]"
            if type(inner) is not dict:
                raise _Invalid(where, f"expected an object, got {json_type_name(inner)}")
            if type(inner.get("resourceType")) is not str:
                raise _Invalid(where + ".resourceType", "missing resourceType")
            _fast_check(inner, where + ".")


def validate_resource(resource: Any, mode: str = "full", *, source: str | None = None) -> dict:
    """Check one resource and return it unchanged; raise `FhirInputError` naming the field."""
    if mode not in VALIDATION_MODES:
        raise ValueError(f"validation mode must be one of {VALIDATION_MODES}, not {mode!r}")
    if not isinstance(resource, dict):
        raise FhirInputError(f"expected a JSON object, got {json_type_name(resource)}", source=source)
    rtype = resource.get("resourceType")
    rid = resource.get("id") if isinstance(resource.get("id"), str) else None
    if not isinstance(rtype, str) or not rtype:
        raise FhirInputError("missing resourceType", resource_id=rid, field="resourceType",
                             source=source)
    if mode == "none":
        return resource
    if mode == "fast":
        try:
            _fast_check(resource)
        except _Invalid as bad:
            raise FhirInputError(bad.message, resource_type=rtype, resource_id=rid,
                                 field=bad.path, source=source) from None
        return resource
    try:
        validate_r4(resource)
    except InvalidResource as exc:
        raise FhirInputError(exc.message, resource_type=rtype, resource_id=rid, field=exc.field,
                             source=source) from None
    return resource


class Validator:
    """Validates a stream of resources in one mode, with optional full-validation sampling."""

    def __init__(self, mode: str, report: IngestReport | None, full_sample: int = 0):
        if mode not in VALIDATION_MODES:
            raise ValueError(f"validation mode must be one of {VALIDATION_MODES}, not {mode!r}")
        self.mode = mode
        self.report = report
        self.full_sample = full_sample if mode != "full" else 0
        self.seen = 0

    def __call__(self, resource: Any, source: str | None) -> dict | None:
        """The resource if it passes, else None (problem recorded or raised)."""
        try:
            validate_resource(resource, self.mode, source=source)
        except FhirInputError as exc:
            record_problem(exc, self.report)
            return None
        self.seen += 1
        report = self.report
        if report is not None:
            report.resources[resource["resourceType"]] += 1
            report.validation[self.mode] += 1
        if self.full_sample and self.seen % self.full_sample == 0:
            try:
                validate_resource(resource, "full", source=source)
            except FhirInputError as exc:
                if report is not None:
                    report.add_problem(exc, skipped=None, kept=True)
                    report.note("full-validation sample failures (resource kept)")
            if report is not None:
                report.validation["full-sample"] += 1
        return resource
