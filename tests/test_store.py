"""The store on a real Redis server and in process: same behaviour, same API, one key layout."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from fhir_assist.store import MemoryStore, RedisStore, Scope, SqliteStore, StateWrite, StoreUnavailable, open_store


class FakeClock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        yield open_store(None)
    elif request.param == "sqlite":
        s = open_store(None, state_file=str(tmp_path / "state.db"))
        yield s
        s.close()
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


def test_micron_states_stored_before_scopes_still_load(redis_url):
    # A deployment upgraded in place keeps its patients' states: the single-tenant layout is unchanged.
    import redis

    t = tenant()
    with redis.Redis.from_url(redis_url) as r:
        r.set(f"fhir-assist:{t}:micron:p7", b"stored-by-an-older-release", ex=60)
    s = open_store(redis_url)
    assert s.get_micron_state(t, "p7") == b"stored-by-an-older-release"
    assert s.get_micron_state(Scope(tenant=t), "p7") == b"stored-by-an-older-release"


def test_issuer_scopes_are_kept_apart(store):
    t = tenant()
    plain, ehr_a, ehr_b = Scope(t), Scope(t, "https://a.example.org"), Scope(t, "https://b.example.org")
    store.put_micron_state(plain, "p", b"plain", ttl_s=60)
    store.put_micron_state(ehr_a, "p", b"a", ttl_s=60)
    assert store.get_micron_state(ehr_b, "p") is None
    assert store.get_micron_state(ehr_a, "p") == b"a"
    assert store.get_micron_state(t, "p") == b"plain"
    store.record_feedback(ehr_a, {"source": "cds-feedback", "code": "I10"})
    assert store.list_feedback(ehr_b) == [] and store.list_feedback(t) == []
    [record] = store.list_feedback(ehr_a)
    assert (record["tenant"], record["issuer"], record["code"]) == (t, "https://a.example.org", "I10")
    store.put_cards(ehr_a, {"card-1": {"kind": "coding"}})
    assert store.get_card(ehr_b, "card-1") is None and store.get_card(ehr_a, "card-1") == {"kind": "coding"}
    store.put_pending(ehr_a, "act-1", '{"x": 1}')
    assert store.pending(ehr_b) == {} and store.pending(ehr_a) == {"act-1": '{"x": 1}'}


def test_scope_keys_cannot_be_forged():
    # '@' and ':' in a tenant or issuer are encoded, so no scope spells another's key.
    assert Scope("a@b").key != Scope("a", "b").key
    assert Scope("a", "b:c").key == "a@b%3Ac"
    for scope in (Scope("a@b"), Scope("a", "b"), Scope("x:y", "https://i.example/t@1")):
        assert Scope.from_key(scope.key) == scope
    assert Scope.of(None) == Scope.of("") == Scope("default")


def test_redis_key_layout(redis_url):
    import redis

    s = open_store(redis_url)
    t = tenant()
    scope = Scope(t, "https://ehr.example.org")
    s.put_cards(t, {"c:1": {"kind": "coding"}}, ttl_s=100)
    s.put_pending(scope, "a1", "{}")
    s.put_micron_state(scope, "p/1", b"x", ttl_s=60)
    with redis.Redis.from_url(redis_url) as r:
        assert r.get(f"fhir-assist:{t}:cds-card:c%3A1") == b'{"kind": "coding"}'
        assert 90 <= r.ttl(f"fhir-assist:{t}:cds-card:c%3A1") <= 100
        assert r.hgetall(f"fhir-assist:{t}@https%3A%2F%2Fehr.example.org:review:pending") == {b"a1": b"{}"}
        assert r.get(f"fhir-assist:{t}@https%3A%2F%2Fehr.example.org:micron:p%2F1") == b"x"


def test_card_ledger_round_trip_and_expiry(store):
    t = tenant()
    store.put_cards(t, {"c1": {"kind": "coding", "patient": "p1"}, "c2": {"kind": "medication"}}, ttl_s=1)
    store.put_cards(t, {})
    assert store.get_card(t, "c1") == {"kind": "coding", "patient": "p1"}
    assert store.get_card(t, "unknown") is None
    time.sleep(1.2)
    assert store.get_card(t, "c2") is None


def test_a_large_card_batch_is_stored_whole(store):
    # more cards than one SQLite statement writes
    t = tenant()
    cards = {f"card-{i}": {"kind": "coding", "n": i} for i in range(1_203)}
    store.put_cards(t, cards)
    assert all(store.get_card(t, uuid) == info for uuid, info in cards.items())


def test_an_answer_keeps_its_cards_and_state_together(store):
    t = tenant()
    store.put_answer(t, {"c1": {"kind": "medication"}, "c2": {"kind": "medication", "n": 2}},
                     StateWrite("p1", b"\x00state\xff", ttl_s=1))
    store.put_answer(t, {"c3": {"kind": "coding"}})           # no state (the coding service)
    store.put_answer(t, {}, StateWrite("p2", b"alone", ttl_s=60))   # no cards
    store.put_answer(t, {})                                   # nothing at all
    assert store.get_card(t, "c2") == {"kind": "medication", "n": 2}
    assert store.get_card(t, "c3") == {"kind": "coding"}
    assert store.get_micron_state(t, "p1") == b"\x00state\xff"
    assert store.get_micron_state(t, "p2") == b"alone"
    assert store.get_micron_state(tenant(), "p1") is None      # the state is the tenant's
    with pytest.raises(ValueError, match="ttl_s"):
        store.put_answer(t, {}, StateWrite("p1", b"x", ttl_s=0))
    time.sleep(1.2)
    assert store.get_micron_state(t, "p1") is None            # the state's own TTL…
    assert store.get_card(t, "c1") == {"kind": "medication"}  # …not the cards' 30 days


def test_pending_actions_replace_and_remove(store):
    t = tenant()
    store.put_pending(t, "a1", '{"v": 1}')
    store.put_pending(t, "a1", '{"v": 2}')
    store.put_pending(t, "a2", '{"v": 3}')
    assert store.pending(t) == {"a1": '{"v": 2}', "a2": '{"v": 3}'}
    store.remove_pending(t, "a1")
    store.remove_pending(t, "never-there")
    assert store.pending(t) == {"a2": '{"v": 3}'}


def test_pending_queues_are_apart_and_removal_can_wait_for_a_newer_payload(store):
    t = tenant()
    scope = Scope(t, "https://ehr.example.org")
    store.put_pending(scope, "e1", '{"v": 1}', queue="writeback")
    assert store.pending(scope) == {} and store.pending(scope, "writeback") == {"e1": '{"v": 1}'}
    assert scope in store.pending_scopes("writeback")
    store.put_pending(scope, "e1", '{"v": 2}', queue="writeback")       # newer, put while v1 was retried
    assert not store.remove_pending(scope, "e1", "writeback", if_payload='{"v": 1}')
    assert store.pending(scope, "writeback") == {"e1": '{"v": 2}'}
    assert store.remove_pending(scope, "e1", "writeback", if_payload='{"v": 2}')
    assert store.pending(scope, "writeback") == {}


def test_a_lease_has_one_holder_until_released_or_expired(store):
    name = f"lease-{tenant()}"
    assert store.claim_lease(name, 0.5)
    assert not store.claim_lease(name, 0.5)
    store.release_lease(name)
    assert store.claim_lease(name, 0.3)
    time.sleep(0.5)
    assert store.claim_lease(name, 0.3)


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


def test_redis_stopped_mid_run_keeps_cards_and_decisions_in_process(restartable_redis):
    s = open_store(restartable_redis.url, retry_after_s=0.2)
    s.put_cards("t", {"before": {"kind": "coding"}})
    s.put_pending("t", "kept-in-redis", '{"v": 0}')

    restartable_redis.stop()
    s.put_cards("t", {"during": {"kind": "coding"}})
    s.put_pending("t", "decided-during", '{"v": 1}')
    assert s.get_card("t", "during") == {"kind": "coding"}
    assert s.get_card("t", "before") is None              # in Redis, which is gone
    assert s.pending("t") == {"decided-during": '{"v": 1}'}
    with pytest.raises(StoreUnavailable):
        s.remove_pending("t", "kept-in-redis")            # cannot be forgotten while Redis is down
    with pytest.raises(StoreUnavailable):                 # an answer's state is dropped, its cards kept
        s.put_answer("t", {"answered-during": {"kind": "medication"}}, StateWrite("p", b"s", 60))
    assert s.get_card("t", "answered-during") == {"kind": "medication"}

    restartable_redis.start()                              # empty: no persistence in the test server
    time.sleep(0.25)
    assert s.ping()
    assert s.get_card("t", "during") == {"kind": "coding"}
    assert s.get_card("t", "answered-during") == {"kind": "medication"}
    assert s.pending("t") == {"decided-during": '{"v": 1}'}
    s.put_pending("t", "decided-during", '{"v": 2}')      # Redis takes it: the process copy goes
    import redis
    with redis.Redis.from_url(restartable_redis.url) as r:
        assert r.hgetall("fhir-assist:t:review:pending") == {b"decided-during": b'{"v": 2}'}
    assert s.pending("t") == {"decided-during": '{"v": 2}'}
    s.remove_pending("t", "decided-during")
    assert s.pending("t") == {}


def test_unreachable_redis_at_start_up_does_not_prevent_opening():
    from tests.conftest import free_port

    s = open_store(f"redis://127.0.0.1:{free_port()}/0")
    assert s.ping() is False
    with pytest.raises(StoreUnavailable):
        s.get_micron_state("t", "p")


@pytest.mark.parametrize("durable", [True, False])
def test_sqlite_flushes_to_disk_only_when_durable(tmp_path, durable):
    path = str(tmp_path / "state.db")
    s = open_store(None, state_file=path, durable=durable)
    s.put_micron_state("t", "p", b"state", ttl_s=60)
    # 1 = NORMAL (WAL checkpoints flush the file), 0 = OFF
    assert s._read("PRAGMA synchronous", ()) == [(1 if durable else 0,)]
    assert ("not flushed to disk" in s.describe()) is not durable
    other = SqliteStore(path)                 # another process's connection reads it all the same
    assert other.get_micron_state("t", "p") == b"state"
    other.close()
    s.close()


def test_sqlite_ttl_is_honoured_and_expired_rows_are_swept(tmp_path):
    clock = FakeClock()
    s = SqliteStore(str(tmp_path / "state.db"), clock=clock)
    s.put_micron_state("t", "p", b"x", ttl_s=30)
    s.put_cards("t", {"c1": {"code": "I10"}}, ttl_s=30)
    clock.now += 29
    assert s.get_micron_state("t", "p") == b"x" and s.get_card("t", "c1") == {"code": "I10"}
    clock.now += 2
    assert s.get_micron_state("t", "p") is None and s.get_card("t", "c1") is None
    for i in range(500):                      # a sweep runs every 500 puts
        s.put_micron_state("t", f"q{i}", b"y", ttl_s=1)
    rows = s._read("SELECT count(*) FROM kv WHERE expires <= ?", (clock.now,))[0][0]
    assert rows == 0


def test_sqlite_keeps_the_most_recently_written_states_and_cards_within_caps(tmp_path, monkeypatch):
    from fhir_assist.store import sqlite_store

    monkeypatch.setattr(sqlite_store, "_SWEEP_EVERY", 1)       # a sweep after every put
    clock = FakeClock()
    s = SqliteStore(str(tmp_path / "state.db"), max_states=3, max_cards=4, clock=clock)
    assert s.claim_lease("write-back:e1", 600)
    for i in range(10):
        clock.now += 1
        s.put_cards("t", {f"c{i}": {"code": "I10"}})
    for name in ["p0", "p1", "p2", "p3", "p4", "p5", "p0"]:      # p0 written again: recent
        clock.now += 1
        s.put_micron_state("t", name, name.encode(), ttl_s=600)
    assert [i for i in range(10) if s.get_card("t", f"c{i}") is not None] == [6, 7, 8, 9]
    assert {n for n in ("p0", "p1", "p2", "p3", "p4", "p5") if s.get_micron_state("t", n)} == {"p0", "p4", "p5"}
    assert not s.claim_lease("write-back:e1", 600)             # leases (and token ids) are not capped
    assert s.claim_jti("https://ehr.example.org", "one", clock.now + 60)
    kinds = {kind for (kind,) in s._read("SELECT DISTINCT kind FROM kv", ())}
    assert kinds == set(sqlite_store.KINDS)                    # every kind the sweep knows of


def test_redis_keeps_the_cards_expiring_last_within_its_cap(redis_url, monkeypatch):
    import redis

    from fhir_assist.store import keys, redis_store

    monkeypatch.setattr(redis_store, "_TRIM_EVERY", 1)         # a trim after every put
    url = redis_url.rsplit("/", 1)[0] + "/7"                   # its own database: the card index is global
    with redis.Redis.from_url(url) as r:
        r.flushdb()
    s = RedisStore(url, max_cards=4)
    t = tenant()
    assert s.claim_lease("write-back:e1", 600)
    assert s.claim_jti("https://ehr.example.org", "one", time.time() + 600)
    s.put_micron_state(t, "p1", b"x", ttl_s=600)
    for i in range(10):
        s.put_cards(t, {f"c{i}": {"code": "I10"}}, ttl_s=100 + i)     # each expires after the one before
    assert [i for i in range(10) if s.get_card(t, f"c{i}") is not None] == [6, 7, 8, 9]
    s.put_cards(t, {"short": {"code": "R69"}}, ttl_s=1)
    time.sleep(1.2)
    s.put_cards(t, {"c10": {"code": "I10"}}, ttl_s=110)
    with redis.Redis.from_url(url) as r:
        index = {key.decode().rsplit(":", 1)[1] for key in r.zrange(keys.CARD_INDEX, 0, -1)}
        assert index == {"c7", "c8", "c9", "c10"}                # the expired one left the index too
        assert r.get(f"fhir-assist:{t}:micron:p1") == b"x"      # states, leases, token ids: not capped
    assert not s.claim_lease("write-back:e1", 600)
    assert not s.claim_jti("https://ehr.example.org", "one", time.time() + 600)


def _claim_in_child(path: str, what: str, out) -> None:
    s = SqliteStore(path)
    won = s.claim_jti("https://ehr.example.org", "one", time.time() + 60) if what == "jti" \
        else s.claim_lease("write-back:e1", 30)
    out.put(won)


@pytest.mark.parametrize("what", ["jti", "lease"])
def test_sqlite_claims_have_one_winner_across_processes(tmp_path, what):
    import multiprocessing

    path = str(tmp_path / "state.db")
    parent = SqliteStore(path)                 # opened before the processes start, as serve does
    parent.put_cards("t", {"c": {"code": "E11.9"}})
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_in_child, args=(path, what, out)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = [out.get(timeout=5) for _ in procs]
    assert results.count(True) == 1
    assert SqliteStore(path).get_card("t", "c") == {"code": "E11.9"}   # what one process wrote, all read
