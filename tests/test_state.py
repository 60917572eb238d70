"""The state store on a real Redis server and in process: same behaviour, same API."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from fhir_assist.state import MemoryStore, RedisStore, StoreUnavailable, open_store


class FakeClock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["memory", "redis"])
def store(request):
    if request.param == "memory":
        yield open_store(None)
    else:
        s = open_store(request.getfixturevalue("redis_url"))
        yield s
        s.close()


def tenant() -> str:
    # The session Redis is shared: every test writes under its own tenant.
    return f"t-{uuid.uuid4().hex[:8]}"


def test_open_store_picks_the_implementation(redis_url):
    assert open_store(None).kind == "memory"
    assert open_store("").kind == "memory"
    s = open_store(redis_url)
    assert isinstance(s, RedisStore) and s.kind == "redis" and s.ping()
    assert "redis://127.0.0.1" in s.describe()
    assert open_store("redis://user:secret@127.0.0.1:1/0").describe() == "redis://***@127.0.0.1:1/0"
    with pytest.raises(ValueError, match="redis://"):
        open_store("http://127.0.0.1:6379")


def test_micron_state_round_trip_and_namespacing(store):
    t1, t2 = tenant(), tenant()
    assert store.get_micron_state(t1, "p1") is None
    store.put_micron_state(t1, "p1", b"\x00state-1\xff", ttl_s=60)
    store.put_micron_state(t2, "p1", b"other tenant", ttl_s=60)
    store.put_micron_state(t1, "p:1", b"colon id", ttl_s=60)
    assert store.get_micron_state(t1, "p1") == b"\x00state-1\xff"
    assert store.get_micron_state(t2, "p1") == b"other tenant"
    assert store.get_micron_state(t1, "p:1") == b"colon id"
    store.put_micron_state(t1, "p1", b"state-2", ttl_s=60)   # replaces
    assert store.get_micron_state(t1, "p1") == b"state-2"
    with pytest.raises(ValueError, match="ttl_s"):
        store.put_micron_state(t1, "p1", b"x", ttl_s=0)


def test_redis_keys_are_namespaced_and_expire(redis_url):
    import redis

    s = open_store(redis_url)
    t = tenant()
    s.put_micron_state(t, "p42", b"abc", ttl_s=120)
    with redis.Redis.from_url(redis_url) as r:
        key = f"fhir-assist:{t}:micron:p42"
        assert r.get(key) == b"abc"
        assert 110 <= r.ttl(key) <= 120


def test_redis_ttl_is_honoured(redis_url):
    s = open_store(redis_url)
    t = tenant()
    s.put_micron_state(t, "p", b"short-lived", ttl_s=1)
    assert s.get_micron_state(t, "p") == b"short-lived"
    time.sleep(1.2)
    assert s.get_micron_state(t, "p") is None


def test_memory_ttl_is_honoured():
    clock = FakeClock()
    s = MemoryStore(clock=clock)
    s.put_micron_state("t", "p", b"x", ttl_s=30)
    clock.now += 29
    assert s.get_micron_state("t", "p") == b"x"
    clock.now += 2
    assert s.get_micron_state("t", "p") is None


def test_memory_store_is_bounded():
    s = MemoryStore(max_states=3)
    for i in range(5):
        s.put_micron_state("t", f"p{i}", b"x", ttl_s=60)
    assert s.get_micron_state("t", "p0") is None
    assert s.get_micron_state("t", "p4") == b"x"


def test_concurrent_writes_leave_one_whole_value(store):
    t = tenant()
    values = [bytes([i]) * 4096 for i in range(16)]
    threads = [threading.Thread(target=store.put_micron_state, args=(t, "p", v, 60)) for v in values]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert store.get_micron_state(t, "p") in values


def test_feedback_round_trip(store):
    t1, t2 = tenant(), tenant()
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    e1 = {"patient": "p1", "encounter": "e1", "system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.65",
          "label": 1, "source": "coder-review", "user": "coder1", "at": "2026-01-01T00:00:00Z",
          "model_version": "icd-ranker@1"}
    e2 = {**e1, "code": "I10", "label": 0, "source": "cds-feedback", "reason": "not documented"}
    e3 = {**e1, "patient": "p9"}
    id1 = store.record_feedback(t1, e1)
    id2 = store.record_feedback(t1, e2)
    store.record_feedback(t2, e3)
    assert isinstance(id1, str) and id1 != id2

    mine = store.list_feedback(t1)
    assert [r["id"] for r in mine] == [id1, id2]
    assert {k: mine[0][k] for k in e1} == e1 and mine[0]["tenant"] == t1 and mine[0]["recorded_at"].endswith("Z")
    assert mine[1]["reason"] == "not documented"
    assert [r["code"] for r in store.list_feedback(t1, source="cds-feedback")] == ["I10"]
    assert store.list_feedback(t1, since=datetime.now(timezone.utc) + timedelta(minutes=1)) == []
    assert len(store.list_feedback(t1, since=before.isoformat())) == 2

    everyone = store.list_feedback()
    ours = [r for r in everyone if r["tenant"] in (t1, t2)]
    assert {(r["tenant"], r["patient"], r["code"]) for r in ours} == {(t1, "p1", "E11.65"), (t1, "p1", "I10"), (t2, "p9", "E11.65")}
    with pytest.raises(TypeError):
        store.record_feedback(t1, ["not", "a", "dict"])


def test_jti_replay_is_refused(store):
    issuer = f"https://ehr.example.org/{uuid.uuid4().hex[:6]}"
    exp = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert store.claim_jti(issuer, "jti-1", exp) is True
    assert store.claim_jti(issuer, "jti-1", exp) is False           # replay
    assert store.claim_jti(issuer, "jti-2", exp.timestamp()) is True  # another token
    assert store.claim_jti(issuer + "/other", "jti-1", exp) is True  # same jti, other issuer


def test_jti_claim_is_atomic_across_threads(store):
    issuer = f"https://ehr.example.org/{uuid.uuid4().hex[:6]}"
    exp = time.time() + 60
    results = []
    lock = threading.Lock()

    def claim():
        ok = store.claim_jti(issuer, "same", exp)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=claim) for _ in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results.count(True) == 1


def test_memory_jti_is_forgotten_after_expiry_and_grace():
    clock = FakeClock()
    s = MemoryStore(clock=clock)
    assert s.claim_jti("iss", "j", clock.now + 10)
    clock.now += 10 + 299
    assert not s.claim_jti("iss", "j", clock.now + 10)
    clock.now += 2
    assert s.claim_jti("iss", "j", clock.now + 10)


def test_redis_stopped_mid_run_raises_store_unavailable(restartable_redis):
    s = open_store(restartable_redis.url, retry_after_s=0.2)
    s.put_micron_state("t", "p", b"before", ttl_s=60)
    assert s.ping()

    restartable_redis.stop()
    assert s.ping() is False
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="Redis"):
        s.get_micron_state("t", "p")
    for call in (lambda: s.put_micron_state("t", "p", b"x", 60),
                 lambda: s.record_feedback("t", {"source": "cds-feedback"}),
                 lambda: s.list_feedback("t"),
                 lambda: s.claim_jti("iss", "j", time.time() + 60)):
        with pytest.raises(StoreUnavailable):
            call()
    assert time.monotonic() - started < 2.0, "a down Redis must fail fast, not hang the service"

    restartable_redis.start()
    time.sleep(0.25)
    assert s.ping()
    assert s.get_micron_state("t", "p") is None          # nothing persisted: started empty
    s.put_micron_state("t", "p", b"after", ttl_s=60)
    assert s.get_micron_state("t", "p") == b"after"


def test_unreachable_redis_at_start_up_does_not_prevent_opening():
    from tests.conftest import free_port

    s = open_store(f"redis://127.0.0.1:{free_port()}/0")
    assert s.ping() is False
    with pytest.raises(StoreUnavailable):
        s.get_micron_state("t", "p")
