"""The in-process store: the embedded default (no Redis configured), one process, lost on restart.

The Redis store also keeps one as its spill-over for the records that must survive a
Redis outage (see docs/storage.md)."""
from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict

from .base import (FEEDBACK_MAX_EVENTS, JTI_GRACE_S, CARD_TTL_S, MAX_CARDS, MAX_STATES, REVIEW_QUEUE, Store,
                   checked_ttl, epoch_seconds, event_json, event_ms, feedback_record, since_ms)
from .keys import Scope, segment


class _ExpiringTable:
    """key → value with a TTL each, bounded: past `limit` the least recently written go first."""

    def __init__(self, limit: int, clock):
        self._items: OrderedDict[tuple, tuple[float, object]] = OrderedDict()
        self._limit = limit
        self._clock = clock

    def get(self, key: tuple):
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            del self._items[key]
            return None
        return value

    def put(self, key: tuple, value, ttl_s: float) -> None:
        self._items.pop(key, None)
        self._items[key] = (self._clock() + ttl_s, value)
        if len(self._items) <= self._limit:
            return
        now = self._clock()
        for stale in [k for k, (exp, _) in self._items.items() if exp <= now]:
            del self._items[stale]
        while len(self._items) > self._limit:
            self._items.popitem(last=False)


class MemoryStore(Store):
    kind = "memory"

    def __init__(self, *, max_states: int = MAX_STATES, max_cards: int = MAX_CARDS, clock=time.time):
        self._lock = threading.Lock()
        self._clock = clock
        self._states = _ExpiringTable(max_states, clock)
        self._cards = _ExpiringTable(max_cards, clock)
        self._feedback: list[tuple[str, str, dict]] = []   # (id, scope key, event)
        self._pending: dict[tuple[str, str], dict[str, str]] = {}   # (queue, scope key) → id → JSON
        self._leases: dict[str, float] = {}
        self._jtis: dict[tuple[str, str], float] = {}
        self._last_ms = 0
        self._seq = 0

    # -- MICRON state
    def get_micron_state(self, scope, patient):
        with self._lock:
            return self._states.get((Scope.of(scope).key, segment(patient, default="-")))

    def put_micron_state(self, scope, patient, data, ttl_s):
        ttl = checked_ttl(ttl_s)
        with self._lock:
            self._states.put((Scope.of(scope).key, segment(patient, default="-")), bytes(data), ttl)

    # -- feedback
    def _next_id(self) -> str:
        # Same shape as Redis stream ids ("<ms>-<seq>"), increasing.
        ms = int(self._clock() * 1000)
        if ms <= self._last_ms:
            ms, self._seq = self._last_ms, self._seq + 1
        else:
            self._seq = 0
        self._last_ms = ms
        return f"{ms}-{self._seq}"

    def record_feedback(self, scope, event):
        stored = json.loads(event_json(event))
        with self._lock:
            event_id = self._next_id()
            self._feedback.append((event_id, Scope.of(scope).key, stored))
            if len(self._feedback) > FEEDBACK_MAX_EVENTS:
                del self._feedback[: len(self._feedback) - FEEDBACK_MAX_EVENTS]
        return event_id

    def list_feedback(self, tenant=None, since=None, source=None):
        min_ms = since_ms(since)
        wanted = None if tenant is None else Scope.of(tenant).key
        with self._lock:
            items = list(self._feedback)
        return [feedback_record(event_id, key, event) for event_id, key, event in items
                if (wanted is None or key == wanted)
                and (min_ms is None or event_ms(event_id) >= min_ms)
                and (source is None or event.get("source") == source)]

    # -- card ledger
    def put_cards(self, scope, cards, ttl_s=CARD_TTL_S):
        ttl = checked_ttl(ttl_s)
        key = Scope.of(scope).key
        with self._lock:
            for card_uuid, info in cards.items():
                self._cards.put((key, str(card_uuid)), json.dumps(info, default=str), ttl)

    def get_card(self, scope, card_uuid):
        with self._lock:
            raw = self._cards.get((Scope.of(scope).key, str(card_uuid)))
        return None if raw is None else json.loads(raw)

    # -- pending review actions and write-backs
    def put_pending(self, scope, action_id, payload, queue=REVIEW_QUEUE):
        with self._lock:
            self._pending.setdefault((queue, Scope.of(scope).key), {})[str(action_id)] = str(payload)

    def remove_pending(self, scope, action_id, queue=REVIEW_QUEUE, if_payload=None):
        with self._lock:
            items = self._pending.get((queue, Scope.of(scope).key), {})
            if str(action_id) not in items or (if_payload is not None and items[str(action_id)] != if_payload):
                return False
            del items[str(action_id)]
            return True

    def pending(self, scope, queue=REVIEW_QUEUE):
        with self._lock:
            return dict(self._pending.get((queue, Scope.of(scope).key), {}))

    def pending_scopes(self, queue):
        with self._lock:
            return [Scope.from_key(key) for (q, key), items in self._pending.items() if q == queue and items]

    def claim_lease(self, name, ttl_s):
        with self._lock:
            now = self._clock()
            if self._leases.get(name, 0) > now:
                return False
            self._leases[name] = now + ttl_s
            return True

    def release_lease(self, name):
        with self._lock:
            self._leases.pop(name, None)

    # -- replay protection
    def claim_jti(self, issuer, jti, expires_at):
        until = epoch_seconds(expires_at) + JTI_GRACE_S
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
