"""Which server process takes the next connection: one answering no more calls than any other.

Every process listens on the same socket, and left alone a new connection goes to whichever
process's event loop wakes first, however many calls it is answering. Clients that call in turn
(an EHR's few connections, a load generator's) then pile up on one process now and then while
another runs dry: at 10 clients on 2 processes, 8% of the machine stood idle with calls waiting.

Here each process writes how many calls it is answering into a small array shared by all of
them (made before the fork), and listens only while no other process answers fewer: a new
connection waits in the kernel's backlog until a least loaded process takes it ("join the
shortest queue"). A process decides again whenever a call of its own starts or ends, and at least
once a second. A process answering nothing always listens, so a slot left stale by a process that
died without being cleared can slow the others, never stop them.
"""
from __future__ import annotations

import multiprocessing


class LoadBoard:
    """Per-process counts of unfinished calls, in memory shared by the server's processes:
    one slot per process, claimed after the fork and cleared by the master when it exits."""

    def __init__(self, slots: int) -> None:
        self._pids = multiprocessing.RawArray("q", slots)
        self._loads = multiprocessing.RawArray("q", slots)
        self._lock = multiprocessing.Lock()
        self._slot: int | None = None

    def join(self, pid: int) -> bool:
        """Claim a free slot for the process `pid` (after the fork); False when none is free
        (the process then listens as if alone)."""
        with self._lock:
            for slot, holder in enumerate(self._pids):
                if holder == 0:
                    self._pids[slot], self._loads[slot] = pid, 0
                    self._slot = slot
                    return True
        return False

    def leave(self, pid: int) -> None:
        """Free the slot of a process that exited (run by the master)."""
        with self._lock:
            for slot, holder in enumerate(self._pids):
                if holder == pid:
                    self._pids[slot], self._loads[slot] = 0, 0

    def publish(self, load: int) -> None:
        """This process's count of unfinished calls, for the others to read."""
        if self._slot is not None:
            self._loads[self._slot] = load

    def lightest_other(self) -> int | None:
        """The fewest calls another live process is answering; None when there is none."""
        pids, loads, mine = self._pids, self._loads, self._slot
        others = [loads[slot] for slot in range(len(pids)) if slot != mine and pids[slot]]
        return min(others) if others and mine is not None else None

    def least_loaded(self, load: int) -> bool:
        """Publish `load`; True when this process answers nothing or no other answers fewer."""
        self.publish(load)
        if load == 0:
            return True
        other = self.lightest_other()
        return other is None or load <= other

    def overloaded(self, load: int) -> bool:
        """True when this process answers more than one call more than another process: a
        connection it answers should then go back to the queue the least loaded one takes."""
        other = self.lightest_other()
        return other is not None and load > other + 1


def gated_accepts(worker_class, board: LoadBoard):
    """`worker_class` (gunicorn's threaded worker with a pool that counts its unfinished calls)
    listening for new connections only while `board` says it is least loaded. The gate is set
    before each wait of the worker's event loop, which wakes whenever a call starts or ends."""

    class GatedWorker(worker_class):
        _least_loaded = True

        def set_accept_enabled(self, enabled):
            super().set_accept_enabled(enabled and self._least_loaded)

        def wait_for_and_dispatch_events(self, timeout):
            if self.alive:          # (stopping: gunicorn has stopped accepting for good)
                self._least_loaded = board.least_loaded(self.tpool.unfinished)
                self.set_accept_enabled(self.nr_conns < self.worker_connections)
            super().wait_for_and_dispatch_events(timeout)

    GatedWorker.__name__ = GatedWorker.__qualname__ = f"Gated{worker_class.__name__}"
    return GatedWorker
