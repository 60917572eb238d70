"""Full FHIR R4 validation (fhir.resources' R4B models), with messages that name the field.

Used on everything written to a FHIR server and by ingest's "full" mode; pydantic's
own messages are rewritten into one short sentence about the first failing field.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping


class InvalidResource(ValueError):
    """A resource that does not validate as FHIR R4. str() reads like
    ``invalid Condition field recordedDate: 'yesterday' is not a FHIR dateTime``."""

    def __init__(self, message: str, *, resource_type: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.resource_type = resource_type
        self.field = field

    def __str__(self) -> str:
        what = f"invalid {self.resource_type}" if self.resource_type else "invalid resource"
        return f"{what} field {self.field}: {self.message}" if self.field else f"{what}: {self.message}"


def json_type_name(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages ("object", "array", …)."""
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


@lru_cache(maxsize=None)
def is_resource_type(name: str) -> bool:
    """True for the name of an R4 resource type (not a datatype or a made-up name)."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource
    try:
        return issubclass(get_fhir_model_class(name), Resource)
    except (KeyError, ValueError):
        return False


def validate_r4(resource: Mapping[str, Any]) -> dict:
    """Validate one resource; return it (as a dict) unchanged or raise `InvalidResource`."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    rtype = resource.get("resourceType") if isinstance(resource, Mapping) else None
    try:
        model = get_fhir_model_class(str(rtype))
        if not is_resource_type(str(rtype)):   # a datatype ("Coding") is not a resource
            raise ValueError(rtype)
    except (KeyError, ValueError):
        raise InvalidResource(f"{rtype!r} is not a FHIR R4 resource type",
                              resource_type=rtype if isinstance(rtype, str) else None,
                              field="resourceType") from None
    try:
        model.model_validate(dict(resource))
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": str(exc)}
        message = _pydantic_message(first)
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more)"
        raise InvalidResource(message, resource_type=rtype,
                              field=_pydantic_field(tuple(first.get("loc", ()))) or None) from None
    except ValueError as exc:   # a validator raising outside pydantic's error collection
        raise InvalidResource(str(exc), resource_type=rtype) from None
    return dict(resource)


def _pydantic_field(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pydantic_message(error: dict) -> str:
    msg = str(error.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    kind = error.get("type")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "not a field of this resource type"
    value = error.get("input")
    if kind in ("model_type", "model_attributes_type", "dict_type", "json_invalid", "json_type"):
        return f"expected an object, got {json_type_name(value)}"
    if kind == "list_type":
        return f"expected an array, got {json_type_name(value)}"
    if "DateTime" in msg or "datetime" in msg:
        return f"{value!r} is not a FHIR dateTime"
    if "Date value" in msg or "valid date" in msg:
        return f"{value!r} is not a FHIR date"
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{shown}: {msg}"
