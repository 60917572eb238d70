"""Talking to the EHR's FHIR R4 server: read a patient's record, write suggested codes back.

`FhirServer(base_url, token=None, timeout=10)` wraps fhirclient's `FHIRServer` (its
requests session and bearer-token signing) and adds what a service needs in
production: per-request timeouts, paging, retries with exponential backoff on
connection errors and 5xx only, and errors that say what the server answered.

Write-back is idempotent: each suggested Condition carries an identifier derived from
(patient, encounter, code system, code) and is created with `If-None-Exist` on that
identifier, in transaction Bundles of at most 8 entries (the most a server needs to
grant serializable isolation to, and the cap of our test server), so a retried call
never creates a second Condition for the same code.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlencode

import requests
from fhirclient.auth import FHIROAuth2Auth
from fhirclient.server import FHIRServer

from urllib3.exceptions import ProtocolError, ReadTimeoutError

from mappings.codesystems import ICD9CM, ICD10CM

from . import url_policy
from .fhir.ids import RESOURCE_TYPE, bare_id
from .fhir.references import split_reference
from .fhir.validation import InvalidResource, validate_r4
from .fhir.references import reference_id
from .own_resources import (  # noqa: F401 - PROJECT_URL and the marks are used from here too
    PROJECT_URL, SUGGESTION_IDENTIFIER_SYSTEM, SUGGESTION_TAG, is_unreviewed_suggestion, verification_status,
)

log = logging.getLogger(__name__)

EXT_SUGGESTION_RANK = f"{PROJECT_URL}/StructureDefinition/suggestion-rank"
EXT_SUGGESTION_SCORE = f"{PROJECT_URL}/StructureDefinition/suggestion-score"
EXT_MODEL_VERSION = f"{PROJECT_URL}/StructureDefinition/model-version"
# Where the encounter's list was cut (RE@R) and for which target recall: the worklist draws
# its cut line from these.
EXT_CUTOFF_K = f"{PROJECT_URL}/StructureDefinition/suggestion-cutoff-k"
EXT_TARGET_RECALL = f"{PROJECT_URL}/StructureDefinition/suggestion-target-recall"

CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_VER_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
VERIFICATION_STATUSES = ("provisional", "confirmed", "refuted")
# What a suggestion of ours becomes when a later call no longer recommends it.
SUPERSEDED = "entered-in-error"

# What a model needs from a patient's record, fetched by patient_resources().
PATIENT_RESOURCE_TYPES = ("Encounter", "Condition", "Procedure", "MedicationRequest", "DocumentReference")

FHIR_JSON = "application/fhir+json"
MAX_TRANSACTION_ENTRIES = 8
DEFAULT_PAGE_SIZE = 100
FRESH_SEARCH = {"Cache-Control": "no-cache"}
MAX_PAGES = 1000
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class FhirAccessError(Exception):
    """Base of the errors below."""


class FhirServerError(FhirAccessError):
    """The FHIR server answered with an error (4xx, or 5xx after retries for writes that
    cannot be retried). `.status` is the HTTP status, `.outcome` the OperationOutcome
    (a dict) when the server sent one."""

    def __init__(self, status: int | None, message: str, outcome: dict | None = None):
        super().__init__(message)
        self.status = status
        self.outcome = outcome


class FhirServerUnavailable(FhirAccessError):
    """The FHIR server could not be reached, timed out, or kept answering 5xx after the
    retries. `.status` is the last HTTP status seen (None for network errors)."""

    def __init__(self, message: str, status: int | None = None, outcome: dict | None = None):
        super().__init__(message)
        self.status = status
        self.outcome = outcome


def outcome_message(outcome: Any) -> str | None:
    """The human-readable text of an OperationOutcome's issues, if any."""
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return None
    texts = []
    for issue in outcome.get("issue") or []:
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
        where = ", ".join(issue.get("expression") or issue.get("location") or [])
        if text:
            texts.append(f"{text} ({where})" if where else str(text))
    return "; ".join(texts) or None


@dataclass(frozen=True)
class SuggestedCode:
    """What write-back needs of a suggestion; `CodeSuggestion` objects and dicts with the
    same names are accepted too."""

    system: str
    code: str
    display: str | None = None
    score: float | None = None
    rank: int | None = None


def _field(obj: Any, name: str, default=None):
    if isinstance(obj, (dict, Mapping)):      # a plain dict first: typing's Mapping check is slow
        return obj.get(name, default)
    return getattr(obj, name, default)


def suggestion_identifier(patient_id: str, encounter_id: str, system: str, code: str) -> str:
    """Stable identifier value of the suggested Condition for this code at this encounter."""
    key = "|".join((patient_id, encounter_id, system, code))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def build_suggested_condition(patient_id: str, encounter_id: str, suggestion: Any, model_version: str,
                              *, recorded: datetime | None = None, validation: str = "full", cutoff_k: int | None = None,
                              target_recall: float | None = None) -> dict:
    """The provisional Condition for one suggested ICD code, validated with fhir.resources.

    `validation="fast"` (the hook path: a card carries one per shown code) checks it with the
    adapter's structural checker instead; the shape is fixed here and every free value is
    checked above, and full R4 validation costs ~10 ms a Condition. Whatever reaches a FHIR
    server goes through `create_condition`/`write_suggested_conditions`, fully validated."""
    patient_id = bare_id(patient_id, "Patient")
    encounter_id = bare_id(encounter_id, "Encounter")
    system = _field(suggestion, "system")
    code = _field(suggestion, "code")
    if system not in (ICD10CM, ICD9CM):
        raise ValueError(f"write-back takes ICD-10-CM or ICD-9-CM codes, got system {system!r} for code {code!r}")
    if not code or not isinstance(code, str):
        raise ValueError(f"a suggestion needs a code, got {code!r}")
    display = _field(suggestion, "display")
    rank = _field(suggestion, "rank")
    score = _field(suggestion, "score")

    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    extensions = []
    if rank is not None:
        extensions.append({"url": EXT_SUGGESTION_RANK, "valueInteger": int(rank)})
    if score is not None:
        extensions.append({"url": EXT_SUGGESTION_SCORE, "valueDecimal": round(float(score), 6)})
    extensions.append({"url": EXT_MODEL_VERSION, "valueString": str(model_version)})
    if cutoff_k:
        extensions.append({"url": EXT_CUTOFF_K, "valueInteger": int(cutoff_k)})
    if target_recall is not None:
        extensions.append({"url": EXT_TARGET_RECALL, "valueDecimal": round(float(target_recall), 4)})
    when = (recorded or datetime.now(timezone.utc)).astimezone(timezone.utc)
    condition = {
        "resourceType": "Condition",
        "meta": {"tag": [dict(SUGGESTION_TAG)]},
        "extension": extensions,
        "identifier": [{
            "system": SUGGESTION_IDENTIFIER_SYSTEM,
            "value": suggestion_identifier(patient_id, encounter_id, system, code),
        }],
        "verificationStatus": {"coding": [{"system": CONDITION_VER_STATUS, "code": "provisional",
                                           "display": "Provisional"}]},
        "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis",
                                  "display": "Encounter Diagnosis"}]}],
        "code": {"coding": [coding], **({"text": display} if display else {})},
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
        "recordedDate": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if validation == "fast":
        from fhir_assist.adapter.validate import validate_resource
        return validate_resource(condition, "fast")
    return validate_r4(condition)


def _if_none_exist(condition: dict) -> str:
    ident = condition["identifier"][0]
    return urlencode({"identifier": f"{ident['system']}|{ident['value']}"})


def conditional_create_bundle(conditions: list[dict]) -> dict:
    """A transaction Bundle creating each suggested Condition unless one with its identifier
    exists: conditional creates make the whole transaction safe to resend."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{
            "fullUrl": f"urn:uuid:{_uuid_for(c)}",
            "resource": c,
            "request": {"method": "POST", "url": "Condition", "ifNoneExist": _if_none_exist(c)},
        } for c in conditions],
    }


class FhirServer:
    """A FHIR R4 server at `base_url`, optionally with a bearer `token` (the access token
    of a CDS Hooks `fhirAuthorization`). `timeout` is seconds per HTTP request."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10, *,
                 retries: int = 3, backoff_s: float = 0.25, max_backoff_s: float = 4.0,
                 deadline_s: float | None = None, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES):
        try:
            url_policy.parse(base_url)
        except url_policy.UrlRefused as exc:
            raise ValueError(f"the FHIR base URL must be an http(s) URL ({exc}), got {base_url!r}") from None
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        # Per-request timeouts alone let a server that drips bytes hold a call for ever:
        # every request of this object also ends at one overall deadline.
        self.deadline = time.monotonic() + deadline_s if deadline_s else None
        self.max_response_bytes = int(max_response_bytes)
        self.retries = max(0, int(retries))
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._server = FHIRServer(None, base_uri=self.base_url + "/")
        if token:
            auth = FHIROAuth2Auth()
            auth.access_token = token
            self._server.auth = auth
        self.session: requests.Session = self._server.session

    @classmethod
    def from_cds_request(cls, fhir_server: str, fhir_authorization: Mapping[str, Any] | None,
                         timeout: float = 10, **options) -> "FhirServer":
        """From a CDS Hooks request's `fhirServer` and `fhirAuthorization` fields."""
        token = (fhir_authorization or {}).get("access_token")
        return cls(fhir_server, token=token, timeout=timeout, **options)

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"FhirServer({self.base_url!r})"

    # ------------------------------------------------------------------ HTTP
    def _url(self, path: str) -> str:
        if not path.strip("/"):
            return self.base_url   # transactions and batches go to the base itself
        # Paging links come from the server (or a prefetch Bundle): whatever their case,
        # spacing or dot segments, the token is never sent outside this server's base URL.
        link = path if "://" in path or path.startswith("//") else path.lstrip("/")
        try:
            return url_policy.resolve_link(self.base_url, link)
        except url_policy.UrlRefused as exc:
            raise FhirServerError(None, f"refused a link: {exc}") from None

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FhirServerUnavailable(f"FHIR server {self.base_url}: the call's deadline has passed")
        return left

    def _read_body(self, response: requests.Response) -> None:
        """Read the body in pieces, stopping at the size cap and at the deadline."""
        chunks, total = [], 0
        try:
            while True:
                self._remaining()
                chunk = response.raw.read1(65536, decode_content=True)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.max_response_bytes:
                    raise FhirServerUnavailable(f"FHIR server {self.base_url}: the answer is larger than "
                                                f"{self.max_response_bytes} bytes", response.status_code)
                chunks.append(chunk)
        except (requests.RequestException, OSError, ProtocolError, ReadTimeoutError) as exc:
            raise requests.ConnectionError(f"reading the answer failed: {type(exc).__name__}") from None
        finally:
            response.close()
        response._content = b"".join(chunks)
        response._content_consumed = True

    def _headers(self, extra: Mapping[str, str] | None) -> dict:
        headers = {"Accept": FHIR_JSON, "User-Agent": "fhir-assist"}
        if extra:
            headers.update(extra)
        auth = self._server.auth
        if auth is not None and auth.can_sign_headers():
            headers = auth.signed_headers(headers)
        return headers

    def request(self, method: str, path: str, *, params=None, body: Any = None,
                headers: Mapping[str, str] | None = None, retry: bool = True) -> requests.Response:
        """One FHIR interaction with timeouts and, when `retry`, retries with exponential
        backoff on connection errors, timeouts and 5xx. 4xx raise FhirServerError at once."""
        url = self._url(path)
        data = None
        all_headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            all_headers.setdefault("Content-Type", f"{FHIR_JSON}; charset=utf-8")
        attempts = 1 + (self.retries if retry else 0)
        last_error = ""
        last_status = None
        last_outcome = None
        for attempt in range(attempts):
            if attempt:
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                left = self._remaining()
                if left is not None and left <= delay:
                    break
                log.info("retrying %s on %s in %.2f s (%s)", method, self.base_url, delay,
                         last_status or "no answer")
                time.sleep(delay)
            timeout = self.timeout
            if (left := self._remaining()) is not None:
                timeout = min(timeout, left)
            try:
                # Redirects are not followed: a Location header could name another host.
                response = self.session.request(
                    method, url, params=params, data=data, headers=self._headers(all_headers),
                    timeout=(min(timeout, 5.0), timeout), stream=True, allow_redirects=False)
                self._read_body(response)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_error, last_status, last_outcome = f"{type(exc).__name__}: {exc}", None, None
                continue
            except requests.RequestException as exc:
                raise FhirServerError(None, f"{method} {url} failed: {exc}") from exc
            if 300 <= response.status_code < 400:
                raise FhirServerError(response.status_code, f"{method} {url} → HTTP {response.status_code}: "
                                      "redirects are not followed")
            if response.status_code < 400:
                return response
            outcome = _json_or_none(response)
            message = outcome_message(outcome) or (response.text or "").strip()[:300] or response.reason
            if response.status_code >= 500:
                last_error = f"HTTP {response.status_code}: {message}"
                last_status, last_outcome = response.status_code, outcome
                continue
            raise FhirServerError(response.status_code,
                                  f"{method} {url} → HTTP {response.status_code}: {message}", outcome)
        if not retry and last_status is not None:
            raise FhirServerError(last_status, f"{method} {url} → {last_error}", last_outcome)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        raise FhirServerUnavailable(f"FHIR server {self.base_url} unavailable{tries}: {method} {url}: {last_error}",
                                    last_status, last_outcome)

    def _json(self, response: requests.Response) -> dict:
        body = _json_or_none(response)
        if not isinstance(body, dict):
            raise FhirServerError(response.status_code,
                                  f"{response.request.method} {response.url}: the server did not answer with FHIR JSON")
        return body

    # ------------------------------------------------------------------ reading
    def capability_statement(self) -> dict:
        return self._json(self.request("GET", "metadata"))

    def read(self, resource_type: str, resource_id: str) -> dict:
        """GET [type]/[id]; a missing resource raises FhirServerError with status 404."""
        resource_id = bare_id(resource_id, resource_type)
        return self._json(self.request("GET", f"{resource_type}/{resource_id}"))

    def search(self, resource_type: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
               *, max_results: int | None = None) -> list[dict]:
        """All resources of `resource_type` matching `params`, following `next` links.
        Resources a server adds with search.mode "include"/"outcome" are left out."""
        if not RESOURCE_TYPE.fullmatch(str(resource_type)):
            raise ValueError(f"not a FHIR resource type: {resource_type!r}")
        query = list(params.items() if isinstance(params, Mapping) else (params or []))
        if not any(k == "_count" for k, _ in query):
            query.append(("_count", DEFAULT_PAGE_SIZE))
        results: list[dict] = []
        url: str | None = resource_type
        page_params: Any = query
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            # HAPI answers a repeated search from a cache (60 s by default) that misses what
            # was written since; no-cache asks for a fresh search.
            bundle = self._json(self.request("GET", url, params=page_params, headers=FRESH_SEARCH))
            if bundle.get("resourceType") != "Bundle":
                raise FhirServerError(200, f"search {resource_type}: expected a Bundle, got {bundle.get('resourceType')}")
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource")
                mode = (entry.get("search") or {}).get("mode", "match")
                if isinstance(resource, dict) and mode == "match" and resource.get("resourceType") == resource_type:
                    results.append(resource)
            if max_results is not None and len(results) >= max_results:
                return results[:max_results]
            next_url = next((link.get("url") for link in bundle.get("link") or []
                             if link.get("relation") == "next" and link.get("url")), None)
            if not next_url or next_url in seen:
                return results
            seen.add(next_url)
            url, page_params = next_url, None
        raise FhirServerError(None, f"search {resource_type}: more than {MAX_PAGES} pages; narrow the search")

    def patient_resources(self, patient_id: str) -> list[dict]:
        """The Patient and its Encounters, Conditions, Procedures, MedicationRequests and
        DocumentReferences (every page). A missing patient raises FhirServerError (404)."""
        patient_id = bare_id(patient_id, "Patient")
        resources = [self.read("Patient", patient_id)]
        for resource_type in PATIENT_RESOURCE_TYPES:
            resources.extend(self.search(resource_type, {"patient": f"Patient/{patient_id}"}))
        return resources

    # ------------------------------------------------------------------ writing
    def create_condition(self, condition: Mapping[str, Any], *, if_none_exist: str | None = None) -> dict:
        """POST one Condition (validated first). With `if_none_exist` (a search query such as
        "identifier=system|value") the create is conditional and therefore retried safely."""
        condition = validate_r4(condition)
        if condition.get("resourceType") != "Condition":
            raise InvalidResource(f"expected a Condition, got {condition.get('resourceType')}")
        headers = {"Prefer": "return=representation"}
        if if_none_exist:
            headers["If-None-Exist"] = if_none_exist
        response = self.request("POST", "Condition", body=condition, headers=headers, retry=bool(if_none_exist))
        body = _json_or_none(response)
        if isinstance(body, dict) and body.get("resourceType") == "Condition":
            return body
        return self._read_location(response.headers.get("Location") or response.headers.get("Content-Location"),
                                   "Condition")

    def write_suggested_conditions(self, patient_id: str, encounter_id: str, suggestions: Iterable[Any],
                                   model_version: str, **marks: Any) -> list[dict]:
        """Write each suggested ICD code as a provisional encounter-diagnosis Condition.

        Idempotent: the same call repeated (a retried hook, a second discharge event) finds
        the Conditions it wrote before instead of creating new ones, and leaves them as they
        are (a coder's confirmed/refuted status is kept). Returns the Conditions as stored
        on the server, one per distinct (system, code), in suggestion order."""
        conditions: list[dict] = []
        seen: set[tuple[str, str]] = set()
        for suggestion in suggestions:
            key = (_field(suggestion, "system"), _field(suggestion, "code"))
            if key in seen:
                continue
            seen.add(key)
            conditions.append(build_suggested_condition(patient_id, encounter_id, suggestion, model_version,
                                                        **marks))
        stored: list[dict] = []
        for start in range(0, len(conditions), MAX_TRANSACTION_ENTRIES):
            stored.extend(self._create_conditional_batch(conditions[start:start + MAX_TRANSACTION_ENTRIES]))
        # A code suggested again after an earlier call superseded it comes back to life.
        return [self._set_verification(c["id"], "provisional", f"suggested again by {model_version}")
                if verification_status(c) == SUPERSEDED and c.get("id") else c for c in stored]

    def supersede_suggestions(self, patient_id: str, encounter_id: str, keep: Iterable[tuple[str, str]],
                              model_version: str) -> list[dict]:
        """Mark `entered-in-error` the provisional Conditions we suggested earlier for this
        encounter whose (system, code) is not in `keep`: the data changed and the current
        models no longer recommend them. Conditions a coder reviewed are left alone. The
        superseded ones stay on the server (with a note) so the audit trail is whole."""
        patient_id = bare_id(patient_id, "Patient")
        encounter_id = bare_id(encounter_id, "Encounter")
        keep = set(keep)
        out = []
        for condition in self.search("Condition", {"encounter": f"Encounter/{encounter_id}"}):
            if not is_unreviewed_suggestion(condition) or not condition.get("id"):
                continue
            if reference_id(condition.get("subject"), "Patient") != patient_id:
                continue
            codes = {(c.get("system"), c.get("code")) for c in (condition.get("code") or {}).get("coding") or []
                     if isinstance(c, dict)}
            if codes & keep:
                continue
            out.append(self._set_verification(condition["id"], SUPERSEDED,
                                              f"superseded: no longer suggested by {model_version}"))
        return out

    def _create_conditional_batch(self, conditions: list[dict]) -> list[dict]:
        bundle = conditional_create_bundle(conditions)
        response = self.request("POST", "", body=bundle, headers={"Prefer": "return=representation"})
        reply = self._json(response)
        entries = reply.get("entry") or []
        if reply.get("resourceType") != "Bundle" or len(entries) != len(conditions):
            raise FhirServerError(response.status_code,
                                  f"transaction answered with {len(entries)} entries for {len(conditions)} Conditions")
        stored = []
        for entry in entries:
            resource = entry.get("resource")
            if not (isinstance(resource, dict) and resource.get("resourceType") == "Condition"):
                resource = self._read_location((entry.get("response") or {}).get("location"), "Condition")
            stored.append(resource)
        return stored

    def _read_location(self, location: str | None, resource_type: str) -> dict:
        if not location:
            raise FhirServerError(None, f"the server created a {resource_type} but gave no location")
        kind, rid = split_reference(location)
        if kind != resource_type or not rid:
            raise FhirServerError(None, f"unexpected location {location!r} for a {resource_type}")
        return self.read(resource_type, rid)

    def update_condition_status(self, condition_id: str, status: str, reason: str | None = None,
                                *, user: str | None = None) -> dict:
        """Set a Condition's verificationStatus (confirmed | refuted | provisional), adding
        `reason` as a note. The update is version-aware (If-Match on the version read), and
        re-applied on a fresh read if someone else changed the Condition in between."""
        if status not in VERIFICATION_STATUSES:
            raise ValueError(f"status must be one of {', '.join(VERIFICATION_STATUSES)}, got {status!r}")
        return self._set_verification(condition_id, status, reason, user=user)

    def _set_verification(self, condition_id: str, status: str, reason: str | None = None,
                          *, user: str | None = None) -> dict:
        condition_id = bare_id(condition_id, "Condition")
        for _ in range(3):
            current = self.read("Condition", condition_id)
            updated = dict(current)
            updated["verificationStatus"] = {"coding": [{"system": CONDITION_VER_STATUS, "code": status,
                                                         "display": status.capitalize().replace("-", " ")}]}
            if reason:
                note = {"text": reason, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")
                        .replace("+00:00", "Z")}
                if user:
                    note["authorString"] = user
                updated["note"] = [*(current.get("note") or []), note]
            validate_r4(updated)
            headers = {"Prefer": "return=representation"}
            version = (current.get("meta") or {}).get("versionId")
            if version:
                headers["If-Match"] = f'W/"{version}"'
            try:
                response = self.request("PUT", f"Condition/{condition_id}", body=updated, headers=headers)
            except FhirServerError as exc:
                if exc.status in (409, 412):   # changed since we read it: read again, re-apply
                    continue
                raise
            body = _json_or_none(response)
            if isinstance(body, dict) and body.get("resourceType") == "Condition":
                return body
            return self.read("Condition", condition_id)
        raise FhirServerError(412, f"Condition/{condition_id} kept changing while its status was updated")


def error_kind(exc: BaseException) -> str:
    """What went wrong, for logs: the HTTP status or the exception's type, never the
    server's own text or the URL (either can carry patient data)."""
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}, HTTP {status}" if status else type(exc).__name__


def _uuid_for(condition: dict) -> str:
    # A placeholder id for the transaction entry; lower-case as servers require.
    digest = condition["identifier"][0]["value"]
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def _json_or_none(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
