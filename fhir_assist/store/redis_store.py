"""The Redis store, shared by every replica of the service (key layout: docs/storage.md)."""
from __future__ import annotations

import json
import logging
import math
import time

import redis

from . import keys
from .base import (CARD_TTL_S, FEEDBACK_MAX_EVENTS, JTI_GRACE_S, REDIS_MAX_CARDS, REVIEW_QUEUE, Store,
                   StoreUnavailable, checked_ttl, epoch_seconds, event_json, feedback_record, since_ms)
from .connection import RETRY_AFTER_S, RedisConnection
from .keys import Scope
from .memory import MemoryStore

log = logging.getLogger(__name__)
_PAGE = 1000
# One card put in this many (per process) also trims the card index and the cards past the cap.
_TRIM_EVERY = 500


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisStore(Store):
    kind = "redis"

    def __init__(self, url: str, *, retry_after_s: float = RETRY_AFTER_S, max_cards: int = REDIS_MAX_CARDS,
                 **timeouts):
        self._redis = RedisConnection(url, retry_after_s=retry_after_s, **timeouts)
        self.url = url
        self._max_cards = max_cards
        self._card_puts = 0
        # Card ledger entries and pending coder decisions written while Redis is down
        # stay here until Redis takes them (see docs/storage.md).
        self._spill = MemoryStore()

    def describe(self):
        return self._redis.describe()

    def ping(self):
        return self._redis.ping()

    def close(self):
        self._redis.close()

    # -- MICRON state
    def get_micron_state(self, scope, patient):
        key = keys.micron_state(Scope.of(scope), patient)
        return self._redis.call("get_micron_state", lambda r: r.get(key))

    def put_micron_state(self, scope, patient, data, ttl_s):
        ttl = checked_ttl(ttl_s)
        key = keys.micron_state(Scope.of(scope), patient)
        payload = bytes(data)
        # SET with EX writes value and expiry in one command: readers never see one without the other.
        self._redis.call("put_micron_state", lambda r: r.set(key, payload, ex=ttl))

    # -- feedback
    def record_feedback(self, scope, event):
        payload = event_json(event)
        scope_key = Scope.of(scope).key

        def write(r):
            pipe = r.pipeline(transaction=True)   # MULTI … EXEC
            pipe.xadd(keys.feedback_stream(scope_key), {"event": payload},
                      maxlen=FEEDBACK_MAX_EVENTS, approximate=True)
            pipe.sadd(keys.FEEDBACK_SCOPES, scope_key)
            event_id, _ = pipe.execute()
            return _text(event_id)

        return self._redis.call("record_feedback", write)

    def list_feedback(self, tenant=None, since=None, source=None):
        min_ms = since_ms(since)
        start = "-" if min_ms is None else f"{max(min_ms, 0)}-0"

        def read(r):
            if tenant is None:
                scope_keys = sorted(_text(t) for t in r.smembers(keys.FEEDBACK_SCOPES))
            else:
                scope_keys = [Scope.of(tenant).key]
            out = []
            for scope_key in scope_keys:
                out.extend(self._read_stream(r, scope_key, start, source))
            out.sort(key=lambda rec: tuple(int(p) for p in rec["id"].split("-")))
            return out

        return self._redis.call("list_feedback", read)

    @staticmethod
    def _read_stream(r, scope_key: str, start: str, source: str | None) -> list[dict]:
        out, lower = [], start
        while True:   # page through the stream so one reply never gets huge
            page = r.xrange(keys.feedback_stream(scope_key), min=lower, max="+", count=_PAGE)
            for raw_id, fields in page:
                event = json.loads(fields[b"event"])
                if source is None or event.get("source") == source:
                    out.append(feedback_record(_text(raw_id), scope_key, event))
            if len(page) < _PAGE:
                return out
            lower = "(" + _text(page[-1][0])

    # -- card ledger: spilled to this process while Redis is down
    def put_cards(self, scope, cards, ttl_s=CARD_TTL_S):
        if cards:
            self._put_with_cards("put_cards", Scope.of(scope), cards, checked_ttl(ttl_s))

    def put_answer(self, scope, cards, state=None):
        # The cards and the state in one round trip.
        if not cards and state is None:
            return
        scope = Scope.of(scope)
        state_set = None if state is None else \
            (keys.micron_state(scope, state.patient), bytes(state.data), checked_ttl(state.ttl_s))
        failure = self._put_with_cards("put_answer", scope, cards, CARD_TTL_S, state_set)
        if failure is not None and state is not None:
            raise failure             # the state is dropped; the cards were kept in process

    def _put_with_cards(self, what: str, scope: Scope, cards: dict, ttl: int,
                        state_set: tuple[str, bytes, int] | None = None) -> StoreUnavailable | None:
        """The cards (and a MICRON state's key, value and TTL) in one round trip. When Redis
        fails, the cards are kept in this process and the failure is returned."""
        def write(r):
            expires = time.time() + ttl
            pipe = r.pipeline(transaction=False)
            if state_set is not None:
                key, payload, state_ttl = state_set
                pipe.set(key, payload, ex=state_ttl)
            for card_uuid, info in cards.items():
                key = keys.card(scope, card_uuid)
                pipe.set(key, json.dumps(info, default=str), ex=ttl)
                pipe.zadd(keys.CARD_INDEX, {key: expires})
            pipe.execute()
            if cards:
                self._card_puts += 1
                if self._card_puts % _TRIM_EVERY == 0:
                    self._trim_cards(r)

        try:
            self._redis.call(what, write)
            return None
        except StoreUnavailable as exc:
            if cards:
                log.warning("card ledger kept in this process only: %s", exc)
                self._spill.put_cards(scope, cards, ttl)
            return exc

    def _trim_cards(self, r) -> None:
        """The index's members whose card has expired, then the cards past the cap, those
        expiring first. ZPOPMIN hands each member to one replica; two trimming at once may
        drop a few more of the oldest cards than the cap needs, never a newer one first."""
        r.zremrangebyscore(keys.CARD_INDEX, "-inf", time.time())
        excess = r.zcard(keys.CARD_INDEX) - self._max_cards
        while excess > 0:
            oldest = [key for key, _ in r.zpopmin(keys.CARD_INDEX, min(excess, _PAGE))]
            if not oldest:
                return
            r.delete(*oldest)
            excess -= len(oldest)

    def get_card(self, scope, card_uuid):
        scope = Scope.of(scope)
        try:
            raw = self._redis.call("get_card", lambda r: r.get(keys.card(scope, card_uuid)))
            if raw is not None:
                return json.loads(raw)
        except StoreUnavailable as exc:
            log.warning("card ledger: looking in this process only: %s", exc)
        return self._spill.get_card(scope, card_uuid)

    # -- pending review actions and write-backs: spilled to this process while Redis is down
    def put_pending(self, scope, action_id, payload, queue=REVIEW_QUEUE):
        scope = Scope.of(scope)

        def write(r):
            pipe = r.pipeline(transaction=True)
            pipe.hset(keys.pending_actions(scope, queue), action_id, payload)
            pipe.sadd(keys.pending_scopes(queue), scope.key)
            pipe.execute()

        try:
            self._redis.call("put_pending", write)
        except StoreUnavailable as exc:
            log.error("pending %s item %s kept in this process only: %s", queue, action_id, exc)
            self._spill.put_pending(scope, action_id, payload, queue)
            return
        self._spill.remove_pending(scope, action_id, queue)

    def remove_pending(self, scope, action_id, queue=REVIEW_QUEUE, if_payload=None):
        scope = Scope.of(scope)
        spilled = self._spill.remove_pending(scope, action_id, queue, if_payload)
        key = keys.pending_actions(scope, queue)
        if if_payload is None:
            return bool(self._redis.call("remove_pending", lambda r: r.hdel(key, action_id))) or spilled

        def remove_if_unchanged(r):
            # WATCH … MULTI: a payload put meanwhile (a newer write-back) is not removed.
            with r.pipeline(transaction=True) as pipe:
                pipe.watch(key)
                current = pipe.hget(key, action_id)
                if current is None or _text(current) != if_payload:
                    return False
                pipe.multi()
                pipe.hdel(key, action_id)
                try:
                    pipe.execute()
                except redis.WatchError:
                    return False
                return True

        return self._redis.call("remove_pending", remove_if_unchanged) or spilled

    def pending(self, scope, queue=REVIEW_QUEUE):
        scope = Scope.of(scope)
        out: dict[str, str] = {}
        try:
            stored = self._redis.call("pending", lambda r: r.hgetall(keys.pending_actions(scope, queue)))
            out.update({_text(k): _text(v) for k, v in stored.items()})
        except StoreUnavailable as exc:
            log.warning("pending %s items in Redis cannot be read: %s", queue, exc)
        out.update(self._spill.pending(scope, queue))     # the newer copy when Redis was down
        return out

    def pending_scopes(self, queue):
        found = {s.key: s for s in self._spill.pending_scopes(queue)}
        try:
            stored = self._redis.call("pending_scopes", lambda r: r.smembers(keys.pending_scopes(queue)))
            found.update({_text(k): Scope.from_key(_text(k)) for k in stored})
        except StoreUnavailable as exc:
            log.info("pending %s scopes in Redis cannot be read: %s", queue, exc)   # polled: no warning flood
        return [found[k] for k in sorted(found)]

    def claim_lease(self, name, ttl_s):
        ttl_ms = max(1, int(ttl_s * 1000))
        try:
            return bool(self._redis.call("claim_lease",
                                         lambda r: r.set(keys.lease(name), b"1", nx=True, px=ttl_ms)))
        except StoreUnavailable as exc:
            log.warning("lease %s taken in this process only: %s", name, exc)
            return self._spill.claim_lease(name, ttl_s)

    def release_lease(self, name):
        self._spill.release_lease(name)
        try:
            self._redis.call("release_lease", lambda r: r.delete(keys.lease(name)))
        except StoreUnavailable as exc:
            log.warning("lease %s left to expire: %s", name, exc)

    # -- replay protection
    def claim_jti(self, issuer, jti, expires_at):
        until = math.ceil(epoch_seconds(expires_at) + JTI_GRACE_S)
        key = keys.jti(issuer, jti)
        now = int(time.time())
        # SET NX claims atomically across replicas; EXAT forgets the id once the token is dead.
        claimed = self._redis.call("claim_jti", lambda r: r.set(key, b"1", nx=True, exat=max(until, now + 1)))
        return bool(claimed)
