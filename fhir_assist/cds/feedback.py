"""The feedback endpoint: what clinicians and coders did with the cards.

CDS Hooks feedback names only a card uuid and the accepted suggestion uuids. To
turn that into training labels ("code C was right / wrong for encounter E") the
service remembers, for each card it returns, which patient, encounter, codes and
model version the card and its suggestions stood for (the card ledger,
`Store.put_cards` / `Store.get_card`; 30 days).

Stored feedback events (via `Store.record_feedback`):
* coding cards: one event per code, in the shared label format
  {patient, encounter, system, code, label 1|0, source "cds-feedback", user, at,
  model_version, reason?} plus service/card/suggestion/outcome for audit;
  accepted suggestions give label 1, an overridden card gives label 0 for the
  codes it recommended;
* medication and interaction cards: one event per card with the suggestions
  accepted (no ICD label; they are for audit and for the medication model);
* a card the ledger no longer knows: one audit event without labels.
"""
from __future__ import annotations

from datetime import timezone
from typing import Any

from ..fhir.datetimes import parse_timestamp
from .errors import bad_request

SOURCE = "cds-feedback"


def parse_feedback(body: Any) -> list[dict]:
    """Validate a feedback POST body (CDS Hooks 2.0 §Feedback); 400 on any rule broken.

    Besides 2.0's `{"feedback": [...]}`, the 1.1 body (one feedback object, as HAPI FHIR's
    CDS Hooks module and older EHRs send it) is taken as a list of one."""
    if isinstance(body, dict) and "feedback" not in body and "card" in body:
        body = {"feedback": [body]}
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise bad_request("the body must be an object with a non-empty 'feedback' array "
                          "(or, as in CDS Hooks 1.1, one feedback object)",
                          expression="feedback", code="structure")
    out = []
    for i, item in enumerate(body["feedback"]):
        where = f"feedback[{i}]"
        if not isinstance(item, dict):
            raise bad_request(f"{where} must be an object", expression=where, code="structure")
        card = item.get("card")
        if not isinstance(card, str) or not card:
            raise bad_request(f"{where}.card (the card uuid) is required", expression=f"{where}.card",
                              code="required")
        outcome = item.get("outcome")
        if outcome not in ("accepted", "overridden"):
            raise bad_request(f"{where}.outcome must be 'accepted' or 'overridden'",
                              expression=f"{where}.outcome")
        accepted = item.get("acceptedSuggestions")
        # Checked whatever the outcome: an overridden entry may carry it too, and it is read.
        if (outcome == "accepted" or accepted is not None) and (
                not isinstance(accepted, list) or (outcome == "accepted" and not accepted) or not all(
                    isinstance(a, dict) and isinstance(a.get("id"), str) and a["id"] for a in accepted)):
            raise bad_request(f"{where}.acceptedSuggestions must be a list of objects with an 'id' "
                              "(required for accepted outcomes)", expression=f"{where}.acceptedSuggestions",
                              code="required")
        reason = item.get("overrideReason")
        if reason is not None:
            if not isinstance(reason, dict) or not (reason.get("reason") or reason.get("userComment")):
                raise bad_request(f"{where}.overrideReason needs a 'reason' coding or a 'userComment'",
                                  expression=f"{where}.overrideReason")
            coding = reason.get("reason")
            if coding is not None and not (isinstance(coding, dict) and isinstance(coding.get("code"), str)):
                raise bad_request(f"{where}.overrideReason.reason must be a Coding with a code",
                                  expression=f"{where}.overrideReason.reason")
        stamp = item.get("outcomeTimestamp")
        if not isinstance(stamp, str) or parse_timestamp(stamp) is None:
            raise bad_request(f"{where}.outcomeTimestamp must be an ISO-8601 date-time",
                              expression=f"{where}.outcomeTimestamp", code="required")
        out.append(item)
    return out


def _reason_text(reason: dict | None) -> str | None:
    if not reason:
        return None
    coding = reason.get("reason") or {}
    parts = [coding.get("display") or coding.get("code"), reason.get("userComment")]
    text = " — ".join(p for p in parts if isinstance(p, str) and p)
    return text or None


def feedback_events(service_id: str, item: dict, card_info: dict | None, subject: str | None) -> list[dict]:
    """The store events for one feedback entry (see the module docstring)."""
    outcome = item["outcome"]
    at = parse_timestamp(item["outcomeTimestamp"]).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    accepted_ids = [a["id"] for a in item.get("acceptedSuggestions") or []]
    reason = item.get("overrideReason")
    audit = {"source": SOURCE, "service": service_id, "card": item["card"], "outcome": outcome, "at": at}
    if reason:
        audit["overrideReason"] = reason
    if subject:
        audit["client"] = subject
    if card_info is None:
        return [{**audit, "acceptedSuggestions": accepted_ids, "note": "card not known to this service "
                 "(issued elsewhere or expired)"}]
    base = {**audit, "patient": card_info.get("patient"), "encounter": card_info.get("encounter"),
            "user": card_info.get("user"), "model_version": card_info.get("model_version"),
            "hook": card_info.get("hook")}
    suggestions = card_info.get("suggestions") or {}
    if card_info.get("kind") != "coding":
        chosen = [dict(suggestions[s], suggestion=s) for s in accepted_ids if s in suggestions]
        return [{**base, "kind": card_info.get("kind"), "acceptedSuggestions": accepted_ids,
                 "accepted": chosen, **({"pair": card_info["pair"]} if "pair" in card_info else {})}]
    events = []
    reason_text = _reason_text(reason)
    if outcome == "accepted":
        for sid in accepted_ids:
            s = suggestions.get(sid)
            if s is None:
                continue
            events.append({**base, "suggestion": sid, "system": s["system"], "code": s["code"],
                           "display": s.get("display"), "label": 1})
    else:
        for sid, s in suggestions.items():
            if not s.get("recommended"):
                continue
            event = {**base, "suggestion": sid, "system": s["system"], "code": s["code"],
                     "display": s.get("display"), "label": 0}
            if reason_text:
                event["reason"] = reason_text
            events.append(event)
    if not events:
        events.append({**base, "kind": "coding", "acceptedSuggestions": accepted_ids,
                       "note": "no labelled code (suggestion ids not on this card)"})
    return events
