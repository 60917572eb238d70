"""The two CDS services: medication-change (MICRON) and coding-suggestions (ICD ranker + text coder).

Each turns a validated hook call and its patient data into a CDS Hooks response.
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
from ..fhir_server import build_suggested_condition, error_kind
from ..suggest.coding import CodeSuggestion
from . import cards as C
from .catalog import CODING_SUGGESTIONS, MEDICATION_CHANGE
from .errors import CdsError, precondition_failed
from .metrics import ServiceMetrics
from .models import MEDICATION, RANKER, TEXT_CODER, ModelSet
from .patient_data import PatientData

log = logging.getLogger(__name__)

ICD_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-9-cm")
_ACTIVE_MED_STATUS = frozenset({"active", "on-hold", "draft"})


@dataclass
class ServiceRuntime:
    settings: Settings
    models: ModelSet
    store: Any                                  # fhir_assist.store.Store
    metrics: ServiceMetrics
    fhir_factory: Callable[..., Any]            # (base_url, token) -> FhirServer

    def source(self, label: str, code: str, display: str) -> dict:
        return C.CardSource(label, self.settings.source_url, code, display).as_dict()


@dataclass
class Answer:
    cards: list[dict] = field(default_factory=list)
    system_actions: list[dict] = field(default_factory=list)
    ledger: dict[str, dict] = field(default_factory=dict)   # card uuid → what feedback needs to know

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


def _unavailable(name: str, models: ModelSet) -> CdsError:
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
            raise _unavailable(MEDICATION, self.rt.models)
        call = data.call
        answer = Answer()
        current = current_medications(data)
        if data.visit is None:
            why = (f"encounter {call.encounter_id} is not in the patient's data" if call.encounter_id
                   else "the patient has no encounters in the data provided")
            log.info("%s: no visit to update (%s)", call.entry.id,
                     "encounter not in the data" if call.encounter_id else "no encounters")
            self._ddi_cards(answer, data, current, model.version)
            return answer

        changes = self._run_model(model, data, tenant)
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
                                                  hidden, getattr(changes, "interaction_stops", {})))
        self._ddi_cards(answer, data, current, model.version)
        if not answer.cards and unknown:
            answer.cards.append(C.card(
                "Some codes in this record were not recognised; medication suggestions may be incomplete",
                indicator="info", source=self._source(model.version),
                detail=C.unknown_codes_note(unknown)))
        return answer

    # -- model and state
    def _run_model(self, model, data: PatientData, tenant):
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
        try:
            self.rt.store.put_micron_state(tenant, patient, bytes(changes.state), self.rt.settings.state_ttl_s)
        except Exception as exc:  # noqa: BLE001 - the answer does not depend on saving
            _warn_rarely("store-put", "could not save medication states: %s", exc)
            self.rt.metrics.store_errors.labels(operation="put_micron_state").inc()
        return changes

    def _source(self, version: str) -> dict:
        return self.rt.source(f"fhir-assist medication-change model ({version})"[:120],
                              "medication-change", "Medication change")

    # -- cards
    def _change_card(self, answer: Answer, data: PatientData, adds, removes, current, unknown,
                     version: str, hidden: int = 0, interaction_stops: dict | None = None) -> dict:
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
            "Suggested by the MICRON residual medication model from the change in diagnoses and "
            "procedures since the previous visit (score: the model's probability that the patient "
            "should be on the medication).",
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
    medications = {r.get("id"): r for r in data.resources if r.get("resourceType") == "Medication" and r.get("id")}
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
    for resource in data.resources:
        if resource.get("resourceType") != "MedicationRequest" or resource.get("id") in draft_ids:
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
    medications = {r.get("id"): r for r in data.resources if r.get("resourceType") == "Medication"}
    out = set()
    for resource in data.drafts:
        if resource.get("id") in ids and resource.get("resourceType") == "MedicationRequest":
            rx, _ = medication_ingredient(resource, medications)
            if rx:
                out.add(rx)
    return out


# ========================================================== coding suggestions
@dataclass
class MergedCode(CodeSuggestion):
    """A code suggested by one or more coding models, and which of them suggested it."""
    models: list[str] = field(default_factory=list)


class CodingService:
    name = CODING_SUGGESTIONS

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.rt = runtime

    def answer(self, data: PatientData, tenant) -> Answer:
        ranker = self.rt.models.get(RANKER)
        if ranker is None:
            raise _unavailable(RANKER, self.rt.models)
        call = data.call
        answer = Answer()
        if data.visit is None:
            if call.entry.hook == "encounter-discharge":
                raise precondition_failed(
                    f"encounter {call.encounter_id} is not in the data provided for patient {call.patient_id}",
                    expression="context.encounterId")
            return answer

        merged, versions, unknown, cutoff, ranker_result = self._suggest(data)
        already = {(c.system, c.code) for c in data.visit.diagnoses}
        candidates = [m for m in merged if m.system in ICD_SYSTEMS and m.level == "billing"
                      and (m.system, m.code) not in already]
        recommended = [m for m in candidates if m.recommended]
        # Recommended codes first, then the next best; a card stays readable (top_codes), the
        # full recommended list goes to the FHIR server for the coder worklist.
        shown = (recommended + [m for m in candidates if not m.recommended])[: self.rt.settings.top_codes]
        if self.rt.settings.evidence and ranker_result is not None:
            self._explain(ranker, ranker_result, shown)
        version = "; ".join(versions)
        self.rt.metrics.count_unknown_codes(unknown)

        written: dict[tuple[str, str], dict] = {}
        write_note = None
        if call.entry.hook == "encounter-discharge" and self.rt.settings.write_back and recommended:
            # At most write_back_max codes per encounter: a weak model's cut-off can be long.
            written, write_note = self._write_back(data, recommended[: self.rt.settings.write_back_max], version)

        if not shown:
            if unknown:
                answer.cards.append(C.card(
                    "Some codes in this record were not recognised; coding suggestions may be incomplete",
                    indicator="info", source=self._source(version), detail=C.unknown_codes_note(unknown)))
            return answer
        answer.cards.append(self._card(answer, data, shown, recommended, written, write_note, already,
                                       unknown, cutoff, version))
        if self.rt.settings.system_actions and not written:
            for m in recommended[: self.rt.settings.write_back_max]:
                condition = build_suggested_condition(call.patient_id, data.encounter_id, m, version,
                                                      validation="fast")
                answer.system_actions.append(C.create_action(
                    f"Record {m.code} as a provisional diagnosis for coder review", condition))
        return answer

    def _source(self, version: str) -> dict:
        return self.rt.source(f"fhir-assist ICD coding models ({version})"[:120], "diagnosis-coding",
                              "Diagnosis coding")

    def _suggest(self, data: PatientData) -> tuple[list[MergedCode], list[str], list, Any, Any]:
        top = max(50, self.rt.settings.top_codes * 3)
        runs = [RANKER]
        if data.visit.notes and self.rt.models.get(TEXT_CODER) is not None:
            runs.append(TEXT_CODER)
        merged: dict[tuple[str, str], MergedCode] = {}
        versions, unknown, cutoff, ranker_result = [], list(data.unknown_codes()), None, None
        for name in runs:
            model = self.rt.models.get(name)
            started = time.perf_counter()
            # Note-span evidence of the text coder costs seconds per call (occlusion over the
            # note): the hook path never computes it; the coder worklist shows it on demand.
            # The ranker's is computed afterwards, for the codes the card shows (`_explain`).
            with model.lock:
                result = model.suggester.suggest(data.visit, data.timeline, top=top, evidence=False)
            if name == RANKER:
                ranker_result = result
            self.rt.metrics.model_latency.labels(model=name).observe(time.perf_counter() - started)
            versions.append(getattr(result, "model_version", None) or model.version)
            unknown += list(getattr(result, "unknown_codes", []) or [])
            if name == RANKER:
                cutoff = (getattr(result, "cutoff_k", None), getattr(result, "target_recall", None))
            for s in result.suggestions:
                key = (s.system, s.code)
                have = merged.get(key)
                if have is None:
                    merged[key] = MergedCode(s.system, s.code, s.display, s.level, float(s.score), int(s.rank),
                                             bool(s.recommended), list(s.evidence or []), [name])
                else:
                    have.score = max(have.score, float(s.score))
                    have.recommended = have.recommended or bool(s.recommended)
                    have.evidence += list(s.evidence or [])
                    have.models.append(name)
                    have.display = have.display or s.display
        ordered = sorted(merged.values(), key=lambda m: (not m.recommended, -m.score))
        for m in ordered:
            m.evidence.sort(key=_evidence_weight, reverse=True)
        for i, m in enumerate(ordered, 1):
            m.rank = i
        # Keep unknown codes unique for the note.
        seen, unique = set(), []
        for u in unknown:
            key = (getattr(u, "system", None) or (u.get("system") if isinstance(u, dict) else None),
                   getattr(u, "code", None) or (u.get("code") if isinstance(u, dict) else str(u)))
            if key not in seen:
                seen.add(key)
                unique.append(u)
        return ordered, versions, unique, cutoff, ranker_result

    def _explain(self, ranker, result, shown: list[MergedCode]) -> None:
        """The ranker's evidence for the codes on the card, strongest first."""
        started = time.perf_counter()
        with ranker.lock:
            found = ranker.suggester.add_evidence(result, {(m.system, m.code) for m in shown})
        for m in shown:
            m.evidence = sorted(m.evidence + list(found.get((m.system, m.code), [])),
                                key=_evidence_weight, reverse=True)
        self.rt.metrics.model_latency.labels(model=f"{RANKER}-evidence").observe(time.perf_counter() - started)

    def _write_back(self, data: PatientData, recommended: list[MergedCode], version: str
                    ) -> tuple[dict[tuple[str, str], dict], str | None]:
        call = data.call
        base = call.fhir_server
        if not base and call.configured_server_allowed and not call.fhir_server_refused:
            base = self.rt.settings.fhir_base_url
        if not base:
            return {}, "Not written back: no FHIR server this call may write to."
        try:
            server = self.rt.fhir_factory(base, call.access_token if call.fhir_server else None)
            stored = server.write_suggested_conditions(call.patient_id, data.encounter_id,
                                                       recommended, version)
        except Exception as exc:  # noqa: BLE001 - the cards are still useful without the write
            log.warning("write-back of %d codes failed: %s", len(recommended), error_kind(exc))
            self.rt.metrics.writeback_failures.inc()
            status = getattr(exc, "status", None)
            return {}, (f"Write-back to the FHIR server failed ({'HTTP ' + str(status) if status else 'unreachable'}); "
                        "the suggestions below create the Conditions instead.")
        self.rt.metrics.written_conditions.inc(len(stored))
        out = {}
        for condition in stored:
            for coding in (condition.get("code") or {}).get("coding") or []:
                out[(coding.get("system"), coding.get("code"))] = condition
        return out, (f"{len(stored)} recommended code(s) recorded on the FHIR server as provisional "
                     "Conditions for coder review.")

    def _card(self, answer: Answer, data: PatientData, shown: list[MergedCode], recommended: list[MergedCode],
              written: dict, write_note: str | None, already: set, unknown: list, cutoff, version: str) -> dict:
        call = data.call
        encounter = data.encounter_id
        suggestions, rows, ledger = [], [], {}
        for m in shown:
            label_core = f"{m.code} {m.display}" if m.display else m.code
            existing = written.get((m.system, m.code))
            if existing is not None and existing.get("id"):
                action = C.update_action(f"Confirm {m.code} as a diagnosis of this encounter",
                                         C.confirmed(existing))
                label = f"Confirm {label_core}"
            else:
                condition = build_suggested_condition(call.patient_id, encounter, m, version, validation="fast")
                action = C.create_action(f"Record {m.code} as a provisional diagnosis of this encounter",
                                         condition)
                label = f"Add {label_core}"
            s = C.suggestion(label, [action], recommended=m.recommended)
            suggestions.append(s)
            ledger[s["uuid"]] = {"system": m.system, "code": m.code, "display": m.display,
                                 "recommended": m.recommended, "score": round(m.score, 6), "rank": m.rank}
            evidence = ", ".join(_evidence_label(e) for e in m.evidence[:2])
            rows.append([m.rank, m.code, m.display or "", f"{m.score:.2f}",
                         "yes" if m.recommended else "", evidence])
        k, recall = cutoff or (None, None)
        n_rec = len(recommended)
        if n_rec:
            summary = "Diagnosis codes suggested for this encounter: " + ", ".join(m.code for m in recommended[:4]) \
                + (f" and {n_rec - 4} more" if n_rec > 4 else "")
        else:
            summary = "Possible diagnosis codes for this encounter (none above the recommendation cut-off)"
        detail = []
        if k and recall:
            detail.append(f"Codes marked *recommended* are above the cut-off (K = {k}) that recovers about "
                          f"{float(recall):.0%} of an encounter's codes on validation data.")
        detail.append(C.md_table(["rank", "code", "description", "score", "recommended", "evidence"], rows))
        not_shown = len([m for m in recommended if m not in shown])
        if not_shown:
            detail.append(f"{not_shown} more recommended code(s) are not shown on this card"
                          + (" (see the coder worklist)." if written else "."))
        if already:
            detail.append(f"{len(already)} code(s) already recorded on this encounter are not repeated here.")
        if write_note:
            detail.append(write_note)
        detail += data.notes_about_data()
        if unknown:
            detail.append(C.unknown_codes_note(unknown))
        links = []
        if call.review_url:
            links.append(C.link("Open the coder worklist", call.review_url))
        card = C.card(summary, indicator="info", source=self._source(version), detail="\n\n".join(d for d in detail if d),
                      suggestions=suggestions, selection_behavior="any",
                      reasons=C.override_reasons("coding"), links=links)
        answer.ledger[card["uuid"]] = {
            "kind": "coding", "service": call.entry.id, "hook": call.entry.hook, "patient": call.patient_id,
            "encounter": encounter, "user": call.user_id, "model_version": version, "suggestions": ledger,
        }
        return card


def _evidence_weight(evidence: Any) -> float:
    try:
        return abs(float(evidence[2]))
    except (TypeError, ValueError, IndexError):
        return 0.0


def _evidence_label(evidence: Any) -> str:
    if isinstance(evidence, (list, tuple)) and len(evidence) >= 2:
        return f"{evidence[0]}: {evidence[1]}"
    return str(evidence)
