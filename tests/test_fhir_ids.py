import pytest

from fhir_assist.fhir.ids import bare_id, is_fhir_id


@pytest.mark.parametrize("value", ["123", "a1b2-c3.d4", "Patient-0001", "x" * 64,
                                   "9f0c3a1e-7b2d-4c5e-8f9a-0b1c2d3e4f5a"])
def test_ids_that_are_not_uuids_are_fhir_ids(value):
    assert is_fhir_id(value)


@pytest.mark.parametrize("value", ["", "x" * 65, "a b", "a/b", "a_b", "é", "1?x=2", None, 12, ["a"]])
def test_what_is_not_a_fhir_id(value):
    assert not is_fhir_id(value)


def test_bare_id_accepts_id_or_relative_reference():
    assert bare_id("123", "Patient") == "123"
    assert bare_id(" Patient/abc.1 ", "Patient") == "abc.1"
    assert bare_id("enc-9", "Encounter") == "enc-9"


@pytest.mark.parametrize("value", ["Encounter/1", "../etc/passwd", "", "...", "a b", "Patient/"])
def test_bare_id_refuses_what_would_not_be_safe_in_a_url(value):
    with pytest.raises(ValueError):
        bare_id(value, "Patient")


def test_bare_id_refuses_a_made_up_resource_type():
    with pytest.raises(ValueError, match="resource type"):
        bare_id("1", "patient/../x")
