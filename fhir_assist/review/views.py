"""Routes of the coder worklist (`/review`): server-rendered pages, forms that work
without JavaScript (post → redirect → get), and a small JSON search for the code picker."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import (Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template,
                   request, url_for)

from werkzeug.exceptions import HTTPException

from fhir_assist.fhir.ids import is_fhir_id
from fhir_assist.fhir_server import FhirAccessError, FhirServerError
from mappings import codesystems

from . import csrf, hierarchy
from .actions import STATUS_FOR, VERB, ActionRunner, Outcome, describe_fhir_error, now_iso
from .auth import AuthError, Authenticator
from .conditions import ConditionView, parse_condition
from .config import ReviewConfig
from .evidence import EvidenceSource
from .pending import Action, PendingActions, PendingUnavailable
from .worklist import STATUSES, EncounterDirectory, EncounterSummary, build_worklist

log = logging.getLogger(__name__)

REASON_MAX = 500
DEFAULT_TARGET_RECALL = 0.9


@dataclass
class ReviewContext:
    config: ReviewConfig
    store: object
    open_fhir: object            # () -> FhirServer
    pending: PendingActions
    runner: ActionRunner
    evidence: EvidenceSource
    directory: EncounterDirectory
    auth: Authenticator


class NotConfigured(RuntimeError):
    pass


def register_routes(bp: Blueprint, ctx: ReviewContext) -> None:
    tenant = ctx.config.tenant

    # ------------------------------------------------------------------ guards
    @bp.before_request
    def authenticate():
        try:
            g.coder = ctx.auth.authenticate(request.headers)
        except AuthError as exc:
            response = current_app.make_response((render_template(
                "review_error.html", title="Sign-in required", message=str(exc), coder=None), 401))
            response.headers["WWW-Authenticate"] = 'Bearer realm="fhir-assist review"'
            return response
        if request.method == "POST":
            if not csrf.is_valid(request) or not _same_origin(request):
                return render_template(
                    "review_error.html", title="Action refused",
                    message="This form has expired or did not come from this page. "
                            "Reload the page and try again.", coder=g.coder), 400
        return None

    @bp.after_request
    def security_headers(response):
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @bp.context_processor
    def template_globals():
        return {"csrf_token": csrf.token, "coder": g.get("coder"), "statuses": STATUSES}

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # pages for people, not the JSON OperationOutcome the CDS endpoints answer with
        titles = {400: "Request not understood", 404: "Not found", 405: "Not allowed"}
        return render_template("review_error.html", title=titles.get(exc.code, exc.name),
                               message=exc.description), exc.code

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception):
        reference = uuid.uuid4().hex[:12]
        log.exception("review: unexpected error on %s %s (reference %s)", request.method, request.path, reference)
        return render_template("review_error.html", title="Something went wrong",
                               message=f"The page could not be shown (reference {reference} in the service "
                                       "log). Decisions already made are kept."), 500

    @bp.url_value_preprocessor
    def check_ids(endpoint, values):
        # ids end up in FHIR URLs: refuse anything that is not a FHIR id before using it
        for name in ("encounter_id", "condition_id"):
            if values and name in values and not is_fhir_id(values[name]):
                abort(404, f"“{values[name]}” is not a FHIR resource id.")

    @bp.errorhandler(PendingUnavailable)
    def pending_down(exc):
        return render_template("review_error.html", title="The state store cannot be reached",
                               message=f"{exc}. Decisions cannot be kept for retry until it is back."), 503

    @bp.errorhandler(NotConfigured)
    def not_configured(exc):
        return render_template("review_error.html", title="FHIR server not configured",
                               message=str(exc)), 503

    def fhir_error_page(exc: Exception, what: str):
        log.warning("review: %s failed: %s", what, exc)
        return render_template(
            "review_error.html", title="The FHIR server cannot be reached",
            message=f"Could not {what}: {describe_fhir_error(exc)}.", retry_url=request.url,
            pending=_pending_all(ctx)), 502

    def every_entry():
        """The whole worklist (every status): the page filters it, /next walks it."""
        return build_worklist(ctx.open_fhir(), ctx.directory, status="all",
                              max_conditions=ctx.config.max_conditions)

    # ------------------------------------------------------------------ pages
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
        size = ctx.config.page_size
        pages = max(1, (len(shown) + size - 1) // size)
        page = min(page, pages)
        return render_template(
            "review_worklist.html", entries=shown[(page - 1) * size: page * size], status=status,
            counts=counts, page=page, pages=pages, pending=_pending_all(ctx),
            store_kind=getattr(ctx.store, "kind", "?"))

    @bp.get("/encounter/<encounter_id>")
    def encounter(encounter_id: str):
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
        pending = {(a.system, a.code): a for a in _pending_for(ctx, encounter_id)}
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

    # ------------------------------------------------------------------ actions
    @bp.post("/encounter/<encounter_id>/conditions/<condition_id>/<verb>")
    def decide(encounter_id: str, condition_id: str, verb: str):
        if verb not in ("accept", "reject", "reopen"):
            abort(404)
        fhir = ctx.open_fhir()
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
        if view is not None and view.status == STATUS_FOR[verb] and not _has_pending(ctx, encounter_id, view):
            # a repeated post (double click, browser resend) changes nothing and records nothing
            flash(f"{view.code} is already {VERB[verb]}.", "success")
            return _back(encounter_id, form.get("next_focus"), Outcome(True, ""))
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
        outcome = ctx.runner.apply(fhir, action)
        _flash(outcome)
        return _back(encounter_id, form.get("next_focus"), outcome)

    @bp.post("/encounter/<encounter_id>/add")
    def add_code(encounter_id: str):
        fhir = ctx.open_fhir()
        form = request.form
        info = hierarchy.code_info(codesystems.ICD10CM, (form.get("code") or "").strip())
        if not info.billable:
            flash(f"“{form.get('code', '')}” is not a billable ICD-10-CM code.", "error")
            return redirect(url_for(".encounter", encounter_id=encounter_id))
        patient = form.get("patient") or ""
        try:
            summary = ctx.directory.summaries(fhir, [encounter_id]).get(encounter_id)
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
            return _back(encounter_id, "add-code", Outcome(True, ""))
        action = Action(kind="add", patient=patient, encounter=encounter_id,
                        system=codesystems.ICD10CM, code=info.code, display=info.description,
                        user=g.coder.id, at=now_iso(), model_version=form.get("model_version") or None)
        outcome = ctx.runner.apply(fhir, action)
        _flash(outcome)
        return _back(encounter_id, "add-code", outcome)

    @bp.post("/pending/<action_id>/retry")
    def retry(action_id: str):
        try:
            action = ctx.pending.get(tenant, action_id)
        except PendingUnavailable as exc:
            flash(str(exc), "error")
            return redirect(_safe_next(request.form.get("next")) or url_for(".worklist"))
        if action is None:
            flash("That decision was already saved.", "success")
            return redirect(_safe_next(request.form.get("next")) or url_for(".worklist"))
        outcome = ctx.runner.apply(ctx.open_fhir(), action)
        _flash(outcome, retried=True)
        return redirect(_safe_next(request.form.get("next"))
                        or url_for(".encounter", encounter_id=action.encounter))

    @bp.post("/pending/retry-all")
    def retry_all():
        fhir = ctx.open_fhir()
        try:
            actions = ctx.pending.all(tenant)
        except PendingUnavailable as exc:
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
        return redirect(_safe_next(request.form.get("next")) or url_for(".worklist"))


# ---------------------------------------------------------------------- helpers
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


def _pending_all(ctx: ReviewContext) -> list[Action]:
    try:
        return ctx.pending.all(ctx.config.tenant)
    except PendingUnavailable as exc:
        flash(str(exc), "error")
        return []


def _pending_for(ctx: ReviewContext, encounter_id: str) -> list[Action]:
    try:
        return ctx.pending.for_encounter(ctx.config.tenant, encounter_id)
    except PendingUnavailable as exc:
        flash(str(exc), "error")
        return []


def _has_pending(ctx: ReviewContext, encounter_id: str, view: ConditionView) -> bool:
    return any((a.system, a.code) == (view.system, view.code) for a in _pending_for(ctx, encounter_id))


def _flash(outcome: Outcome, retried: bool = False) -> None:
    if outcome.ok:
        flash(("Saved: " if retried else "") + outcome.message, "success")
    else:
        flash(outcome.message, "error")


def _back(encounter_id: str, focus: str | None, outcome: Outcome):
    return redirect(url_for(".encounter", encounter_id=encounter_id, focus=focus or None))


def _same_origin(req) -> bool:
    """Refuse cross-site posts that carry an Origin header naming another site."""
    origin = req.headers.get("Origin")
    if not origin or origin == "null":
        return origin != "null"
    return urlsplit(origin).netloc == req.host


def _safe_next(url: str | None) -> str | None:
    # only same-site paths: never redirect a coder to another origin
    if url and url.startswith("/") and not url.startswith("//"):
        return url
    return None
