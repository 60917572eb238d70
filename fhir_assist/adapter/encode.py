"""Timelines → tokens → tensors: vocabularies, multi-hot, patient splits, batching.

Tokens name codes independently of FHIR URLs so a vocabulary file stays readable:
diagnoses "icd10:E11.65" / "icd9:428.0", procedures "pcs:0DTJ4ZZ" / "icd9proc:45.13",
medications their ingredient RxCUI ("6809").
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from typing import Iterable, Iterator, Sequence, TypeVar

from fhir_assist.fhir import tokens as token_format
from mappings import codesystems as cs

from .visits import Code, Visit

T = TypeVar("T")

OOV_TOKEN = "[OOV]"

DX_SHORT = {cs.ICD10CM: "icd10", cs.ICD9CM: "icd9"}
# ICD-9-CM volume 3 shares the ICD-9-CM URL in FHIR: the kind (procedure) tells them apart.
PROCEDURE_SHORT = {cs.ICD10PCS: "pcs", cs.ICD9CM_PROC: "icd9proc"}
OTHER_SHORT = {cs.SNOMED: "snomed", cs.LOINC: "loinc", cs.CPT: "cpt", cs.HCPCS: "hcpcs", cs.RXNORM: "rxnorm"}
_SHORT_TO_URL = {short: url for url, short in {**OTHER_SHORT, **DX_SHORT}.items()}
_SHORT_TO_URL.update({short: url for url, short in PROCEDURE_SHORT.items()})


# ---------------------------------------------------------------------------
# Tokens of a visit
# ---------------------------------------------------------------------------

def code_token(code: Code, kind: str = "dx") -> str:
    """"icd10:E11.65" for a diagnosis, "pcs:0DTJ4ZZ" / "icd9proc:45.13" for a procedure."""
    table = PROCEDURE_SHORT if kind == "procedure" else DX_SHORT
    short = table.get(code.system) or OTHER_SHORT.get(code.system) or code.system
    return token_format.code_token(short, code.code)


def parse_token(token: str) -> Code:
    """The Code a dx/procedure token names (system URL restored where it is one of ours)."""
    parts = token_format.split_token(token)
    if parts is None:
        raise ValueError(f"not a code token: {token!r}")
    return Code(_SHORT_TO_URL.get(parts[0], parts[0]), parts[1])


def diagnosis_tokens(visit: Visit) -> list[str]:
    return [code_token(c, "dx") for c in visit.diagnoses]


def procedure_tokens(visit: Visit) -> list[str]:
    return [code_token(c, "procedure") for c in visit.procedures]


REASON_PREFIX = "reason:"


def reason_tokens(visit: Visit) -> list[str]:
    """Why the visit happened (Encounter.reasonCode / reasonReference) as model inputs, apart
    from its diagnoses: "reason:icd10:Z00.00". A check-up known only by its reason has inputs."""
    return [REASON_PREFIX + code_token(c, "dx") for c in visit.reason_codes]


def medication_tokens(visit: Visit) -> list[str]:
    return list(visit.medications)


def visit_tokens(visit: Visit) -> dict[str, list[str]]:
    """{"diagnoses": […], "reasons": […], "procedures": […], "medications": […]} of one visit."""
    return {"diagnoses": diagnosis_tokens(visit), "reasons": reason_tokens(visit),
            "procedures": procedure_tokens(visit), "medications": medication_tokens(visit)}


# ---------------------------------------------------------------------------
# Notes
# ---------------------------------------------------------------------------

# ICD-looking tokens stay whole ("e11.65", "428.0", "v45.81", "e880.9"): a note that cites
# a code is strong evidence and splitting at the dot would lose it.
_NOTE_TOKEN_RE = re.compile(
    r"[a-z]\d{2}\.[a-z0-9]{1,4}"          # ICD-10-CM dotted: e11.65, s72.001a
    r"|[ev]\d{2,3}\.\d{1,2}"              # ICD-9-CM V/E codes: v45.81, e880.9
    r"|\d{3}\.\d{1,2}"                    # ICD-9-CM numeric: 428.0, 250.00
    r"|[a-z0-9]+(?:'[a-z]+)?")            # words and numbers


def tokenize_note(text: str | None) -> list[str]:
    """Lower-case word tokens of a note, ICD-like codes kept whole."""
    if not text:
        return []
    return _NOTE_TOKEN_RE.findall(text.lower())


def note_tokens(visit: Visit) -> list[str]:
    """Tokens of all of a visit's notes, in order."""
    return [tok for note in visit.notes for tok in tokenize_note(note)]


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

class Vocabulary:
    """Tokens ↔ indices. Index 0 is the out-of-vocabulary slot.

    Order is by descending frequency then token, so a vocabulary built from the
    same data is identical everywhere; `fingerprint` (sha256 of the token list)
    lets an artifact check it is fed the vocabulary it was trained with.
    """

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if not tokens or tokens[0] != OOV_TOKEN:
            tokens = [OOV_TOKEN] + [t for t in tokens if t != OOV_TOKEN]
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self._tokens = tokens
        self._index = {tok: i for i, tok in enumerate(tokens)}
        self._fingerprint: str | None = None

    @classmethod
    def build(cls, token_lists: Iterable[Iterable[str]], min_count: int = 1,
              max_size: int | None = None) -> "Vocabulary":
        counts: Counter = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        counts.pop(OOV_TOKEN, None)
        kept = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max(max_size - 1, 0)]
        return cls([OOV_TOKEN] + kept)

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index and token != OOV_TOKEN

    def index(self, token: str) -> int:
        return self._index.get(token, 0)

    def token(self, index: int) -> str:
        return self._tokens[index]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get = self._index.get
        return [get(t, 0) for t in tokens]

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self._tokens[i] for i in indices]

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            payload = json.dumps(self._tokens, ensure_ascii=False, separators=(",", ":"))
            self._fingerprint = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        return self._fingerprint

    def to_dict(self) -> dict:
        return {"tokens": list(self._tokens), "oov_index": 0, "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: dict) -> "Vocabulary":
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise ValueError("a vocabulary dict needs a 'tokens' list")
        vocab = cls(data["tokens"])
        expected = data.get("fingerprint")
        if expected and expected != vocab.fingerprint:
            raise ValueError("vocabulary fingerprint does not match its tokens "
                             f"({vocab.fingerprint[:12]} != {expected[:12]}): the file was altered")
        return vocab

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens, {self.fingerprint[:12]})"


# ---------------------------------------------------------------------------
# Tensors, splits, batches
# ---------------------------------------------------------------------------

def multi_hot(index_lists: Sequence[Iterable[int]], size: int):
    """float32 tensor [len(index_lists), size] with 1 at each listed index."""
    import torch
    out = torch.zeros((len(index_lists), size), dtype=torch.float32)
    rows: list[int] = []
    cols: list[int] = []
    for row, indices in enumerate(index_lists):
        for col in indices:
            if not 0 <= col < size:
                raise IndexError(f"index {col} out of range for multi-hot size {size}")
            rows.append(row)
            cols.append(col)
    if rows:
        out[torch.tensor(rows), torch.tensor(cols)] = 1.0
    return out


SPLIT_NAMES = ("train", "validation", "test")


def split_of(patient_id: str, seed: int) -> str:
    bucket = int(hashlib.sha256(f"{seed}:{patient_id}".encode("utf-8")).hexdigest(), 16) % 6
    return "train" if bucket < 4 else ("validation" if bucket == 4 else "test")


def split_patients(patient_ids: Iterable[str], seed: int) -> dict[str, str]:
    """Patient → "train" | "validation" | "test" (≈ 4:1:1), by hash: the same patient
    always lands in the same split for a seed, whatever the order or the cohort."""
    return {pid: split_of(pid, seed) for pid in patient_ids}


def batches(items: Sequence[T], batch_size: int, shuffle: bool = False,
            seed: int = 0) -> Iterator[list[T]]:
    """Consecutive lists of `batch_size` items (the last may be shorter); with `shuffle`,
    in an order fixed by `seed`."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = list(range(len(items)))
    if shuffle:
        random.Random(seed).shuffle(order)
    for start in range(0, len(order), batch_size):
        yield [items[i] for i in order[start:start + batch_size]]
