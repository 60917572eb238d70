"""Coder actions the FHIR server has not taken yet, kept until a retry succeeds.

One entry per (encounter, code): a later decision on the same code replaces the
earlier one, so a retried or repeated action can never be applied twice. Kept in
the service's store (`Store.put_pending`): in Redis when configured (survives
restarts, shared by replicas), in this process while Redis is down or absent.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from fhir_assist.store import Scope, Store


@dataclass
class Action:
    kind: str                     # accept | reject | add | reopen
    patient: str
    encounter: str
    system: str
    code: str
    user: str
    at: str                       # ISO-8601, when the coder decided
    condition_id: str | None = None
    display: str | None = None
    reason: str | None = None
    model_version: str | None = None
    attempts: int = 0
    last_error: str | None = None
    fhir_done: bool = False       # the FHIR write succeeded; only the feedback is left
    id: str = field(default="")

    def __post_init__(self):
        if not self.id:
            self.id = action_id(self.encounter, self.system, self.code)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Action":
        data = json.loads(text)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def action_id(encounter: str, system: str, code: str) -> str:
    return hashlib.sha256(f"{encounter}\x1f{system}\x1f{code}".encode()).hexdigest()[:24]


class PendingActions:
    """put / get / remove / for_encounter / all, per scope, as `Action`s.

    `remove` raises `StoreUnavailable` when Redis is down; `put` and `all` do not (the
    store keeps and shows decisions made during an outage in this process).
    """

    def __init__(self, store: Store):
        self._store = store

    @property
    def kind(self) -> str:
        return self._store.kind

    def put(self, scope: Scope | str, action: Action) -> None:
        self._store.put_pending(scope, action.id, action.to_json())

    def get(self, scope: Scope | str, action_id_: str) -> Action | None:
        return next((a for a in self.all(scope) if a.id == action_id_), None)

    def remove(self, scope: Scope | str, action_id_: str) -> None:
        self._store.remove_pending(scope, action_id_)

    def all(self, scope: Scope | str) -> list[Action]:
        return sorted((Action.from_json(v) for v in self._store.pending(scope).values()), key=lambda a: a.at)

    def for_encounter(self, scope: Scope | str, encounter: str) -> list[Action]:
        return [a for a in self.all(scope) if a.encounter == encounter]
