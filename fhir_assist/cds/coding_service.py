"""The coding-suggestions service: the ICD ranker and the text coder's list for one visit,
cut per encounter, shown on a card, and the confident part written back as provisional
Conditions (idempotent in effect: a repeated call writes nothing new, a call after new data
supersedes what the earlier one wrote).
"""
from __future__ import annotations

import logging
import time
from typing import Any

from ..fhir_server import build_suggested_condition, error_kind
from ..suggest.mera import EOV_RULE
from ..suggest.model_set import RANKER
from ..suggest.visit_codes import CodingRun, MergedCode, VisitCoder
from . import cards as C
from .catalog import CODING_SUGGESTIONS
from .errors import precondition_failed
from .patient_data import PatientData
from .services import Answer, ServiceRuntime, unavailable
from .writeback import PendingWrite

log = logging.getLogger(__name__)
# Evidence that is a model's score rather than something in the record.
SCORE_KINDS = frozenset({"ranker", "text-coder"})


class CodingService:
    """The hook's side of coding a visit: the card, write-back and system actions around the
    list `suggest.visit_codes.VisitCoder` ranks, cuts and chooses from."""
    name = CODING_SUGGESTIONS

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.rt = runtime

    @property
    def coder(self) -> VisitCoder:
        # Built per use (cheap): the runtime's models and settings are the ones of this call.
        return VisitCoder(self.rt.models, self.rt.settings, self._observe)

    def _observe(self, model: str, seconds: float) -> None:
        self.rt.metrics.model_latency.labels(model=model).observe(seconds)

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

        coder = self.coder
        run = coder.rank_codes(data)
        already = {(c.system, c.code) for c in data.visit.diagnoses}
        candidates = coder.candidates(run, data.visit)
        recommended = [m for m in candidates if m.recommended]
        # The card shows the confident part of the cut (above the write-back floor, at most the
        # write-back cap): where most codes are hard to predict, reaching the target recall takes
        # hundreds of codes, which only the worklist can hold. Without a confident code, the
        # recommended list; with nothing recommended, the few best as possible.
        confident = [m for m in recommended if m.above_floor][: self.rt.settings.write_back_max]
        shown = (confident or recommended)[: self.rt.settings.top_codes] or candidates[:5]
        version = "; ".join(run.versions)
        self.rt.metrics.count_unknown_codes(run.unknown)
        coder.add_evidence(run, shown + coder.codes_to_explain(data, run, recommended))

        to_write = coder.codes_to_write(data, run, recommended)
        written: dict[tuple[str, str], dict] = {}
        write_note = None
        if call.entry.hook == "encounter-discharge" and self.rt.settings.write_back:
            written, write_note = self._write_back(data, to_write, run, version, tenant)

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

    def _source(self, version: str) -> dict:
        return self.rt.source(f"fhir-assist ICD coding models ({version})"[:120], "diagnosis-coding",
                              "Diagnosis coding")

    def _write_back(self, data: PatientData, codes: list[MergedCode], run: CodingRun, version: str, scope
                    ) -> tuple[dict[tuple[str, str], dict], str | None]:
        """Write `codes` as provisional Conditions and supersede the ones an earlier call wrote
        that are no longer among them (marked entered-in-error, see FhirServer); when the server
        cannot take them now, they are queued and retried (`writeback`)."""
        call = data.call
        base = call.fhir_server
        if not base and call.configured_server_allowed and not call.fhir_server_refused:
            base = self.rt.settings.fhir_base_url
        if not base:
            return {}, "Not written back: no FHIR server this call may write to."
        write = PendingWrite(base.rstrip("/"), call.patient_id, data.encounter_id, [_code_dict(m) for m in codes],
                             version, run.cutoff_k, run.target_recall, with_call_token=bool(call.fhir_server))
        try:
            result = self.rt.writebacks.write(scope, write, call.access_token if call.fhir_server else None,
                                              call.token_expires_in)
        except Exception as exc:  # noqa: BLE001 - the cards are still useful without the write
            log.warning("write-back of %d codes failed: %s", len(codes), error_kind(exc))
            self.rt.metrics.writeback_failures.inc()
            status = getattr(exc, "status", None)
            return {}, (f"Write-back to the FHIR server failed ({'HTTP ' + str(status) if status else 'unreachable'}); "
                        "the suggestions below create the Conditions instead.")
        if result.pending is not None:
            wait = max(1, round(result.pending.next_at - time.time()))
            return {}, (f"Write-back pending: the FHIR server could not take the {len(codes)} recommended code(s) "
                        f"now ({result.pending.last_error}). The service keeps them and retries in the background "
                        f"(next try in about {wait} s); each code is written once. Until then the suggestions "
                        "below create the Conditions.")
        stored, superseded = result.stored, result.superseded
        out = {}
        for condition in stored:
            for coding in (condition.get("code") or {}).get("coding") or []:
                out[(coding.get("system"), coding.get("code"))] = condition
        note = (f"{len(stored)} recommended code(s) recorded on the FHIR server as provisional "
                "Conditions for coder review" + (" (those scored where validation precision reached "
                                                 f"{self.rt.settings.write_back_precision:.0%})." if stored else "."))
        if VisitCoder.thin(data, run):
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
            evidence = ", ".join(_evidence_label(e) for e in _card_evidence(m.evidence))
            rows.append([m.rank, m.code, m.display or "", f"{m.score:.2f}",
                         "yes" if m.recommended else "", evidence])
        n_rec = len(recommended)
        headline = [m for m in shown if m.recommended]
        if headline:
            summary = "Diagnosis codes suggested for this encounter: " + ", ".join(m.code for m in headline[:4]) \
                + (f" and {len(headline) - 4} more" if len(headline) > 4 else "")
        else:
            summary = "Possible diagnosis codes for this encounter (none above the recommendation cut-off)"
        detail = []
        # The cut may reach beyond the codes ranked here (and beyond the card): say its length.
        n_cut = max(run.cutoff_k or 0, n_rec)
        rule = EOV_RULE if run.cut_rule == EOV_RULE else self.rt.settings.cut_rule
        detail.append(_cut_sentence(run, n_cut, rule, self.rt.settings.cut_min_probability))
        if 0 < len(shown) < n_cut and all(m.recommended for m in shown) and run.score_total:
            reached = min(sum(m.score for m in shown) / run.score_total, 1.0)
            detail.insert(0, f"The {len(shown)} code(s) shown reach an expected recall of {reached:.0%} of this "
                             "encounter's codes" + (f" (those scored where validation precision reached "
                                                    f"{self.rt.settings.write_back_precision:.0%})"
                                                    if all(m.above_floor for m in shown) else "") + ".")
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


def _code_dict(m: MergedCode) -> dict:
    return {"system": m.system, "code": m.code, "display": m.display, "score": round(float(m.score), 6),
            "rank": m.rank}


def _cut_sentence(run: CodingRun, n_recommended: int, rule: str, floor: float = 0.0) -> str:
    if rule == EOV_RULE:
        return (f"The {n_recommended} recommended code(s) are those the language-model coder ranks above its "
                "end-of-visit token, the per-encounter cut it learned in training.")
    if rule == "global-k":
        return (f"Codes marked *recommended* are within the cut-off (K = {run.cutoff_k}) that recovered about "
                f"{run.target_recall:.0%} of an encounter's codes on validation data.")
    reached = f"{run.expected_recall:.0%}" if run.expected_recall is not None else "the target"
    threshold = getattr(run, "cut_threshold", None)
    if threshold is not None and (not floor or floor <= threshold):    # a lower floor never binds
        return (f"The {n_recommended} recommended code(s) are those scored at least {run.cut_threshold:.1%}, "
                f"where the lists found {run.target_recall:.0%} of the codes on validation data; their scores "
                f"hold an expected recall of {reached} of this encounter's codes.")
    if floor and run.expected_recall is not None and run.expected_recall < run.target_recall - 1e-9:
        return (f"The {n_recommended} recommended code(s) reach an expected recall of {reached} of this "
                f"encounter's codes (target {run.target_recall:.0%}): the list stops where each further code "
                f"is scored below {floor:.0%}.")
    return (f"The {n_recommended} recommended code(s) are the shortest list whose calibrated scores add up to "
            f"an expected recall of {reached} of this encounter's codes (target {run.target_recall:.0%}).")


def _card_evidence(evidence: list, n: int = 3) -> list:
    """What the card's evidence column names: two items of the record or the inputs (a
    coder checks those), then a model's score."""
    def is_score(e) -> bool:
        return isinstance(e, (list, tuple)) and bool(e) and e[0] in SCORE_KINDS
    found = [e for e in evidence if not is_score(e)][:n - 1]
    return (found + [e for e in evidence if is_score(e)])[:n]


def _evidence_label(evidence: Any) -> str:
    if isinstance(evidence, (list, tuple)) and len(evidence) >= 2:
        return f"{evidence[0]}: {evidence[1]}"
    return str(evidence)
