"""The per-patient MICRON state as kept in the store, made safe to re-apply.

One encounter raises several hooks (order-select for every order, then
order-sign, patient-view on every chart opening). Applying the model's update
once per call would advance the state several times for one visit, so the
stored value keeps both the state *before* the current encounter and the state
*after* it:

    envelope = MAGIC | header length (4 bytes) | JSON header | prior state | current state

A call for the same encounter starts again from `prior`; a call for a new
encounter starts from `current` (which becomes the new `prior`). The header
also names the model version: a state written by another model is discarded
and recomputed from the history.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

MAGIC = b"FAMS1"


@dataclass
class StateEnvelope:
    encounter_id: str | None
    model_version: str
    prior: bytes | None
    current: bytes

    def to_bytes(self) -> bytes:
        prior = self.prior or b""
        header = json.dumps({"encounter": self.encounter_id, "model": self.model_version,
                             "prior": len(prior), "current": len(self.current)},
                            separators=(",", ":")).encode()
        return MAGIC + struct.pack(">I", len(header)) + header + prior + self.current

    @classmethod
    def from_bytes(cls, data: bytes) -> "StateEnvelope | None":
        """The envelope, or None when the bytes are not one (foreign or corrupt data)."""
        try:
            if not data.startswith(MAGIC):
                return None
            offset = len(MAGIC)
            (size,) = struct.unpack(">I", data[offset:offset + 4])
            offset += 4
            header = json.loads(data[offset:offset + size])
            offset += size
            prior_len, current_len = int(header["prior"]), int(header["current"])
            prior = data[offset:offset + prior_len]
            current = data[offset + prior_len:offset + prior_len + current_len]
            if len(current) != current_len or len(prior) != prior_len:
                return None
            return cls(header.get("encounter"), str(header.get("model", "")), prior or None, current)
        except (ValueError, KeyError, TypeError, struct.error):
            return None

    def base_for(self, encounter_id: str | None) -> tuple[bytes | None, bytes | None]:
        """(state to update from, state to keep as prior) for a call about `encounter_id`."""
        if encounter_id is not None and encounter_id == self.encounter_id:
            return self.prior, self.prior
        return self.current, self.current
