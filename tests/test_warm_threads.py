"""The pool `serve`'s processes answer on: the thread that finished last takes the next call."""
import threading
import time

import pytest

from fhir_assist.commands.warm_threads import LastIdleFirstPool


def _until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_the_thread_that_finished_last_takes_the_next_call():
    pool = LastIdleFirstPool(4)
    release, started = {name: threading.Event() for name in "abc"}, []

    def held(name):
        started.append(name)
        release[name].wait(5)
        return threading.get_ident()

    futures = {name: pool.submit(held, name) for name in "abc"}
    _until(lambda: len(started) == 3)            # three calls at once: three threads
    idents = {}
    for name in "bca":            # a finishes last
        release[name].set()
        idents[name] = futures[name].result(5)
        _until(lambda: pool.idle == "bca".index(name) + 1)
    assert len(set(idents.values())) == 3
    for _ in range(20):           # sequential calls stay on that one thread; no thread is added
        assert pool.submit(threading.get_ident).result(5) == idents["a"]
        _until(lambda: pool.idle == 3)
    assert pool.threads == 3
    pool.shutdown()


def test_calls_run_at_once_up_to_the_thread_count_then_wait_in_order():
    pool = LastIdleFirstPool(2)
    gate, started = threading.Event(), []

    def held(name):
        started.append(name)
        gate.wait(5)

    futures = [pool.submit(held, name) for name in ("x", "y", "z")]
    _until(lambda: len(started) == 2)
    time.sleep(0.05)
    assert sorted(started) == ["x", "y"] and pool.threads == 2      # z waits for a thread
    gate.set()
    for future in futures:
        future.result(5)
    assert started[2] == "z"
    pool.shutdown()

    one, ran = LastIdleFirstPool(1), []
    gate.clear()
    futures = [one.submit(gate.wait, 5)] + [one.submit(ran.append, n) for n in range(5)]
    gate.set()
    for future in futures:
        future.result(5)
    assert ran == list(range(5))
    one.shutdown()


def test_a_failing_call_reaches_its_caller_and_the_thread_goes_on():
    pool = LastIdleFirstPool(1)

    def fail():
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        pool.submit(fail).result(5)
    assert pool.submit(lambda: 2 + 2).result(5) == 4
    pool.shutdown()


def test_shutdown_runs_the_waiting_calls_stops_the_threads_and_refuses_new_calls():
    pool = LastIdleFirstPool(1, name="stopping")
    gate, done = threading.Event(), []
    first = pool.submit(gate.wait, 5)
    waiting = pool.submit(done.append, "ran")
    threading.Timer(0.05, gate.set).start()
    pool.shutdown(wait=True)
    assert first.result(0) is True and waiting.done() and done == ["ran"]
    assert not [t for t in threading.enumerate() if t.name.startswith("stopping-")]
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(print)


def test_shutdown_can_cancel_the_waiting_calls():
    pool = LastIdleFirstPool(1)
    began, gate = threading.Event(), threading.Event()

    def held():
        began.set()
        return gate.wait(5)

    first = pool.submit(held)
    waiting = pool.submit(lambda: "ran")
    _until(began.is_set)
    pool.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert first.result(5) is True and waiting.cancelled()


def test_a_pool_needs_a_thread():
    with pytest.raises(ValueError):
        LastIdleFirstPool(0)


def test_unfinished_counts_the_calls_running_or_waiting_until_each_returns():
    pool = LastIdleFirstPool(2)
    release = threading.Event()
    seen_by_callback = []
    held = [pool.submit(release.wait, 5) for _ in range(3)]       # two run, one waits for a thread
    assert pool.unfinished == 3
    held[0].add_done_callback(lambda f: seen_by_callback.append(pool.unfinished))
    release.set()
    for future in held:
        future.result(5)
    # counted out before the future resolved: its callback already saw it done
    assert seen_by_callback and seen_by_callback[0] <= 2
    _until(lambda: pool.unfinished == 0)
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(5)
    _until(lambda: pool.unfinished == 0)          # a call that raised is finished too
    blocker = threading.Event()
    running = pool.submit(blocker.wait, 5)
    pool.submit(blocker.wait, 5)
    queued = pool.submit(blocker.wait, 5)
    assert queued.cancel() and pool.unfinished == 3
    blocker.set()
    running.result(5)
    _until(lambda: pool.unfinished == 0)          # the cancelled call left without running
    pool.shutdown()
