"""The medication-change service (MICRON) and what both CDS services share; the
coding-suggestions service is in `coding_service`.

Each service turns a validated hook call and its patient data into a CDS Hooks response.
They share `ServiceRuntime`, which holds the models, the state store, the
metrics and the settings.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from mappings import rxnorm

from ..config import Settings
from ..fhir.medications import concept_ingredients, concept_name, request_concept
from ..fhir.references import reference_id
from ..store import StateWrite, Store
from ..suggest.model_set import MEDICATION, ModelSet
from . import cards as C
from .catalog import MEDICATION_CHANGE
from .errors import CdsError
from .metrics import ServiceMetrics
from .patient_data import PatientData

log = logging.getLogger(__name__)

_ACTIVE_MED_STATUS = frozenset({"active", "on-hold", "draft"})
MICRON_NOTE = ("Suggested by the MICRON residual medication model from the change in diagnoses and "
               "procedures since the previous visit (score: the model's probability that the patient "
               "should be on the medication).")


@dataclass
class ServiceRuntime:
    settings: Settings
    models: ModelSet
    store: Any                                  # fhir_assist.store.Store
    metrics: ServiceMetrics
    fhir_factory: Callable[..., Any]            # (base_url, token) -> FhirServer
    writebacks: Any = None                      # writeback.WriteBacks: written now, or queued and retried

    def source(self, label: str, code: str, display: str) -> dict:
        return C.CardSource(label, self.settings.source_url, code, display).as_dict()


@dataclass
class Answer:
    cards: list[dict] = field(default_factory=list)
    system_actions: list[dict] = field(default_factory=list)
    ledger: dict[str, dict] = field(default_factory=dict)   # card uuid → what feedback needs to know
    state: StateWrite | None = None                         # the patient's new MICRON state

    def body(self) -> dict:
        out: dict = {"cards": self.cards}
        if self.system_actions:
            out["systemActions"] = self.system_actions
        return out


_last_warned: dict[str, float] = {}


def _warn_rarely(key: str, message: str, *args: Any, every_s: float = 30.0) -> None:
    """A warning at most every `every_s` seconds per kind: an outage must not flood the logs
    (the metrics count every occurrence)."""
    now = time.monotonic()
    if now - _last_warned.get(key, -every_s) >= every_s:
        _last_warned[key] = now
        log.warning(message, *args)


def keep_answer(store: Store, metrics: ServiceMetrics, scope, answer: Answer) -> None:
    """The answer's card ledger entries and new MICRON state, in one write. The answer does not
    wait on it: a failure is counted and logged (a lost state is recomputed from the history)."""
    try:
        store.put_answer(scope, answer.ledger, answer.state)
    except Exception as exc:  # noqa: BLE001 - StoreUnavailable or a store bug
        _warn_rarely("store-put", "could not save the answer's medication state or card ledger: %s", exc)
        metrics.store_errors.labels(operation="put_answer").inc()


def unavailable(name: str, models: ModelSet) -> CdsError:
    why = models.errors.get(name, "not loaded")
    return CdsError(503, "transient", f"the {name} model is not available: {why}",
                    headers={"Retry-After": "30"})


# ============================================================ medication change
class MedicationChangeService:
    name = MEDICATION_CHANGE

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.rt = runtime

    def answer(self, data: PatientData, tenant) -> Answer:
        model = self.rt.models.get(MEDICATION)
        if model is None:
            raise unavailable(MEDICATION, self.rt.models)
        call = data.call
        answer = Answer()
        current = current_medications(data)
        if data.visit is None:
            log.info("%s: no visit to update (%s)", call.entry.id,
                     "encounter not in the data" if call.encounter_id else "no encounters")
            self._ddi_cards(answer, data, current, model.version)
            return answer

        changes = self._run_model(model, data, tenant, answer)
        meds_now = set(current)
        limit = self.rt.settings.top_medications
        adds = [(rx, name, score) for rx, name, score in changes.add if rx not in meds_now]
        removes = [(rx, name, score) for rx, name, score in changes.remove if rx in meds_now]
        hidden = max(0, len(adds) - limit) + max(0, len(removes) - limit)
        adds, removes = adds[:limit], removes[:limit]      # most confident first (the suggester sorts)
        unknown = list(getattr(changes, "unknown_codes", []) or []) + data.unknown_codes()
        self.rt.metrics.count_unknown_codes(unknown)

        if adds or removes:
            answer.cards.append(self._change_card(answer, data, adds, removes, current, unknown, model.version,
                                                  hidden, getattr(changes, "interaction_stops", {}),
                                                  getattr(model.suggester, "method_note", None)))
        self._ddi_cards(answer, data, current, model.version)
        if not answer.cards and unknown:
            answer.cards.append(C.card(
                "Some codes in this record were not recognised; medication suggestions may be incomplete",
                indicator="info", source=self._source(model.version),
                detail=C.unknown_codes_note(unknown)))
        return answer

    # -- model and state
    def _run_model(self, model, data: PatientData, tenant, answer: Answer):
        if not getattr(model.suggester, "stateful", True):
            # a recommender that reads the record each time (LAMO): no state to fetch or save
            started = time.perf_counter()
            with model.lock:
                changes = model.suggester.update(None, data.visit, history=data.history, patient=data.timeline)
            self.rt.metrics.model_latency.labels(model=MEDICATION).observe(time.perf_counter() - started)
            return changes
        patient = data.call.patient_id
        state = None
        try:
            state = self.rt.store.get_micron_state(tenant, patient)
            if state is None:
                self.rt.metrics.state_fallbacks.labels(reason="no-state").inc()
        except Exception as exc:  # noqa: BLE001 - StoreUnavailable or a store bug: recompute
            _warn_rarely("store-get", "state store unavailable, recomputing medication states from "
                         "history until it is back: %s", exc)
            self.rt.metrics.store_errors.labels(operation="get_micron_state").inc()
            self.rt.metrics.state_fallbacks.labels(reason="store-unavailable").inc()
        started = time.perf_counter()
        with model.lock:
            # The suggester owns the state's rules: it rebuilds from the history a state that is
            # missing, unreadable or from another model version, and recomputes a repeated
            # encounter (order-select fires once per order) from the state before it.
            changes = model.suggester.update(state, data.visit, history=data.history)
        self.rt.metrics.model_latency.labels(model=MEDICATION).observe(time.perf_counter() - started)
        answer.state = StateWrite(patient, bytes(changes.state), self.rt.settings.state_ttl_s)  # saved with the cards
        return changes

    def _source(self, version: str) -> dict:
        return self.rt.source(f"fhir-assist medication-change model ({version})"[:120],
                              "medication-change", "Medication change")

    # -- cards
    def _change_card(self, answer: Answer, data: PatientData, adds, removes, current, unknown,
                     version: str, hidden: int = 0, interaction_stops: dict | None = None,
                     method_note: str | None = None) -> dict:
        call = data.call
        encounter = data.encounter_id
        suggestions = []
        ledger_suggestions = {}
        rows = []
        stopping = {rx for rx, _, _ in removes}
        staying = {rx: info["name"] for rx, info in current.items() if rx not in stopping}
        for rx, name, score in adds:
            # A suggested start that interacts with what the patient keeps taking is offered,
            # never recommended, and the clash is named.
            clashes = sorted(staying[other] for other in staying if _interacts(rx, other))
            resource = C.medication_request(rx, name, call.patient_id, call.encounter_id or encounter,
                                            call.user_id)
            s = C.suggestion(f"Start {name}", [C.create_action(f"Order {name} (RxNorm {rx})", resource)],
                             recommended=not clashes)
            suggestions.append(s)
            ledger_suggestions[s["uuid"]] = {"change": "add", "rxcui": rx, "name": name, "score": score}
            note = f"interacts with {', '.join(clashes)}" if clashes else ""
            rows.append(["start", name, rx, f"{score:.2f}", note])
        for rx, name, score in removes:
            actions = []
            for resource in current[rx]["resources"]:
                rid = resource.get("id")
                if not rid:
                    continue
                if resource.get("status") == "draft" or resource.get("_draft"):
                    actions.append(C.delete_action(f"Remove the draft order for {name}", "MedicationRequest", rid))
                else:
                    clean = {k: v for k, v in resource.items() if not k.startswith("_")}
                    actions.append(C.update_action(f"Stop {name} (MedicationRequest/{rid})",
                                                   C.stopped(clean, "Stopped on decision support advice")))
            if not actions:
                continue
            s = C.suggestion(f"Stop {name}", actions, recommended=True)
            suggestions.append(s)
            ledger_suggestions[s["uuid"]] = {"change": "remove", "rxcui": rx, "name": name, "score": score}
            partner = (interaction_stops or {}).get(rx)
            note = f"interacts with {_medication_name(partner, current)}" if partner else ""
            rows.append(["stop", name, rx, f"{score:.2f}", note])
        n_add = sum(1 for r in rows if r[0] == "start")
        n_stop = len(rows) - n_add
        parts = []
        if n_add:
            parts.append(f"start {n_add}")
        if n_stop:
            parts.append(f"stop {n_stop}")
        names = ", ".join(r[1] for r in rows[:3]) + ("…" if len(rows) > 3 else "")
        summary = f"Consider medication changes ({' and '.join(parts)}): {names}"
        detail = [
            method_note or MICRON_NOTE,
            C.md_table(["change", "medication", "RxNorm", "score", "note"], rows),
        ]
        if hidden:
            detail.append(f"{hidden} less confident change(s) not shown.")
        detail += data.notes_about_data()
        if unknown:
            detail.append(C.unknown_codes_note(unknown))
        card = C.card(summary, indicator="info", source=self._source(version), detail="\n\n".join(d for d in detail if d),
                      suggestions=suggestions, selection_behavior="any",
                      reasons=C.override_reasons("medication"))
        answer.ledger[card["uuid"]] = {
            "kind": "medication", "service": call.entry.id, "hook": call.entry.hook,
            "patient": call.patient_id, "encounter": encounter, "user": call.user_id,
            "model_version": version, "suggestions": ledger_suggestions,
        }
        return card

    def _ddi_cards(self, answer: Answer, data: PatientData, current: dict, model_version: str) -> None:
        """Warnings for interacting pairs among what the patient takes and what is being ordered.

        On order-select only pairs with a newly selected order, on order-sign pairs with
        an order being signed, on patient-view every pair (a chart review).
        """
        call = data.call
        names = {rx: info["name"] for rx, info in current.items()}
        meds = sorted(names)
        pairs = {frozenset((a, b)) for i, a in enumerate(meds) for b in meds[i + 1:] if _interacts(a, b)}
        if call.entry.hook == "order-select":
            focus = selected_rxcuis(data)
            pairs = {p for p in pairs if p & focus}
        elif call.entry.hook == "order-sign":
            focus = {rx for rx, info in current.items() if any(r.get("_draft") for r in info["resources"])}
            pairs = {p for p in pairs if p & focus}
        for pair in sorted(pairs, key=sorted):
            a, b = sorted(pair)
            suggestions = []
            for rx in (a, b):
                info = current.get(rx)
                if not info:
                    continue
                actions = []
                for resource in info["resources"]:
                    rid = resource.get("id")
                    if not rid:
                        continue
                    if resource.get("status") == "draft" or resource.get("_draft"):
                        actions.append(C.delete_action(f"Remove the draft order for {names[rx]}",
                                                       "MedicationRequest", rid))
                    else:
                        clean = {k: v for k, v in resource.items() if not k.startswith("_")}
                        actions.append(C.update_action(f"Stop {names[rx]}",
                                                       C.stopped(clean, "Drug-drug interaction")))
                if actions:
                    suggestions.append(C.suggestion(f"Stop {names[rx]}", actions))
            detail = (f"{names[a]} (RxNorm {a}) and {names[b]} (RxNorm {b}) are listed as an interacting "
                      "pair in the drug-drug interaction table the models were trained with. Consider "
                      "stopping one of them, or monitor the patient if both are needed.")
            card = C.card(f"Drug interaction: {names[a]} with {names[b]}", indicator="warning",
                          source=self.rt.source("fhir-assist drug-drug interaction check", "drug-interaction",
                                                "Drug-drug interaction"),
                          detail=detail, suggestions=suggestions, selection_behavior="at-most-one",
                          reasons=C.override_reasons("medication"))
            answer.cards.append(card)
            answer.ledger[card["uuid"]] = {
                "kind": "ddi", "service": call.entry.id, "hook": call.entry.hook, "patient": call.patient_id,
                "encounter": call.encounter_id, "user": call.user_id, "model_version": model_version,
                "pair": [a, b],
                "suggestions": {s["uuid"]: {"change": "remove", "label": s["label"]} for s in suggestions},
            }


def _medication_name(rx: str, current: dict) -> str:
    """The name the record gives a medication, else its RxNorm ingredient name."""
    if rx in current:
        return current[rx]["name"]
    ingredient = rxnorm.ingredients().get(rx)
    return ingredient.name if ingredient else f"RxNorm {rx}"


def _interacts(a: str, b: str) -> bool:
    return a != b and rxnorm.interacts(a, b)


def medication_ingredient(resource: dict, medications: dict[str, dict]) -> tuple[str | None, str]:
    """(ingredient RxCUI, display name) of a MedicationRequest, resolving Medication references.

    Combination products give their first ingredient."""
    concept = request_concept(resource, medications)
    found, _ = concept_ingredients(concept)
    if found:
        ingredient = rxnorm.ingredients().get(found[0])
        return found[0], ingredient.name if ingredient else (concept_name(concept) or found[0])
    return None, concept_name(concept) or "unnamed medication"


def current_medications(data: PatientData) -> dict[str, dict]:
    """RxCUI → {"name", "resources"} for the patient's active orders and this session's drafts."""
    medications = {r.get("id"): r for r in data.resources_of("Medication") if r.get("id")}
    out: dict[str, dict] = {}
    draft_ids = set()
    for resource in data.drafts:
        if resource.get("resourceType") != "MedicationRequest":
            continue
        rx, name = medication_ingredient(resource, medications)
        draft_ids.add(resource.get("id"))
        if rx:
            entry = out.setdefault(rx, {"name": name, "resources": []})
            entry["resources"].append({**resource, "_draft": True})
    for resource in data.resources_of("MedicationRequest"):
        if resource.get("id") in draft_ids:
            continue
        if resource.get("status") not in _ACTIVE_MED_STATUS:
            continue
        rx, name = medication_ingredient(resource, medications)
        if rx:
            entry = out.setdefault(rx, {"name": name, "resources": []})
            entry["resources"].append(resource)
    return out


def selected_rxcuis(data: PatientData) -> set[str]:
    selections = data.call.context.get("selections") or []
    ids = {reference_id(s) for s in selections if isinstance(s, str)}
    medications = {r.get("id"): r for r in data.resources_of("Medication")}
    out = set()
    for resource in data.drafts:
        if resource.get("id") in ids and resource.get("resourceType") == "MedicationRequest":
            rx, _ = medication_ingredient(resource, medications)
            if rx:
                out.add(rx)
    return out
