"""A Bulk Data export → per-patient resource groups.

An export's files come one per resource type, in no particular order, so a patient's
resources are spread over every file: they are keyed by the Patient they belong to.
Medication resources belong to no patient: they are kept apart and handed to each patient
whose MedicationRequests name them. Resources that name no patient are counted and skipped.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Iterator

from fhir_assist.adapter.files import choose_files, iter_resources
from fhir_assist.adapter.report import IngestReport
from fhir_assist.fhir.references import reference_id

NO_PATIENT = "resource without patient"
PATIENT = "patient"
MEDICATION = "medication"
SHARED_TYPES = frozenset({"Medication"})


def export_files(path: str | os.PathLike) -> list[Path]:
    """The files of the export that will be read (see `adapter.files.choose_files`)."""
    return choose_files(path)[0]


def patient_of(resource: dict) -> str | None:
    """The id of the Patient a resource belongs to, or None."""
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return rid if isinstance(rid, str) and rid else None
    for name in ("subject", "patient"):
        pid = reference_id(resource.get(name), "Patient")
        if pid:
            return pid
    return None


def keyed_resources(path: str | os.PathLike, report: IngestReport) -> Iterator[tuple[str, str, dict]]:
    """(PATIENT, patient id, resource) or (MEDICATION, medication id, resource) for each
    resource read from `path` (a folder or one file); what cannot be read or keyed is counted
    in `report`."""
    for resource in iter_resources(path, validate="fast", report=report):
        if resource.get("resourceType") in SHARED_TYPES:
            rid = resource.get("id")
            if isinstance(rid, str) and rid:
                yield MEDICATION, rid, resource
            else:
                report.skip("Medication without id")
            continue
        pid = patient_of(resource)
        if pid is None:
            report.skip(NO_PATIENT)
            continue
        yield PATIENT, pid, resource


def group_by_patient(keyed: Iterable[tuple[str, str, dict]]) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """({patient id: resources in reading order}, {medication id: Medication})."""
    patients: dict[str, list[dict]] = defaultdict(list)
    medications: dict[str, dict] = {}
    for kind, key, resource in keyed:
        if kind == PATIENT:
            patients[key].append(resource)
        else:
            medications.setdefault(key, resource)
    return dict(patients), medications


def medications_named(resources: Iterable[dict], medications: dict[str, dict]) -> list[dict]:
    """The shared Medication resources the patient's MedicationRequests refer to, by id order."""
    if not medications:
        return []
    wanted = set()
    for r in resources:
        if r.get("resourceType") == "MedicationRequest":
            mid = reference_id(r.get("medicationReference"), "Medication")
            if mid in medications:
                wanted.add(mid)
    return [medications[m] for m in sorted(wanted)]
