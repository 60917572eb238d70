"""Coder / clinician feedback labels (`fhir-assist feedback export` JSON Lines): the latest
word on a code for an encounter wins; confirmed codes are added to its labels, refuted
ones left out, and both weigh FEEDBACK_WEIGHT in the loss."""
from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

from fhir_assist.tasks.coding.ontology import SHORT_OF_SYSTEM, code_labels, hierarchy
from fhir_assist.tasks.errors import TaskError

log = logging.getLogger(__name__)

FEEDBACK_WEIGHT = 3.0                        # loss weight of a coder-reviewed label


class Feedback:
    """Coder / clinician feedback labels (`fhir-assist feedback export` JSON Lines)."""

    def __init__(self):
        self.by_encounter: dict[tuple[str, str], dict[tuple[str, str], int]] = defaultdict(dict)
        self.stats: Counter = Counter()

    @classmethod
    def read(cls, path: str | Path) -> "Feedback":
        from mappings import codesystems

        fb = cls()
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise TaskError(f"cannot read feedback file {path}: {exc}") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                patient, encounter = str(item["patient"]), str(item["encounter"])
                label = int(item["label"])
                if label not in (0, 1):
                    raise ValueError("label must be 0 or 1")
                system = codesystems.canonical_system(item.get("system"))
                if system not in SHORT_OF_SYSTEM:
                    system = codesystems.detect_icd_system(str(item["code"]))
                if system not in SHORT_OF_SYSTEM:
                    fb.stats["feedback on non-ICD codes (skipped)"] += 1
                    continue
                code = hierarchy(system).normalize(str(item["code"]))
                if code is None:
                    fb.stats["feedback with invalid ICD codes (skipped)"] += 1
                    continue
            except (ValueError, KeyError, TypeError) as exc:
                fb.stats["unreadable feedback lines (skipped)"] += 1
                log.debug("%s:%d: %s", path, number, exc)
                continue
            # the latest word on a code for an encounter wins
            fb.by_encounter[(patient, encounter)][(system, code)] = label
            fb.stats["feedback labels"] += 1
        return fb

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_encounter.values())

    def for_encounter(self, key) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        items = self.by_encounter.get(key, {})
        return ([k for k, v in items.items() if v == 1], [k for k, v in items.items() if v == 0])

    def weights_for(self, key) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for (system, code), _label in self.by_encounter.get(key, {}).items():
            for head, token in (code_labels(system, code) or {}).items():
                out[head][token] = FEEDBACK_WEIGHT
        return dict(out)

