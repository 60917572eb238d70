"""What the record says before a visit is coded: the diagnoses of the patient's earlier
visits, weighted by recency, the active problem list as of the visit, and the visit's
own context (reason codes, class, admitting service, length of stay, time since the
last visit).

A coder's first evidence is the record: outpatients' chronic problems are re-cited at
every visit, and a model that sees only the visit's medications and procedures loses to
copying the last visit's codes. Inpatient stays share far fewer codes, so the ranker
gets both and learns from the data how much history carries over.

Diagnoses of earlier visits and the problem list come from the timeline the adapter
built, which never includes the provisional Conditions this service writes back (they
are suggestions, not clinical input)."""
from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Sequence

from fhir_assist.tasks.coding.ontology import code_labels, icd_system

RECENCY = 0.5          # weight of a code last seen k visits back: RECENCY ** (k − 1)
HISTORY_VISITS = 8     # earlier visits looked at
STAY_DAYS = (0, 1, 3, 7, 14)      # length-of-stay buckets (lower bounds, days)
GAP_DAYS = (0, 30, 90, 365)       # days since the previous visit ended


def billing_tokens(visit) -> frozenset[str]:
    """Billing-level label tokens ("icd10:E11.65") of a visit's ICD diagnoses."""
    return icd_billing_tokens(visit.diagnoses)


def problem_tokens(visit, patient=None) -> list[str]:
    """Billing tokens of the problems active just before the visit started: the visit's own
    list where the timeline built it, else rebuilt from the patient's problem entries."""
    from fhir_assist.adapter.problem_list import active_codes

    codes = visit.problem_list
    if not codes and patient is not None and getattr(patient, "problems", None):
        codes = active_codes(patient.problems, visit.start)
    return sorted(icd_billing_tokens(codes))


def icd_billing_tokens(codes) -> frozenset[str]:
    tokens = (_billing_token(code.system, code.code) for code in codes)
    return frozenset(token for token in tokens if token is not None)


@functools.lru_cache(maxsize=65536)
def _billing_token(system: str | None, code: str) -> str | None:
    """The billing-level label token of an ICD code as recorded, else None: a hook call
    re-reads the codes of the patient's every earlier visit."""
    system = icd_system(SimpleNamespace(system=system, code=code))
    labels = code_labels(system, code) if system else None
    return labels["billing"] if labels and "billing" in labels else None


def previous_codes(earlier: Sequence[frozenset[str]]) -> dict[str, float]:
    """{billing token: weight} over the earlier visits' codes (oldest first): 1 for the
    previous visit, RECENCY for the one before, … (the most recent sighting counts)."""
    weights: dict[str, float] = {}
    for k, tokens in enumerate(reversed(earlier[-HISTORY_VISITS:])):
        for token in tokens:
            weights.setdefault(token, RECENCY ** k)
    return weights


def _bucket(value: float | None, edges: Sequence[int]) -> str:
    if value is None:
        return "unknown"
    chosen = max(i for i, lo in enumerate(edges) if value >= lo) if value >= edges[0] else 0
    return str(edges[chosen])


def context_tokens(visit, previous=None) -> list[str]:
    """The visit's class, admitting service, length of stay, days since the previous visit
    and reason codes (ICD reasons as billing tokens, others as system|code)."""
    tokens = [f"class|{visit.encounter_class or 'unknown'}"]
    service = getattr(visit, "service", None)
    if service:
        tokens.append(f"service|{service}")
    stay = None
    if visit.start is not None and visit.end is not None:
        stay = max((visit.end - visit.start).total_seconds() / 86400.0, 0.0)
    tokens.append(f"stay|{_bucket(stay, STAY_DAYS)}")
    gap = None
    if previous is not None and visit.start is not None:
        last = previous.end or previous.start
        if last is not None:
            gap = max((visit.start - last).total_seconds() / 86400.0, 0.0)
    tokens.append(f"gap|{_bucket(gap, GAP_DAYS) if previous is not None else 'first'}")
    for code in visit.reason_codes:
        system = icd_system(code)
        labels = code_labels(system, code.code) if system else None
        tokens.append(f"reason|{labels['billing']}" if labels and "billing" in labels
                      else f"reason|{code.system}|{code.code}")
    return sorted(set(tokens))


def visit_history(visits: Sequence, index: int, tokens: Sequence[frozenset[str]] | None = None
                  ) -> tuple[dict[str, float], list[str]]:
    """(previous codes, context tokens) of visits[index] given the visits before it;
    `tokens`: billing_tokens of every visit, when the caller has them already."""
    if tokens is None:
        tokens = [billing_tokens(v) for v in visits[max(0, index - HISTORY_VISITS):index]]
        earlier = list(tokens)
    else:
        earlier = list(tokens[max(0, index - HISTORY_VISITS):index])
    previous = visits[index - 1] if index > 0 else None
    return previous_codes(earlier), context_tokens(visits[index], previous)
