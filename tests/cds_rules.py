"""A checker of CDS Hooks 2.0 service responses and discovery documents, for the tests.

Written from the specification's tables and invariants (cds-resp-1 … 7): what is
required, allowed values, no null or empty JSON elements, `<140`-character
summaries, Codings with a display on override reasons, `resourceId` on deletes,
`appContext` only on SMART links, and every FHIR resource in an action valid as
FHIR R4 (fhir.resources.R4B).
"""
from __future__ import annotations

from urllib.parse import urlsplit

INDICATORS = {"info", "warning", "critical"}
SELECTION = {"at-most-one", "any"}
ACTION_SELECTION = {"all", "any", "at-most-one"}
ACTION_TYPES = {"create", "update", "delete"}
CARD_FIELDS = {"uuid", "summary", "detail", "indicator", "source", "suggestions", "selectionBehavior",
               "overrideReasons", "links", "extension"}
SERVICE_FIELDS = {"hook", "title", "description", "id", "prefetch", "usageRequirements", "version",
                  "hookVersion", "extension"}


def _absolute(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _no_empty(value: object, path: str, errors: list[str], *, allow_empty: set[str] = frozenset()) -> None:
    if value is None:
        errors.append(f"{path}: null is not allowed")
    elif isinstance(value, (str, list, dict)) and len(value) == 0 and path not in allow_empty:
        errors.append(f"{path}: empty {type(value).__name__} is not allowed")
    if isinstance(value, dict):
        for k, v in value.items():
            _no_empty(v, f"{path}.{k}", errors, allow_empty=allow_empty)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_empty(v, f"{path}[{i}]", errors, allow_empty=allow_empty)


def _coding(value: object, path: str, errors: list[str], *, display_required: bool) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: a Coding must be an object")
        return
    for name in ("code", "system"):
        if not isinstance(value.get(name), str):
            errors.append(f"{path}.{name} is required")
    if display_required and not isinstance(value.get("display"), str):
        errors.append(f"{path}.display is required")


def _fhir_resource(resource: object, path: str, errors: list[str]) -> None:
    from fhir.resources.R4B import get_fhir_model_class

    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        errors.append(f"{path}: not a FHIR resource")
        return
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except (KeyError, ValueError) as exc:
        errors.append(f"{path}: invalid FHIR R4 {resource['resourceType']}: {str(exc)[:300]}")


def _action(action: object, path: str, errors: list[str], *, description_required: bool) -> None:
    if not isinstance(action, dict):
        errors.append(f"{path}: an action must be an object")
        return
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        errors.append(f"{path}.type must be one of {sorted(ACTION_TYPES)}, got {kind!r}")
    if description_required and not isinstance(action.get("description"), str):
        errors.append(f"{path}.description is required (cds-resp-5)")
    if kind in ("create", "update"):
        _fhir_resource(action.get("resource"), f"{path}.resource", errors)
    if kind == "delete":
        rid = action.get("resourceId")
        if not isinstance(rid, str) or rid.count("/") != 1:
            errors.append(f"{path}.resourceId must be a relative reference 'Type/id' (cds-resp-2)")
        if "resource" in action:
            errors.append(f"{path}: a delete carries resourceId, not resource (cds-resp-2)")


def validate_response(body: object) -> list[str]:
    """Every rule the response breaks (empty list: valid)."""
    errors: list[str] = []
    if not isinstance(body, dict):
        return ["the response must be a JSON object"]
    if not isinstance(body.get("cards"), list):
        errors.append("'cards' (an array) is required")
        return errors
    extra = set(body) - {"cards", "systemActions", "extension"}
    if extra:
        errors.append(f"unknown response fields {sorted(extra)}")
    _no_empty(body, "$", errors, allow_empty={"$.cards"})
    seen_uuids: set[str] = set()
    for i, card in enumerate(body["cards"]):
        p = f"cards[{i}]"
        if not isinstance(card, dict):
            errors.append(f"{p}: a card must be an object")
            continue
        unknown = set(card) - CARD_FIELDS
        if unknown:
            errors.append(f"{p}: unknown fields {sorted(unknown)}")
        summary = card.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors.append(f"{p}.summary is required")
        elif len(summary) >= 140:
            errors.append(f"{p}.summary has {len(summary)} characters (must be < 140)")
        if card.get("indicator") not in INDICATORS:
            errors.append(f"{p}.indicator must be one of {sorted(INDICATORS)}")
        if "detail" in card and not isinstance(card["detail"], str):
            errors.append(f"{p}.detail must be markdown text")
        for key in ("uuid",):
            if key in card:
                if not isinstance(card[key], str):
                    errors.append(f"{p}.uuid must be a string")
                elif card[key] in seen_uuids:
                    errors.append(f"{p}.uuid is not unique")
                else:
                    seen_uuids.add(card[key])
        source = card.get("source")
        if not isinstance(source, dict) or not isinstance(source.get("label"), str):
            errors.append(f"{p}.source.label is required")
        else:
            for key in ("url", "icon"):
                if key in source and not _absolute(source[key]):
                    errors.append(f"{p}.source.{key} must be an absolute URL")
            if "topic" in source:
                _coding(source["topic"], f"{p}.source.topic", errors, display_required=False)
        suggestions = card.get("suggestions")
        if suggestions is not None:
            if not isinstance(suggestions, list):
                errors.append(f"{p}.suggestions must be an array")
                suggestions = []
            if card.get("selectionBehavior") not in SELECTION:
                errors.append(f"{p}.selectionBehavior is required with suggestions and must be one of "
                              f"{sorted(SELECTION)} (cds-resp-6)")
            if card.get("selectionBehavior") == "at-most-one" and \
                    sum(1 for s in suggestions if isinstance(s, dict) and s.get("isRecommended")) > 1:
                errors.append(f"{p}: at most one suggestion may be recommended with at-most-one (cds-resp-1)")
            for j, s in enumerate(suggestions):
                q = f"{p}.suggestions[{j}]"
                if not isinstance(s, dict) or not isinstance(s.get("label"), str):
                    errors.append(f"{q}.label is required")
                    continue
                if "uuid" in s:
                    if s["uuid"] in seen_uuids:
                        errors.append(f"{q}.uuid is not unique")
                    seen_uuids.add(s["uuid"])
                if "isRecommended" in s and not isinstance(s["isRecommended"], bool):
                    errors.append(f"{q}.isRecommended must be a boolean")
                if "actionSelectionBehavior" in s and s["actionSelectionBehavior"] not in ACTION_SELECTION:
                    errors.append(f"{q}.actionSelectionBehavior is not allowed (cds-resp-7)")
                for k, action in enumerate(s.get("actions") or []):
                    _action(action, f"{q}.actions[{k}]", errors, description_required=True)
        elif "selectionBehavior" in card and card["selectionBehavior"] not in SELECTION:
            errors.append(f"{p}.selectionBehavior has an unknown value")
        for j, reason in enumerate(card.get("overrideReasons") or []):
            _coding(reason, f"{p}.overrideReasons[{j}]", errors, display_required=True)
        for j, link in enumerate(card.get("links") or []):
            q = f"{p}.links[{j}]"
            if not isinstance(link, dict) or not isinstance(link.get("label"), str):
                errors.append(f"{q}.label is required")
                continue
            if not _absolute(link.get("url")):
                errors.append(f"{q}.url must be an absolute URL")
            if link.get("type") not in ("absolute", "smart"):
                errors.append(f"{q}.type must be 'absolute' or 'smart'")
            if "appContext" in link and link.get("type") != "smart":
                errors.append(f"{q}.appContext is only for smart links (cds-resp-3)")
            if "autolaunchable" in link and not isinstance(link["autolaunchable"], bool):
                errors.append(f"{q}.autolaunchable must be a boolean")
    for i, action in enumerate(body.get("systemActions") or []):
        _action(action, f"systemActions[{i}]", errors, description_required=False)
    return errors


def validate_discovery(body: object) -> list[str]:
    errors: list[str] = []
    if not isinstance(body, dict) or not isinstance(body.get("services"), list):
        return ["discovery must be an object with a 'services' array"]
    _no_empty(body, "$", errors, allow_empty={"$.services"})
    ids = set()
    for i, service in enumerate(body["services"]):
        p = f"services[{i}]"
        for name in ("hook", "description", "id"):
            if not isinstance(service.get(name), str) or not service[name]:
                errors.append(f"{p}.{name} is required")
        unknown = set(service) - SERVICE_FIELDS
        if unknown:
            errors.append(f"{p}: unknown fields {sorted(unknown)}")
        if service.get("id") in ids:
            errors.append(f"{p}.id {service.get('id')!r} is not unique")
        ids.add(service.get("id"))
        for key, template in (service.get("prefetch") or {}).items():
            if not isinstance(template, str) or "{{" not in template:
                errors.append(f"{p}.prefetch.{key} must be a templated FHIR query")
    return errors


def assert_valid_response(body: object) -> None:
    errors = validate_response(body)
    assert not errors, "invalid CDS Hooks response:\n  " + "\n  ".join(errors[:20])
