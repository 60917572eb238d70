"""The coding-suggestions service: the ICD ranker and the text coder's list for one visit,
cut per encounter, shown on a card, and the confident part written back as provisional
Conditions (idempotent in effect: a repeated call writes nothing new, a call after new data
supersedes what the earlier one wrote).
"""
from __future__ import annotations

import logging
from typing import Any

from ..fhir_server import build_suggested_condition, error_kind
from ..suggest.coding_run import CodingModels, CodingRun, MergedCode, codes_to_write, is_thin, run_coding
from ..suggest.mera import EOV_RULE
from . import cards as C
from .catalog import CODING_SUGGESTIONS
from .errors import precondition_failed
from .models import FUSION, RANKER, TEXT_CODER
from .patient_data import PatientData
from .services import Answer, ServiceRuntime, unavailable

log = logging.getLogger(__name__)


class CodingService:
    name = CODING_SUGGESTIONS

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.rt = runtime

    def answer(self, data: PatientData, tenant) -> Answer:
        ranker = self.rt.models.get(RANKER)
        if ranker is None:
            raise unavailable(RANKER, self.rt.models)
        call = data.call
        answer = Answer()
        if data.visit is None:
            if call.entry.hook == "encounter-discharge":
                raise precondition_failed(
                    f"encounter {call.encounter_id} is not in the data provided for patient {call.patient_id}",
                    expression="context.encounterId")
            return answer

        run = self._suggest(data)
        already = {(c.system, c.code) for c in data.visit.diagnoses}
        candidates = run.candidates(data.visit)
        recommended = [m for m in candidates if m.recommended]
        # The card shows the recommended list (at most top_codes); the codes below the cut wait
        # in the coder worklist. With nothing recommended, the few best are shown as possible.
        shown = recommended[: self.rt.settings.top_codes] or candidates[:5]
        version = "; ".join(run.versions)
        self.rt.metrics.count_unknown_codes(run.unknown)

        to_write = self._to_write(data, run, recommended)
        written: dict[tuple[str, str], dict] = {}
        write_note = None
        if call.entry.hook == "encounter-discharge" and self.rt.settings.write_back:
            written, write_note = self._write_back(data, to_write, run, version)

        if not shown:
            if run.unknown:
                answer.cards.append(C.card(
                    "Some codes in this record were not recognised; coding suggestions may be incomplete",
                    indicator="info", source=self._source(version), detail=C.unknown_codes_note(run.unknown)))
            return answer
        answer.cards.append(self._card(answer, data, shown, recommended, written, write_note, already,
                                       run, version, more=len(candidates) - len(recommended)))
        if self.rt.settings.system_actions and not written:
            for m in to_write:
                condition = build_suggested_condition(call.patient_id, data.encounter_id, m, version,
                                                       validation="fast")
                answer.system_actions.append(C.create_action(
                    f"Record {m.code} as a provisional diagnosis for coder review", condition))
        return answer

    def _to_write(self, data: PatientData, run: CodingRun, recommended: list[MergedCode]) -> list[MergedCode]:
        return codes_to_write(data.visit, run, recommended, self.rt.settings.write_back_max)

    def _source(self, version: str) -> dict:
        return self.rt.source(f"fhir-assist ICD coding models ({version})"[:120], "diagnosis-coding",
                              "Diagnosis coding")

    def _suggest(self, data: PatientData) -> CodingRun:
        models = CodingModels(self.rt.models.get(RANKER), self.rt.models.get(TEXT_CODER), self.rt.models.get(FUSION))
        return run_coding(models, data.visit, data.timeline, self.rt.settings, unknown=list(data.unknown_codes()),
                          observe=self._observe)

    def _observe(self, model: str, seconds: float) -> None:
        self.rt.metrics.model_latency.labels(model=model).observe(seconds)

    def _write_back(self, data: PatientData, codes: list[MergedCode], run: CodingRun, version: str
                    ) -> tuple[dict[tuple[str, str], dict], str | None]:
        """Write `codes` as provisional Conditions and supersede the ones an earlier call wrote
        that are no longer among them (marked entered-in-error, see FhirServer)."""
        call = data.call
        base = call.fhir_server
        if not base and call.configured_server_allowed and not call.fhir_server_refused:
            base = self.rt.settings.fhir_base_url
        if not base:
            return {}, "Not written back: no FHIR server this call may write to."
        try:
            server = self.rt.fhir_factory(base, call.access_token if call.fhir_server else None)
            stored = server.write_suggested_conditions(call.patient_id, data.encounter_id, codes, version,
                                                       cutoff_k=run.cutoff_k, target_recall=run.target_recall)
            superseded = server.supersede_suggestions(call.patient_id, data.encounter_id,
                                                      {(m.system, m.code) for m in codes}, version)
        except Exception as exc:  # noqa: BLE001 - the cards are still useful without the write
            log.warning("write-back of %d codes failed: %s", len(codes), error_kind(exc))
            self.rt.metrics.writeback_failures.inc()
            status = getattr(exc, "status", None)
            return {}, (f"Write-back to the FHIR server failed ({'HTTP ' + str(status) if status else 'unreachable'}); "
                        "the suggestions below create the Conditions instead.")
        self.rt.metrics.written_conditions.inc(len(stored))
        out = {}
        for condition in stored:
            for coding in (condition.get("code") or {}).get("coding") or []:
                out[(coding.get("system"), coding.get("code"))] = condition
        note = (f"{len(stored)} recommended code(s) recorded on the FHIR server as provisional "
                "Conditions for coder review" + (" (those scored where validation precision reached "
                                                 f"{self.rt.settings.write_back_precision:.0%})." if stored else "."))
        if is_thin(data.visit, run):
            note += (" This visit has no medications, procedures or note for the models to read, or is coded "
                     "only with Z-codes, so only codes its own reasons or inputs support are written.")
        if superseded:
            note += (f" {len(superseded)} earlier suggestion(s) the data no longer supports were marked "
                     "entered-in-error.")
        return out, note

    def _card(self, answer: Answer, data: PatientData, shown: list[MergedCode], recommended: list[MergedCode],
              written: dict, write_note: str | None, already: set, run: CodingRun, version: str,
              more: int = 0) -> dict:
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
                # Card actions are checked structurally: full R4 validation of ~20 fixed-shape
                # Conditions was a third of a call. Whatever is written goes through full validation.
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
        n_rec = len(recommended)
        if n_rec:
            summary = "Diagnosis codes suggested for this encounter: " + ", ".join(m.code for m in recommended[:4]) \
                + (f" and {n_rec - 4} more" if n_rec > 4 else "")
        else:
            summary = "Possible diagnosis codes for this encounter (none above the recommendation cut-off)"
        detail = []
        # The cut may reach beyond the codes ranked here (and beyond the card): say its length.
        n_cut = max(run.cutoff_k or 0, n_rec)
        rule = EOV_RULE if run.cut_rule == EOV_RULE else self.rt.settings.cut_rule
        detail.append(_cut_sentence(run, n_cut, rule))
        detail.append(C.md_table(["rank", "code", "description", "score", "recommended", "evidence"], rows))
        not_shown = n_cut - len([m for m in shown if m.recommended])
        if not_shown:
            detail.append(f"{not_shown} more recommended code(s) are not shown on this card"
                          + (" (see the coder worklist)." if written else "."))
        if more:
            detail.append(f"{more} more ranked code(s) below the cut are available in the coder worklist.")
        if already:
            detail.append(f"{len(already)} code(s) already recorded on this encounter are not repeated here.")
        if write_note:
            detail.append(write_note)
        detail += data.notes_about_data()
        if run.unknown:
            detail.append(C.unknown_codes_note(run.unknown))
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


def _cut_sentence(run: CodingRun, n_recommended: int, rule: str) -> str:
    if rule == EOV_RULE:
        return (f"The {n_recommended} recommended code(s) are those the language-model coder ranks above its "
                "end-of-visit token, the per-encounter cut it learned in training.")
    if rule == "global-k":
        return (f"Codes marked *recommended* are within the cut-off (K = {run.cutoff_k}) that recovered about "
                f"{run.target_recall:.0%} of an encounter's codes on validation data.")
    reached = f"{run.expected_recall:.0%}" if run.expected_recall is not None else "the target"
    return (f"The {n_recommended} recommended code(s) are the shortest list whose calibrated scores add up to "
            f"an expected recall of {reached} of this encounter's codes (target {run.target_recall:.0%}).")


def _evidence_label(evidence: Any) -> str:
    if isinstance(evidence, (list, tuple)) and len(evidence) >= 2:
        return f"{evidence[0]}: {evidence[1]}"
    return str(evidence)
