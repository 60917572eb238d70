"""Coder actions the FHIR server has not taken yet, kept until a retry succeeds.

One entry per (encounter, code): a later decision on the same code replaces the
earlier one, so a retried or repeated action can never be applied twice. Kept in
Redis next to the feedback when the service has Redis (survives restarts and is
shared by replicas), else in process memory.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass, field

import redis

KEY = "fhir-assist:{tenant}:review:pending"


class PendingUnavailable(RuntimeError):
    """The pending-actions store cannot be reached."""


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
    """put / get / remove / for_encounter / all, per tenant."""

    def __init__(self, redis_url: str | None = None):
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=2,
                                           socket_connect_timeout=2) if redis_url else None
        self._memory: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return "redis" if self._redis is not None else "memory"

    def put(self, tenant: str, action: Action) -> None:
        self._call("hset", tenant, action.id, action.to_json())

    def get(self, tenant: str, action_id_: str) -> Action | None:
        raw = self._call("hget", tenant, action_id_)
        return Action.from_json(raw) if raw else None

    def remove(self, tenant: str, action_id_: str) -> None:
        self._call("hdel", tenant, action_id_)

    def all(self, tenant: str) -> list[Action]:
        raw = self._call("hvals", tenant)
        return sorted((Action.from_json(r) for r in raw), key=lambda a: a.at)

    def for_encounter(self, tenant: str, encounter: str) -> list[Action]:
        return [a for a in self.all(tenant) if a.encounter == encounter]

    def _call(self, op: str, tenant: str, *args):
        key = KEY.format(tenant=tenant)
        if self._redis is not None:
            try:
                return getattr(self._redis, op)(key, *args)
            except redis.RedisError as exc:
                raise PendingUnavailable(f"the pending-actions store is unreachable: {exc}") from None
        with self._lock:
            table = self._memory.setdefault(key, {})
            if op == "hset":
                table[args[0]] = args[1]
                return 1
            if op == "hget":
                return table.get(args[0])
            if op == "hdel":
                return 1 if table.pop(args[0], None) is not None else 0
            if op == "hvals":
                return list(table.values())
        raise ValueError(op)
