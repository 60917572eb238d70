"""Bundles (collection, searchset, transaction, batch, document…) and CDS Hooks prefetch → resource dicts."""
from __future__ import annotations

from typing import Any, Iterator

from fhir_assist.fhir.references import split_reference
from fhir_assist.fhir.validation import json_type_name

from .report import FhirInputError, IngestReport, record_problem
from .validate import Validator


def _reference_aliases(entries: list) -> dict[str, str]:
    """fullUrl → "Type/id" for entries whose references may use the fullUrl form.

    Transaction bundles name new resources `urn:uuid:…` and reference them that way;
    resources without an id take it from the uuid, as a server would assign one.
    """
    aliases: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        resource, full_url = entry.get("resource"), entry.get("fullUrl")
        if not isinstance(resource, dict) or not isinstance(full_url, str):
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        rid = resource.get("id")
        if not isinstance(rid, str) or not rid:
            kind, named = split_reference(full_url)
            if full_url.startswith(("urn:uuid:", "urn:oid:")) or kind == rtype:
                rid = named
        if isinstance(rid, str) and rid:
            aliases[full_url] = f"{rtype}/{rid}"
    return aliases


def _rewrite_references(node: Any, aliases: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in aliases:
                out[key] = aliases[value]
            else:
                out[key] = _rewrite_references(value, aliases)
        return out
    if isinstance(node, list):
        return [_rewrite_references(item, aliases) for item in node]
    return node


def iter_bundle_entries(bundle: dict, source: str | None, report: IngestReport | None,
                 depth: int = 0) -> Iterator[tuple[Any, str | None]]:
    """(resource, source) for each entry of a Bundle, nested Bundles expanded."""
    entries = bundle.get("entry")
    if entries is None:
        return
    if not isinstance(entries, list):
        record_problem(FhirInputError(f"expected an array, got {json_type_name(entries)}",
                                resource_type="Bundle", resource_id=bundle.get("id"),
                                field="entry", source=source), report)
        return
    aliases = _reference_aliases(entries)
    # Only rewrite when some fullUrl differs from the Type/id form references would use.
    rewrite = {k: v for k, v in aliases.items() if not k.endswith(v)}
    for i, entry in enumerate(entries):
        where = f"{source}:entry[{i}]" if source else f"entry[{i}]"
        if not isinstance(entry, dict):
            record_problem(FhirInputError(f"expected an object, got {json_type_name(entry)}",
                                    resource_type="Bundle", field=f"entry[{i}]", source=source),
                     report)
            continue
        resource = entry.get("resource")
        if resource is None:
            method = (entry.get("request") or {}).get("method") if isinstance(entry.get("request"), dict) else None
            if report is not None:
                report.skip("bundle entry with a DELETE request" if method == "DELETE"
                            else "bundle entry without a resource")
            continue
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") == "outcome":
            if report is not None:
                report.skip("search outcome (OperationOutcome) in a searchset")
            continue
        if isinstance(resource, dict):
            full_url = entry.get("fullUrl")
            rid = resource.get("id")
            if (rid is None or rid == "") and isinstance(full_url, str) and full_url in aliases:
                resource = dict(resource)
                resource["id"] = aliases[full_url].split("/", 1)[1]
            if rewrite:
                resource = _rewrite_references(resource, rewrite)
            if resource.get("resourceType") == "Bundle" and depth < 8:
                yield from iter_bundle_entries(resource, where, report, depth + 1)
                continue
        yield resource, where


def resources_from_bundle(bundle: Any, *, validate: str = "fast",
                          report: IngestReport | None = None,
                          source: str | None = None) -> list[dict]:
    """The resources of a Bundle (collection, searchset, transaction, batch, document…).

    Transaction entries' `urn:uuid:` fullUrls become ids and references are rewritten
    to "Type/id". Search outcomes and DELETE entries are skipped (and counted).
    Without a report the first malformed resource raises `FhirInputError`.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, dict) else json_type_name(bundle)
        raise FhirInputError(f"expected a Bundle, got {got!r}", resource_type="Bundle",
                             field="resourceType", source=source)
    check = Validator(validate, report)
    out = []
    for resource, where in iter_bundle_entries(bundle, source, report):
        ok = check(resource, where)
        if ok is not None:
            out.append(ok)
    return out


def resources_from_prefetch(prefetch: Any, *, validate: str = "fast",
                            report: IngestReport | None = None) -> list[dict]:
    """The resources of a CDS Hooks prefetch dict.

    Each value may be a resource, a (searchset) Bundle, a list of either, or null
    (the EHR could not or would not fetch it).
    """
    if prefetch is None:
        return []
    if not isinstance(prefetch, dict):
        raise FhirInputError(f"prefetch must be an object, got {json_type_name(prefetch)}",
                             field="prefetch")
    check = Validator(validate, report)
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()   # the same Patient often appears under several keys

    def take(resource: Any, where: str) -> None:
        ok = check(resource, where)
        if ok is None:
            return
        key = (ok["resourceType"], ok.get("id"))
        if key[1] is not None and key in seen:
            if report is not None:
                report.skip("duplicate resource in prefetch")
            return
        seen.add(key)
        out.append(ok)

    for name, value in prefetch.items():
        where = f"prefetch.{name}"
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            here = f"{where}[{i}]" if isinstance(value, list) else where
            if item is None:
                if report is not None:
                    report.skip("prefetch value is null")
                continue
            if isinstance(item, dict) and item.get("resourceType") == "Bundle":
                for resource, src in iter_bundle_entries(item, here, report):
                    take(resource, src)
            else:
                take(item, here)
    return out
