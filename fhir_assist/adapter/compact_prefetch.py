"""A hook call's prefetched resources straight into the timeline builder, through the compact form.

The ordinary path parses every prefetched resource into dicts, validates it "fast"
(the first invalid one is the caller's error), drops repeated resources and other
patients' resources, and gives the rest to `TimelineBuilder.add`. Here each resource
arrives as its JSON bytes (the hook body decoder keeps them), is decoded into a
`compact` struct and read by `CompactReader`. Whatever that does not mirror exactly
— a type without a struct, a resource the reader declines, a repeat, a resource the
patient filter would drop, an integer orjson reads differently — is parsed into a
dict and takes the ordinary steps at the same place in the order, so the builder
sees the same sequence and the same first error is raised.
`tests/test_compact_prefetch.py` compares both paths.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson

from fhir_assist.fhir.references import split_reference

from . import compact as c
from .compact_reader import CompactReader, shared_tables
from .validate import Validator

_TAGS = {cls: cls.__struct_config__.tag for cls in c.RESOURCE_TYPES}
# Per type, the fields decoded as plain JSON values (the rest are typed or dropped).
_ANY_FIELDS = {cls: tuple(name for name in ("contained", "meta", "patient", "identifier", "docStatus",
                                            "abatementDateTime", "abatementPeriod", "abatementAge",
                                            "abatementRange", "abatementString", "abatementBoolean")
                          if name in cls.__struct_fields__) for cls in c.RESOURCE_TYPES}
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1      # what orjson reads as an int, not a float


def ints_as_orjson(value: Any) -> bool:
    """True when every integer in `value` is one orjson also reads as an int."""
    kind = type(value)
    if kind is int:
        return _INT_MIN <= value <= _INT_MAX
    if kind is dict:
        return all(ints_as_orjson(v) for v in value.values())
    if kind is list:
        return all(ints_as_orjson(v) for v in value)
    return True


class HeldResources(Sequence):
    """The call's resources in order, each kept as its JSON bytes until a dict is asked for."""

    def __init__(self) -> None:
        self._types: list[str] = []
        self._items: list[Any] = []       # JSON bytes (a buffer: bytes, msgspec Raw), or the dict once parsed

    def add(self, rtype: str, item: Any) -> None:
        self._types.append(rtype)
        self._items.append(item)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        item = self._items[i]
        if type(item) is not dict:
            item = self._items[i] = orjson.loads(bytes(item))
        return item

    def __iter__(self) -> Iterator[dict]:
        return (self[i] for i in range(len(self._items)))

    def of_types(self, types: Iterable[str]) -> list[dict]:
        wanted = set(types)
        return [self[i] for i, rtype in enumerate(self._types) if rtype in wanted]


def _struct_belongs(r, patient_id: str) -> bool | None:
    """`cds.patient_data._belongs_to` on a struct; None where only the dict can tell."""
    tag = _TAGS[type(r)]
    if tag == "Patient":
        return r.id in (None, patient_id)
    if tag == "Medication":
        return True
    subject = r.subject
    if subject is not None and subject.reference is not None:
        kind, rid = split_reference(subject.reference)
        return kind != "Patient" or rid == patient_id
    return True if r.patient is None else None


def _plain(r) -> bool:
    for name in _ANY_FIELDS[type(r)]:
        value = getattr(r, name)
        if value is not None and not ints_as_orjson(value):
            return False
    return True


def _decoded(raw):
    """The compact struct of a resource; None for a type it has none for, or a field it refuses.
    A blank code or reference is left to `CompactReader.read`, which declines it: only what the
    reader takes is kept from the struct (the repeat and patient checks before it only send more
    resources the ordinary way)."""
    try:
        return c.decode_resource(raw)
    except c.DECODE_ERRORS:
        return None


def read_prefetched(items: Iterable[tuple[bytes, str]], builder, patient_id: str,
                    belongs: Callable[[dict], bool]) -> HeldResources:
    """Read `(JSON bytes, where)` resources into `builder` as
    `resources_from_prefetch(..., validate="fast")` followed by the patient filter `belongs`
    and `builder.add` would; raise the same `FhirInputError` for the first invalid one.
    The resources kept, in order."""
    reader = CompactReader(builder, shared_tables())
    check = Validator("fast", None)
    held = HeldResources()
    seen: set[tuple[str, Any]] = set()
    for raw, where in items:
        r = _decoded(raw)
        if r is not None:
            key = (_TAGS[type(r)], r.id)
            if (r.id is None or key not in seen) and _plain(r) \
                    and _struct_belongs(r, patient_id) is True and reader.read(r):
                seen.add(key)
                held.add(key[0], raw)
                continue
        # the ordinary steps, for this one resource
        resource = orjson.loads(bytes(raw))
        check(resource, where)               # raises FhirInputError: no report for prefetch
        key = (resource["resourceType"], resource.get("id"))
        if key[1] is not None and key in seen:
            continue
        seen.add(key)
        if belongs(resource):
            builder.add(resource)
            held.add(key[0], resource)
    return held
