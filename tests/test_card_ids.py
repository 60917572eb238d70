"""Card, suggestion and draft-order ids: random version-4 UUIDs in their usual text form."""
import uuid

from fhir_assist.cds import cards


def test_ids_are_version_4_uuids_written_as_uuid_writes_them():
    seen = set()
    for _ in range(2000):
        text = cards.new_uuid()
        parsed = uuid.UUID(text)
        assert str(parsed) == text                       # lower-case, 8-4-4-4-12
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 2000


def test_every_card_and_suggestion_gets_its_own_id():
    source = {"label": "test"}
    card = cards.card("summary", indicator="info", source=source,
                      suggestions=[cards.suggestion(f"s{i}", []) for i in range(3)])
    ids = [card["uuid"]] + [s["uuid"] for s in card["suggestions"]]
    assert len(set(ids)) == 4 and all(uuid.UUID(i).version == 4 for i in ids)
