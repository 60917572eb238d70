"""FHIR R4 input: Bundles, Bulk Data NDJSON, CDS Hooks prefetch → resource dicts.

Everything here yields plain resource dicts (as parsed from JSON) and never
crashes on messy input when given an `IngestReport`: a bad line, a resource of
the wrong shape or a truncated gzip member is recorded as a problem naming the
file:line, resource and field, and reading goes on. Without a report the first
problem is raised as `FhirInputError`, which suits a single request (CDS Hooks).

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
import gzip
import json
import os
import re
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

VALIDATION_MODES = ("none", "fast", "full")
NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")


# ---------------------------------------------------------------------------
# Errors and the ingest report
# ---------------------------------------------------------------------------

class FhirInputError(ValueError):
    """A resource (or file) that cannot be read, naming where and which field.

    str() reads like
    ``data/Encounter.ndjson:17: Encounter/abc field period.start: 'not-a-date' is not a FHIR dateTime``.
    """

    def __init__(self, message: str, *, resource_type: str | None = None,
                 resource_id: str | None = None, field: str | None = None,
                 source: str | None = None):
        super().__init__(message)
        self.message = message
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.field = field
        self.source = source

    def with_source(self, source: str | None) -> "FhirInputError":
        return FhirInputError(self.message, resource_type=self.resource_type,
                              resource_id=self.resource_id, field=self.field,
                              source=source or self.source)

    def __str__(self) -> str:
        what = self.resource_type or "resource"
        if self.resource_id:
            what = f"{what}/{self.resource_id}"
        text = f"{what} field {self.field}: {self.message}" if self.field else f"{what}: {self.message}"
        return f"{self.source}: {text}" if self.source else text

    def __reduce__(self):  # keep keyword attributes across pickling (multiprocessing)
        return (_rebuild_error, (self.message, self.resource_type, self.resource_id,
                                 self.field, self.source))


def _rebuild_error(message, resource_type, resource_id, field, source):
    return FhirInputError(message, resource_type=resource_type, resource_id=resource_id,
                          field=field, source=source)


@dataclass
class Problem:
    source: str | None
    resource_type: str | None
    resource_id: str | None
    field: str | None
    message: str
    kept: bool = False   # True for full-validation sample failures: the resource was still used

    def __str__(self) -> str:
        return str(FhirInputError(self.message, resource_type=self.resource_type,
                                  resource_id=self.resource_id, field=self.field,
                                  source=self.source))


class IngestReport:
    """What was read, what was skipped and why, and which codes were not understood."""

    #: problems beyond this many are counted but not kept (a broken export can have millions)
    max_problems_kept = 1000
    #: example codes kept per system in `unknown_code_examples`
    max_examples = 20

    def __init__(self) -> None:
        self.resources: Counter = Counter()        # accepted resources by type
        self.problems: list[Problem] = []
        self.problem_count = 0
        self.skipped: Counter = Counter()          # reason -> count
        self.unknown_codes: Counter = Counter()    # system URL (or raw system) -> count
        self.unknown_code_examples: dict[str, Counter] = {}
        self.events: Counter = Counter()           # things worth knowing that are not skips
        self.files: list[str] = []
        self.validation: Counter = Counter()       # mode -> resources checked; "full-sample" too

    # -- recording ---------------------------------------------------------
    def add_problem(self, error: FhirInputError, *, skipped: str | None = "invalid resource",
                    kept: bool = False) -> None:
        self.problem_count += 1
        if len(self.problems) < self.max_problems_kept:
            self.problems.append(Problem(error.source, error.resource_type, error.resource_id,
                                         error.field, error.message, kept))
        if skipped:
            self.skipped[skipped] += 1

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] += n

    def note(self, event: str, n: int = 1) -> None:
        self.events[event] += n

    def unknown_code(self, system: str | None, code: str | None) -> None:
        key = system or "(no system)"
        self.unknown_codes[key] += 1
        examples = self.unknown_code_examples.setdefault(key, Counter())
        if code is not None and (code in examples or len(examples) < self.max_examples):
            examples[code] += 1

    def merge(self, other: "IngestReport") -> None:
        """Add another report's counts into this one (e.g. from a worker process)."""
        self.resources.update(other.resources)
        room = self.max_problems_kept - len(self.problems)
        self.problems.extend(other.problems[:max(room, 0)])
        self.problem_count += other.problem_count
        self.skipped.update(other.skipped)
        self.unknown_codes.update(other.unknown_codes)
        for system, codes in other.unknown_code_examples.items():
            mine = self.unknown_code_examples.setdefault(system, Counter())
            for code, n in codes.items():
                if code in mine or len(mine) < self.max_examples:
                    mine[code] += n
        self.events.update(other.events)
        self.files.extend(other.files)
        self.validation.update(other.validation)

    # -- output ------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "files": len(self.files),
            "resources": dict(sorted(self.resources.items())),
            "resources_total": sum(self.resources.values()),
            "validation": dict(self.validation),
            "problem_count": self.problem_count,
            "problems": [asdict(p) for p in self.problems],
            "skipped": dict(self.skipped.most_common()),
            "unknown_codes": dict(self.unknown_codes.most_common()),
            "unknown_code_examples": {s: [c for c, _ in codes.most_common()]
                                      for s, codes in self.unknown_code_examples.items()},
            "events": dict(self.events.most_common()),
        }

    def summary(self, max_problems: int = 10) -> str:
        total = sum(self.resources.values())
        lines = [f"read {total} resources from {len(self.files)} file(s)"]
        if self.resources:
            lines.append("  " + ", ".join(f"{t} {n}" for t, n in self.resources.most_common()))
        if self.problem_count:
            lines.append(f"{self.problem_count} problem(s):")
            for p in self.problems[:max_problems]:
                lines.append(f"  {p}" + ("  (kept)" if p.kept else ""))
            if self.problem_count > max_problems:
                lines.append(f"  … and {self.problem_count - max_problems} more")
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{r} {n}" for r, n in self.skipped.most_common()))
        if self.unknown_codes:
            parts = []
            for system, n in self.unknown_codes.most_common():
                examples = [c for c, _ in self.unknown_code_examples.get(system, Counter()).most_common(3)]
                parts.append(f"{system} {n}" + (f" (e.g. {', '.join(examples)})" if examples else ""))
            lines.append("unknown codes: " + "; ".join(parts))
        if self.events:
            lines.append("notes: " + ", ".join(f"{e} {n}" for e, n in self.events.most_common()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"IngestReport(resources={sum(self.resources.values())}, "
                f"problems={self.problem_count}, skipped={sum(self.skipped.values())})")


# ---------------------------------------------------------------------------
# Primitive checks (FHIR R4 regular expressions)
# ---------------------------------------------------------------------------

# FHIR's own regular expressions cost several microseconds a date; a few string
# tests plus the C-coded ISO parser give the same verdict (calendar included) in a
# fraction of that. Only the time zone is tolerated when missing, although FHIR
# requires it once a time is given: many exports omit it, and the timeline reads
# such times as UTC (and says so in the report). "full" mode applies FHIR's rules.
def _is_fhir_date(value: str) -> bool:
    n = len(value)
    if n == 4:
        return value.isdigit()
    if n == 7:
        return value[4] == "-" and value[:4].isdigit() and value[5:].isdigit() \
            and "01" <= value[5:] <= "12"
    if n != 10 or value[4] != "-" or value[7] != "-":
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_fhir_datetime(value: str) -> bool:
    n = len(value)
    if n <= 10:
        return _is_fhir_date(value)
    if n < 19 or value[10] != "T" or value[13] != ":" or value[16] != ":" \
            or not _is_fhir_date(value[:10]):
        return False
    tail = value[19:]
    if tail.endswith("Z"):
        tail = tail[:-1]
    elif len(tail) >= 6 and tail[-6] in "+-" and tail[-3] == ":":
        tail = tail[:-6]
    if tail and (tail[0] != "." or not tail[1:].isdigit()):
        return False
    if value[17:19] == "60":       # a leap second is a valid FHIR time
        value = value[:17] + "59" + value[19:]
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


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
        raise _Invalid("", f"expected a string (FHIR {kind}), got {_type_name(value)}")
    if not (_is_fhir_date(value) if kind == "date" else _is_fhir_datetime(value)):
        raise _Invalid("", f"{value!r} is not a FHIR {kind}")


def _check_date(value: Any) -> None:
    _check_datetime(value, "date")


def _check_string(value: Any) -> None:
    if type(value) is not str:
        raise _Invalid("", f"expected a string, got {_type_name(value)}")


def _check_object(value: Any, kind: str) -> None:
    if type(value) is not dict:
        raise _Invalid("", f"expected an object ({kind}), got {_type_name(value)}")


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
            raise _Invalid("." + key, f"expected a string, got {_type_name(item)}")


def _check_list(value: Any, check) -> None:
    if type(value) is not list:
        raise _Invalid("", f"expected an array, got {_type_name(value)}")
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
            raise _Invalid(".coding", f"expected an array, got {_type_name(codings)}")
        for i, coding in enumerate(codings):
            try:
                _check_coding(coding)
            except _Invalid as bad:
                raise _Invalid(f".coding[{i}]{bad.path}", bad.message) from None
    text = value.get("text")
    if text is not None and type(text) is not str:
        raise _Invalid(".text", f"expected a string, got {_type_name(text)}")


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
            raise _Invalid("." + key, f"expected a string, got {_type_name(item)}")
    data = value.get("data")
    if data is not None:
        if type(data) is not str:
            raise _Invalid(".data", f"expected a base64 string, got {_type_name(data)}")
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


@lru_cache(maxsize=None)
def _is_resource_type(name: str) -> bool:
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource
    try:
        return issubclass(get_fhir_model_class(name), Resource)
    except ValueError:
        return False


def _fast_check(resource: dict, path_prefix: str = "") -> None:
    rtype = resource["resourceType"]
    rid = resource.get("id")
    if rid is not None and (type(rid) is not str or not _ID_RE.match(rid)):
        raise _Invalid(path_prefix + "id", f"{rid!r} is not a FHIR id "
                                           "(1-64 letters, digits, '-' or '.')")
    checks = _CHECKS.get(rtype)
    if checks is None:
        if not _is_resource_type(rtype):
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
            raise _Invalid(path_prefix + "contained", f"expected an array, got {_type_name(contained)}")
        for i, inner in enumerate(contained):
            where = f"{path_prefix}contained[{i}]"
            if type(inner) is not dict:
                raise _Invalid(where, f"expected an object, got {_type_name(inner)}")
            if type(inner.get("resourceType")) is not str:
                raise _Invalid(where + ".resourceType", "missing resourceType")
            _fast_check(inner, where + ".")


def _pydantic_field(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pydantic_message(error: dict) -> str:
    msg = str(error.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    kind = error.get("type")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "not a field of this resource type"
    value = error.get("input")
    if kind in ("model_type", "model_attributes_type", "dict_type", "json_invalid", "json_type"):
        return f"expected an object, got {_type_name(value)}"
    if kind == "list_type":
        return f"expected an array, got {_type_name(value)}"
    if "DateTime" in msg or "datetime" in msg:
        return f"{value!r} is not a FHIR dateTime"
    if "Date value" in msg or "valid date" in msg:
        return f"{value!r} is not a FHIR date"
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{shown}: {msg}"


def _full_check(resource: dict, rtype: str, rid: str | None) -> None:
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError
    try:
        model = get_fhir_model_class(rtype)
    except ValueError:
        raise FhirInputError(f"{rtype!r} is not a FHIR R4 resource type",
                             resource_type=rtype, resource_id=rid, field="resourceType") from None
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": str(exc)}
        message = _pydantic_message(first)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        raise FhirInputError(message, resource_type=rtype, resource_id=rid,
                             field=_pydantic_field(tuple(first.get("loc", ()))) or None) from None


def validate_resource(resource: Any, mode: str = "full", *, source: str | None = None) -> dict:
    """Check one resource and return it unchanged; raise `FhirInputError` naming the field."""
    if mode not in VALIDATION_MODES:
        raise ValueError(f"validation mode must be one of {VALIDATION_MODES}, not {mode!r}")
    if not isinstance(resource, dict):
        raise FhirInputError(f"expected a JSON object, got {_type_name(resource)}", source=source)
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
        _full_check(resource, rtype, rid)
    except FhirInputError as exc:
        raise exc.with_source(source) from None
    return resource


# ---------------------------------------------------------------------------
# Bundles and prefetch
# ---------------------------------------------------------------------------

def _reference_aliases(entries: list) -> dict[str, str]:
    """fullUrl → "Type/id" for entries whose references may use the fullUrl form.

    Transaction bundles name new resources `urn:uuid:…` and reference them that way;
    resources without an id take it from the uuid, as a server would assign one.
    """
    aliases: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource, full_url = entry.get("resource"), entry.get("fullUrl")
        if not isinstance(resource, dict) or not isinstance(full_url, str):
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        rid = resource.get("id")
        if full_url.startswith(("urn:uuid:", "urn:oid:")):
            if not isinstance(rid, str) or not rid:
                rid = full_url.split(":", 2)[2]
        elif not isinstance(rid, str) or not rid:
            parts = full_url.rstrip("/").split("/")
            if len(parts) >= 2 and parts[-2] == rtype:
                rid = parts[-1]
        if isinstance(rid, str) and rid:
            aliases[full_url] = f"{rtype}/{rid}"
    return aliases


def _rewrite_references(node: Any, aliases: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in aliases:
                out[key] = aliases[value]
            else:
                out[key] = _rewrite_references(value, aliases)
        return out
    if isinstance(node, list):
        return [_rewrite_references(item, aliases) for item in node]
    return node


def _iter_bundle(bundle: dict, source: str | None, report: IngestReport | None,
                 depth: int = 0) -> Iterator[tuple[Any, str | None]]:
    """(resource, source) for each entry of a Bundle, nested Bundles expanded."""
    entries = bundle.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        _problem(FhirInputError(f"expected an array, got {_type_name(entries)}",
                                resource_type="Bundle", resource_id=bundle.get("id"),
                                field="entry", source=source), report)
        return
    aliases = _reference_aliases(entries)
    # Only rewrite when some fullUrl differs from the Type/id form references would use.
    rewrite = {k: v for k, v in aliases.items() if not k.endswith(v)}
    for i, entry in enumerate(entries):
        where = f"{source}:entry[{i}]" if source else f"entry[{i}]"
        if not isinstance(entry, dict):
            _problem(FhirInputError(f"expected an object, got {_type_name(entry)}",
                                    resource_type="Bundle", field=f"entry[{i}]", source=source),
                     report)
            continue
        resource = entry.get("resource")
        if resource is None:
            method = (entry.get("request") or {}).get("method") if isinstance(entry.get("request"), dict) else None
            if report is not None:
                report.skip("bundle entry with a DELETE request" if method == "DELETE"
                            else "bundle entry without a resource")
            continue
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") == "outcome":
            if report is not None:
                report.skip("search outcome (OperationOutcome) in a searchset")
            continue
        if isinstance(resource, dict):
            full_url = entry.get("fullUrl")
            rid = resource.get("id")
            if (rid is None or rid == "") and isinstance(full_url, str) and full_url in aliases:
                resource = dict(resource)
                resource["id"] = aliases[full_url].split("/", 1)[1]
            if rewrite:
                resource = _rewrite_references(resource, rewrite)
            if resource.get("resourceType") == "Bundle" and depth < 8:
                yield from _iter_bundle(resource, where, report, depth + 1)
                continue
        yield resource, where


def _problem(error: FhirInputError, report: IngestReport | None, **kwargs) -> None:
    if report is None:
        raise error
    report.add_problem(error, **kwargs)


class _Validator:
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
            _problem(exc, self.report)
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


def resources_from_bundle(bundle: Any, *, validate: str = "fast",
                          report: IngestReport | None = None,
                          source: str | None = None) -> list[dict]:
    """The resources of a Bundle (collection, searchset, transaction, batch, document…).

    Transaction entries' `urn:uuid:` fullUrls become ids and references are rewritten
    to "Type/id". Search outcomes and DELETE entries are skipped (and counted).
    Without a report the first malformed resource raises `FhirInputError`.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, dict) else _type_name(bundle)
        raise FhirInputError(f"expected a Bundle, got {got!r}", resource_type="Bundle",
                             field="resourceType", source=source)
    check = _Validator(validate, report)
    out = []
    for resource, where in _iter_bundle(bundle, source, report):
        ok = check(resource, where)
        if ok is not None:
            out.append(ok)
    return out


def resources_from_prefetch(prefetch: Any, *, validate: str = "fast",
                            report: IngestReport | None = None) -> list[dict]:
    """The resources of a CDS Hooks prefetch dict.

    Each value may be a resource, a (searchset) Bundle, a list of either, or null
    (the EHR could not or would not fetch it).
    """
    if prefetch is None:
        return []
    if not isinstance(prefetch, dict):
        raise FhirInputError(f"prefetch must be an object, got {_type_name(prefetch)}",
                             field="prefetch")
    check = _Validator(validate, report)
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()   # the same Patient often appears under several keys

    def take(resource: Any, where: str) -> None:
        ok = check(resource, where)
        if ok is None:
            return
        key = (ok["resourceType"], ok.get("id"))
        if key[1] is not None and key in seen:
            if report is not None:
                report.skip("duplicate resource in prefetch")
            return
        seen.add(key)
        out.append(ok)

    for name, value in prefetch.items():
        where = f"prefetch.{name}"
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            here = f"{where}[{i}]" if isinstance(value, list) else where
            if item is None:
                if report is not None:
                    report.skip("prefetch value is null")
                continue
            if isinstance(item, dict) and item.get("resourceType") == "Bundle":
                for resource, src in _iter_bundle(item, here, report):
                    take(resource, src)
            else:
                take(item, here)
    return out


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------

def _is_ndjson(path: Path) -> bool:
    return path.name.lower().endswith(NDJSON_SUFFIXES)


def _is_json(path: Path) -> bool:
    return path.name.lower().endswith(JSON_SUFFIXES)


def discover_files(path: str | os.PathLike) -> list[Path]:
    """The FHIR files under a directory (recursively, sorted), or the one file given."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such file or directory: {root}")
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith(".") and (_is_ndjson(p) or _is_json(p)))


class _Source:
    """A file opened for reading bytes (gunzipped if *.gz) that can tell how much of
    the file on disk has been consumed, for the progress bar."""

    def __init__(self, path: Path):
        self.raw = open(path, "rb")
        self.stream = gzip.GzipFile(fileobj=self.raw, mode="rb") \
            if path.name.lower().endswith(".gz") else self.raw
        self.reported = 0

    def advance(self, progress) -> None:
        if progress is not None:
            pos = self.raw.tell()
            progress.update(pos - self.reported)
            self.reported = pos

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()


def _is_bulk_manifest(doc: Any) -> bool:
    return isinstance(doc, dict) and "resourceType" not in doc and "output" in doc \
        and ("transactionTime" in doc or "request" in doc)


def _iter_ndjson(path: Path, check: _Validator, report: IngestReport | None,
                 progress=None) -> Iterator[dict]:
    name = str(path)
    lineno = 0
    try:
        with _Source(path) as source:
            for lineno, line in enumerate(source.stream, 1):
                if lineno % 2048 == 0:
                    source.advance(progress)
                if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                if not line.strip():
                    continue
                where = f"{name}:{lineno}"
                try:
                    item = json.loads(line)
                except ValueError as exc:   # JSONDecodeError and UnicodeDecodeError
                    _problem(FhirInputError(f"invalid JSON ({_short(exc)})", source=where), report,
                             skipped="invalid JSON")
                    continue
                if isinstance(item, dict) and item.get("resourceType") == "Bundle":
                    for resource, src in _iter_bundle(item, where, report):
                        ok = check(resource, src)
                        if ok is not None:
                            yield ok
                    continue
                ok = check(item, where)
                if ok is not None:
                    yield ok
            source.advance(progress)
    except (OSError, EOFError, zlib.error) as exc:
        # Truncated or corrupt gzip: keep what was read, name the file and the line reached.
        _problem(FhirInputError(f"unreadable file after line {lineno} ({_short(exc)})",
                                source=name), report, skipped="unreadable file (rest of it)")


def _iter_json_file(path: Path, check: _Validator, report: IngestReport | None,
                    progress=None) -> Iterator[dict]:
    name = str(path)
    try:
        with _Source(path) as source:
            raw = source.stream.read()
            source.advance(progress)
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        doc = json.loads(raw)
    except (OSError, EOFError, zlib.error) as exc:
        _problem(FhirInputError(f"unreadable file ({_short(exc)})", source=name), report,
                 skipped="unreadable file")
        return
    except ValueError as exc:
        _problem(FhirInputError(f"invalid JSON ({_short(exc)})", source=name), report,
                 skipped="invalid JSON")
        return
    if _is_bulk_manifest(doc):
        if report is not None:
            report.note("Bulk Data manifest files ignored")
        return
    items: Iterable[tuple[Any, str]]
    if isinstance(doc, list):
        items = ((item, f"{name}:[{i}]") for i, item in enumerate(doc))
    elif isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        items = _iter_bundle(doc, name, report)
    else:
        items = [(doc, name)]
    for resource, where in items:
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            nested = _iter_bundle(resource, where, report)
        else:
            nested = [(resource, where)]
        for inner, src in nested:
            ok = check(inner, src)
            if ok is not None:
                yield ok


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 120 else text[:117] + "..."


def iter_resources(path: str | os.PathLike, *, validate: str = "fast",
                   report: IngestReport | None = None, progress: bool = False,
                   full_sample: int = 0) -> Iterator[dict]:
    """Stream the resources under `path`, one dict at a time.

    `path` is a directory (searched recursively for Bulk Data `*.ndjson`/`*.ndjson.gz`
    files — several per type are fine — and Bundle `*.json` files) or one such file.
    Problems go into `report` (the resource is skipped, reading goes on); without a
    report the first problem raises `FhirInputError`. `full_sample=N` adds full
    pydantic validation of every Nth resource in "fast"/"none" mode, reported but kept.
    """
    files = discover_files(path)
    check = _Validator(validate, report, full_sample)
    bar = None
    if progress:
        from tqdm import tqdm
        total = sum(f.stat().st_size for f in files)
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="reading FHIR", leave=False,
                   mininterval=0.5)
    try:
        for file in files:
            if report is not None:
                report.files.append(str(file))
            if _is_ndjson(file):
                yield from _iter_ndjson(file, check, report, bar)
            else:
                yield from _iter_json_file(file, check, report, bar)
    finally:
        if bar is not None:
            bar.close()
