"""The worklist's decisions (routes on `blueprint.bp`): accept / reject / reopen a suggested
code, add a code, and retry decisions the FHIR server or the store did not take. Forms
work without JavaScript: post → redirect → get."""
from __future__ import annotations

from flask import abort, flash, g, redirect, request, url_for

from fhir_assist.fhir_server import FhirAccessError, FhirServerError
from fhir_assist.store import StoreUnavailable
from mappings import codesystems

from . import hierarchy
from .actions import STATUS_FOR, VERB, Outcome, now_iso
from .blueprint import bp, context, pending_for, safe_next
from .conditions import ConditionView, parse_condition
from .pending import Action

REASON_MAX = 500


@bp.post("/encounter/<encounter_id>/conditions/<condition_id>/<verb>")
def decide(encounter_id: str, condition_id: str, verb: str):
    if verb not in ("accept", "reject", "reopen"):
        abort(404)
    fhir = context().open_fhir()
    form = request.form
    reason = (form.get("reason") or "").strip()[:REASON_MAX] or None if verb == "reject" else None
    try:
        view = parse_condition(fhir.read("Condition", condition_id))
    except FhirServerError as exc:
        if exc.status in (404, 410):
            flash(f"Condition {condition_id} no longer exists on the FHIR server.", "error")
            return redirect(url_for(".encounter", encounter_id=encounter_id))
        view = None
    except FhirAccessError:
        view = None
    if view is not None and view.encounter != encounter_id:
        abort(400, "the Condition belongs to another encounter")
    if view is not None and view.status == STATUS_FOR[verb] and not _has_pending(encounter_id, view):
        # a repeated post (double click, browser resend) changes nothing and records nothing
        flash(f"{view.code} is already {VERB[verb]}.", "success")
        return _back(encounter_id, form.get("next_focus"))
    # When the FHIR server cannot be read, the page's own copy of the code identifies
    # the decision so it can be kept for retry.
    action = Action(
        kind=verb, patient=(view.patient if view else form.get("patient")) or "",
        encounter=encounter_id, condition_id=condition_id,
        system=(view.system if view else form.get("system")) or codesystems.ICD10CM,
        code=(view.code if view else form.get("code")) or "",
        display=(view.display if view else form.get("display")) or None,
        reason=reason, user=g.coder.id, at=now_iso(),
        model_version=(view.model_version if view else form.get("model_version")) or None)
    if not action.code or not action.patient:
        flash("The FHIR server cannot be reached and this page is missing the code; reload it.",
              "error")
        return redirect(url_for(".encounter", encounter_id=encounter_id))
    _flash(context().runner.apply(fhir, action))
    return _back(encounter_id, form.get("next_focus"))


@bp.post("/encounter/<encounter_id>/add")
def add_code(encounter_id: str):
    fhir = context().open_fhir()
    form = request.form
    info = hierarchy.code_info(codesystems.ICD10CM, (form.get("code") or "").strip())
    if not info.billable:
        flash(f"“{form.get('code', '')}” is not a billable ICD-10-CM code.", "error")
        return redirect(url_for(".encounter", encounter_id=encounter_id))
    patient = form.get("patient") or ""
    try:
        summary = context().directory.summaries(fhir, [encounter_id]).get(encounter_id)
        patient = (summary.patient if summary else None) or patient
    except FhirAccessError:
        pass      # keep the page's patient id: the decision is queued below
    if not patient:
        abort(404)
    try:
        existing = [parse_condition(r) for r in fhir.search(
            "Condition", {"encounter": f"Encounter/{encounter_id}", "code": f"{codesystems.ICD10CM}|{info.code}"})]
    except FhirAccessError:
        existing = []     # cannot check now; the queued add checks again before creating
    if any(v.status == "confirmed" for v in existing):
        flash(f"{info.code} is already coded on this encounter.", "success")
        return _back(encounter_id, "add-code")
    action = Action(kind="add", patient=patient, encounter=encounter_id,
                    system=codesystems.ICD10CM, code=info.code, display=info.description,
                    user=g.coder.id, at=now_iso(), model_version=form.get("model_version") or None)
    _flash(context().runner.apply(fhir, action))
    return _back(encounter_id, "add-code")


@bp.post("/pending/<action_id>/retry")
def retry(action_id: str):
    ctx = context()
    try:
        action = ctx.pending.get(ctx.config.tenant, action_id)
    except StoreUnavailable as exc:
        flash(str(exc), "error")
        return redirect(safe_next(request.form.get("next")) or url_for(".worklist"))
    if action is None:
        flash("That decision was already saved.", "success")
        return redirect(safe_next(request.form.get("next")) or url_for(".worklist"))
    _flash(ctx.runner.apply(ctx.open_fhir(), action), retried=True)
    return redirect(safe_next(request.form.get("next"))
                    or url_for(".encounter", encounter_id=action.encounter))


@bp.post("/pending/retry-all")
def retry_all():
    ctx = context()
    fhir = ctx.open_fhir()
    try:
        actions = ctx.pending.all(ctx.config.tenant)
    except StoreUnavailable as exc:
        flash(str(exc), "error")
        return redirect(url_for(".worklist"))
    saved = failed = 0
    for action in actions:
        outcome = ctx.runner.apply(fhir, action)
        saved += outcome.ok
        failed += not outcome.ok
    if failed:
        flash(f"{saved} decision(s) saved; {failed} still waiting: the FHIR server or the "
              "feedback store is not answering.", "error")
    else:
        flash(f"{saved} decision(s) saved.", "success")
    return redirect(safe_next(request.form.get("next")) or url_for(".worklist"))


def _has_pending(encounter_id: str, view: ConditionView) -> bool:
    return any((a.system, a.code) == (view.system, view.code) for a in pending_for(encounter_id))


def _flash(outcome: Outcome, retried: bool = False) -> None:
    if outcome.ok:
        flash(("Saved: " if retried else "") + outcome.message, "success")
    else:
        flash(outcome.message, "error")


def _back(encounter_id: str, focus: str | None):
    return redirect(url_for(".encounter", encounter_id=encounter_id, focus=focus or None))
