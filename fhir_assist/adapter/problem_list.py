"""The patient's problem list, as it stood at any moment of the record.

A problem list is the set of Conditions categorised `problem-list-item`; an export
gives each one's state *now* (clinicalStatus) and its dates (onset, recordedDate,
abatement). To know what a coder saw at an earlier visit the list is rebuilt as of
that visit's start:

- a problem counts from the moment it was on the list: its recordedDate (when it was
  written down), else its onset; one with neither cannot be placed in time and never
  counts;
- clinicalStatus active / recurrence / relapse: it counts until a dated abatement;
- inactive / remission / resolved: it counted only before its dated abatement (without
  one we cannot tell when it ended, so never);
- no clinicalStatus (real exports leave it out): never counts, since nothing says it
  was ever active;
- entered-in-error or refuted Conditions and the provisional Conditions this service
  wrote itself never reach this module (the timeline builder drops them first).

Encounter diagnoses (`encounter-diagnosis`) are not problems: they describe a visit, and
reach the model as that visit's codes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

PROBLEM_LIST_CATEGORY = "problem-list-item"
ACTIVE_STATUSES = frozenset({"active", "recurrence", "relapse"})
ENDED_STATUSES = frozenset({"inactive", "remission", "resolved"})
_ABATEMENT_WITHOUT_DATE = ("abatementAge", "abatementRange", "abatementString", "abatementBoolean")


@dataclass(frozen=True)
class ProblemEntry:
    """One problem-list Condition, reduced to what placing it in time needs."""

    condition_id: str
    codes: tuple                     # adapter.visits.Code, ICD and others as mapped
    clinical_status: str | None
    since: datetime | None           # recordedDate, else onset
    abated: datetime | None          # abatementDateTime / abatementPeriod.start
    abated_undated: bool = False     # an abatement given only as age, range, text or flag

    def active_at(self, when: datetime | None) -> bool:
        """Whether the problem was on the active list just before `when`."""
        if when is None or self.since is None or self.since >= when:
            return False
        if self.abated is not None and self.abated <= when:
            return False
        if self.clinical_status in ACTIVE_STATUSES:
            return not self.abated_undated
        if self.clinical_status in ENDED_STATUSES:
            return self.abated is not None      # ended after `when`, so active then
        return False


def is_problem_list_item(resource: dict) -> bool:
    for concept in resource.get("category") or []:
        for coding in (concept.get("coding") if isinstance(concept, dict) else None) or []:
            if isinstance(coding, dict) and coding.get("code") == PROBLEM_LIST_CATEGORY:
                return True
    return False


def clinical_status(resource: dict) -> str | None:
    concept = resource.get("clinicalStatus")
    for coding in (concept.get("coding") if isinstance(concept, dict) else None) or []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            return coding["code"].strip().lower()
    return None


def problem_entry(resource: dict, condition_id: str, codes, read_date, report) -> ProblemEntry:
    """The entry of a problem-list Condition; `read_date(value)` → (datetime, date_only) | None.

    What keeps a problem from ever counting is noted in `report`."""
    status = clinical_status(resource)
    onset = resource.get("onsetDateTime")
    if onset is None and isinstance(resource.get("onsetPeriod"), dict):
        onset = resource["onsetPeriod"].get("start")
    abatement = resource.get("abatementDateTime")
    if abatement is None and isinstance(resource.get("abatementPeriod"), dict):
        abatement = resource["abatementPeriod"].get("start")
    since = read_date(resource.get("recordedDate")) or read_date(onset)
    abated = read_date(abatement)
    undated = abated is None and (abatement is not None
                                  or any(resource.get(k) is not None for k in _ABATEMENT_WITHOUT_DATE))
    report.note("problem-list Conditions read")
    if status is None:
        report.note("problem-list Conditions without clinicalStatus (never counted active)")
    elif status not in ACTIVE_STATUSES | ENDED_STATUSES:
        report.note("problem-list Conditions with an unknown clinicalStatus (never counted active)")
    if since is None:
        report.note("problem-list Conditions without recordedDate or onset (never counted active)")
    if undated:
        report.note("problem-list Conditions abated at no readable date (never counted active)")
    return ProblemEntry(condition_id, tuple(codes), status, since[0] if since else None,
                        abated[0] if abated else None, undated)


def active_codes(problems: Iterable[ProblemEntry], when: datetime | None) -> list[Any]:
    """The codes of the problems active just before `when`, each once, in list order."""
    out: list = []
    for entry in problems:
        if entry.active_at(when):
            out.extend(c for c in entry.codes if c not in out)
    return out
