"""The fused coding list, end to end: `train coding-fusion` on the bundled ranker and text
coder, then discharge calls answered from one calibrated list with each source's evidence."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from fhir_assist.cds import create_app
from fhir_assist.cds.catalog import BY_ID
from fhir_assist.cds.hook_requests import build_request
from fhir_assist.suggest.model_set import BUNDLED_DIR, FUSION, load_models
from fhir_assist.cli import main
from fhir_assist.config import Settings
from fhir_assist.store import MemoryStore
from model_zoo.fusion import FEATURES

DISCHARGE = "coding-suggestions-encounter-discharge"


@pytest.fixture(scope="module")
def fused_models(tmp_path_factory, small_cohort_dir):
    root = tmp_path_factory.mktemp("fused-models")
    for name in ("micron", "icd-ranker", "text-coder"):
        shutil.copytree(BUNDLED_DIR / name, root / name)
    code = main(["train", "coding-fusion", "--ranker", str(root / "icd-ranker"),
                 "--text-coder", str(root / "text-coder"), "--data", str(small_cohort_dir),
                 "--out", str(root / FUSION)])
    assert code == 0
    models = load_models(str(root))
    assert FUSION in models.models, models.errors
    return models


def test_fusion_artifact_weights_every_source(fused_models):
    fusion = fused_models.get(FUSION).suggester
    weights = fusion.stacker.to_dict()["weights"]
    assert list(weights) == list(FEATURES)
    # Recorded codes of earlier visits recur in this cohort: the history must count.
    assert weights["problem_list"] > 0 or weights["previous_visit"] > 0
    assert weights["ranker_logit"] > 0
    assert fusion.fits(fused_models.get("icd-ranker").suggester, fused_models.get("text-coder").suggester)
    assert 0 < fusion.write_floor(0.5) < 1
    # The rank-band recalibration fitted on validation travels in the artifact.
    bands = fusion.rank_calibration
    assert bands.maps and len(bands.maps) == len(bands.edges)
    assert any(m != {"a": 1.0, "b": 0.0} for m in bands.maps)


def test_fusion_artifact_stored_before_rank_bands_still_loads_and_scores_as_fitted(fused_models, hook_cohort,
                                                                                  tmp_path):
    """An artifact written before the rank bands and the earlier-visit feature: its
    `problem_list` weight was fitted on "recorded at an earlier visit"."""
    from fhir_assist.suggest.fused import FusedCoder

    fusion = fused_models.get(FUSION).suggester
    shutil.copytree(fusion.artifact.path, tmp_path / "old")
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    hp = config["hyperparameters"]
    del hp["rank_calibration"]
    weights = hp["stacker"]["weights"]
    weights["problem_list"] = weights.pop("earlier_visit")
    config_path.write_text(json.dumps(config))
    old = FusedCoder.load(str(tmp_path / "old"))
    assert old.rank_calibration.maps == []
    assert old.stacker.to_dict()["weights"]["earlier_visit"] == weights["problem_list"]
    assert old.stacker.to_dict()["weights"]["problem_list"] == 0.0
    by_patient, usable = hook_cohort
    timeline, visit = _visit_of(by_patient, usable[0])
    ranker, text = fused_models.get("icd-ranker").suggester, fused_models.get("text-coder").suggester
    result = old.suggest(visit, timeline, ranker, text, evidence=False)
    assert result.cutoff_k and result.suggestions
    # Without the bands, the scores are the stacker's own probabilities.
    rows = _rows(visit, timeline, ranker, text)
    expected = np.sort(old.stacker.predict(rows))[::-1][: len(result.suggestions)]
    assert np.allclose([s.score for s in result.suggestions], expected)


def _rows(visit, timeline, ranker, text):
    from fhir_assist.suggest import fusion as F

    r_probs = ranker.billing_probabilities(visit, timeline)[0]
    t_probs, known = np.zeros(r_probs.size), np.zeros(r_probs.size, dtype=bool)
    if visit.notes:
        probs, t_inputs, _, _ = text.billing_probabilities(visit, timeline)
        src, dst = F.text_columns(text.labels, ranker.labels)
        t_probs[dst], known[dst] = probs[src], t_inputs > 0
    earlier = [v for v in timeline.visits if v is not visit]
    history = F.history_columns(earlier + [visit], ranker.labels, timeline)[visit.encounter_id]
    return F.feature_rows(r_probs[None], t_probs[None], known[None], [history])[0]


def test_probability_floor_stops_the_fused_list_and_says_what_it_reaches(fused_models, hook_cohort):
    fusion = fused_models.get(FUSION).suggester
    ranker, text = fused_models.get("icd-ranker").suggester, fused_models.get("text-coder").suggester
    by_patient, usable = hook_cohort
    timeline, visit = _visit_of(by_patient, usable[0])
    full = fusion.suggest(visit, timeline, ranker, text, evidence=False, top=400, rule="expected-recall")
    floor = full.suggestions[min(2, len(full.suggestions) - 1)].score    # keep about three codes
    stopped = fusion.suggest(visit, timeline, ranker, text, evidence=False, top=400, min_probability=floor,
                             rule="expected-recall")
    assert full.cutoff_k > 3 and 1 <= stopped.cutoff_k <= 3
    assert all(s.score >= floor for s in stopped.suggestions[: stopped.cutoff_k])
    assert stopped.expected_recall == pytest.approx(
        sum(s.score for s in stopped.suggestions[: stopped.cutoff_k]) / full.score_total)
    assert stopped.expected_recall < full.expected_recall
    # Served with the floor, the card says where the list stopped and the recall it reaches.
    app = create_app(Settings(no_auth=True, evidence=False, write_back=False, cut_min_probability=0.3,
                              cut_rule="expected-recall"), store=MemoryStore(), models=fused_models)
    body = build_request(BY_ID[DISCHARGE], by_patient[usable[0]], usable[0])
    response = app.test_client().post(f"/cds-services/{DISCHARGE}", data=json.dumps(body),
                                      content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    (card,) = response.get_json()["cards"]
    assert "the list stops where each further code is scored below 30%" in card["detail"]


def test_fused_list_is_cut_at_the_validation_threshold_by_default(fused_models, hook_cohort):
    from model_zoo.recall_cut import threshold_for

    fusion = fused_models.get(FUSION).suggester
    ranker, text = fused_models.get("icd-ranker").suggester, fused_models.get("text-coder").suggester
    assert fusion.recall_thresholds                     # stored by `train coding-fusion`
    threshold = threshold_for(fusion.recall_thresholds, 0.9)
    by_patient, usable = hook_cohort
    for pid in usable[:4]:
        timeline, visit = _visit_of(by_patient, pid)
        result = fusion.suggest(visit, timeline, ranker, text, evidence=False, top=400)
        scores = [s.score for s in result.suggestions]
        assert result.cut_threshold == threshold
        assert result.cutoff_k == max(sum(1 for v in scores if v >= threshold), 1)
        issue_rule = fusion.suggest(visit, timeline, ranker, text, evidence=False, top=400, rule="expected-recall")
        assert issue_rule.cut_threshold is None and issue_rule.expected_recall >= 0.9 - 1e-9
    app = create_app(Settings(no_auth=True, evidence=False, write_back=False), store=MemoryStore(),
                     models=fused_models)
    body = build_request(BY_ID[DISCHARGE], by_patient[usable[0]], usable[0])
    response = app.test_client().post(f"/cds-services/{DISCHARGE}", data=json.dumps(body),
                                      content_type="application/json")
    (card,) = response.get_json()["cards"]
    assert f"are those scored at least {threshold:.1%}" in card["detail"]


def test_discharge_card_is_one_fused_list_cut_per_encounter(fused_models, hook_cohort):
    by_patient, usable = hook_cohort
    app = create_app(Settings(no_auth=True, evidence=False, write_back=False), store=MemoryStore(),
                     models=fused_models)
    client = app.test_client()
    lengths, details, confident = [], [], []
    for pid in usable[:6]:
        body = build_request(BY_ID[DISCHARGE], by_patient[pid], pid)
        response = client.post(f"/cds-services/{DISCHARGE}", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        (card,) = response.get_json()["cards"]
        assert "expected recall of" in card["detail"]
        recommended = [s for s in card["suggestions"] if s.get("isRecommended")]
        assert recommended and len(recommended) == len(card["suggestions"])
        # The evidence column names the sources that spoke for each code.
        assert "ranker: score" in card["detail"]
        details.append(card["detail"])
        lengths.append(int(re.search(r"The (\d+) recommended code", card["detail"]).group(1)))
        # The card holds the confident part of the cut (above the write-back floor, at most the
        # cap), with the expected recall those codes reach by themselves.
        floor = fused_models.get(FUSION).suggester.write_floor(0.5)
        shown = [float(row.split("|")[4]) for row in card["detail"].splitlines() if re.match(r"\| \d+ \|", row)]
        assert len(shown) == len(recommended)
        if min(shown) >= floor - 0.005:
            assert len(recommended) <= min(15, lengths[-1])
            confident.append(len(recommended))
        else:   # no code above the floor: the head of the recommended list
            assert max(shown) < floor + 0.005 and len(recommended) == min(20, lengths[-1])
        if len(recommended) < lengths[-1]:
            reached = int(re.search(r"The \d+ code\(s\) shown reach an expected recall of (\d+)%", card["detail"]).group(1))
            assert 0 < reached < 90
    assert any("history: recorded at the previous visit" in d or "history: recorded at an earlier visit" in d
               for d in details)
    # Cut per encounter, not one K for all.
    assert len(set(lengths)) > 1, lengths
    assert confident, "no card shows a confident short list"


@pytest.fixture
def explained_columns(fused_models):
    """Every label column the ranker computes attribution for (the real computation, counted)."""
    ranker = fused_models.get("icd-ranker").suggester
    real, calls = ranker.coding_model.evidence, []

    def counting(value, columns, *args, **kwargs):
        calls.append(list(columns))
        return real(value, columns, *args, **kwargs)

    ranker.coding_model.evidence = counting
    yield calls
    ranker.coding_model.evidence = real


def _visit_of(by_patient, pid):
    from fhir_assist.adapter.report import IngestReport
    from fhir_assist.adapter.timeline import build_timelines

    (timeline,) = build_timelines(by_patient[pid], IngestReport())
    return timeline, timeline.visits[-1]


def test_evidence_added_for_shown_codes_matches_the_full_computation(fused_models, hook_cohort, explained_columns):
    by_patient, usable = hook_cohort
    fusion = fused_models.get(FUSION).suggester
    ranker, text = fused_models.get("icd-ranker").suggester, fused_models.get("text-coder").suggester
    timeline, visit = next(found for pid in usable for found in [_visit_of(by_patient, pid)]
                           if found[1].medications)
    full = fusion.suggest(visit, timeline, ranker, text, evidence=True)
    explained_columns.clear()
    bare = fusion.suggest(visit, timeline, ranker, text, evidence=False)
    assert explained_columns == []
    shown = [(s.system, s.code) for s in bare.suggestions[:3]]
    added = ranker.add_evidence(bare, set(shown))
    assert len(explained_columns) == 1 and len(explained_columns[0]) == 3, "one batch, the shown codes only"
    assert any(added.values()), "the shown codes have no attribution at all"
    for s in full.suggestions[:3]:
        sources = [e for e in s.evidence if e[0] in ("ranker", "text-coder")
                   or e[1] in ("recorded at the previous visit", "recorded at an earlier visit",
                               "on the active problem list")]
        attributions = [e for e in s.evidence if e not in sources]
        assert added[(s.system, s.code)] == attributions


def test_discharge_explains_only_the_codes_on_its_card(fused_models, hook_cohort, explained_columns):
    from fhir_assist.tasks.coding.ontology import parse_label

    by_patient, usable = hook_cohort
    ranker = fused_models.get("icd-ranker").suggester
    app = create_app(Settings(no_auth=True, evidence=True, write_back=False, top_codes=4), store=MemoryStore(),
                     models=fused_models)
    client = app.test_client()
    for pid in usable[:4]:
        explained_columns.clear()
        body = build_request(BY_ID[DISCHARGE], by_patient[pid], pid)
        response = client.post(f"/cds-services/{DISCHARGE}", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        (card,) = response.get_json()["cards"]
        on_card = {s["label"].split()[1] for s in card["suggestions"]}
        assert len(explained_columns) <= 1, "evidence is computed in one batch"
        explained = {parse_label(ranker.labels.token_of(col)[1])[1] for call in explained_columns for col in call}
        # Exactly the card's codes: the rest of the ranked list is never explained. (Inpatient
        # stays are never thin visits, whose write-back check would add its candidates.)
        assert explained == on_card, (explained, on_card)
