"""The nesting limit of hook bodies: exactly MAX_JSON_DEPTH levels pass, one more is a 400."""
import pytest

from fhir_assist.cds.errors import CdsError
from fhir_assist.cds.request_checks import MAX_JSON_DEPTH, check_depth


def nested(levels: int, kind: type) -> object:
    value: object = kind()
    for _ in range(levels - 1):
        value = {"x": value} if kind is dict else [value]
    return value


@pytest.mark.parametrize("kind", [dict, list])
def test_the_limit_is_exact(kind):
    check_depth(nested(MAX_JSON_DEPTH, kind))
    with pytest.raises(CdsError) as caught:
        check_depth(nested(MAX_JSON_DEPTH + 1, kind))
    assert caught.value.status == 400
    assert caught.value.code == "too-costly"
    assert "nested deeper" in caught.value.message


def test_nesting_past_the_interpreter_recursion_limit_is_refused_not_crashed():
    with pytest.raises(CdsError):
        check_depth(nested(50_000, dict))


def test_scalars_and_mixed_bodies_pass():
    check_depth("text")
    check_depth({"a": [1, {"b": [2, 3]}], "c": None})
