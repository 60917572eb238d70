"""Reading NDJSON with the fast parser loses no line the standard library would read."""
from fhir_assist.adapter.files import iter_resources
from fhir_assist.adapter.report import IngestReport


def test_lines_only_the_standard_library_reads_are_still_read(tmp_path):
    lines = [
        b'{"resourceType": "Patient", "id": "p1", "gender": "female"}',
        # A lone surrogate escape: valid JSON text, refused by the fast parser.
        b'{"resourceType": "Patient", "id": "p2", "name": [{"text": "A\\ud800B"}]}',
        # NaN is not JSON, but some exporters write it and we have always read it.
        b'{"resourceType": "Observation", "id": "o1", "status": "final", "valueQuantity": {"value": NaN}}',
        b'{"resourceType": "Patient", "id": ',
    ]
    (tmp_path / "Patient.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    report = IngestReport()
    ids = [r["id"] for r in iter_resources(tmp_path, report=report)]
    assert ids == ["p1", "p2", "o1"]
    assert sum(report.skipped.values()) == 1
