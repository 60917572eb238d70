"""What the service offers: one discovery entry per (service, hook), and what each hook's context holds.

The ids are distinct per hook so an EHR can register each separately and the
feedback endpoint of each id knows which hook its cards came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

MEDICATION_CHANGE = "medication-change"
CODING_SUGGESTIONS = "coding-suggestions"


@dataclass(frozen=True)
class HookSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


# Context fields per hook (CDS Hooks library, R4 versions of the hooks).
HOOKS: dict[str, HookSpec] = {
    "order-select": HookSpec(("userId", "patientId", "selections", "draftOrders"), ("encounterId",)),
    "order-sign": HookSpec(("userId", "patientId", "draftOrders"), ("encounterId",)),
    "patient-view": HookSpec(("userId", "patientId"), ("encounterId",)),
    "encounter-discharge": HookSpec(("userId", "patientId", "encounterId")),
}

_HISTORY = {
    "patient": "Patient/{{context.patientId}}",
    "encounters": "Encounter?patient={{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
}
_NOTES = {"notes": "DocumentReference?patient={{context.patientId}}"}


@dataclass(frozen=True)
class ServiceEntry:
    id: str
    service: str                 # MEDICATION_CHANGE | CODING_SUGGESTIONS
    hook: str
    title: str
    description: str
    prefetch: dict[str, str] = field(default_factory=dict)
    required_keys: frozenset[str] = frozenset()
    usage: str = ""

    def discovery(self, served_by: str | None = None) -> dict:
        """The discovery entry; `served_by` replaces the default model's phrase in the description
        when the models directory serves another one (a language model)."""
        description = self.description
        if served_by:
            description = description.replace(DEFAULT_MODEL_PHRASES[self.service], served_by)
        out = {"hook": self.hook, "id": self.id, "title": self.title, "description": description,
               "prefetch": dict(self.prefetch), "version": "2.0.0"}
        if self.usage:
            out["usageRequirements"] = self.usage
        return out


_MED_USAGE = ("Needs the patient's encounters, conditions, procedures and medication requests, "
              "from prefetch or from fhirServer with a token granting read access to them. "
              "Medication codes must be RxNorm (ingredients or products).")
_CODING_USAGE = ("Needs the patient's encounters, medications and procedures (and DocumentReference "
                 "notes for the text coder), from prefetch or from fhirServer. Diagnosis codes are "
                 "ICD-10-CM or ICD-9-CM. On encounter-discharge the recommended codes are written to "
                 "fhirServer as provisional Conditions when the token allows Condition writes.")


# How each service's description names the model it runs by default (see ServiceEntry.discovery).
DEFAULT_MODEL_PHRASES = {
    MEDICATION_CHANGE: ("from the MICRON residual medication model, given the change in the patient's "
                        "diagnoses and procedures since the last visit,"),
    CODING_SUGGESTIONS: ("with the hierarchy-aware ranker (and the discharge-note coder when notes exist) and "
                         "recommends the codes above the cut-off that reaches the target recall on validation"),
}


def _med(hook: str, when: str) -> ServiceEntry:
    return ServiceEntry(
        id=f"{MEDICATION_CHANGE}-{hook}", service=MEDICATION_CHANGE, hook=hook,
        title=f"Medication changes ({hook})",
        description=(f"{when} Suggests which medications to start and stop for the current visit "
                     f"{DEFAULT_MODEL_PHRASES[MEDICATION_CHANGE]} and warns about drug-drug "
                     "interactions among current, drafted and suggested medications."),
        prefetch=dict(_HISTORY),
        required_keys=frozenset({"patient", "encounters", "conditions", "medications"}),
        usage=_MED_USAGE,
    )


def _coding(hook: str, when: str) -> ServiceEntry:
    return ServiceEntry(
        id=f"{CODING_SUGGESTIONS}-{hook}", service=CODING_SUGGESTIONS, hook=hook,
        title=f"Diagnosis coding suggestions ({hook})",
        description=f"{when} Ranks ICD diagnosis codes for the encounter {DEFAULT_MODEL_PHRASES[CODING_SUGGESTIONS]}.",
        prefetch={**_HISTORY, **_NOTES},
        required_keys=frozenset({"patient", "encounters", "medications"}),
        usage=_CODING_USAGE,
    )


SERVICES: tuple[ServiceEntry, ...] = (
    _med("order-select", "Runs when a clinician selects an order."),
    _med("order-sign", "Runs when a clinician signs orders."),
    _med("patient-view", "Runs when a patient's chart is opened."),
    _coding("encounter-discharge", "Runs when an encounter is being discharged; may write the "
                                   "recommended codes back as provisional Conditions."),
    _coding("patient-view", "Runs when a patient's chart is opened (current or latest encounter)."),
)
BY_ID: dict[str, ServiceEntry] = {entry.id: entry for entry in SERVICES}


def served_by(models) -> dict[str, str]:
    """Service → how discovery names the model serving it (a `suggest.model_set.ModelSet`),
    where that is not the default one."""
    from fhir_assist.suggest.model_set import MEDICATION, RANKER

    out = {}
    for service, name in ((MEDICATION_CHANGE, MEDICATION), (CODING_SUGGESTIONS, RANKER)):
        phrase = getattr(getattr(models.get(name), "suggester", None), "discovery_phrase", None)
        if isinstance(phrase, str):
            out[service] = phrase
    return out
