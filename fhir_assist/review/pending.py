"""Coder actions the FHIR server has not taken yet, kept until a retry succeeds.

One entry per (encounter, code): a later decision on the same code replaces the
earlier one, so a retried or repeated action can never be applied twice. Kept in
Redis next to the feedback when the service has Redis (survives restarts and is
shared by replicas), else in process memory.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

import redis

log = logging.getLogger(__name__)

_KEY = "fhir-assist:{tenant}:review:pending"


def _key(tenant: str) -> str:
    # percent-encoded like the state store's keys, so a tenant name cannot forge another key
    return _KEY.format(tenant=quote(str(tenant or "default"), safe=""))


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
    """put / get / remove / for_encounter / all, per tenant.

    With Redis, a decision that cannot be written there (Redis down too) is kept in this
    process instead, so it survives the outage as long as the process runs, and shows
    on the page with its retry button like any other.
    """

    def __init__(self, redis_url: str | None = None):
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=2,
                                           socket_connect_timeout=2) if redis_url else None
        self._local: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    @property
    def kind(self) -> str:
        return "redis" if self._redis is not None else "memory"

    def put(self, tenant: str, action: Action) -> None:
        key = _key(tenant)
        if self._redis is not None:
            try:
                self._redis.hset(key, action.id, action.to_json())
                with self._lock:
                    self._local_table(key).pop(action.id, None)
                return
            except redis.RedisError as exc:
                log.error("pending decision %s kept in this process only: Redis failed: %s", action.id, exc)
        with self._lock:
            self._local.setdefault(key, {})[action.id] = action.to_json()

    def get(self, tenant: str, action_id_: str) -> Action | None:
        return next((a for a in self.all(tenant) if a.id == action_id_), None)

    def remove(self, tenant: str, action_id_: str) -> None:
        key = _key(tenant)
        with self._lock:
            self._local_table(key).pop(action_id_, None)
        if self._redis is not None:
            try:
                self._redis.hdel(key, action_id_)
            except redis.RedisError as exc:
                raise PendingUnavailable(f"the pending-actions store is unreachable: {exc}") from None

    def all(self, tenant: str) -> list[Action]:
        key = _key(tenant)
        raw: dict[str, str | bytes] = {}
        if self._redis is not None:
            try:
                raw.update({k.decode() if isinstance(k, bytes) else k: v
                            for k, v in self._redis.hgetall(key).items()})
            except redis.RedisError as exc:
                log.warning("pending decisions in Redis cannot be read: %s", exc)
        with self._lock:
            raw.update(self._local_table(key))     # the newer copy when Redis was down
        return sorted((Action.from_json(v) for v in raw.values()), key=lambda a: a.at)

    def for_encounter(self, tenant: str, encounter: str) -> list[Action]:
        return [a for a in self.all(tenant) if a.encounter == encounter]

    def _local_table(self, key: str) -> dict[str, str]:
        return self._local.setdefault(key, {})
