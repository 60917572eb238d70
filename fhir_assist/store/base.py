"""The store API shared by the Redis and the in-process implementation, and its value rules."""
from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..fhir.datetimes import parse_timestamp
from .keys import Scope

# A replayed token must be refused for as long as a verifier could still accept it:
# its expiry plus the clock-skew allowance verifiers commonly grant.
JTI_GRACE_S = 300
# Feedback streams are capped (approximately) so a runaway client cannot fill Redis.
FEEDBACK_MAX_EVENTS = 1_000_000
# What a card stood for is needed until its feedback arrives; EHRs send it within days.
CARD_TTL_S = 30 * 24 * 3600
# The stores on one machine (in process, the SQLite file) keep at most this many MICRON
# states and cards, the least recently written going first: a month of cards at a busy
# hospital's rate would otherwise fill memory or the disk (a card is 0.5-2.5 KB).
MAX_STATES = 100_000
MAX_CARDS = 50_000
# Redis holds every replica's cards: at most this many (about 3 GB at 1.5 KB a card, plus
# some 0.4 GB of index at 200 bytes a key), the first to expire going first. Without a cap the
# ledger grows with the call rate for 30 days, and Redis's own eviction cannot bound it safely:
# it would drop the short-lived token ids and leases first (replay checks, single write-backs).
REDIS_MAX_CARDS = 2_000_000
# The pending queues: coder decisions of the worklist, write-backs of suggested codes.
REVIEW_QUEUE = "review"
WRITEBACK_QUEUE = "writeback"


class StoreUnavailable(RuntimeError):
    """The configured store cannot be reached or answered with an error."""


ScopeLike = Scope | str | None


@dataclass(frozen=True)
class StateWrite:
    """A patient's new MICRON state, saved with the answer that computed it."""
    patient: str
    data: bytes
    ttl_s: float


class Store(ABC):
    """Per-scope records (MICRON state, feedback, card ledger, pending review actions)
    and the JWT ids already used. See docs/storage.md for the layout and the policy
    when Redis fails."""

    kind: str

    # -- MICRON state: lost → recomputed from the patient's history
    @abstractmethod
    def get_micron_state(self, scope: ScopeLike, patient: str) -> bytes | None:
        """The patient's last MICRON state, or None when absent or expired."""

    @abstractmethod
    def put_micron_state(self, scope: ScopeLike, patient: str, data: bytes, ttl_s: float) -> None:
        """Replace the patient's MICRON state atomically; it expires after ttl_s seconds."""

    # -- feedback ledger: append-only labels and audit events
    @abstractmethod
    def record_feedback(self, scope: ScopeLike, event: dict) -> str:
        """Append one feedback event (a JSON-serialisable dict); returns its id."""

    @abstractmethod
    def list_feedback(self, tenant: ScopeLike = None, since: datetime | float | str | None = None,
                      source: str | None = None) -> list[dict]:
        """Feedback events, oldest first: one scope's or (None) every scope's, recorded at or
        after `since`, whose event "source" equals `source` when given. Each is the recorded
        event plus "id", "tenant" ("issuer" too for an issuer scope) and "recorded_at"."""

    # -- card ledger: card uuid → what the card stood for
    @abstractmethod
    def put_cards(self, scope: ScopeLike, cards: dict[str, dict], ttl_s: float = CARD_TTL_S) -> None:
        """Remember what each returned card stood for, until its feedback can arrive."""

    def put_answer(self, scope: ScopeLike, cards: dict[str, dict], state: StateWrite | None = None) -> None:
        """What one hook answer leaves behind: its card ledger entries (`put_cards`) and the
        patient's new MICRON state (`put_micron_state`). Raises StoreUnavailable when the state
        was not saved; the cards are then kept as `put_cards` keeps them when the store fails.
        Stores that can write both at once override this (one statement, one round trip)."""
        self.put_cards(scope, cards)
        if state is not None:
            self.put_micron_state(scope, state.patient, state.data, state.ttl_s)

    @abstractmethod
    def get_card(self, scope: ScopeLike, card_uuid: str) -> dict | None:
        """What the card stood for, or None when unknown or expired."""

    # -- pending work the FHIR server has not taken yet, one hash per (scope, queue):
    # coder decisions (queue "review") and write-backs of suggested codes ("writeback")
    @abstractmethod
    def put_pending(self, scope: ScopeLike, action_id: str, payload: str, queue: str = REVIEW_QUEUE) -> None:
        """Keep (or replace) one pending item, a JSON text, under its id."""

    @abstractmethod
    def remove_pending(self, scope: ScopeLike, action_id: str, queue: str = REVIEW_QUEUE,
                       if_payload: str | None = None) -> bool:
        """Forget one pending item (it was applied); with `if_payload`, only while it still holds
        that payload (a newer one put meanwhile stays). True when it was removed."""

    @abstractmethod
    def pending(self, scope: ScopeLike, queue: str = REVIEW_QUEUE) -> dict[str, str]:
        """Every pending item of the scope in `queue`: id → JSON text."""

    @abstractmethod
    def pending_scopes(self, queue: str) -> list[Scope]:
        """The scopes that have (or recently had) items in `queue`."""

    @abstractmethod
    def claim_lease(self, name: str, ttl_s: float) -> bool:
        """Take a named lease for ttl_s seconds (one holder across every process sharing the
        store); False while another holder has it."""

    @abstractmethod
    def release_lease(self, name: str) -> None:
        """Give a lease back before it expires."""

    # -- replay protection
    @abstractmethod
    def claim_jti(self, issuer: str, jti: str, expires_at: datetime | float) -> bool:
        """Remember a JWT id until its token expires; False when it was already claimed."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the store answers; never raises."""

    def describe(self) -> str:
        """Where the state lives, safe to log (no password)."""
        return self.kind

    def close(self) -> None:
        """Release connections."""


# ---------------------------------------------------------------- value rules
def epoch_seconds(moment: datetime | float | int) -> float:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    if isinstance(moment, (int, float)) and not isinstance(moment, bool):
        return float(moment)
    raise TypeError(f"expected a datetime or a Unix timestamp, got {type(moment).__name__}")


def since_ms(since: datetime | float | int | str | None) -> int | None:
    if since is None:
        return None
    if isinstance(since, str):
        moment = parse_timestamp(since)
        if moment is None:
            raise ValueError(f"'since' must be a FHIR date or date-time (ISO 8601), got {since!r}")
        since = moment
    return int(epoch_seconds(since) * 1000)


def checked_ttl(ttl_s: float | int) -> int:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not ttl_s > 0:
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    return max(1, math.ceil(ttl_s))


def event_json(event: Any) -> str:
    if not isinstance(event, dict):
        raise TypeError(f"a feedback event must be a dict, got {type(event).__name__}")
    return json.dumps(event, sort_keys=True, default=str)


def feedback_record(event_id: str, scope_key: str, event: dict) -> dict:
    """What list_feedback returns: the event as recorded plus where/when it was stored."""
    ms = int(event_id.split("-", 1)[0])
    stamp = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    scope = Scope.from_key(scope_key)
    owner = {"tenant": scope.tenant, **({"issuer": scope.issuer} if scope.issuer else {})}
    return {**event, "id": event_id, **owner, "recorded_at": stamp.replace("+00:00", "Z")}


def event_ms(event_id: str) -> int:
    return int(event_id.split("-", 1)[0])
