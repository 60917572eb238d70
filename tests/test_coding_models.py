"""The two coding models behind one protocol, loaded from the bundled artifacts: the same
questions (scores, one visit's input, evidence) answered without switching on the kind."""
from __future__ import annotations

import pytest
import torch

from fhir_assist.tasks.artifacts import load_artifact
from fhir_assist.tasks.coding.models import NoteCoder, StructuredRanker, load_model


@pytest.fixture(scope="module")
def cohort(small_cohort_dir):
    from fhir_assist.adapter.timeline import load_cohort

    return load_cohort(small_cohort_dir, progress=False)


# the bundled artifacts ship without the logistic peer: the model, its frequency floor and
# the rules that copy the record (previous visit, problem list)
RULES = ["frequency", "previous-visit", "problem-list"]


@pytest.mark.parametrize("name,cls,rules", [("icd-ranker", StructuredRanker, RULES),
                                            ("text-coder", NoteCoder, RULES)])
def test_bundled_model_answers_the_protocol(cohort, name, cls, rules):
    from fhir_assist.tasks.coding.encounters import collect_encounters

    model = load_model(load_artifact(name))
    assert type(model) is cls and model.kind == name
    encounters, _ = collect_encounters(cohort.timelines, 0, with_notes=model.reads_notes, progress=False)
    some = encounters[:8]
    scores = model.scores(some)
    assert list(scores) == [model.name, *rules]
    for s in scores.values():
        assert s.shape == (len(some), model.labels.size) and bool(((s >= 0) & (s <= 1)).all())
    assert not torch.allclose(scores[model.name][0], scores[model.name][-1])   # inputs matter

    timeline = next(t for t in cohort.timelines if t.visits)
    given = model.visit_input(timeline.visits[0], timeline)
    probs = model.probabilities(given.value, "cpu")
    assert probs.shape == (model.labels.size,) and given.stratum >= 0
    for head, part in model.labels.slices().items():     # one head alone: the same scores
        assert torch.allclose(model.probabilities(given.value, "cpu", part), probs[part], atol=1e-6), head
    top = int(torch.argmax(probs))
    evidence = model.evidence(given.value, [top], 3, "cpu", lambda kind, token: f"{kind}:{token}")
    assert len(evidence) == 1 and len(evidence[0]) <= 3
