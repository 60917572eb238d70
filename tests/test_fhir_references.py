import pytest

from fhir_assist.fhir.references import reference_id, split_reference, typed_reference_id


@pytest.mark.parametrize("reference, expected", [
    ("Patient/p1", ("Patient", "p1")),
    ({"reference": "Patient/p1", "display": "Ann"}, ("Patient", "p1")),
    ("Patient/p1/_history/3", ("Patient", "p1")),
    ("https://ehr.example.org/fhir/R4/Patient/p1", ("Patient", "p1")),
    ("https://ehr.example.org/fhir/R4/Patient/p1/_history/2", ("Patient", "p1")),
    ("https://ehr.example.org/fhir/Patient/p1/", ("Patient", "p1")),
    ("urn:uuid:9f0c3a1e-7b2d-4c5e-8f9a-0b1c2d3e4f5a", (None, "9f0c3a1e-7b2d-4c5e-8f9a-0b1c2d3e4f5a")),
    ("urn:oid:1.2.3.4", (None, "1.2.3.4")),
    ("#med1", (None, "#med1")),
    ("p1", (None, "p1")),
    ("  Patient/p1  ", ("Patient", "p1")),
    ("Patient?identifier=http://x|123", (None, None)),
    ("", (None, None)),
    ("urn:uuid:", (None, None)),
    ({"display": "only a name"}, (None, None)),
    (None, (None, None)),
    (42, (None, None)),
])
def test_split_reference_reads_every_form(reference, expected):
    assert split_reference(reference) == expected


def test_reference_id_checks_the_type_where_the_form_names_one():
    assert reference_id("Encounter/e1", "Encounter") == "e1"
    assert reference_id("Encounter/e1", "Patient") is None
    assert reference_id("http://s/fhir/Group/g1", "Patient") is None
    assert reference_id("http://s/fhir/Encounter/e1/_history/4", "Encounter") == "e1"
    # forms that do not say the type are taken at their word
    assert reference_id("urn:uuid:abc", "Patient") == "abc"
    assert reference_id("#m1", "Medication") == "#m1"
    assert reference_id("plain-id", "Patient") == "plain-id"
    assert reference_id("Patient?identifier=x", "Patient") is None
    assert reference_id("Patient/") is None


def test_typed_reference_id_needs_the_type_written():
    assert typed_reference_id({"reference": "Encounter/e1"}, "Encounter") == "e1"
    assert typed_reference_id({"reference": "https://s/fhir/Encounter/e1/_history/2"}, "Encounter") == "e1"
    assert typed_reference_id({"reference": "urn:uuid:abc"}, "Encounter") is None
    assert typed_reference_id({"reference": "e1"}, "Encounter") is None
    assert typed_reference_id({"reference": "Patient/p1"}, "Encounter") is None
    assert typed_reference_id(None, "Encounter") is None
