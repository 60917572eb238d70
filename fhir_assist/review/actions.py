"""Applying a coder's decision: FHIR server first, then the feedback store.

A decision is written to the FHIR record and then recorded as a feedback label. When
either refuses, the decision is kept in the pending-actions queue (one entry per code
of an encounter, so repeating or retrying can never apply it twice) and the page
offers a retry. Every FHIR write is idempotent: a status update sets a value, and a
coder-added Condition is created conditionally on its identifier.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from fhir_assist.fhir.validation import InvalidResource
from fhir_assist.fhir_server import (CONDITION_CATEGORY, CONDITION_VER_STATUS, FhirAccessError,
                                     FhirServerError, FhirServerUnavailable, error_kind,
                                     outcome_message)
from fhir_assist.store import StoreUnavailable

from . import fhir_marks
from .conditions import parse_condition
from .pending import Action, PendingActions

log = logging.getLogger(__name__)

SOURCE = "coder-review"
STATUS_FOR = {"accept": "confirmed", "reject": "refuted", "reopen": "provisional", "add": "confirmed"}
LABEL_FOR = {"accept": 1, "add": 1, "reject": 0}
VERB = {"accept": "accepted", "reject": "rejected", "reopen": "reopened", "add": "added"}


@dataclass
class Outcome:
    ok: bool
    message: str
    condition_id: str | None = None
    pending: bool = False


def describe_fhir_error(exc: Exception) -> str:
    """A sentence for the coder; the full error goes to the log."""
    if isinstance(exc, FhirServerUnavailable):
        return "the server could not be reached or did not answer in time"
    if isinstance(exc, FhirServerError):
        detail = outcome_message(exc.outcome) or ""
        status = f"HTTP {exc.status}" if exc.status else "an error"
        return f"it answered {status}" + (f" ({detail[:200]})" if detail else "")
    if isinstance(exc, InvalidResource):
        return f"the Condition would not be valid FHIR ({str(exc)[:200]})"
    return str(exc)[:200]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def feedback_event(action: Action, condition_id: str | None) -> dict:
    """The feedback label recorded for a decision (the export's format, plus audit fields)."""
    event = {
        "source": SOURCE,
        "action": action.kind,
        "patient": action.patient,
        "encounter": action.encounter,
        "system": action.system,
        "code": action.code,
        "label": LABEL_FOR.get(action.kind),      # None for `reopen`: the label is withdrawn
        "user": action.user,
        "at": action.at,
        "model_version": action.model_version,
        "condition": condition_id,
        "action_id": action.id,
    }
    if action.reason:
        event["reason"] = action.reason
    if action.display:
        event["display"] = action.display
    return event


class NotOurs(Exception):
    """The Condition a decision names is not one this service suggested for that encounter."""


def is_ours(resource: dict, action: Action) -> bool:
    """A Condition this service wrote (suggested, or added from the worklist) for the
    decision's own patient and encounter: the only ones a coder's decision may change."""
    marks = fhir_marks.read_marks(resource)
    encounter = (resource.get("encounter") or {}).get("reference")
    subject = (resource.get("subject") or {}).get("reference")
    return ((marks.suggested or marks.coder_added) and encounter == f"Encounter/{action.encounter}"
            and subject == f"Patient/{action.patient}")


def check_ours(resource: dict, action: Action) -> None:
    if not is_ours(resource, action):
        raise NotOurs("that Condition was not suggested by this service for this encounter")


class ActionRunner:
    def __init__(self, store, pending: PendingActions, tenant: str):
        self.store = store
        self.pending = pending
        self.tenant = tenant

    def apply(self, fhir, action: Action) -> Outcome:
        what = f"{action.code} {VERB[action.kind]}"
        condition_id = action.condition_id
        if not action.fhir_done:
            try:
                condition_id = self._write(fhir, action)
            except NotOurs as exc:
                log.warning("coder decision %s refused: %s", action.id, exc)
                return Outcome(False, f"“{what}” was not saved: {exc}.", action.condition_id)
            except (FhirAccessError, InvalidResource) as exc:
                log.warning("FHIR write of %s failed: %s", action.id, error_kind(exc))
                return self._keep(action, f"The FHIR server did not take “{what}”: {describe_fhir_error(exc)}. "
                                          "The decision is kept and can be retried.")
            action.fhir_done = True
            action.condition_id = condition_id
        try:
            self.store.record_feedback(self.tenant, feedback_event(action, condition_id))
        except StoreUnavailable as exc:
            log.warning("feedback of %s not recorded: %s", action.id, exc)
            return self._keep(action, f"“{what}” is saved in the FHIR record, but the feedback store "
                                      "is unreachable; the label is kept for retry.")
        try:
            self.pending.remove(self.tenant, action.id)
        except StoreUnavailable as exc:
            log.warning("could not clear pending action %s: %s", action.id, exc)
        return Outcome(True, f"{what}.", condition_id)

    def _keep(self, action: Action, message: str) -> Outcome:
        action.attempts += 1
        action.last_error = message
        try:
            self.pending.put(self.tenant, action)
        except StoreUnavailable as exc:
            log.error("decision %s could not be queued: %s", action.id, exc)
            return Outcome(False, message.replace("is kept and can be retried", "could not be kept")
                           + " Repeat the action once the servers are back.", action.condition_id)
        log.warning("coder decision %s kept for retry", action.id)
        return Outcome(False, message, action.condition_id, pending=True)

    # ------------------------------------------------------------------ FHIR
    def _write(self, fhir, action: Action) -> str:
        if action.kind == "add":
            return self._add(fhir, action)
        status = STATUS_FOR[action.kind]
        check_ours(fhir.read("Condition", action.condition_id), action)
        fhir.update_condition_status(action.condition_id, status,
                                     reason=action.reason if action.kind == "reject" else None,
                                     user=action.user)
        return action.condition_id

    def _add(self, fhir, action: Action) -> str:
        # The code may already be on the encounter (a suggestion, or an earlier add):
        # confirm that Condition instead of creating a second one.
        existing = fhir.search("Condition", {
            "encounter": f"Encounter/{action.encounter}",
            "code": f"{action.system}|{action.code}",
        })
        for resource in existing:
            if not is_ours(resource, action):
                continue      # a clinician's Condition for the same code is never changed
            view = parse_condition(resource)
            if view.status != "confirmed":
                fhir.update_condition_status(view.id, "confirmed", user=action.user)
            return view.id
        identifier = fhir_marks.coder_identifier(action.patient, action.encounter, action.system, action.code)
        coding = {"system": action.system, "code": action.code}
        if action.display:
            coding["display"] = action.display
        condition = {
            "resourceType": "Condition",
            "meta": {"tag": [dict(fhir_marks.CODER_TAG)]},
            "identifier": [identifier],
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "active", "display": "Active"}]},
            "verificationStatus": {"coding": [{"system": CONDITION_VER_STATUS, "code": "confirmed",
                                               "display": "Confirmed"}]},
            "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis",
                                      "display": "Encounter Diagnosis"}]}],
            "code": {"coding": [coding], **({"text": action.display} if action.display else {})},
            "subject": {"reference": f"Patient/{action.patient}"},
            "encounter": {"reference": f"Encounter/{action.encounter}"},
            "recordedDate": action.at,
            "recorder": {"display": action.user},
            "note": [{"text": "Added by a coder in the fhir-assist worklist (missed by the model).",
                      "authorString": action.user, "time": action.at}],
        }
        if action.model_version:
            condition["extension"] = [{"url": fhir_marks.fs.EXT_MODEL_VERSION,
                                       "valueString": action.model_version}]
        created = fhir.create_condition(
            condition, if_none_exist=f"identifier={identifier['system']}|{identifier['value']}")
        return created.get("id")
