"""How `fhir-assist serve` runs the app: how many processes, how many torch threads each.

A coding call is CPU work under the GIL (parsing, timelines, the models), so one process
uses about one core whatever its thread count. Several processes need the state they
share (MICRON state, the card ledger behind feedback, JWT replay ids, pending worklist
decisions and write-backs, leases): in Redis when --redis-url is given, else in one SQLite
file on local disk (`store.SqliteStore`; a temporary one unless FHIR_ASSIST_STATE_FILE names
it). Either way the automatic choice is one process per usable core; one process without
Redis keeps its state in process, as before.

Several processes run under gunicorn: the app (models included) is built once in the
master and forked, so the weights are shared copy-on-write, and each worker gets
`cores // workers` torch threads (at least one) so that the workers do not fight over
the cores inside the model calls. Each answers on a pool of threads (a call waiting on a
FHIR server holds up no other) whose most recently idle thread takes the next call
(`warm_threads`). Their metrics go to files in one directory that /metrics adds up, so a
scrape sees the whole server, not the one process that answered.

A new connection goes to a process answering no more calls than any other (`accept_gate`:
the others stop listening until they are), and is kept alive after its call unless its process
answers more than one call more than another: clients calling in turn keep their connections,
without a new TCP handshake and accept per call, and when the calls pile up on one process the
connections it closes go back to the queue the least loaded process takes from.

gunicorn has no request-body limit of its own: the app answers 413 from the declared
Content-Length without reading the body (Flask's MAX_CONTENT_LENGTH), and `connection_policy`
closes such a connection once answered, so the worker never reads (and discards) the rest of a
body it refused to keep the connection alive.
"""
from __future__ import annotations

import glob
import logging
import math
import os
import sys
import tempfile

log = logging.getLogger("fhir_assist.serve")


def usable_cores(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container's CPU limit, which the affinity mask does not show)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:      # not on Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = open(cpu_max).read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def choose_workers(settings, cores: int | None = None) -> int:
    """Processes to run: `settings.workers` when given, else (0) one per usable core; one
    where a model runs on a GPU (`suggest.placement`: a CUDA context does not survive fork).
    PlacementError for a CUDA device this machine lacks, or several processes with one."""
    from fhir_assist.suggest.model_set import models_directory
    from fhir_assist.suggest.placement import process_count

    return process_count(settings.workers, settings.device, models_directory(settings.models_dir),
                         cores or usable_cores())


def shared_state_file(settings) -> tuple[object, str | None]:
    """Settings whose store several processes can share: unchanged with Redis or a state
    file, else with a state file in a new temporary directory (returned for removal at exit).
    That file is removed at exit, so it is not flushed to disk: the flushes at SQLite's
    checkpoints cost a tenth of the medication calls served at 10 clients."""
    if settings.redis_url or settings.state_file:
        return settings, None
    folder = tempfile.mkdtemp(prefix="fhir-assist-state-")
    return settings.with_(state_file=os.path.join(folder, "state.db"), state_file_durable=False), folder


def torch_threads_per_worker(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or usable_cores()) // max(1, workers))


def set_compute_threads(n: int) -> None:
    """torch's threads for a process's model calls; numpy's products (one row each) on one."""
    import torch

    from model_zoo.row_inference import single_thread_blas

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    single_thread_blas()


def freeze_startup_objects() -> None:
    """Move every object alive now (the models, vocabularies, the app) out of the cyclic
    garbage collector's reach. They live as long as the process, so collecting them never
    frees anything; a full collection still walks them all, and in a forked worker its
    writes to their headers copy every page the master shares (measured: a tenth of a
    coding call's CPU in gunicorn workers went to collections and those page copies)."""
    import gc

    gc.collect()
    gc.freeze()


def declared_body_too_large(headers, max_body_bytes: int) -> bool:
    """True when a request's headers ((NAME, value) pairs, as gunicorn keeps them) announce a
    body over `max_body_bytes`, or a chunked one (its size is unknown until read)."""
    for name, value in headers:
        name = name.upper()
        if name == "CONTENT-LENGTH":
            value = value.strip()
            if not value.isdigit() or int(value) > max_body_bytes:
                return True
        elif name == "TRANSFER-ENCODING" and "chunked" in value.lower():
            return True
    return False


# Seconds a kept-alive connection waits for its next call (it holds no thread meanwhile).
KEEPALIVE_S = 5


def connection_policy(max_body_bytes: int, board):
    """gunicorn's pre_request hook: answer, then close, a connection whose body is over the
    limit, or whose process answers more calls than another process by more than one (its
    `LastIdleFirstPool` counts them, this call included; the others' counts are on the
    `accept_gate.LoadBoard`); otherwise keep it alive."""

    def pre_request(worker, req) -> None:
        if board.overloaded(worker.tpool.unfinished) or declared_body_too_large(req.headers, max_body_bytes):
            req.must_close = True

    return pre_request


METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_between_processes() -> str | None:
    """Make every process write its metrics to one directory: the operator's
    PROMETHEUS_MULTIPROC_DIR (emptied, as values left by an earlier run would be added in),
    else a new temporary one, whose path is returned for removal at exit. Must run before
    the metrics library is imported: it picks its storage on import."""
    if "prometheus_client" in sys.modules:
        log.warning("metrics were set up before the server processes: /metrics shows one process only")
        return None
    path = os.environ.get(METRICS_DIR_VARIABLE)
    if path:
        os.makedirs(path, exist_ok=True)
        for stale in glob.glob(os.path.join(path, "*.db")):
            os.remove(stale)
        return None
    path = tempfile.mkdtemp(prefix="fhir-assist-metrics-")
    os.environ[METRICS_DIR_VARIABLE] = path
    return path


def _forget_worker_metrics(server, worker) -> None:
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def heartbeat_directory(candidates=("/dev/shm",)) -> str | None:
    """Where gunicorn's workers touch their heartbeat file (once per loop of each worker): a
    memory-backed directory when the machine has one, since on a disk-backed one the touch can
    block the worker (gunicorn's own note on `worker_tmp_dir`); None: the default temporary one."""
    for path in candidates:
        if os.path.isdir(path) and os.access(path, os.W_OK):
            return path
    return None


def warm_thread_worker():
    """gunicorn's threaded worker answering on a `warm_threads.LastIdleFirstPool`: at low load a
    process keeps answering on the thread that finished last instead of waking each in turn."""
    from gunicorn.workers.gthread import ThreadWorker

    from .warm_threads import LastIdleFirstPool

    class WarmThreadWorker(ThreadWorker):
        def get_thread_pool(self):
            return LastIdleFirstPool(self.cfg.threads, name="serve")

    return WarmThreadWorker


def run_gunicorn(app, *, host: str, port: int, workers: int, threads: int, torch_threads: int,
                 max_body_bytes: int, on_ready=None) -> None:
    """Serve `app` (already built: forked, not rebuilt, in every worker) until stopped;
    `on_ready()` runs once the port is listening."""
    from gunicorn.app.base import BaseApplication

    from .accept_gate import LoadBoard, gated_accepts

    board = LoadBoard(2 * workers)    # room for replacements started before the master clears a slot

    def post_fork(server, worker) -> None:
        set_compute_threads(torch_threads)
        board.join(worker.pid)

    def child_exit(server, worker) -> None:
        board.leave(worker.pid)
        _forget_worker_metrics(server, worker)

    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": gated_accepts(warm_thread_worker(), board),
        "threads": threads,
        "preload_app": True,
        "timeout": 120,              # a worker stuck this long in one call is restarted
        "graceful_timeout": 20,
        # Kept alive unless the process answers more than one call more than another
        # (`connection_policy`): a kept-alive connection stays with the process that accepted it, so
        # clients kept alive regardless could load one process while the other idled (measured: 10
        # clients on 2 processes, 3.4 against 0.9 CPU-seconds; p99 at 50 calls/s 125 ms against 20 ms
        # with one call per connection).
        "keepalive": KEEPALIVE_S,
        "worker_tmp_dir": heartbeat_directory(),
        "post_fork": post_fork,
        "pre_request": connection_policy(max_body_bytes, board),
        "child_exit": child_exit,
        "loglevel": "warning",
        "when_ready": lambda server: on_ready() if on_ready else None,
    }

    class _Server(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    _Server().run()
