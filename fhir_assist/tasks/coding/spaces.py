"""The label and feature spaces of the coding task: which tensor column is which label or
input, for structured inputs and for note tokens."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from fhir_assist.fhir.tokens import canonical_tokens
from fhir_assist.tasks.coding.encounters import NOTE_BUCKETS, Encounter, input_stratum
from fhir_assist.tasks.coding.ontology import HEADS, ICD_LEVELS
from fhir_assist.tasks.coding.settings import RankerSettings


class LabelSpace:
    """The label columns: one block per head, tokens sorted within a head."""

    def __init__(self, tokens: dict[str, list[str]]):
        self.heads = [h for h in HEADS if h in tokens]
        self.tokens = {h: list(tokens[h]) for h in self.heads}
        self.index = {h: {t: i for i, t in enumerate(self.tokens[h])} for h in self.heads}
        self.offsets, start = {}, 0
        for h in self.heads:
            self.offsets[h] = start
            start += len(self.tokens[h])
        self.size = start

    @classmethod
    def build(cls, encounters: Iterable[Encounter]) -> "LabelSpace":
        seen: dict[str, set[str]] = {h: set() for h in HEADS}
        for enc in encounters:
            for head, toks in enc.labels.items():
                seen[head].update(toks)
        return cls({h: sorted(seen[h]) for h in HEADS})

    @property
    def sizes(self) -> list[int]:
        return [len(self.tokens[h]) for h in self.heads]

    def slices(self) -> dict[str, slice]:
        return {h: slice(self.offsets[h], self.offsets[h] + len(self.tokens[h])) for h in self.heads}

    def column(self, head: str, token: str) -> int | None:
        i = self.index.get(head, {}).get(token)
        return None if i is None else self.offsets[head] + i

    def token_of(self, column: int) -> tuple[str, str]:
        for h in self.heads:
            off = self.offsets[h]
            if off <= column < off + len(self.tokens[h]):
                return h, self.tokens[h][column - off]
        raise IndexError(column)

    def vocabularies(self) -> dict[str, dict]:
        return {f"labels-{h}": {"tokens": self.tokens[h]} for h in self.heads}

    @classmethod
    def from_vocabularies(cls, vocabularies: dict[str, dict]) -> "LabelSpace":
        # canonical_tokens: artifacts saved with "icd10|E11.65" labels load as "icd10:E11.65"
        return cls({h: canonical_tokens(vocabularies[f"labels-{h}"]["tokens"]) for h in HEADS
                    if f"labels-{h}" in vocabularies})

    def encode(self, encounters: Sequence[Encounter], stats: Counter | None = None) -> torch.Tensor:
        y = torch.zeros(len(encounters), self.size, dtype=torch.uint8)
        for row, enc in enumerate(encounters):
            for head, toks in enc.labels.items():
                for tok in toks:
                    col = self.column(head, tok)
                    if col is None:
                        if stats is not None:
                            stats[f"labels not in the model ({head})"] += 1
                    else:
                        y[row, col] = 1
        return y

    def feedback_edits(self, encounters: Sequence[Encounter]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, cols, weights = [], [], []
        for row, enc in enumerate(encounters):
            for head, toks in enc.feedback.items():
                for tok, w in toks.items():
                    col = self.column(head, tok)
                    if col is not None:
                        rows.append(row), cols.append(col), weights.append(w)
        return (torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long),
                torch.tensor(weights, dtype=torch.float32))


class FeatureSpace:
    """Structured inputs: medications ‖ procedures ‖ earlier visits' codes (recency
    weights) ‖ the visit's context tokens ‖ the active problem list (multi-hot) ‖
    [age/90, female, male, age missing].

    The record blocks are absent from artifacts trained before they existed
    (`previous` / `context` / `problems` None): those keep their input layout."""

    EXTRA = 4
    RECORD_BLOCKS = (("history", "history-codes"), ("context", "visit-context"), ("problem", "problem-list"))

    def __init__(self, medications, procedures, previous=None, context=None, problems=None):
        self.medications = medications      # encode.Vocabulary
        self.procedures = procedures
        self.previous = previous            # billing tokens of earlier visits, or None
        self.context = context              # class / service / stay / gap / reason tokens, or None
        self.problems = problems            # billing tokens of active problems, or None
        self.blocks = [("medication", medications), ("procedure", procedures)]
        self.blocks += [(kind, vocab) for kind, vocab in (("history", previous), ("context", context),
                                                          ("problem", problems)) if vocab is not None]

    @classmethod
    def build(cls, encounters: Sequence[Encounter], min_count: int = RankerSettings.min_count,
              history: bool = RankerSettings.history) -> "FeatureSpace":
        from fhir_assist.adapter.encode import Vocabulary

        def vocab(rows):
            return Vocabulary.build(rows, min_count=min_count)
        if not history:
            return cls(vocab([e.medications for e in encounters]), vocab([e.procedures for e in encounters]))
        # a cohort without a problem list (inpatient exports) gets no problem block at all
        problems = vocab([e.problems for e in encounters]) if any(e.problems for e in encounters) else None
        return cls(vocab([e.medications for e in encounters]), vocab([e.procedures for e in encounters]),
                   vocab([sorted(e.previous) for e in encounters]), vocab([e.context for e in encounters]),
                   problems)

    @property
    def size(self) -> int:
        return sum(len(vocab) for _, vocab in self.blocks) + self.EXTRA

    def vocabularies(self) -> dict[str, Any]:
        out = {"medications": self.medications.to_dict(), "procedures": self.procedures.to_dict()}
        for kind, key in self.RECORD_BLOCKS:
            vocab = dict(self.blocks).get(kind)
            if vocab is not None:
                out[key] = vocab.to_dict()
        return out

    @classmethod
    def from_vocabularies(cls, vocabularies: dict[str, dict]) -> "FeatureSpace":
        from fhir_assist.adapter.encode import Vocabulary

        record = [Vocabulary.from_dict(vocabularies[k]) if k in vocabularies else None
                  for _, k in cls.RECORD_BLOCKS]
        return cls(Vocabulary.from_dict(vocabularies["medications"]),
                   Vocabulary.from_dict(vocabularies["procedures"]), *record)

    def encode_one(self, meds, procs, age, sex, stats: Counter | None = None, previous=None,
                   context=(), problems=()) -> torch.Tensor:
        """One visit's input row; `previous` {billing token: weight}, `context` and
        `problems` tokens."""
        values = {"medication": {m: 1.0 for m in meds}, "procedure": {p: 1.0 for p in procs},
                  "history": dict(previous or {}), "context": {c: 1.0 for c in context},
                  "problem": {p: 1.0 for p in problems}}
        cells: dict[int, float] = {}     # column → value, set in one tensor operation below
        offset = 0
        for kind, vocab in self.blocks:
            for tok, weight in values[kind].items():
                i = vocab.index(tok)
                if i == 0:     # out of vocabulary: weak record tokens are simply left out
                    if kind in ("medication", "procedure") and stats is not None:
                        stats[f"{kind}s unknown to the model"] += 1
                    if kind in ("history", "context", "problem"):
                        continue
                cells[offset + i] = max(cells.get(offset + i, 0.0), weight)
            offset += len(vocab)
        if age is None:
            cells[offset + 3] = 1.0
        else:
            cells[offset] = min(max(float(age), 0.0), 90.0) / 90.0
        sex = (sex or "").lower()
        cells[offset + 1] = 1.0 if sex == "female" else 0.0
        cells[offset + 2] = 1.0 if sex == "male" else 0.0
        x = np.zeros(self.size, dtype=np.float32)     # numpy: a tenth of torch's cost for one row
        x[list(cells)] = list(cells.values())
        return torch.from_numpy(x)

    def encode(self, encounters: Sequence[Encounter], stats: Counter | None = None) -> torch.Tensor:
        if not encounters:
            return torch.zeros(0, self.size)
        return torch.stack([self.encode_one(e.medications, e.procedures, e.age, e.sex, stats,
                                            e.previous, e.context, e.problems) for e in encounters])

    COPY_SOURCES = ("history", "problem")

    def copy_pairs(self, labels: "LabelSpace") -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per record source (earlier visits' codes, the problem list; empty when the space has
        no such block): (input columns, label columns) pairing each code in the record with
        the same code's label at every level, for the ranker's copy path."""
        from fhir_assist.tasks.coding.ontology import code_labels, parse_label

        out, offset, offsets = [], 0, {}
        for kind, vocab in self.blocks:
            offsets[kind] = offset
            offset += len(vocab)
        for source in self.COPY_SOURCES:
            vocab, inputs, columns = dict(self.blocks).get(source), [], []
            for i, token in enumerate(vocab.tokens if vocab is not None else ()):
                system, code = parse_label(token)
                for head, label in ((code_labels(system, code) or {}).items() if system else ()):
                    column = labels.column(head, label)
                    if column is not None and i > 0:     # index 0: out of vocabulary
                        inputs.append(offsets[source] + i)
                        columns.append(column)
            out.append((torch.tensor(inputs, dtype=torch.long), torch.tensor(columns, dtype=torch.long)))
        return out

    def feature_label(self, column: int) -> tuple[str, str]:
        """(kind, token) of an input column: ("medication", rxcui) | ("procedure", token) |
        ("history", billing token) | ("context", token) | ("problem", billing token) |
        ("demographic", …)."""
        offset = 0
        for kind, vocab in self.blocks:
            if column < offset + len(vocab):
                return kind, vocab.tokens[column - offset]
            offset += len(vocab)
        return "demographic", ("age", "female", "male", "age unknown")[column - offset]


def note_ids(vocab, tokens: list[str], max_len: int) -> list[int]:
    """Vocabulary indices shifted by one: 0 is padding in the text coder, 1 out-of-vocabulary."""
    return [i + 1 for i in vocab.encode(tokens[:max_len])]


def bag_of_words(sequences: list[list[int]], size: int) -> torch.Tensor:
    """Binary bag of words over the `size` most frequent note tokens (the vocabulary is
    ordered by frequency, so that is ids 2 … size + 1), for the logistic baseline."""
    x = torch.zeros(len(sequences), size)
    for row, seq in enumerate(sequences):
        ids = [i - 2 for i in seq if 2 <= i < size + 2]
        if ids:
            x[row, torch.as_tensor(ids)] = 1.0
    return x


def text_strata(sequences: list[list[int]]) -> list[int]:
    return [input_stratum(len(s), NOTE_BUCKETS) for s in sequences]


def split_icd_ccs(labels: LabelSpace) -> tuple[slice, slice]:
    sl = labels.slices()
    icd = slice(sl[ICD_LEVELS[0]].start, sl[ICD_LEVELS[-1]].stop)
    return icd, sl.get("ccs", slice(icd.stop, icd.stop))
