"""Pausing Python's cyclic garbage collector while a cohort is read."""
from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def no_cyclic_gc():
    """Pause the cyclic garbage collector while reading.

    Ingest allocates millions of small, acyclic objects that all stay alive; the
    collector would re-scan them again and again (a third of the run time on a
    large export) without ever freeing one.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
