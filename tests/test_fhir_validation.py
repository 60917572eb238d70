import pytest

from fhir_assist.fhir.validation import InvalidResource, is_resource_type, json_type_name, validate_r4

CONDITION = {
    "resourceType": "Condition", "id": "c1",
    "subject": {"reference": "Patient/p1"},
    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.65"}]},
    "recordedDate": "2021-03-04T05:06:07+02:00",
}


def test_a_valid_resource_comes_back_unchanged():
    assert validate_r4(CONDITION) == CONDITION


def test_the_failing_field_is_named():
    with pytest.raises(InvalidResource) as err:
        validate_r4({**CONDITION, "recordedDate": "yesterday-ish"})
    assert err.value.field == "recordedDate" and err.value.resource_type == "Condition"
    assert str(err.value) == "invalid Condition field recordedDate: 'yesterday-ish' is not a FHIR dateTime"


def test_missing_and_unknown_fields():
    with pytest.raises(InvalidResource, match="required field is missing") as err:
        validate_r4({k: v for k, v in CONDITION.items() if k != "subject"})
    assert err.value.field == "subject"
    with pytest.raises(InvalidResource, match="not a field of this resource type") as err:
        validate_r4({**CONDITION, "colour": "blue"})
    assert err.value.field == "colour"


def test_wrong_shapes_are_described_in_json_terms():
    with pytest.raises(InvalidResource, match="expected an array, got object") as err:
        validate_r4({**CONDITION, "code": {"coding": {"code": "E11.65"}}})
    assert err.value.field == "code.coding"


@pytest.mark.parametrize("rtype", ["Patiant", "Coding", None, ""])
def test_unknown_resource_types(rtype):
    with pytest.raises(InvalidResource, match="not a FHIR R4 resource type") as err:
        validate_r4({"resourceType": rtype})
    assert err.value.field == "resourceType"


def test_is_resource_type():
    assert is_resource_type("MedicationRequest") and is_resource_type("Bundle")
    assert not is_resource_type("CodeableConcept") and not is_resource_type("Nope")


def test_json_type_names():
    assert [json_type_name(v) for v in ({}, [], "", True, 1, 1.5, None)] == \
        ["object", "array", "string", "boolean", "number", "number", "null"]
