"""Write-backs of suggested codes the FHIR server could not take, kept and retried.

When the FHIR server is down, times out or answers 5xx/429 at write-back time, the write
is kept in the store (queue "writeback", per `Scope`: Redis when configured, else this
process), one entry per (FHIR server, patient, encounter): a later call's write for the
same encounter replaces one that never landed. Each server process retries the entries
that are due in a background thread, with exponential backoff, and at once when a hook
call names the same server. The write itself is idempotent (conditional creates on the
suggestion's identifier, see `FhirServer.write_suggested_conditions`) and a lease per
entry lets one process at a time write it, so each suggestion lands on the server once.
After `write_back_give_up` failed attempts, a refusal (4xx) or a day without success the
entry moves to queue "writeback-given-up": logged, counted in /metrics and listed by
`GET /admin/writebacks` with the pending ones.

The EHR's access token is never stored: it is kept in this process's memory only, until
it expires, for retrying writes to the server it was issued for. An entry whose token has
expired waits for the next call that names its server.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ..fhir_server import FhirAccessError, FhirServerUnavailable
from ..store import Scope, StoreUnavailable
from ..store.base import WRITEBACK_QUEUE

log = logging.getLogger(__name__)

GIVEN_UP_QUEUE = "writeback-given-up"
MAX_AGE_S = 24 * 3600              # an entry older than this is given up at its next failure
MAX_BACKOFF_S = 15 * 60
RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass
class PendingWrite:
    """One encounter's suggested codes, to be written to `base_url` as provisional Conditions."""

    base_url: str
    patient: str
    encounter: str
    codes: list[dict]                    # system, code, display, score, rank
    model_version: str
    cutoff_k: int | None = None
    target_recall: float | None = None
    with_call_token: bool = False        # the call's own fhirServer (its token), not --fhir-base-url
    queued_at: float = 0.0
    attempts: int = 0
    next_at: float = 0.0
    last_error: str = ""
    id: str = field(default="")

    def __post_init__(self):
        if not self.id:
            key = "\x1f".join((self.base_url, self.patient, self.encounter))
            self.id = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "PendingWrite":
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def summary(self) -> dict:
        """What the admin listing shows (no codes' scores, no tokens)."""
        return {"id": self.id, "fhir_server": self.base_url, "patient": self.patient, "encounter": self.encounter,
                "codes": [f"{c.get('system')}|{c.get('code')}" for c in self.codes], "attempts": self.attempts,
                "queued_at": self.queued_at, "next_try_at": self.next_at, "last_error": self.last_error}


@dataclass
class WriteResult:
    stored: list[dict] = field(default_factory=list)
    superseded: list[dict] = field(default_factory=list)
    pending: PendingWrite | None = None          # kept for retry (the server could not take it now)


def retryable(exc: BaseException) -> bool:
    """Failures that can heal by themselves: unreachable, timed out, 5xx, 429."""
    if isinstance(exc, FhirServerUnavailable):
        return True
    status = getattr(exc, "status", None)
    return isinstance(exc, FhirAccessError) and status is not None and (status >= 500 or status in RETRYABLE_STATUS)


def describe(exc: BaseException) -> str:
    """What went wrong, for the card, the admin listing and the logs: never the server's text."""
    status = getattr(exc, "status", None)
    return f"HTTP {status}" if status else "unreachable or too slow"


def write_codes(server: Any, write: PendingWrite) -> WriteResult:
    """Write the codes and supersede this service's earlier suggestions they no longer include."""
    stored = server.write_suggested_conditions(write.patient, write.encounter, write.codes, write.model_version,
                                               cutoff_k=write.cutoff_k, target_recall=write.target_recall)
    superseded = server.supersede_suggestions(write.patient, write.encounter,
                                              {(c["system"], c["code"]) for c in write.codes}, write.model_version)
    return WriteResult(stored, superseded)


class WriteBacks:
    """The hook calls' write-backs: written at once, or queued and retried (see the module docstring)."""

    def __init__(self, store, settings, metrics, fhir_factory: Callable[..., Any], clock=time.time):
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.fhir_factory = fhir_factory
        self.clock = clock
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}    # (scope key, server) → token, expiry
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = None

    # ------------------------------------------------------------ the hook call's write
    def write(self, scope: Scope, write: PendingWrite, token: str | None, token_expires_in: float | None) -> WriteResult:
        """Write now; on a failure that can heal, keep the write for retry (`.pending`). A
        refusal (4xx) or an invalid resource raises, as before."""
        if write.with_call_token:
            self._remember_token(scope, write.base_url, token, token_expires_in)
        self._wake.set()             # this call's server may be back: retry what waits for it
        lease = self._lease(scope, write)
        if not self.store.claim_lease(lease, self._lease_s()):
            # Another process is retrying this encounter's older write: this newer one waits its turn.
            return WriteResult(pending=self._queue(scope, write, "an earlier write of this encounter is in progress"))
        try:
            result = write_codes(self._server(write, token), write)
        except Exception as exc:  # noqa: BLE001 - sorted below: retry, or the caller's refusal
            if not retryable(exc):
                raise
            return WriteResult(pending=self._queue(scope, write, describe(exc)))
        finally:
            self.store.release_lease(lease)
        self._forget(scope, write.id)        # written: an older write of this encounter is obsolete
        self.metrics.written_conditions.inc(len(result.stored))
        return result

    def _queue(self, scope: Scope, write: PendingWrite, why: str) -> PendingWrite:
        now = self.clock()
        write.queued_at = write.queued_at or now
        write.last_error = why
        write.next_at = now + self._backoff(write.attempts)
        self.store.put_pending(scope, write.id, write.to_json(), WRITEBACK_QUEUE)
        self.metrics.writeback_failures.inc()
        self.metrics.writeback_queued.inc()
        log.warning("write-back %s kept for retry (%s)", write.id, why)
        self.ensure_running()
        return write

    def _forget(self, scope: Scope, write_id: str) -> None:
        try:
            self.store.remove_pending(scope, write_id, WRITEBACK_QUEUE)
        except StoreUnavailable as exc:
            log.warning("write-back %s: the store cannot drop its queued copy yet: %s", write_id, exc)

    # ------------------------------------------------------------ retries
    def retry_due(self) -> dict[str, int]:
        """Retry every queued write that is due; counts by outcome."""
        counts = {"written": 0, "failed": 0, "given-up": 0, "waiting": 0}
        pending = 0
        for scope in self.store.pending_scopes(WRITEBACK_QUEUE):
            for write_id, raw in self.store.pending(scope, WRITEBACK_QUEUE).items():
                pending += 1
                outcome = self._retry(scope, write_id, raw)
                if outcome:
                    counts[outcome] += 1
                    pending -= outcome in ("written", "given-up")
        self.metrics.writeback_pending.set(pending)
        return counts

    def _retry(self, scope: Scope, write_id: str, raw: str) -> str | None:
        try:
            write = PendingWrite.from_json(raw)
        except (ValueError, TypeError):
            log.error("queued write-back %s could not be read; dropped", write_id)
            self.store.remove_pending(scope, write_id, WRITEBACK_QUEUE, if_payload=raw)
            return "given-up"
        now = self.clock()
        if write.next_at > now:
            return None
        token = self._token(scope, write.base_url) if write.with_call_token else None
        if write.with_call_token and token is None:
            if now - write.queued_at > MAX_AGE_S:
                return self._give_up(scope, write, raw, "no valid access token came for a day")
            return "waiting"         # until a call naming this server brings a fresh token
        lease = self._lease(scope, write)
        if not self.store.claim_lease(lease, self._lease_s()):
            return None
        try:
            result = write_codes(self._server(write, token), write)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and logged; refusals end it
            return self._failed(scope, write, raw, exc)
        finally:
            self.store.release_lease(lease)
        self.store.remove_pending(scope, write.id, WRITEBACK_QUEUE, if_payload=raw)
        self.metrics.written_conditions.inc(len(result.stored))
        self.metrics.writeback_retries.labels(outcome="written").inc()
        log.info("write-back %s written on attempt %d: %d Condition(s)", write.id, write.attempts + 2,
                 len(result.stored))
        return "written"

    def _failed(self, scope: Scope, write: PendingWrite, raw: str, exc: BaseException) -> str:
        write.attempts += 1
        write.last_error = describe(exc)
        if not retryable(exc):
            return self._give_up(scope, write, raw, f"refused: {write.last_error}")
        if write.attempts >= self.settings.write_back_give_up or self.clock() - write.queued_at > MAX_AGE_S:
            return self._give_up(scope, write, raw, f"{write.attempts} attempts failed: {write.last_error}")
        write.next_at = self.clock() + self._backoff(write.attempts)
        # Only while no newer write of the encounter replaced it meanwhile.
        if self.store.remove_pending(scope, write.id, WRITEBACK_QUEUE, if_payload=raw):
            self.store.put_pending(scope, write.id, write.to_json(), WRITEBACK_QUEUE)
        self.metrics.writeback_retries.labels(outcome="failed").inc()
        log.warning("write-back %s attempt %d failed (%s); next in %.0f s", write.id, write.attempts + 1,
                    write.last_error, write.next_at - self.clock())
        return "failed"

    def _give_up(self, scope: Scope, write: PendingWrite, raw: str, why: str) -> str:
        write.last_error = why
        if self.store.remove_pending(scope, write.id, WRITEBACK_QUEUE, if_payload=raw):
            self.store.put_pending(scope, write.id, write.to_json(), GIVEN_UP_QUEUE)
        self.metrics.writeback_retries.labels(outcome="given-up").inc()
        log.error("write-back %s given up: %s (listed at /admin/writebacks)", write.id, why)
        return "given-up"

    def listing(self, scope: Scope) -> dict:
        """The admin view of one scope: what waits and what was given up."""
        def entries(queue):
            items = [PendingWrite.from_json(v) for v in self.store.pending(scope, queue).values()]
            return [w.summary() for w in sorted(items, key=lambda w: w.queued_at)]
        return {"pending": entries(WRITEBACK_QUEUE), "given_up": entries(GIVEN_UP_QUEUE)}

    # ------------------------------------------------------------ background thread
    def resume(self) -> None:
        """Called on every request: with Redis, entries queued before a restart or by another
        process are retried here too; in process, the thread starts with the first entry."""
        if self.store.kind == "redis" and not (self._thread is not None and self._pid == os.getpid()):
            self.ensure_running()

    def ensure_running(self) -> None:
        """Start this process's retry thread (after a fork too: threads do not survive one)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="fhir-assist-writeback", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        tick = max(0.2, min(self.settings.write_back_retry_s, 30.0))
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.retry_due()
            except StoreUnavailable as exc:
                log.warning("write-back retries wait for the store: %s", exc)
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad entry
                log.exception("write-back retry round failed")

    # ------------------------------------------------------------ helpers
    def _server(self, write: PendingWrite, token: str | None):
        return self.fhir_factory(write.base_url, (token or None) if write.with_call_token else None,
                                 deadline_s=self.settings.fhir_timeout * 3)

    def _backoff(self, attempts: int) -> float:
        return min(MAX_BACKOFF_S, self.settings.write_back_retry_s * 2 ** attempts)

    def _lease_s(self) -> float:
        # Longer than one write can take (the FhirServer deadline), so two never overlap.
        return self.settings.fhir_timeout * 3 + 30

    @staticmethod
    def _lease(scope: Scope, write: PendingWrite) -> str:
        return f"writeback:{scope.key}:{write.id}"

    def _remember_token(self, scope: Scope, base_url: str, token: str | None, expires_in: float | None) -> None:
        # A token without a stated lifetime is trusted for 5 minutes (what EHRs commonly issue);
        # a server the call named without a token is retried without one ("").
        now = self.clock()
        if not token:
            token, expires_in = "", MAX_AGE_S
        with self._lock:
            if len(self._tokens) > 10_000:
                self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
            self._tokens[(scope.key, base_url)] = (token, now + (expires_in if expires_in is not None else 300))

    def _token(self, scope: Scope, base_url: str) -> str | None:
        """The token to retry with ("" for none), or None when no valid one is known."""
        with self._lock:
            token, expires = self._tokens.get((scope.key, base_url), (None, 0.0))
            if token is not None and expires <= self.clock():
                del self._tokens[(scope.key, base_url)]
                return None
            return token
