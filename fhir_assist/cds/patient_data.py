"""A hook call's patient data: prefetch + fallback fetches → resources → timeline → current visit.

Prefetched data the EHR sent is validated strictly (a malformed resource is the
caller's error: 400 naming it); data we fetched ourselves is read leniently
(problems counted, resource skipped) since the caller cannot fix the server.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

from fhir_assist.adapter.bundles import resources_from_bundle, resources_from_prefetch
from fhir_assist.adapter.compact_prefetch import HeldResources, read_prefetched
from fhir_assist.adapter.gc_pause import no_cyclic_gc
from fhir_assist.adapter.report import FhirInputError, IngestReport
from fhir_assist.fhir.references import split_reference

from .errors import bad_request, precondition_failed
from .prefetch import PrefetchResult, Query, as_bundle_value, gather
from .request import HookCall

log = logging.getLogger(__name__)

_PATIENT_PARAMS = ("patient", "subject")


@dataclass
class PatientData:
    call: HookCall
    resources: list[dict]
    report: IngestReport
    timeline: Any | None                      # PatientTimeline
    visit: Any | None                         # the Visit the call is about
    history: list = field(default_factory=list)   # visits before it, oldest first
    drafts: list[dict] = field(default_factory=list)   # MedicationRequests of context.draftOrders
    gathered: PrefetchResult | None = None

    @property
    def encounter_id(self) -> str | None:
        """The Encounter the call names when the visit covers it (a visit may join an ED visit and
        the admission that followed): cards and write-back go there, never to another part."""
        if self.visit is None:
            return self.call.encounter_id
        if self.call.encounter_id and self.visit.covers(self.call.encounter_id):
            return self.call.encounter_id
        return self.visit.encounter_id

    def notes_about_data(self) -> list[str]:
        """Short markdown lines on where the data came from and what is missing."""
        lines = []
        g = self.gathered
        if g is not None:
            if g.fetched:
                lines.append(f"Fetched from the FHIR server: {', '.join(sorted(g.fetched))}.")
            if g.partial:
                parts = [f"{k} ({why})" for k, why in sorted(g.partial.items())]
                lines.append("**Partial data**: " + "; ".join(parts) + ".")
            if g.missing:
                parts = [f"{k} ({why})" for k, why in sorted(g.missing.items())]
                lines.append("**Data not available**, suggestions may be incomplete: " + "; ".join(parts) + ".")
        skipped = sum(self.report.skipped.values())
        if self.report.problem_count:
            lines.append(f"{self.report.problem_count} resource(s) from the FHIR server could not be "
                         "read and were skipped.")
        elif skipped and self.report.skipped.get("invalid resource"):
            lines.append(f"{skipped} resource(s) skipped.")
        return lines

    def resources_of(self, *types: str) -> list[dict]:
        """The resources of these types, in order (without parsing the others)."""
        if isinstance(self.resources, HeldResources):
            return self.resources.of_types(types)
        return [r for r in self.resources if r.get("resourceType") in types]

    def unknown_codes(self) -> list[dict]:
        out = []
        for system, codes in self.report.unknown_code_examples.items():
            for code in codes:
                if code:
                    out.append({"system": system, "code": code})
        return out


def make_fetcher(server: Any | None) -> Callable[[Query], Any] | None:
    if server is None:
        return None

    def fetch(query: Query) -> Any:
        if query.resource_id is not None:
            return server.read(query.resource_type, query.resource_id)
        params = []
        for name, value in query.params:
            # Some servers only match a reference search with the type prefix.
            if name in _PATIENT_PARAMS and "/" not in value:
                value = f"Patient/{value}"
            params.append((name, value))
        return server.search(query.resource_type, params)

    return fetch


def load_patient_data(call: HookCall, *, fetcher: Callable[[Query], Any] | None, executor,
                      deadline_s: float, on_gathered: Callable[[PrefetchResult], None] | None = None,
                      server: Any | None = None) -> PatientData:
    from fhir_assist.adapter.timeline import build_timelines

    entry = call.entry
    gathered = gather(entry.prefetch, call.context, call.prefetch, fetcher=fetcher, executor=executor,
                      required=set(entry.required_keys), deadline_s=deadline_s)
    if on_gathered is not None:
        on_gathered(gathered)
    required_missing = {k: why for k, why in gathered.missing.items() if k in entry.required_keys}
    if required_missing:
        detail = "; ".join(f"{k}: {why}" for k, why in sorted(required_missing.items()))
        if call.fhir_server_refused:
            raise precondition_failed(
                "the data this service needs was not prefetched, and fhirServer is not a server this "
                "service may call (FHIR_ASSIST_ALLOWED_FHIR_SERVERS, --fhir-base-url): send the data "
                "in the prefetch", diagnostics=detail, expression=[f"prefetch.{k}" for k in sorted(required_missing)])
        raise precondition_failed(
            "the data this service needs was neither prefetched nor retrievable from the FHIR server",
            diagnostics=detail, expression=[f"prefetch.{k}" for k in sorted(required_missing)])

    report = IngestReport()
    given = {k: gathered.values[k] for k in gathered.from_prefetch}
    if call.compact is not None:
        resources, timelines = _read_compact(call, given, gathered, report)
        drafts = _drafts(call)
    else:
        for key, value in given.items():
            if next_link(value):
                given[key] = _remaining_pages(value, key, server, gathered)
        with _prefetch_errors():
            resources = resources_from_prefetch(given, validate="fast")
        fetched = {k: as_bundle_value(gathered.values[k]) for k in gathered.fetched}
        if fetched:
            resources += resources_from_prefetch(fetched, validate="fast", report=report)
        resources = [r for r in resources if _belongs_to(r, call.patient_id)]
        drafts = _drafts(call)
        timelines = build_timelines(resources, report)
    timeline = next((t for t in timelines if t.patient_id == call.patient_id), None)
    if timeline is None and len(timelines) == 1:
        timeline = timelines[0]
    visit, history = _current_visit(timeline, call.encounter_id)
    return PatientData(call, resources, report, timeline, visit, history, drafts, gathered)


@contextmanager
def _prefetch_errors():
    try:
        yield
    except FhirInputError as exc:
        raise bad_request(f"invalid FHIR data in prefetch: {exc}", expression=_expression(exc, "prefetch"),
                          code="structure") from None


def _drafts(call: HookCall) -> list[dict]:
    if not isinstance(call.context.get("draftOrders"), dict):
        return []
    try:
        return resources_from_bundle(call.context["draftOrders"], validate="fast", source="context.draftOrders")
    except FhirInputError as exc:
        raise bad_request(f"invalid FHIR data in draftOrders: {exc}",
                          expression=_expression(exc, "context.draftOrders"), code="structure") from None


def _read_compact(call: HookCall, given: dict, gathered: PrefetchResult, report: IngestReport):
    """What the ordinary steps give (resources kept, timelines), the prefetch read from its
    JSON bytes (`adapter.compact_prefetch`). The fetched resources are validated first, as
    the ordinary path does before any timeline is built (the report sees the same order)."""
    from fhir_assist.adapter.timeline import TimelineBuilder

    fetched = {k: as_bundle_value(gathered.values[k]) for k in gathered.fetched}
    extra = resources_from_prefetch(fetched, validate="fast", report=report) if fetched else []
    items = [item for key in given for item in call.compact.resources.get(key, ())]
    builder = TimelineBuilder(report)
    with no_cyclic_gc():
        with _prefetch_errors():
            held = read_prefetched(items, builder, call.patient_id, lambda r: _belongs_to(r, call.patient_id))
        for resource in extra:
            if _belongs_to(resource, call.patient_id):
                builder.add(resource)
                held.add(resource["resourceType"], resource)
        return held, builder.build()


MAX_PREFETCH_PAGES = 50


def next_link(value: Any) -> str | None:
    if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
        return None
    links = value.get("link")
    for link in links if isinstance(links, list) else ():     # a malformed link list is no next page
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _remaining_pages(bundle: dict, key: str, server: Any | None, gathered: PrefetchResult) -> dict:
    """A paginated prefetch Bundle with its further pages appended (the EHR may page a
    prefetch; the next pages are fetched from its FHIR server with the token it gave)."""
    if server is None:
        gathered.partial[key] = "paginated by the EHR; only the first page was provided"
        return bundle
    entries = list(bundle.get("entry") or [])
    url = next_link(bundle)
    seen = set()
    try:
        for _ in range(MAX_PREFETCH_PAGES):
            if not url or url in seen:
                break
            seen.add(url)
            page = server.request("GET", url).json()
            entries += [e for e in page.get("entry") or [] if isinstance(e, dict)]
            url = next_link(page)
    except Exception as exc:  # noqa: BLE001 - keep what was read, say what is missing
        log.info("could not read the next prefetch page of %s: %s", key, type(exc).__name__)
        gathered.partial[key] = f"paginated; later pages could not be fetched ({type(exc).__name__})"
    out = {k: v for k, v in bundle.items() if k != "link"}
    out["entry"] = entries
    return out


def _belongs_to(resource: dict, patient_id: str) -> bool:
    """Keep the patient's own resources (a careless prefetch can hold other patients')."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return resource.get("id") in (None, patient_id)
    if rtype in ("Medication", "Practitioner", "PractitionerRole", "Organization", "Location"):
        return True
    for name in ("subject", "patient"):
        ref = resource.get(name)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            kind, rid = split_reference(ref)
            return kind != "Patient" or rid == patient_id
    return True


def _current_visit(timeline: Any | None, encounter_id: str | None) -> tuple[Any | None, list]:
    if timeline is None or not timeline.visits:
        return None, []
    visits = timeline.visits
    if encounter_id:
        for i, visit in enumerate(visits):
            if visit.covers(encounter_id):
                return visit, visits[:i]
        return None, list(visits)
    return visits[-1], visits[:-1]


def _expression(exc: FhirInputError, default: str) -> list[str]:
    where = exc.source or default
    if exc.field:
        return [f"{where}.{exc.field}" if not where.endswith(exc.field) else where]
    return [where]
