"""The worklist's pages (routes on `blueprint.bp`): the worklist, one encounter's suggested
codes with their evidence, "next encounter", and the code picker's JSON search."""
from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, jsonify, redirect, render_template, request, url_for

from fhir_assist.fhir_server import FhirAccessError
from mappings import codesystems

from . import hierarchy
from .blueprint import bp, context, fhir_error_page, pending_all, pending_for
from .conditions import ConditionView, parse_condition
from .pending import Action
from .worklist import STATUSES, EncounterSummary, build_worklist

DEFAULT_TARGET_RECALL = 0.9


def every_entry():
    """The whole worklist (every status): the page filters it, /next walks it."""
    ctx = context()
    return build_worklist(ctx.open_fhir(), ctx.directory, status="all",
                          max_conditions=ctx.config.max_conditions)


@bp.get("/")
def worklist():
    status = request.args.get("status", "todo")
    if status not in STATUSES:
        status = "todo"
    try:
        entries = every_entry()
    except FhirAccessError as exc:
        return fhir_error_page(exc, "read the worklist")
    counts = {"todo": sum(e.status == "todo" for e in entries),
              "done": sum(e.status == "done" for e in entries), "all": len(entries)}
    shown = [e for e in entries if status == "all" or e.status == status]
    page = max(1, request.args.get("page", 1, type=int) or 1)
    size = context().config.page_size
    pages = max(1, (len(shown) + size - 1) // size)
    page = min(page, pages)
    return render_template(
        "review_worklist.html", entries=shown[(page - 1) * size: page * size], status=status,
        counts=counts, page=page, pages=pages, pending=pending_all(),
        store_kind=getattr(context().store, "kind", "?"))


@bp.get("/encounter/<encounter_id>")
def encounter(encounter_id: str):
    ctx = context()
    fhir = ctx.open_fhir()
    try:
        resources = fhir.search("Condition", {"encounter": f"Encounter/{encounter_id}"})
        summary = ctx.directory.summaries(fhir, [encounter_id]).get(encounter_id)
    except FhirAccessError as exc:
        return fhir_error_page(exc, f"read encounter {encounter_id}")
    views = [parse_condition(r) for r in resources]
    suggestions = sorted((v for v in views if v.suggested),
                         key=lambda v: (v.rank or 10**6, -(v.score or 0), v.code or ""))
    others = [v for v in views if not v.suggested and v.status == "confirmed"]
    if summary is None and not views:
        abort(404, f"There is no encounter {encounter_id} with codes on the FHIR server.")
    summary = summary or EncounterSummary(id=encounter_id, patient=views[0].patient)
    patient = summary.patient or next((v.patient for v in views if v.patient), None)
    explanation = ctx.evidence.explain(fhir, patient, encounter_id,
                                       [(v.system, v.code) for v in suggestions if v.code]) \
        if patient and suggestions else None
    cutoff_k = next((v.cutoff_k for v in suggestions if v.cutoff_k), None) \
        or (explanation.cutoff_k if explanation else None)
    target_recall = next((v.target_recall for v in suggestions if v.target_recall), None) \
        or (explanation.target_recall if explanation else None) or DEFAULT_TARGET_RECALL
    pending = {(a.system, a.code): a for a in pending_for(encounter_id)}
    rows = [_row(v, explanation, pending) for v in suggestions]
    _link_focus(rows)
    model_version = next((v.model_version for v in suggestions if v.model_version), None)
    query = request.args.get("q", "").strip()
    results = [_hit(code, desc) for code, desc in hierarchy.search_codes(query)] if query else []
    return render_template(
        "review_encounter.html", encounter=summary, patient=patient, rows=rows,
        confirmed=[_row(v, None, pending) for v in _confirmed(suggestions, others)],
        cutoff_k=cutoff_k, cut_after=_cut_after(rows, cutoff_k),
        target_recall=target_recall, model_version=model_version,
        explanation=explanation, pending=list(pending.values()), query=query, results=results,
        open_count=sum(1 for v in suggestions if v.is_open),
        focus=request.args.get("focus", ""))


@bp.get("/next")
def next_encounter():
    after = request.args.get("after", "")
    try:
        entries = every_entry()
    except FhirAccessError as exc:
        return fhir_error_page(exc, "read the worklist")
    # the first encounter to review below this one in the worklist's order, wrapping around
    order = [e.encounter.id for e in entries]
    start = order.index(after) + 1 if after in order else 0
    ids = [e.encounter.id for e in entries[start:] + entries[:start]
           if e.status == "todo" and e.encounter.id != after]
    if not ids:
        flash("Every encounter on the worklist is reviewed.", "success")
        return redirect(url_for(".worklist", status="done"))
    return redirect(url_for(".encounter", encounter_id=ids[0]))


@bp.get("/icd/search")
def search_codes():
    query = request.args.get("q", "")
    return jsonify({"query": query,
                    "results": [_hit(code, desc) for code, desc in hierarchy.search_codes(query)]})


# ---------------------------------------------------------------------- rows
@dataclass
class Row:
    view: ConditionView
    info: hierarchy.CodeInfo
    evidence: list
    pending: Action | None
    next_focus: str = "next-encounter"     # where the keyboard goes after deciding this row

    @property
    def key(self) -> str:
        return self.view.id


def _row(view: ConditionView, explanation, pending: dict) -> Row:
    key = (view.system, view.code)
    evidence = explanation.evidence.get(key, []) if explanation else []
    return Row(view, hierarchy.code_info(view.system, view.code), evidence, pending.get(key))


def _link_focus(rows: list[Row]) -> None:
    """After a decision the next undecided row gets the focus (wrapping around), then
    the "next encounter" button once every row is decided."""
    open_ids = [r.key for r in rows if r.view.is_open]
    for i, row in enumerate(rows):
        later = [r.key for r in rows[i + 1:] if r.view.is_open]
        earlier = [k for k in open_ids if k != row.key and k not in later]
        row.next_focus = (later or earlier or ["next-encounter"])[0]


def _confirmed(suggestions: list[ConditionView], others: list[ConditionView]) -> list[ConditionView]:
    accepted = [v for v in suggestions if v.status == "confirmed"]
    return sorted(accepted + others, key=lambda v: v.code or "")


def _cut_after(rows: list[Row], cutoff_k: int | None) -> str | None:
    """Id of the last row ranked within K (the line is drawn below it)."""
    if not cutoff_k:
        return None
    within = [r for r in rows if r.view.rank is not None and r.view.rank <= cutoff_k]
    return within[-1].key if within else None


def _hit(code: str, description: str) -> dict:
    info = hierarchy.code_info(codesystems.ICD10CM, code)
    return {"code": code, "description": description,
            "path": [step.description or step.node for step in info.path]}
