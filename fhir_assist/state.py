"""State that outlives one request: per-patient MICRON state, feedback events, seen JWT ids.

`open_store(url)` gives a `RedisStore` when a Redis URL is configured (the production
set-up: every replica of the service shares it) and an in-process `MemoryStore` only
when none is (the embedded default of `fhir-assist serve` / `demo`). Both have the
same API and honour TTLs.

Redis keys, all under one prefix and namespaced by tenant:

    fhir-assist:{tenant}:micron:{patient}   MICRON state bytes            SET … EX ttl
    fhir-assist:{tenant}:feedback           feedback events, a Stream     XADD (capped)
    fhir-assist:feedback-tenants            tenants that have feedback    SADD
    fhir-assist:jti:{issuer}:{jti}          JWT ids already used          SET NX EXAT

Any Redis failure (down, timeout, refused, wrong type) raises `StoreUnavailable`, so
the service can fall back to recomputing from the history it has, and say so.
"""
from __future__ import annotations

import json
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

KEY_PREFIX = "fhir-assist"
DEFAULT_TENANT = "default"
# A replayed token must be refused for as long as a verifier could still accept it:
# its expiry plus the clock-skew allowance verifiers commonly grant.
JTI_GRACE_S = 300
# Feedback streams are capped (approximately) so a runaway client cannot fill Redis.
FEEDBACK_MAX_EVENTS = 1_000_000
# After a Redis failure, calls fail fast for this long instead of each waiting on a timeout.
RETRY_AFTER_S = 2.0


class StoreUnavailable(RuntimeError):
    """The configured state store cannot be reached or answered with an error."""


def _segment(value: str | None, *, default: str = DEFAULT_TENANT) -> str:
    # Percent-encode so a ':' inside a tenant or patient id cannot forge another key.
    text = str(value) if value not in (None, "") else default
    return quote(text, safe="")


def _epoch_seconds(moment: datetime | float | int) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if isinstance(moment, (int, float)) and not isinstance(moment, bool):
        return float(moment)
    raise TypeError(f"expected a datetime or a Unix timestamp, got {type(moment).__name__}")


def _since_ms(since: datetime | float | int | str | None) -> int | None:
    if since is None:
        return None
    if isinstance(since, str):
        try:
            since = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"'since' must be an ISO-8601 date-time, got {since!r}") from exc
    return int(_epoch_seconds(since) * 1000)


def _check_ttl(ttl_s: float | int) -> int:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not ttl_s > 0:
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    return max(1, math.ceil(ttl_s))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _feedback_record(event_id: str, tenant: str, event: dict) -> dict:
    """What list_feedback returns: the event as recorded plus where/when it was stored."""
    ms = int(event_id.split("-", 1)[0])
    return {**event, "id": event_id, "tenant": tenant, "recorded_at": _iso(ms)}


def _check_event(event: Any) -> str:
    if not isinstance(event, dict):
        raise TypeError(f"a feedback event must be a dict, got {type(event).__name__}")
    return json.dumps(event, sort_keys=True, default=str)


class Store(ABC):
    """The state store API shared by the Redis and the in-process implementation."""

    kind: str

    @abstractmethod
    def get_micron_state(self, tenant: str, patient: str) -> bytes | None:
        """The patient's last MICRON state, or None when absent or expired."""

    @abstractmethod
    def put_micron_state(self, tenant: str, patient: str, data: bytes, ttl_s: float) -> None:
        """Replace the patient's MICRON state atomically; it expires after ttl_s seconds."""

    @abstractmethod
    def record_feedback(self, tenant: str, event: dict) -> str:
        """Append one feedback event (a JSON-serialisable dict); returns its id."""

    @abstractmethod
    def list_feedback(
        self,
        tenant: str | None = None,
        since: datetime | float | str | None = None,
        source: str | None = None,
    ) -> list[dict]:
        """Feedback events, oldest first: one tenant's or (tenant=None) every tenant's,
        recorded at or after `since`, whose event "source" equals `source` when given.
        Each is the recorded event plus "id", "tenant" and "recorded_at" (ISO-8601)."""

    @abstractmethod
    def claim_jti(self, issuer: str, jti: str, expires_at: datetime | float) -> bool:
        """Remember a JWT id until its token expires; False when it was already claimed
        (a replayed token)."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the store answers; never raises."""

    def describe(self) -> str:
        """Where the state lives, safe to log (no password)."""
        return self.kind

    def close(self) -> None:
        """Release connections."""


class MemoryStore(Store):
    """In-process store for the embedded default: one process, lost on restart."""

    kind = "memory"

    def __init__(self, *, max_states: int = 100_000, clock=time.time):
        self._lock = threading.Lock()
        self._clock = clock
        self._max_states = max_states
        self._states: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._feedback: list[tuple[str, str, dict]] = []   # (id, tenant, event)
        self._jtis: dict[tuple[str, str], float] = {}
        self._last_ms = 0
        self._seq = 0

    def get_micron_state(self, tenant, patient):
        key = (_segment(tenant), _segment(patient, default="-"))
        with self._lock:
            item = self._states.get(key)
            if item is None:
                return None
            expires, data = item
            if expires <= self._clock():
                del self._states[key]
                return None
            return data

    def put_micron_state(self, tenant, patient, data, ttl_s):
        ttl = _check_ttl(ttl_s)
        key = (_segment(tenant), _segment(patient, default="-"))
        payload = bytes(data)
        with self._lock:
            self._states.pop(key, None)
            self._states[key] = (self._clock() + ttl, payload)
            self._evict()

    def _evict(self):
        # Bounded memory: drop expired states, then the least recently written.
        if len(self._states) <= self._max_states:
            return
        now = self._clock()
        for key in [k for k, (exp, _) in self._states.items() if exp <= now]:
            del self._states[key]
        while len(self._states) > self._max_states:
            self._states.popitem(last=False)

    def _next_id(self) -> str:
        # Same shape as Redis stream ids ("<ms>-<seq>"), increasing.
        ms = int(self._clock() * 1000)
        if ms <= self._last_ms:
            ms, self._seq = self._last_ms, self._seq + 1
        else:
            self._seq = 0
        self._last_ms = ms
        return f"{ms}-{self._seq}"

    def record_feedback(self, tenant, event):
        stored = json.loads(_check_event(event))
        with self._lock:
            event_id = self._next_id()
            self._feedback.append((event_id, _segment(tenant), stored))
            if len(self._feedback) > FEEDBACK_MAX_EVENTS:
                del self._feedback[: len(self._feedback) - FEEDBACK_MAX_EVENTS]
        return event_id

    def list_feedback(self, tenant=None, since=None, source=None):
        min_ms = _since_ms(since)
        wanted = None if tenant is None else _segment(tenant)
        with self._lock:
            items = list(self._feedback)
        out = []
        for event_id, stored_tenant, event in items:
            if wanted is not None and stored_tenant != wanted:
                continue
            if min_ms is not None and int(event_id.split("-", 1)[0]) < min_ms:
                continue
            if source is not None and event.get("source") != source:
                continue
            out.append(_feedback_record(event_id, stored_tenant, event))
        return out

    def claim_jti(self, issuer, jti, expires_at):
        until = _epoch_seconds(expires_at) + JTI_GRACE_S
        key = (str(issuer), str(jti))
        with self._lock:
            now = self._clock()
            if len(self._jtis) > 10_000:
                for k in [k for k, exp in self._jtis.items() if exp <= now]:
                    del self._jtis[k]
            if self._jtis.get(key, 0) > now:
                return False
            self._jtis[key] = until
            return True

    def ping(self):
        return True


class RedisStore(Store):
    """Redis-backed store shared by every replica of the service."""

    kind = "redis"

    def __init__(self, url: str, *, socket_timeout: float = 0.5, connect_timeout: float = 0.5,
                 retry_after_s: float = RETRY_AFTER_S):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        self._redis_error = redis.RedisError
        try:
            # One immediate retry: it heals a pooled connection that a Redis restart
            # closed, without stacking timeouts when Redis is really gone.
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=Retry(NoBackoff(), 1),
                health_check_interval=30,
            )
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL {self.describe()}: {exc}") from exc

    def describe(self):
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        if parts.username or parts.password:
            host = f"***@{host}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    def _call(self, what: str, fn):
        now = time.monotonic()
        if now < self._down_until:
            raise StoreUnavailable(f"Redis at {self.describe()} is unavailable (failed less than "
                                   f"{self.retry_after_s:g} s ago); not retrying yet")
        try:
            return fn(self._client)
        except self._redis_error as exc:
            self._down_until = time.monotonic() + self.retry_after_s
            raise StoreUnavailable(f"Redis at {self.describe()} failed during {what}: {exc}") from exc

    @staticmethod
    def _micron_key(tenant, patient):
        return f"{KEY_PREFIX}:{_segment(tenant)}:micron:{_segment(patient, default='-')}"

    @staticmethod
    def _feedback_key(tenant_segment):
        return f"{KEY_PREFIX}:{tenant_segment}:feedback"

    def get_micron_state(self, tenant, patient):
        return self._call("get_micron_state", lambda r: r.get(self._micron_key(tenant, patient)))

    def put_micron_state(self, tenant, patient, data, ttl_s):
        ttl = _check_ttl(ttl_s)
        key = self._micron_key(tenant, patient)
        payload = bytes(data)
        # SET with EX writes value and expiry in one command: readers never see one without the other.
        self._call("put_micron_state", lambda r: r.set(key, payload, ex=ttl))

    def record_feedback(self, tenant, event):
        payload = _check_event(event)
        segment = _segment(tenant)

        def write(r):
            pipe = r.pipeline(transaction=True)   # MULTI … EXEC
            pipe.xadd(self._feedback_key(segment), {"event": payload},
                      maxlen=FEEDBACK_MAX_EVENTS, approximate=True)
            pipe.sadd(f"{KEY_PREFIX}:feedback-tenants", segment)
            event_id, _ = pipe.execute()
            return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

        return self._call("record_feedback", write)

    def list_feedback(self, tenant=None, since=None, source=None):
        min_ms = _since_ms(since)
        start = "-" if min_ms is None else f"{max(min_ms, 0)}-0"

        def read(r):
            if tenant is None:
                tenants = sorted(t.decode() for t in r.smembers(f"{KEY_PREFIX}:feedback-tenants"))
            else:
                tenants = [_segment(tenant)]
            out = []
            for segment in tenants:
                key = self._feedback_key(segment)
                lower = start
                while True:   # page through the stream so one reply never gets huge
                    page = r.xrange(key, min=lower, max="+", count=1000)
                    for raw_id, fields in page:
                        event_id = raw_id.decode()
                        event = json.loads(fields[b"event"])
                        if source is None or event.get("source") == source:
                            out.append(_feedback_record(event_id, segment, event))
                    if len(page) < 1000:
                        break
                    lower = "(" + page[-1][0].decode()
            out.sort(key=lambda rec: tuple(int(p) for p in rec["id"].split("-")))
            return out

        return self._call("list_feedback", read)

    def claim_jti(self, issuer, jti, expires_at):
        until = math.ceil(_epoch_seconds(expires_at) + JTI_GRACE_S)
        key = f"{KEY_PREFIX}:jti:{_segment(issuer, default='-')}:{_segment(jti, default='-')}"
        now = int(time.time())
        # SET NX claims atomically across replicas; EXAT forgets the id once the token is dead.
        claimed = self._call("claim_jti", lambda r: r.set(key, b"1", nx=True, exat=max(until, now + 1)))
        return bool(claimed)

    def ping(self):
        try:
            ok = bool(self._client.ping())
        except self._redis_error:
            return False
        if ok:
            self._down_until = 0.0   # back: stop failing fast
        return ok

    def close(self):
        try:
            self._client.close()
        except self._redis_error:
            pass


def open_store(redis_url: str | None, **options) -> Store:
    """A RedisStore for a redis:// / rediss:// / unix:// URL, the in-process store for None or "".

    Opening never connects: a Redis that is down at start-up shows in `ping()` and as
    `StoreUnavailable` on use, so the service can start and recover when Redis returns.
    """
    if not redis_url:
        return MemoryStore()
    scheme = urlsplit(redis_url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"the Redis URL must start with redis://, rediss:// or unix://, got {redis_url!r}")
    return RedisStore(redis_url, **options)
