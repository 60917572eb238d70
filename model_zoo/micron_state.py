"""MICRON's per-patient inference state and its versioned bytes (for Redis).

A state holds m̃ (logits), M̃ (medication indices) and h of the last visit, the
8-byte tag of the model and thresholds that made it, the key of the encounter that
produced it and the state before it (one level deep), so that a repeated call for
the same encounter recomputes instead of advancing twice.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from .micron import Micron
    from .thresholds import MicronThresholds

__all__ = ["StateMismatch", "MicronState", "model_tag", "encounter_key", "STATE_VERSION"]


class StateMismatch(ValueError):
    """State bytes made by another model (or corrupted); start a new state."""


_MAGIC = b"MCRN"
STATE_VERSION = 2
# magic, version, flags, n_set, visits, n_med, dim, model tag, encounter key
_HEADER = struct.Struct("<4sBBHIHH8s8s")
_PREVIOUS = struct.Struct("<HI")        # n_set, visits of the embedded earlier state
_HAS_PREVIOUS = 1


def model_tag(model: Micron, thresholds: MicronThresholds | None = None) -> bytes:
    """8-byte identity of a trained model (weights + thresholds) stored in every state."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    if thresholds is not None:
        digest.update(repr((thresholds.add, thresholds.remove, thresholds.mode,
                            thresholds.per_medicine_add, thresholds.per_medicine_remove)).encode())
        if thresholds.ddi_stop_below > 0:   # absent from older tags, so their states stay valid
            digest.update(repr(thresholds.ddi_stop_below).encode())
        if thresholds.first_list_floor is not None:
            digest.update(repr(("first-list", thresholds.first_list_floor)).encode())
    return digest.digest()[:8]


def encounter_key(encounter_id: str | None) -> bytes:
    """8-byte key of an encounter id (b"" when the visit has none: never a repeat)."""
    if not encounter_id:
        return b""
    return hashlib.sha256(str(encounter_id).encode()).digest()[:8]


@dataclass
class MicronState:
    """m̃ (logits), M̃ (medication indices) and h of the last visit.

    `encounter` is the key of the encounter that produced this state and `previous`
    the state before it, so that applying the same encounter again recomputes from
    `previous` instead of advancing twice (a CDS client may call repeatedly for one
    encounter). `previous` is kept one level deep: its own `previous` is dropped."""

    vector: np.ndarray
    medications: frozenset[int]
    health: np.ndarray
    visits: int = 0
    tag: bytes = b"\0" * 8
    encounter: bytes = b""
    previous: "MicronState | None" = None

    def _body(self) -> bytes:
        meds = np.asarray(sorted(self.medications), dtype="<u2")
        return (np.asarray(self.vector, dtype="<f4").tobytes()
                + np.asarray(self.health, dtype="<f4").tobytes() + meds.tobytes())

    def to_bytes(self) -> bytes:
        previous = self.previous
        if previous is not None and (previous.vector.size != self.vector.size
                                     or previous.health.size != self.health.size):
            raise ValueError("previous state has other dimensions")
        header = _HEADER.pack(_MAGIC, STATE_VERSION, _HAS_PREVIOUS if previous is not None else 0,
                              len(self.medications), self.visits, self.vector.size,
                              self.health.size, self.tag, self.encounter.ljust(8, b"\0")[:8])
        out = header + self._body()
        if previous is not None:
            out += _PREVIOUS.pack(len(previous.medications), previous.visits) + previous._body()
        return out

    @classmethod
    def from_bytes(cls, data: bytes, *, tag: bytes | None = None, n_med: int | None = None,
                   dim: int | None = None) -> "MicronState":
        if len(data) < 6 or data[:4] != _MAGIC:
            raise StateMismatch("not a MICRON state (bad magic)")
        if data[4] != STATE_VERSION:
            raise StateMismatch(f"MICRON state format {data[4]} is not {STATE_VERSION}; "
                                "rebuild it from the history")
        if len(data) < _HEADER.size:
            raise StateMismatch("state too short")
        _magic, _version, flags, n_set, visits, size, width, stored_tag, encounter = \
            _HEADER.unpack_from(data)
        if tag is not None and stored_tag != tag:
            raise StateMismatch("state was made by another model version")
        if (n_med is not None and size != n_med) or (dim is not None and width != dim):
            raise StateMismatch("state dimensions do not match the model")
        body = 4 * size + 4 * width
        expected = _HEADER.size + body + 2 * n_set
        previous_sets = 0
        if flags & _HAS_PREVIOUS:
            if len(data) < expected + _PREVIOUS.size:
                raise StateMismatch("state too short")
            previous_sets, previous_visits = _PREVIOUS.unpack_from(data, expected)
            expected += _PREVIOUS.size + body + 2 * previous_sets
        if len(data) != expected:
            raise StateMismatch(f"state length {len(data)} != {expected}")

        def read(offset: int, n_meds: int) -> tuple[np.ndarray, np.ndarray, frozenset[int]]:
            vector = np.frombuffer(data, "<f4", size, offset).astype(np.float32)
            health = np.frombuffer(data, "<f4", width, offset + 4 * size).astype(np.float32)
            meds = np.frombuffer(data, "<u2", n_meds, offset + body)
            return vector, health, frozenset(int(m) for m in meds)

        vector, health, meds = read(_HEADER.size, n_set)
        previous = None
        if flags & _HAS_PREVIOUS:
            p_vector, p_health, p_meds = read(_HEADER.size + body + 2 * n_set + _PREVIOUS.size,
                                              previous_sets)
            previous = cls(vector=p_vector, medications=p_meds, health=p_health,
                           visits=previous_visits, tag=stored_tag)
        return cls(vector=vector, medications=meds, health=health, visits=visits, tag=stored_tag,
                   encounter=encounter.rstrip(b"\0") and encounter, previous=previous)

    def without_history(self) -> "MicronState":
        """This state with neither encounter key nor earlier state (to embed as `previous`)."""
        return MicronState(vector=self.vector, medications=self.medications, health=self.health,
                           visits=self.visits, tag=self.tag)
