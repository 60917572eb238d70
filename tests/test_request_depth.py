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


def _depth_of_text(value) -> int:
    """What the walk says: the deepest container level of a parsed value."""
    if isinstance(value, dict):
        return 1 + max((_depth_of_text(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth_of_text(v) for v in value), default=0)
    return 0


@pytest.mark.parametrize("text", [
    '{"a": "[[[[{{{{", "b": [1, {"c": "]]]}}}"}]}',           # brackets inside strings count for nothing
    '{"a": "quote \\" then [[[", "b": [[[]]]}',                # an escaped quote: the walk decides
    '{"a": "ends in a backslash \\\\", "b": [{"c": []}]}',     # an escaped backslash before a closing quote
    '[]', '{}', '[[], [[]], {"a": {"b": {}}}]',
])
def test_counting_the_text_agrees_with_walking_the_value(text):
    import json

    from fhir_assist.cds import request_checks

    value = json.loads(text)
    depth = _depth_of_text(value)
    counted = request_checks._text_depth(text.encode())
    assert counted == depth or ('\\"' in text and counted > MAX_JSON_DEPTH)
    check_depth(value, limit=depth, raw=text.encode())
    with pytest.raises(CdsError):
        check_depth(value, limit=depth - 1, raw=text.encode())


@pytest.mark.parametrize("kind", [dict, list])
def test_the_limit_is_exact_from_the_text_too(kind):
    import json

    ok, deep = nested(MAX_JSON_DEPTH, kind), nested(MAX_JSON_DEPTH + 1, kind)
    check_depth(ok, raw=json.dumps(ok).encode())
    with pytest.raises(CdsError):
        check_depth(deep, raw=json.dumps(deep).encode())
