from mappings import codesystems as cs

from fhir_assist.fhir.medications import (
    MedicationSource, concept_ingredients, concept_name, medication_source, request_concept,
)

METFORMIN = "6809"
LISINOPRIL = "29046"


def _request(**fields):
    return {"resourceType": "MedicationRequest", "id": "mr1", "status": "active",
            "intent": "order", "subject": {"reference": "Patient/p1"}, **fields}


def test_inline_concept():
    concept = {"coding": [{"system": cs.RXNORM, "code": METFORMIN}]}
    assert medication_source(_request(medicationCodeableConcept=concept)) == MedicationSource(concept=concept)
    assert concept_ingredients(concept) == ((METFORMIN,), False)


def test_text_only_concept_is_matched_by_name():
    concept = {"text": "Glucophage 500 mg tablet"}
    source = medication_source(_request(medicationCodeableConcept=concept))
    assert source.concept == concept
    assert concept_ingredients(concept) == ((METFORMIN,), True)
    assert concept_name(concept) == "Glucophage 500 mg tablet"


def test_contained_medication():
    request = _request(contained=[{"resourceType": "Medication", "id": "m1",
                                   "code": {"coding": [{"system": cs.RXNORM, "code": LISINOPRIL}]}}],
                       medicationReference={"reference": "#m1"})
    source = medication_source(request)
    assert source.concept == {"coding": [{"system": cs.RXNORM, "code": LISINOPRIL}]}
    assert concept_ingredients(request_concept(request, {})) == ((LISINOPRIL,), False)


def test_missing_contained_medication_is_a_problem_but_keeps_the_display():
    request = _request(medicationReference={"reference": "#gone", "display": "metformin"})
    source = medication_source(request)
    assert source.problem == "MedicationRequest referencing a missing contained Medication"
    assert request_concept(request, {}) == {"text": "metformin"}
    assert concept_ingredients(request_concept(request, {}))[0] == (METFORMIN,)


def test_medication_reference_resolved_in_the_data():
    request = _request(medicationReference={"reference": "https://ehr/fhir/Medication/m9/_history/2"})
    source = medication_source(request)
    assert source == MedicationSource(medication_id="m9")
    medications = {"m9": {"resourceType": "Medication", "id": "m9",
                          "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.88", "code": LISINOPRIL}]}}}
    assert concept_ingredients(request_concept(request, medications)) == ((LISINOPRIL,), False)
    # not in the data: nothing to map, and no name either
    assert request_concept(request, {}) == {"text": None}
    assert concept_name(request_concept(request, {})) is None


def test_no_medication_at_all():
    assert medication_source(_request()).problem == "MedicationRequest without a medication"
    assert medication_source(_request(medicationReference={"display": "x"})).problem \
        == "MedicationRequest without a medication"


def test_rxnorm_codings_come_before_names_and_other_systems_are_not_read_as_rxcuis():
    # An NDC code that happens to look like an RxCUI is not one; its display is a name.
    concept = {"coding": [{"system": cs.NDC, "code": METFORMIN, "display": "lisinopril 10 MG"}]}
    assert concept_ingredients(concept) == ((LISINOPRIL,), True)
    both = {"coding": [{"system": cs.NDC, "code": "0000", "display": "lisinopril"},
                       {"system": cs.RXNORM, "code": METFORMIN}]}
    assert concept_ingredients(both) == ((METFORMIN,), False)


def test_unmappable_concepts():
    assert concept_ingredients({"text": "an investigational compound"}) == ((), False)
    assert concept_ingredients(None) == ((), False)
    assert concept_ingredients({"coding": "junk"}) == ((), False)
    assert concept_name({"coding": [{"display": "  "}, {"display": "Drug X"}]}) == "Drug X"
