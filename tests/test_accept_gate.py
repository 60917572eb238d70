"""Which server process takes the next connection, and which connection it keeps alive: the load
board as real forked processes share it, the keep-alive decision on a real pool and a real parsed
request, and a real two-process server leaving new connections to the process answering nothing."""
from __future__ import annotations

import http.client
import multiprocessing
import os
import socket
import threading
import time
from types import SimpleNamespace

import psutil

from fhir_assist.commands.accept_gate import LoadBoard
from fhir_assist.commands.server_processes import connection_policy
from fhir_assist.commands.warm_threads import LastIdleFirstPool
from tests.conftest import _stop_process, free_port
from tests.test_serve_processes import CODING, _serve, _wait_ready

FORK = multiprocessing.get_context("fork")


class OtherProcess:
    """A forked process on `board` that publishes the load it is told and reports what it reads."""

    def __init__(self, board: LoadBoard) -> None:
        self._orders, orders = FORK.Pipe()
        self.process = FORK.Process(target=self._run, args=(board, orders), daemon=True)
        self.process.start()
        assert self._ask(("join", None)) is True

    @staticmethod
    def _run(board: LoadBoard, orders) -> None:
        while True:
            what, value = orders.recv()
            if what == "join":
                orders.send(board.join(os.getpid()))
            elif what == "publish":
                board.publish(value)
                orders.send(None)
            elif what == "read":
                orders.send(board.lightest_other())
            else:
                return

    def _ask(self, order):
        self._orders.send(order)
        assert self._orders.poll(30), "the other process did not answer"
        return self._orders.recv()

    def publish(self, load: int) -> None:
        self._ask(("publish", load))

    def lightest_other(self):
        return self._ask(("read", None))

    def stop(self) -> None:
        self._orders.send(("stop", None))
        self.process.join(30)


def test_processes_read_each_others_loads_on_the_board():
    board = LoadBoard(4)
    other = OtherProcess(board)
    try:
        other.publish(3)
        assert board.lightest_other() is None and board.least_loaded(7)    # not joined yet: alone
        assert board.join(os.getpid())
        assert board.lightest_other() == 3
        assert board.least_loaded(3) and not board.least_loaded(4)        # ties listen too
        assert board.least_loaded(0)                                      # idle: always listens
        assert other.lightest_other() == 0                                # what this one published last
        assert not board.overloaded(4) and board.overloaded(5)            # more than one call more
        other.publish(0)
        assert board.least_loaded(0) and not board.least_loaded(1)
        assert not board.overloaded(1) and board.overloaded(2)
        board.publish(2)
        assert other.lightest_other() == 2
        board.leave(other.process.pid)                                    # the master clears an exited one
        assert board.lightest_other() is None and board.least_loaded(9) and not board.overloaded(9)
    finally:
        other.stop()


def test_a_process_without_a_free_slot_listens_as_if_alone():
    board = LoadBoard(1)
    other = OtherProcess(board)
    try:
        other.publish(0)
        assert board.join(os.getpid()) is False
        assert board.least_loaded(5) and not board.overloaded(5)
    finally:
        other.stop()


def _parsed_request(head: bytes):
    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    return next(RequestParser(Config(), iter([head]), ("127.0.0.1", 1)))


def test_a_connection_is_kept_unless_its_process_answers_more_than_one_call_more_than_another():
    board = LoadBoard(2)
    other = OtherProcess(board)
    assert board.join(os.getpid())
    decide = connection_policy(max_body_bytes=1024, board=board)
    pool, release = LastIdleFirstPool(4), threading.Event()
    worker = SimpleNamespace(tpool=pool)
    head = b"POST /cds-services/x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"

    def verdict(head=head):
        req = _parsed_request(head)
        decide(worker, req)        # as gunicorn calls it: on a pool thread, for the call being answered
        return req.should_close()

    try:
        other.publish(0)
        assert pool.submit(verdict).result(5) is False                # one call here, none there: kept
        pool.submit(release.wait, 5)                                   # two here, none there
        assert pool.submit(verdict).result(5) is True
        other.publish(1)                                               # two here, one there
        assert pool.submit(verdict).result(5) is False
        release.set()
        too_large = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\n\r\n"
        assert pool.submit(verdict, too_large).result(5) is True       # a body over the limit: closed
    finally:
        release.set()
        pool.shutdown()
        other.stop()


def _owner(workers: list[psutil.Process], client_address) -> int | None:
    """The pid of the worker holding the server side of the connection from `client_address`."""
    for worker in workers:
        for connection in worker.net_connections(kind="tcp"):
            if connection.raddr and tuple(connection.raddr) == tuple(client_address):
                return worker.pid
    return None


def _wait_owner(workers, client_address, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while (pid := _owner(workers, client_address)) is None:
        assert time.monotonic() < deadline, "no worker took the connection"
        time.sleep(0.01)
    return pid


def _answering_workers(proc, port: int, count: int = 2, tries: int = 100) -> list[psutil.Process]:
    """The server's worker processes, once each has answered a call (ready means one has)."""
    deadline = time.monotonic() + 60
    while len(workers := psutil.Process(proc.pid).children()) < count:
        assert time.monotonic() < deadline, workers
        time.sleep(0.1)
    seen, held = set(), []
    try:
        for _ in range(tries):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            held.append(conn)
            seen.add(_wait_owner(workers, conn.sock.getsockname()))
            if len(seen) == count:
                return workers
    finally:
        for conn in held:
            conn.close()
    raise AssertionError(f"only {seen} of {workers} answered")


def test_a_process_answering_a_call_leaves_new_connections_to_the_idle_one(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    proc = _serve(["--port", str(port), "--workers", "2"], log)
    base = f"http://127.0.0.1:{port}"
    stalled, quick = None, []
    try:
        _wait_ready(proc, base, log)
        workers = _answering_workers(proc, port)
        # A call whose body never finishes arriving: its process answers it until the test ends.
        stalled = socket.create_connection(("127.0.0.1", port), timeout=30)
        stalled.sendall(f"POST /cds-services/{CODING} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                        "Content-Length: 100000\r\n\r\n{".encode())
        busy = _wait_owner(workers, stalled.getsockname())
        # Its event loop looks at the board after each of its own events and at least once a second
        # (the other process may still have been closing the connections above when it last did).
        time.sleep(1.5)
        owners = []
        for _ in range(8):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            owners.append(_wait_owner(workers, conn.sock.getsockname()))   # kept alive: still held
            quick.append(conn)
        # Left to chance, eight new connections would all miss the busy process once in 256 runs.
        assert busy not in owners, (busy, owners)
    finally:
        for conn in quick:
            conn.close()
        if stalled is not None:
            stalled.close()
        _stop_process(proc, timeout=30)
