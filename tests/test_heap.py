"""The heap is handed back to the OS after large requests only."""
import ctypes.util

from fhir_assist.cds import heap


def test_trims_after_a_large_body_only():
    assert heap.release_freed_heap(None) is False
    assert heap.release_freed_heap(heap.LARGE_BODY_BYTES - 1) is False
    glibc = ctypes.util.find_library("c") is not None and hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "malloc_trim")
    assert heap.release_freed_heap(heap.LARGE_BODY_BYTES) is glibc


def test_a_large_call_is_answered_and_trimmed(monkeypatch):
    from fhir_assist.cds import create_app
    from fhir_assist.config import Settings

    seen = []
    monkeypatch.setattr("fhir_assist.cds.http.release_freed_heap", lambda n: seen.append(n))
    app = create_app(Settings(no_auth=True, evidence=False, write_back=False))
    padding = b" " * heap.LARGE_BODY_BYTES
    answer = app.test_client().post("/cds-services/coding-suggestions-encounter-discharge",
                                    data=b'{"hook": "encounter-discharge"}' + padding, content_type="application/json")
    assert answer.status_code == 400
    assert seen and seen[-1] == len(padding) + 31
