"""The one written form of a code in vocabularies and label spaces: "<system>:<code>".

"icd10:E11.65", "icd9:428.0", "pcs:0DTJ4ZZ", "icd9proc:45.13", and the CCS/CCSR
categories "CCS:49" / "CCSR:END005". The system is a short name where we have one, else
the system URL as written. Label vocabularies saved before this form was settled wrote
"icd10|E11.65": `canonical_token` reads those, so such artifacts load unchanged.
"""
from __future__ import annotations

import re
from typing import Iterable

SEPARATOR = ":"
_LEGACY = re.compile(r"([a-z][a-z0-9]*)\|([^|:]+)\Z")   # "icd10|E11.65"
_URL_SCHEMES = ("http:", "https:", "urn:")


def code_token(system: str, code: str) -> str:
    """"icd10", "E11.65" → "icd10:E11.65"."""
    return f"{system}{SEPARATOR}{code}"


def split_token(token: str) -> tuple[str, str] | None:
    """("icd10", "E11.65") of "icd10:E11.65" (or of its legacy spelling); None if `token`
    names no system. A system URL keeps its own colons: the code follows the last one."""
    token = canonical_token(token)
    system, sep, code = token.rpartition(SEPARATOR) if token.startswith(_URL_SCHEMES) \
        else token.partition(SEPARATOR)
    return (system, code) if sep else None


def canonical_token(token: str) -> str:
    """`token` in the canonical form ("icd10|E11.65" → "icd10:E11.65"; others unchanged)."""
    match = _LEGACY.match(token) if "|" in token else None
    return code_token(match.group(1), match.group(2)) if match else token


def canonical_tokens(tokens: Iterable[str]) -> list[str]:
    return [canonical_token(t) for t in tokens]
