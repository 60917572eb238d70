"""Multitask ICD ranker: the network, its baselines, and learning on a small synthetic cohort."""
from argparse import Namespace

import pytest
import torch

from model_zoo import classical, icd_ranker
from model_zoo.metrics import ranking as rk


def test_shapes_in_both_modes():
    for mode in icd_ranker.MODES:
        cfg = icd_ranker.RankerConfig(n_inputs=10, head_names=["a", "b"], head_sizes=[3, 5],
                                      hidden=[16, 8], dropout=0.6, mode=mode)
        model = icd_ranker.IcdRanker(cfg)
        assert model(torch.rand(4, 10)).shape == (4, 8)
        assert model.head_slices() == {"a": slice(0, 3), "b": slice(3, 8)}
        model.set_output_prior(torch.full((8,), 0.25))
        model.eval()
        # with zero input the trunk output is constant; the prior sets the mean level
        assert icd_ranker.predict_proba(model, torch.zeros(2, 10)).shape == (2, 8)
    with pytest.raises(ValueError):
        icd_ranker.RankerConfig(n_inputs=1, head_names=["a"], head_sizes=[1], mode="tree")


def test_logits_for_chosen_columns_are_the_forward_pass_columns_and_occlusion_agrees():
    from model_zoo import attribution

    for mode in icd_ranker.MODES:
        cfg = icd_ranker.RankerConfig(n_inputs=10, head_names=["a", "b"], head_sizes=[3, 5],
                                      hidden=[16, 8], dropout=0.6, mode=mode)
        model = icd_ranker.IcdRanker(cfg).eval()
        x = (torch.rand(4, 10) > 0.5).float()
        columns = [6, 1, 7]
        assert torch.allclose(model.logits_for(x, columns), model(x)[:, columns], atol=1e-6)
        full, feats = attribution.occlusion(model, x[0], columns)
        chosen = attribution.occlusion_deltas(model.logits_for(attribution.occluded_rows(x[0], feats), columns))
        assert torch.allclose(full, chosen, atol=1e-6)
    # beside the trunk: the wide path and the copy path count too
    cfg = icd_ranker.RankerConfig(n_inputs=10, head_names=["a", "b"], head_sizes=[3, 5], hidden=[16, 8],
                                  wide=True, copy_pairs=[4])
    model = icd_ranker.IcdRanker(cfg).eval()
    model.set_copy_pairs([(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 3, 5, 7]))])
    with torch.no_grad():
        model.wide.weight.normal_()
        model.copy_delta.normal_()
        model.copy_scale.uniform_(0.5, 2.0)       # each head its own shared weight
    x = (torch.rand(4, 10) > 0.5).float()
    assert torch.allclose(model.logits_for(x, [6, 1, 7, 3]), model(x)[:, [6, 1, 7, 3]], atol=1e-5)
    # the copy path of chosen columns, read from only the pairs reaching them, is exactly the
    # full path's columns (record values of any size, a column twice, a column no pair reaches)
    x = torch.rand(6, 10) * (torch.rand(6, 10) > 0.4)
    for columns in ([7, 3, 7, 0], [4, 6], [5]):
        assert torch.equal(model._copied(x, torch.tensor(columns)), model._copied(x)[:, columns])
    for columns in (slice(3, 8), slice(0, 8, 2), slice(4, 5), slice(0, 3)):    # a head, or part of one
        assert torch.equal(model._copied(x, columns), model._copied(x)[:, columns])
        assert torch.allclose(model.logits_for(x, columns), model(x)[:, columns], atol=1e-5)


def test_occlusion_logits_take_each_input_from_the_first_layer_and_match_the_row_by_row_pass():
    from model_zoo import attribution

    torch.manual_seed(3)
    for extra in ({}, {"input_dropout": 0.2}, {"wide": True, "copy_pairs": [4]}, {"hidden": []},
                  {"mode": "per-level"}):
        options = {"hidden": [16, 8], **extra}
        cfg = icd_ranker.RankerConfig(n_inputs=10, head_names=["a", "b"], head_sizes=[3, 5], **options)
        model = icd_ranker.IcdRanker(cfg).eval()
        if cfg.copy_pairs:
            model.set_copy_pairs([(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 3, 5, 7]))])
            with torch.no_grad():
                model.wide.weight.normal_()
                model.copy_delta.normal_()
        x = torch.rand(10) * (torch.rand(10) > 0.3)      # record values besides 0/1
        x[0] = 0.7                                        # an input the copy path reads
        features = attribution.active_features(x)
        rows = attribution.occluded_rows(x, features)
        assert rows.shape == (len(features) + 1, 10) and torch.equal(rows[0], x)
        for i, f in enumerate(features, 1):
            assert torch.equal(rows[i], x * (torch.arange(10) != f))
        # a column twice, a column no pair reaches, a subset of the inputs switched off
        for columns, switched in (([6, 1, 7], features), ([7, 3, 7, 0], features), ([5, 2], features[::2])):
            with torch.no_grad():
                got = model.occlusion_logits(x, switched, columns)
                expected = model(attribution.occluded_rows(x, switched))[:, columns]
                assert torch.allclose(got, expected, atol=1e-5), (extra, columns)
                before, same = attribution.occlusion(model, x, columns, switched)
            assert same == switched and torch.allclose(attribution.occlusion_deltas(got), before, atol=1e-6)
    with torch.no_grad():                      # nothing to switch off: the row alone
        assert model.occlusion_logits(torch.zeros(10), [], [2]).shape == (1, 1)


def test_reweighted_heads_give_each_level_the_same_weight():
    w = icd_ranker.head_weights([2, 6, 12], "reweighted")
    totals = [w[:2].sum().item(), w[2:8].sum().item(), w[8:].sum().item()]
    assert totals == pytest.approx([totals[0]] * 3)
    assert icd_ranker.head_weights([2, 3]).tolist() == [1.0] * 5


def _planted(n=600, seed=0):
    """Inputs 0–9 each switch on label i (and a parent label 10 + i // 5)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 12, generator=g) < 0.15).float()
    y = torch.zeros(n, 12)
    y[:, :10] = x[:, :10]
    y[:, 10] = x[:, :5].amax(1)
    y[:, 11] = x[:, 5:10].amax(1)
    noise = torch.rand(n, 12, generator=g) < 0.02
    return x, ((y > 0) ^ noise).float()


def test_ranker_beats_frequency_on_planted_signal():
    from model_zoo.train import fit

    x, y = _planted()
    cfg = icd_ranker.RankerConfig(n_inputs=12, head_names=["leaf", "parent"], head_sizes=[10, 2],
                                  hidden=[32], dropout=0.1)
    model = icd_ranker.IcdRanker(cfg)
    model.set_output_prior(y[:400].mean(0))
    batches = [{"x": x[i:i + 50], "y": y[i:i + 50]} for i in range(0, 400, 50)]
    fit(model, batches, lambda m, b: torch.nn.functional.binary_cross_entropy_with_logits(m(b["x"]), b["y"]),
        epochs=25, lr=0.01, progress=False, device="cpu")
    ranker = icd_ranker.predict_proba(model, x[400:])
    freq = icd_ranker.predict_proba(classical.FrequencyRanker.fit(y[:400]), x[400:])
    logistic = icd_ranker.predict_proba(classical.fit_logistic(x[:400], y[:400], epochs=15, device="cpu"), x[400:])
    for scores in (ranker, logistic):
        assert rk.ndcg(scores, y[400:]) > rk.ndcg(freq, y[400:]) + 0.05
        assert rk.rank_errors_at_recall(scores, y[400:], 0.9) < rk.rank_errors_at_recall(freq, y[400:], 0.9)


def test_frequency_ranker_is_constant_and_ordered_by_frequency():
    y = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 0]])
    freq = classical.FrequencyRanker.fit(y)
    out = freq(torch.zeros(2, 5))
    assert torch.equal(out[0], out[1])
    assert out[0, 0] > out[0, 1] > out[0, 2]


# ---------------------------------------------------------------- on a synthetic FHIR cohort

@pytest.fixture(scope="module")
def cohort_dir(small_cohort_dir):
    return small_cohort_dir


@pytest.fixture(scope="module")
def trained(cohort_dir, tmp_path_factory):
    from fhir_assist.adapter.timeline import load_cohort
    from fhir_assist.recipes.ranker import train_ranker_models
    from fhir_assist.tasks.coding.artifact import save_ranker
    from fhir_assist.tasks.coding.encounters import collect_encounters
    from fhir_assist.tasks.coding.settings import RankerSettings

    cohort = load_cohort(cohort_dir, progress=False)
    encounters, stats = collect_encounters(cohort.timelines, seed=0, progress=False)
    settings = RankerSettings(hidden=[128], dropout=0.3, epochs=25, patience=None, logistic_epochs=15)
    bundle = train_ranker_models(encounters, settings=settings, seed=0, select="ndcg",
                                 device="cpu", progress=False)
    path = save_ranker(bundle, tmp_path_factory.mktemp("art") / "icd-ranker", seed=0,
                       select="ndcg")
    return cohort, encounters, bundle, path


def test_ranker_learns_better_than_frequency_on_a_cohort(trained):
    from fhir_assist.tasks.coding.evaluation import head_metrics
    from fhir_assist.tasks.coding.models import StructuredRanker

    _, encounters, bundle, _ = trained
    test = [e for e in encounters if e.split == "test"]
    scores, y = StructuredRanker(bundle).scores(test), bundle.labels.encode(test)
    metrics = {name: head_metrics(s, y, bundle.labels.slices()) for name, s in scores.items()}
    for level in ("chapter", "3char", "billing"):
        ours, floor = metrics["multitask-ranker"][level], metrics["frequency"][level]
        assert ours["ndcg"] > floor["ndcg"], level
        assert ours["re@90"] < floor["re@90"], level


def test_artifact_round_trip_and_cutoffs(trained):
    from fhir_assist.tasks.coding.artifact import load_ranker
    from fhir_assist.tasks.coding.ontology import HEADS
    from model_zoo import registry

    _, encounters, bundle, path = trained
    art = registry.load(path)
    again = load_ranker(art)
    x = bundle.features.encode(encounters[:5])
    assert torch.allclose(icd_ranker.predict_proba(bundle.ranker, x),
                          icd_ranker.predict_proba(again.ranker, x), atol=1e-6)
    cut = art.thresholds["cutoffs"]["multitask-ranker"]["billing"]
    assert cut["target_recall"] == 0.9 and cut["overall"] >= 1
    assert set(art.thresholds["f1"]["multitask-ranker"]) == set(HEADS)


def test_suggester_ranks_explains_and_reports_unknown_codes(trained):
    from fhir_assist.adapter.visits import Code
    from fhir_assist.suggest.coding import CodingSuggester

    cohort, encounters, bundle, path = trained
    suggester = CodingSuggester.load(path, device="cpu")
    patient = next(t for t in cohort.timelines if any(v.medications for v in t.visits))
    visit = next(v for v in patient.visits if v.medications)
    visit.medications = list(visit.medications) + ["999999999"]    # an ingredient never seen
    result = suggester.suggest(visit, patient, top=20)
    assert [s.rank for s in result.suggestions] == list(range(1, 21))
    scores = [s.score for s in result.suggestions]
    assert scores == sorted(scores, reverse=True)
    assert all(s.level == "billing" and s.system.startswith("http") for s in result.suggestions)
    k = result.cutoff_k
    assert k is not None and all(s.recommended == (s.rank <= k) for s in result.suggestions)
    assert Code("http://www.nlm.nih.gov/research/umls/rxnorm", "999999999") in result.unknown_codes
    assert result.model_version and result.target_recall == 0.9
    with_evidence = [s for s in result.suggestions if s.evidence]
    assert with_evidence, "no suggestion names the inputs that drove it"
    kind, label, weight = with_evidence[0].evidence[0]
    # the record blocks are inputs like the visit's own codes (the wide and copy paths read them)
    assert kind in ("medication", "procedure", "history", "context", "problem", "demographic") and weight > 0
    assert suggester.explain(visit, result.suggestions[0].code, patient) == result.suggestions[0].evidence


def test_evidence_added_afterwards_matches_and_covers_only_the_codes_asked(trained):
    from fhir_assist.suggest.coding import CodingSuggester

    cohort, encounters, bundle, path = trained
    suggester = CodingSuggester.load(path, device="cpu")
    patient = next(t for t in cohort.timelines if any(v.medications for v in t.visits))
    visit = next(v for v in patient.visits if v.medications)
    full = suggester.suggest(visit, patient, top=20)
    bare = suggester.suggest(visit, patient, top=20, evidence=False)
    assert not any(s.evidence for s in bare.suggestions)
    shown = {(s.system, s.code) for s in bare.suggestions[:5]}
    added = suggester.add_evidence(bare, shown)
    assert set(added) == shown
    for s in full.suggestions[:5]:
        assert added[(s.system, s.code)] == s.evidence


# ---------------------------------------------------------------- wide and copy paths

def test_copy_path_takes_the_largest_record_value_per_label_scaled_per_head():
    cfg = icd_ranker.RankerConfig(n_inputs=4, head_names=["leaf", "parent"], head_sizes=[3, 1],
                                  hidden=[8], dropout=0.0, copy_pairs=[4])
    model = icd_ranker.IcdRanker(cfg).eval()
    # inputs 0, 1 are record codes: 0 → leaf 0 and parent, 1 → leaf 1 and parent
    model.set_copy_pairs([(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 3, 1, 3]))])
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
        model.copy_scale.copy_(torch.tensor([[2.0, 3.0]]))
        model.copy_delta[0, 1] = 1.0
    out = model(torch.tensor([[0.5, 1.0, 1.0, 1.0]]))
    # leaf 0: 2·0.5; leaf 1: (2 + 1)·1; leaf 2: not in the record; parent: 3·max(0.5, 1)
    assert torch.allclose(out, torch.tensor([[1.0, 3.0, 0.0, 3.0]]))
    assert model.wide_penalty().item() == pytest.approx(1.0)     # the wide path starts at zero


def test_an_artifact_config_without_the_new_paths_loads_as_trained():
    old = {"n_inputs": 6, "head_names": ["a"], "head_sizes": [4], "hidden": [8], "dropout": 0.1}
    cfg = icd_ranker.RankerConfig.from_dict(old)
    assert cfg.wide is False and cfg.copy_pairs == []
    legacy = icd_ranker.IcdRanker(cfg)
    assert set(legacy.state_dict()) == {"trunk.0.weight", "trunk.0.bias", "out.weight", "out.bias"}
    again = icd_ranker.IcdRanker(icd_ranker.RankerConfig.from_dict(old))
    again.load_state_dict(legacy.state_dict())
    x = torch.rand(3, 6)
    assert torch.equal(legacy.eval()(x), again.eval()(x))
    assert len(legacy.parameter_groups(1e-3, 0.02)) == 1


def test_wide_and_copy_paths_learn_code_again_where_the_trunk_alone_does_not():
    """Record inputs 0–39 each mean "label i again" (90 % of the time): with 40 labels seen a
    few times each, the copy path learns the identity once for all; a narrow trunk with heavy
    dropout cannot in the same few epochs."""
    from model_zoo.train import fit

    g = torch.Generator().manual_seed(1)
    n, k = 500, 40
    x = (torch.rand(n, k, generator=g) < 0.05).float()
    y = ((x > 0) & (torch.rand(n, k, generator=g) < 0.9)).float()
    pairs = [(torch.arange(k), torch.arange(k))]
    results = {}
    for name, extra in (("deep", {"wide": False}), ("wide+copy", {"wide": True, "copy_pairs": [k]})):
        torch.manual_seed(0)
        cfg = icd_ranker.RankerConfig(n_inputs=k, head_names=["leaf"], head_sizes=[k], hidden=[4],
                                      dropout=0.6, **extra)
        model = icd_ranker.IcdRanker(cfg)
        if cfg.copy_pairs:
            model.set_copy_pairs(pairs)
        model.set_output_prior(y[:400].mean(0))
        batches = [{"x": x[i:i + 50], "y": y[i:i + 50]} for i in range(0, 400, 50)]

        def loss(m, b):
            bce = torch.nn.functional.binary_cross_entropy_with_logits(m(b["x"]), b["y"])
            return bce + 1e-3 * m.wide_penalty()
        fit(model, batches, loss, epochs=3, lr=1e-3, progress=False, device="cpu",
            param_groups=model.parameter_groups(1e-3, 0.05))
        results[name] = rk.ndcg(icd_ranker.predict_proba(model, x[400:]), y[400:])
    assert results["wide+copy"] > 0.9 > results["deep"] + 0.1, results


def test_copy_pairs_join_record_codes_to_the_same_code_at_every_level():
    from fhir_assist.adapter.encode import Vocabulary
    from fhir_assist.tasks.coding.ontology import code_labels
    from fhir_assist.tasks.coding.spaces import FeatureSpace, LabelSpace

    levels = code_labels("http://hl7.org/fhir/sid/icd-10-cm", "E11.65")
    labels = LabelSpace({head: [token] for head, token in levels.items()})
    features = FeatureSpace(Vocabulary.build([["123"]]), Vocabulary.build([["p"]]),
                            Vocabulary.build([["icd10:E11.65", "icd10:ZZZ"]]), Vocabulary.build([["c"]]), None)
    history, problems = features.copy_pairs(labels)
    assert len(problems[0]) == 0                      # no problem block, nothing to copy
    kinds = {features.feature_label(int(i)) for i in history[0]}
    assert kinds == {("history", "icd10:E11.65")}     # an unknown code maps to nothing
    assert sorted(labels.token_of(int(c)) for c in history[1]) == sorted(levels.items())
