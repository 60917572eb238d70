"""A hook request body decoded without turning the prefetch into dicts (msgspec).

The ordinary path parses the whole body with orjson (every prefetched resource
becomes dicts, then is walked for depth, checked, validated and read into the
timeline). Here the envelope is decoded into small structs: the request's own
fields, and each prefetch value's Bundle fields with every entry's resource kept
as its JSON bytes, which `adapter.compact_prefetch` decodes straight into timeline
records. `parse_hook_call` still checks the request, on a body whose prefetch
values are shells: the value's own fields, and as many entries as it has, each
already checked here the way `request_checks.check_bundle_fields` checks it.

Anything this does not mirror exactly declines the whole body (None): nesting deeper
than the limit, text or integers orjson would read differently, a paginated Bundle,
fullUrls that give ids or rewrite references, nested Bundles, a bad meta.lastUpdated,
a value or entry of an unexpected shape. The caller then takes the ordinary path,
which gives the answer (often a 400) it always gave.
"""
from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

import msgspec
import orjson
from msgspec import UNSET, Raw, Struct, UnsetType

from fhir_assist.adapter.compact_prefetch import ints_as_orjson
from fhir_assist.fhir.datetimes import is_fhir_instant

from .patient_data import next_link
from .request_checks import MAX_JSON_DEPTH


class _Entry(Struct, gc=False):
    fullUrl: Any = None
    resource: Raw = Raw(b"null")       # Raw takes null too: absent and null read alike
    search: Any = None


class _Value(Struct, gc=False):
    resourceType: Any = UNSET
    id: Any = UNSET
    type: Any = UNSET
    total: Any = UNSET
    meta: Any = UNSET
    link: Any = UNSET
    entry: Union[list[_Entry], UnsetType] = UNSET


class _Envelope(Struct, gc=False):
    # the request's own fields as orjson reads them (its integers, not msgspec's)
    hook: Union[Raw, UnsetType] = UNSET
    hookInstance: Union[Raw, UnsetType] = UNSET
    context: Union[Raw, UnsetType] = UNSET
    fhirServer: Union[Raw, UnsetType] = UNSET
    fhirAuthorization: Union[Raw, UnsetType] = UNSET
    prefetch: Union[dict[str, Raw], None, UnsetType] = UNSET


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_COPY_BELOW = 1 << 20
_VALUE = msgspec.json.Decoder(_Value)
_DECODE_ERRORS = (msgspec.MsgspecError, ValueError, RecursionError)
_NULL = Raw(b"null")       # Raw compares by content
# A shell entry: checked here already, so request_checks passes over it (not a dict).
_CHECKED_ENTRY = MappingProxyType({})


class _Decline(Exception):
    """Not mirrored exactly: take the ordinary path."""


@dataclass
class CompactPrefetch:
    """Per prefetch key: the resources' (JSON bytes, where), in the order the ordinary path
    reads them. The bytes are msgspec `Raw` views of the body (no copy)."""
    resources: dict[str, list[tuple[Raw, str]]] = field(default_factory=dict)


@dataclass
class CompactBody:
    body: dict                   # what parse_hook_call reads (prefetch values as shells)
    prefetch: CompactPrefetch


# ------------------------------------------------------------ depth without parsing
_KEEP_BRACKETS = bytes(sorted(set(range(256)) - set(b'[]{}"')))
_PIECE = 1 << 20                 # large bodies are scanned in pieces of this many bytes
_BACKSLASH = ord("\\")


def shallow_enough(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `raw` (JSON that decodes) nests at most `limit` containers deep, as
    `request_checks.check_depth` counts them, without parsing it.

    Escaped backslashes and quotes go first, then everything but brackets and quotes.
    Quotes then alternate, opening and closing strings. Removing adjacent quote pairs
    drops empty strings or joins neighbouring ones (nothing between them), so they still
    alternate, and splitting at them leaves the brackets outside strings (a display such
    as "Panic disorder [episodic]" holds some). Each pass then removes the innermost
    containers (a NUL keeps a pair emptied in this pass from counting twice)."""
    marks = _bracket_marks(raw).replace(b'""', b"")
    if b'"' in marks:
        marks = b"".join(marks.split(b'"')[0::2])
    for _ in range(limit):
        if not marks:
            return True
        marks = marks.replace(b"{}", b"\0").replace(b"[]", b"\0").replace(b"\0", b"")
    return not marks


def _bracket_marks(raw: bytes) -> bytes:
    """The brackets and unescaped quotes of `raw`, read a piece at a time: translating or
    replacing a large body whole would allocate a copy of it. A piece never ends on a
    backslash, so no escape is split between two pieces."""
    pieces, start = [], 0
    while start < len(raw):
        end = min(start + _PIECE, len(raw))
        while end < len(raw) and raw[end - 1] == _BACKSLASH:
            end += 1
        piece = bytes(raw[start:end])
        if b"\\" in piece:
            piece = piece.replace(b"\\\\", b"").replace(b'\\"', b"")
        pieces.append(piece.translate(None, _KEEP_BRACKETS))
        start = end
    return b"".join(pieces)


def _text_as_orjson_reads_it(raw: bytes) -> bool:
    """msgspec does not check the text of what it skips or keeps raw; orjson refuses invalid
    UTF-8 and lone surrogate escapes. Bodies with invalid UTF-8 or any surrogate escape
    (\\ud800-\\udfff, valid pairs for emoji included: rare) take the ordinary path."""
    if not raw.isascii():
        # checked a piece at a time: decoding a large body whole would hold its text twice
        decoder, view = codecs.getincrementaldecoder("utf-8")(), memoryview(raw)
        try:
            for start in range(0, len(raw), _PIECE):
                decoder.decode(view[start:start + _PIECE])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    # (a backslash first: a memchr; a two-byte search costs as much as the checks it saves)
    return b"\\" not in raw or b"\\u" not in raw or not (b"\\ud" in raw or b"\\uD" in raw)


# ------------------------------------------------------------ the body
def decode_body(raw: bytes) -> CompactBody | None:
    """The body as `parse_hook_call` needs it plus the prefetch's resource bytes; None to
    take the ordinary path."""
    if len(raw) < _COPY_BELOW:
        raw = bytes(raw)  # the service reads into a bytearray; bytes translate faster (a small copy)
    if not (_text_as_orjson_reads_it(raw) and shallow_enough(raw)):
        return None
    try:
        envelope = _ENVELOPE.decode(raw)
        body = {}
        for name in ("hook", "hookInstance", "context", "fhirServer", "fhirAuthorization"):
            value = getattr(envelope, name)
            if value is not UNSET:
                body[name] = orjson.loads(bytes(value))
        prefetch = CompactPrefetch()
        if envelope.prefetch is not UNSET:
            body["prefetch"] = _shells(envelope.prefetch, prefetch) if envelope.prefetch is not None else None
    except (_Decline, *_DECODE_ERRORS):
        return None
    return CompactBody(body, prefetch)


def _shells(values: dict[str, Raw], out: CompactPrefetch) -> dict:
    shells: dict[str, Any] = {}
    for key, raw in values.items():
        if raw == _NULL:
            shells[key] = None
            continue
        value = _VALUE.decode(raw)
        rtype = value.resourceType
        if rtype == "Bundle":
            shells[key], out.resources[key] = _bundle_shell(value, f"prefetch.{key}")
        elif isinstance(rtype, str):
            # a single resource (or an OperationOutcome): small, so the shell is the resource itself
            shells[key] = orjson.loads(bytes(raw))
            out.resources[key] = [(raw, f"prefetch.{key}")]
        else:
            raise _Decline
    return shells


def _bundle_shell(value: _Value, where: str) -> tuple[dict, list[tuple[Raw, str]]]:
    shell: dict[str, Any] = {"resourceType": "Bundle"}
    for name in ("id", "type", "total", "meta"):
        item = getattr(value, name)
        if item is not UNSET:
            if not ints_as_orjson(item):
                raise _Decline
            shell[name] = item
    if value.link is not UNSET and next_link({"resourceType": "Bundle", "link": value.link}):
        raise _Decline           # a paginated prefetch: the ordinary path fetches the next pages
    if value.entry is UNSET:
        return shell, []
    resources = []
    for i, entry in enumerate(value.entry):
        raw = entry.resource
        if raw == _NULL:
            continue             # skipped by iter_bundle_entries (no report for prefetch)
        search = entry.search
        if isinstance(search, dict) and search.get("mode") == "outcome":
            continue             # a search outcome, skipped likewise
        _check_entry(raw, entry.fullUrl)
        resources.append((raw, f"{where}:entry[{i}]"))
    shell["entry"] = [_CHECKED_ENTRY] * len(value.entry)
    return shell, resources


def _check_entry(data: Raw, full_url: Any) -> None:
    """Decline what iter_bundle_entries would change (ids from fullUrls, rewritten references,
    nested Bundles) and what check_bundle_fields would refuse (meta.lastUpdated). Only the
    head is read here: the resource is decoded when it is read, one at a time, so a large
    prefetch never holds every decoded resource at once."""
    head = _HEAD.decode(data)
    rtype, rid, meta = head.resourceType, head.id, head.meta
    if not isinstance(rtype, str) or rtype == "Bundle":
        raise _Decline
    if meta is not None:
        if not isinstance(meta, dict) or not ints_as_orjson(meta):
            raise _Decline
        if "lastUpdated" in meta and not is_fhir_instant(meta["lastUpdated"]):
            raise _Decline
    if isinstance(full_url, str):
        if not (isinstance(rid, str) and rid and full_url.endswith(f"{rtype}/{rid}")):
            raise _Decline


class _Head(Struct, gc=False):
    resourceType: Any = None
    id: Any = None
    meta: Any = None


_HEAD = msgspec.json.Decoder(_Head)
