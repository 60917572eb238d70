"""MICRON model, losses, thresholds, incremental inference and baselines (CPU, toy data)."""
import math
import random

import numpy as np
import pytest
import torch

from model_zoo import baselines, losses, micron
from model_zoo.metrics.medication import medication_change_metrics
from model_zoo.micron_cutoffs import scope_by_margin
from model_zoo.thresholds import best_f1_threshold, micron_thresholds, roc_cutoffs

torch.set_num_threads(1)
SIZES = (40, 10, 20)


def toy_patients(n, seed, n_dx=40, n_proc=10):
    """Chronic codes keep their medicine; even acute codes bring a short-lived one."""
    rng = random.Random(seed)
    patients = []
    for i in range(n):
        chronic = set(rng.sample(range(1, 10), rng.randint(0, 2)))
        dx, proc, meds = [], [], []
        for _ in range(rng.randint(1, 6)):
            acute = set(rng.sample(range(10, n_dx), rng.randint(1, 3)))
            dx.append(sorted(chronic | acute))
            proc.append(sorted({1 + a % (n_proc - 1) for a in acute}))
            meds.append(sorted(chronic | {10 + (a - 10) % 10 for a in acute if a % 2 == 0}))
        patients.append(micron.PatientSequence(f"p{seed}-{i}", dx, proc, meds))
    return patients


def toy_ddi():
    ddi = np.zeros((SIZES[2], SIZES[2]), dtype=np.float32)
    for i, j in ((10, 12), (1, 11), (14, 16)):
        ddi[i, j] = ddi[j, i] = 1
    return ddi


# ----------------------------------------------------------------------------- losses

def test_losses_by_hand():
    zeros = torch.zeros(1, 2)
    assert losses.reconstruction_loss(zeros, zeros, zeros).item() == pytest.approx(0, abs=1e-5)
    residual = torch.tensor([[math.log(3.0), 0.0]])  # σ = 0.75 vs 0.5
    assert losses.reconstruction_loss(zeros, residual, zeros).item() == pytest.approx(0.25, abs=1e-5)
    ddi = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert losses.ddi_loss(zeros, ddi).item() == pytest.approx(0.5)  # 2 · 0.5 · 0.5
    assert losses.bce_loss(zeros, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(2 * math.log(2))
    margin = losses.multilabel_margin_loss(torch.zeros(1, 3), torch.tensor([[1.0, 0.0, 0.0]]))
    assert margin.item() == pytest.approx(2 / 3)  # two (pos, neg) pairs, each 1, over |M| = 3


def test_margin_loss_closed_form_equals_pairwise_sum():
    torch.manual_seed(1)
    logits = torch.randn(6, 12) * 3
    targets = (torch.rand(6, 12) > 0.7).float()
    mask = torch.ones(12)
    mask[0] = 0
    p = torch.sigmoid(logits)
    pairs = targets.bool().unsqueeze(2) & ((~targets.bool()) & mask.bool()).unsqueeze(1)
    reference = (torch.clamp(1 - (p.unsqueeze(2) - p.unsqueeze(1)), min=0) * pairs).sum((1, 2)) / 12
    closed = losses.multilabel_margin_loss(logits, targets, mask=mask)
    assert closed.item() == pytest.approx(reference.mean().item(), rel=1e-5)
    # margins below 1 can clip: the pairwise path handles them
    clipped = losses.multilabel_margin_loss(logits, targets, margin=0.2, mask=mask)
    reference = (torch.clamp(0.2 - (p.unsqueeze(2) - p.unsqueeze(1)), min=0) * pairs).sum((1, 2)) / 12
    assert clipped.item() == pytest.approx(reference.mean().item(), rel=1e-5)


def test_micron_loss_combines_terms_and_drops_ddi():
    torch.manual_seed(0)
    prev, cur, res = torch.randn(4, 5), torch.randn(4, 5), torch.randn(4, 5)
    t_prev, t_cur = (torch.rand(4, 5) > 0.5).float(), (torch.rand(4, 5) > 0.5).float()
    ddi = torch.ones(5, 5) - torch.eye(5)
    total, parts = losses.micron_loss(prev, cur, res, t_prev, t_cur, ddi, gamma=0.6,
                                      weights=(1.0, 0.5, 2.0, 3.0))
    expected = (losses.reconstruction_loss(prev, res, cur) + 0.5 * losses.ddi_loss(cur, ddi)
                + 2.0 * (0.6 * losses.bce_loss(cur, t_cur) + 0.4 * losses.bce_loss(prev, t_prev))
                + 3.0 * (0.6 * losses.multilabel_margin_loss(cur, t_cur)
                         + 0.4 * losses.multilabel_margin_loss(prev, t_prev)))
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    without, parts_without = losses.micron_loss(prev, cur, res, t_prev, t_cur, None, gamma=0.6,
                                                weights=(1.0, 0.5, 2.0, 3.0))
    assert "ddi" in parts and "ddi" not in parts_without
    assert without.item() == pytest.approx(expected.item() - 0.5 * losses.ddi_loss(cur, ddi).item(),
                                           rel=1e-5)


# ----------------------------------------------------------------------------- thresholds

def test_roc_thresholds_by_hand():
    assert roc_cutoffs(np.array([0.9, 0.1]), np.array([1, 0])).tolist() == [0.9, 0.1]
    assert roc_cutoffs(np.array([0.3, 0.2]), np.array([1, 1])).size == 0
    scores = np.array([[0.0, 0.9, 0.5], [0.0, 0.1, 0.5]])
    labels = np.array([[0, 1, 1], [0, 0, 1]])
    result = micron_thresholds(scores, labels)
    # medicine 1: cut-offs [0.9, 0.1]; 5% into the descending list ≈ 0.86, 95% ≈ 0.14
    assert result.add == pytest.approx(0.86) and result.remove == pytest.approx(0.14)
    assert result.per_medicine_add[1] == pytest.approx(0.86)
    assert result.per_medicine_add[2] == pytest.approx(0.86)  # one class only → global value
    assert result.add >= result.remove
    add, remove = result.vectors(3)
    assert add.tolist() == [pytest.approx(0.86)] * 3


def test_grid_search_thresholds_keeps_add_above_remove():
    from model_zoo.thresholds import grid_search_thresholds

    add, remove, value = grid_search_thresholds(lambda a, r: -abs(a - 0.6) - abs(r - 0.1))
    assert (add, remove) == (0.6, 0.1) and value == pytest.approx(0)
    add, remove, _ = grid_search_thresholds(lambda a, r: r - a, add_grid=[0.2, 0.5],
                                            remove_grid=[0.1, 0.3, 0.9])
    assert add >= remove


def test_best_f1_threshold():
    scores = np.array([[0.9, 0.2], [0.8, 0.6]])
    labels = np.array([[1, 0], [1, 1]])
    threshold, value = best_f1_threshold(scores, labels, candidates=[0.1, 0.5, 0.7])
    assert threshold == 0.5 and value == pytest.approx(1.0)


# ----------------------------------------------------------------------------- model + state

def _trained_predictor():
    torch.manual_seed(3)
    model = micron.Micron(*SIZES, dim=16, hidden=24, dropout=0.0).eval()
    patients = toy_patients(40, 1)
    thresholds = micron.fit_thresholds(model, patients, micron.MicronConfig())
    return micron.MicronPredictor(model, thresholds), patients


@pytest.mark.parametrize("one_visit_in", ["numpy", "torch"])
def test_incremental_update_equals_full_recomputation(one_visit_in, monkeypatch):
    from model_zoo import row_inference

    if one_visit_in == "torch":       # where the model sits on a GPU: no numpy row path
        monkeypatch.setattr(row_inference, "for_micron", lambda model: None)
    predictor, patients = _trained_predictor()
    long_patient = max(patients, key=len)
    # a long history built from the toy visits, to exercise the recursion
    history = micron.PatientSequence("long", long_patient.dx * 5, long_patient.proc * 5,
                                     long_patient.meds * 5)
    observed = [history.meds[0]] + [None] * (len(history) - 1)
    replayed = predictor.replay(history, observed)
    batched = micron.batched_vectors(predictor.model, [history])[0]
    state = None
    for t in range(len(history)):
        blob = state.to_bytes() if state is not None else None  # through Redis-style bytes
        step = predictor.update(blob, history.dx[t], history.proc[t], observed=observed[t])
        np.testing.assert_allclose(step.state.vector, replayed[t].state.vector, atol=1e-4)
        np.testing.assert_allclose(step.state.vector, batched[t], atol=1e-4)
        assert step.predicted == replayed[t].predicted
        assert step.state.medications == replayed[t].state.medications
        state = step.state
    assert state.visits == len(history)


def test_state_bytes_round_trip_and_rejection():
    predictor, patients = _trained_predictor()
    step = predictor.update(None, patients[0].dx[0], patients[0].proc[0], observed=[1, 5, 17])
    blob = step.state.to_bytes()
    assert len(blob) == 32 + 4 * (SIZES[2] + 16) + 2 * 3  # no earlier state: first visit
    back = micron.MicronState.from_bytes(blob, tag=predictor.tag)
    np.testing.assert_array_equal(back.vector, step.state.vector)
    np.testing.assert_array_equal(back.health, step.state.health)
    assert back.medications == frozenset({1, 5, 17}) and back.visits == 1
    with pytest.raises(micron.StateMismatch):
        micron.MicronState.from_bytes(blob, tag=b"x" * 8)
    with pytest.raises(micron.StateMismatch):
        micron.MicronState.from_bytes(blob[:-1])
    with pytest.raises(micron.StateMismatch):
        micron.MicronState.from_bytes(b"nonsense" * 10)


def test_update_applies_thresholds_and_set_algebra():
    predictor, patients = _trained_predictor()
    step = predictor.update(None, patients[0].dx[0], patients[0].proc[0], observed=[2, 3])
    nxt = predictor.update(step.state, patients[0].dx[0] + [30], [], base=None)
    scores = nxt.scores
    expected = ({2, 3} | {i for i in range(1, SIZES[2]) if scores[i] >= predictor.delta_add[i]}) - \
        {i for i in range(SIZES[2]) if scores[i] <= predictor.delta_remove[i]}
    assert nxt.predicted == frozenset(expected)
    assert nxt.added == nxt.predicted - {2, 3} and nxt.removed == {2, 3} - nxt.predicted
    assert 0 not in nxt.predicted


def test_a_wider_search_scope_must_win_by_the_margin():
    assert scope_by_margin({"no-change": 0.454, "global": 0.457, "per-medicine": 0.450}) == "no-change"
    assert scope_by_margin({"no-change": 0.454, "global": 0.460, "per-medicine": 0.464}) == "global"
    assert scope_by_margin({"no-change": 0.454, "global": 0.460, "per-medicine": 0.466}) == "per-medicine"
    assert scope_by_margin({"no-change": 0.454, "global": 0.455, "per-medicine": 0.470}) == "per-medicine"
    assert scope_by_margin({"no-change": 0.5, "global": 0.4, "per-medicine": 0.3}, margin=0.0) == "no-change"


def test_training_learns_and_beats_repeat_last():
    train, validation, test = toy_patients(240, 1), toy_patients(50, 2), toy_patients(50, 3)
    ddi = toy_ddi()
    config = micron.MicronConfig(dim=32, hidden=64, epochs=8, batch_size=32, lr=2e-3,
                                 weight_decay=0.0, dropout=0.1)
    model, thresholds, result = micron.train_micron(train, validation, SIZES, ddi, config,
                                                    progress=False)
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert 1.01 >= thresholds.add >= thresholds.remove >= 0.0
    assert thresholds.rule == "per-medicine" and thresholds.mode == "per-medicine"
    # the search's scope is chosen on held-out halves of the validation patients
    assert set(thresholds.validation_f1) == {"roc-percentile", "per-medicine", "held-out per-medicine",
                                             "held-out global", "held-out no-change"}
    held_out = {scope: thresholds.validation_f1[f"held-out {scope}"]
                for scope in ("per-medicine", "global", "no-change")}
    assert thresholds.search_scope == scope_by_margin(held_out)
    assert thresholds.first_list_floor == 0.0
    adds, removes = np.asarray(thresholds.per_medicine_add), np.asarray(thresholds.per_medicine_remove)
    assert np.all(adds >= removes) and np.all(removes >= 0) and np.all(adds <= 1.01)
    assert thresholds.removal_recall >= 0.3 - 1e-9   # the default floor on real validation stops
    assert thresholds.ddi_stop_below == micron.MicronConfig().ddi_stop_below > 0
    with pytest.raises(ValueError, match="DDI matrix"):
        micron.MicronPredictor(model, thresholds)   # the interaction stop needs the matrix
    records = micron.MicronPredictor(model, thresholds, ddi).predict_many(test)
    ours = medication_change_metrics(records, ddi)
    repeat = medication_change_metrics(
        [baselines.RepeatLast(SIZES[2]).predict_patient(p) for p in test], ddi)
    assert ours["f1"] > repeat["f1"] and ours["jaccard"] > repeat["jaccard"]


def test_baselines_train_and_predict():
    train, validation = toy_patients(120, 4), toy_patients(30, 5)
    ddi = toy_ddi()
    config = baselines.BaselineConfig(dim=16, hidden=32, epochs=2)
    for trainer in (baselines.train_simnn, baselines.train_dualnn, baselines.train_gru):
        model, result = trainer(train, validation, SIZES, ddi, config, progress=False)
        assert result.seconds_per_epoch > 0
        if hasattr(model, "change_thresholds"):
            add, remove = model.change_thresholds   # per medicine, same search as MICRON
            assert len(add) == len(remove) == SIZES[2]
            assert all(0 < t <= 1.01 for t in add + remove)
        for anchor in ("predicted", "observed"):
            record = model.predict_patient(validation[0], anchor)
            assert len(record.predicted_sets) == len(validation[0])
            assert record.predicted_sets[0] == validation[0].med_sets()[0]
            assert all(0 not in s for s in record.predicted_sets)
    frequency = baselines.fit_frequency(train, validation, SIZES[2])
    assert 0 <= frequency.threshold <= 1.01
    metrics = medication_change_metrics([frequency.predict_patient(p) for p in validation], ddi)
    assert 0 <= metrics["f1"] <= 1


def test_gru_history_scores_match_single_pass():
    torch.manual_seed(0)
    gru = baselines.GruHistory(*SIZES, dim=8, hidden=8).eval()
    patient = max(toy_patients(20, 6), key=len)
    record = gru.predict_patient(patient)
    for t in range(1, len(patient)):
        np.testing.assert_allclose(gru.history_scores(patient, t + 1), record.scores[t], atol=1e-5)


def test_repeat_last_keeps_first_set_under_paper_protocol():
    patient = micron.PatientSequence("x", [[1], [2], [3]], [[], [], []], [[1, 2], [3], [3]])
    record = baselines.RepeatLast(5).predict_patient(patient)
    assert record.predicted_sets == [{1, 2}, {1, 2}, {1, 2}]
    observed = baselines.RepeatLast(5).predict_patient(patient, "observed")
    assert observed.predicted_sets == [{1, 2}, {1, 2}, {3}]


def test_pick_device_and_fit_on_cpu():
    from model_zoo.train import fit, pick_device

    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device().type == "cpu"
        with pytest.raises(ValueError):
            pick_device("cuda")
    model = torch.nn.Linear(3, 1)
    x = torch.randn(32, 3)
    y = x.sum(1, keepdim=True)
    batches = [{"x": x[i:i + 8], "y": y[i:i + 8]} for i in range(0, 32, 8)]
    result = fit(model, batches, lambda m, b: ((m(b["x"]) - b["y"]) ** 2).mean(), epochs=40,
                 lr=0.05, validate=lambda m: {"mse": float(((m(x) - y) ** 2).mean())},
                 select="mse", mode="min", device="cpu", progress=False)
    assert result.history[result.best_epoch - 1]["mse"] == min(h["mse"] for h in result.history)
    with torch.no_grad():
        final = float(((model(x) - y) ** 2).mean())
    assert final == pytest.approx(result.history[result.best_epoch - 1]["mse"], rel=1e-4)


# ----------------------------------------------------------------------------- per-medicine cut-offs

def _search_data(first, scores, truth):
    """One medicine (index 1; 0 is the OOV slot) over patients: σ-style scores."""
    from model_zoo.thresholds import ChangeSearchData

    adds, removes, labels = [], [], []
    for f, sc, tr in zip(first, scores, truth):
        probability = np.zeros((len(tr) + 1, 2))
        probability[1:, 1] = sc
        label = np.zeros((len(tr) + 1, 2), bool)
        label[0, 1], label[1:, 1] = f, tr
        adds.append(probability)
        removes.append(1 - probability)
        labels.append(label)
    return ChangeSearchData.from_patients(adds, removes, labels)


def test_change_search_stops_a_drug_when_scores_say_so():
    from model_zoo.thresholds import search_change_cutoffs

    # the drug is stopped whenever its score falls to 0.05, kept at 0.5
    data = _search_data([1] * 20, [[0.5, 0.05]] * 10 + [[0.5, 0.5]] * 10,
                        [[1, 0]] * 10 + [[1, 1]] * 10)
    found = search_change_cutoffs(data, (0.6, 1.01), (1.0, 0.9, 0.8), min_support=1,
                                  allowed=lambda a, r: a >= 1 - r)
    assert found.remove[1] == pytest.approx(0.9)      # δ2 = 0.1: removes at 0.05, keeps at 0.5
    assert found.removal_recall == pytest.approx(1.0)
    assert found.validation_f1 == pytest.approx(1.0)


def test_change_search_meets_the_removal_floor_at_least_cost():
    from model_zoo.thresholds import search_change_cutoffs

    # scores do not separate stops from continuations: F1 alone never removes, the floor does
    data = _search_data([1] * 20, [[0.3]] * 20, [[0]] * 4 + [[1]] * 16)
    free = search_change_cutoffs(data, (1.01,), (1.0, 0.6), min_support=1)
    assert free.removal_recall == 0.0 and free.remove[1] == pytest.approx(1.0)
    floored = search_change_cutoffs(data, (1.01,), (1.0, 0.6), min_support=1,
                                    removal_recall_floor=0.5, floor_above_no_change=False)
    assert floored.removal_recall == pytest.approx(1.0) and floored.remove[1] == pytest.approx(0.6)
    # by default the floor is met only while the rule stays at least as good as never
    # changing the list: here every removal costs more F1 than it earns, so none is made
    guarded = search_change_cutoffs(data, (1.01,), (1.0, 0.6), min_support=1,
                                    removal_recall_floor=0.5)
    assert guarded.removal_recall == 0.0 and guarded.validation_f1 == pytest.approx(free.validation_f1)
    # rare medicines (support below min_support) keep the global pair
    rare = search_change_cutoffs(data, (1.01,), (1.0, 0.6), min_support=100,
                                 removal_recall_floor=0.5, floor_above_no_change=False)
    assert rare.tuned == 0 and rare.remove[1] == pytest.approx(rare.global_pair[1])


def _interacting_pair_data(co_prescribed: int, alone: int):
    """Medicines 1 and 2 (0 is the OOV slot) interact. Every patient starts on 1; at the
    second visit drug 2 scores 0.7 for everyone and is really added for `co_prescribed`."""
    from model_zoo.thresholds import ChangeSearchData

    adds, removes, labels = [], [], []
    for patient in range(co_prescribed + alone):
        probability = np.array([[0.0, 0.9, 0.0], [0.0, 0.9, 0.7]])
        label = np.array([[False, True, False], [False, True, patient < co_prescribed]])
        adds.append(probability)
        removes.append(1 - probability)
        labels.append(label)
    return ChangeSearchData.from_patients(adds, removes, labels)


def test_ddi_penalty_keeps_an_interacting_drug_out():
    from model_zoo.thresholds import search_change_cutoffs

    data = _interacting_pair_data(co_prescribed=14, alone=6)
    ddi = np.zeros((3, 3))
    ddi[1, 2] = ddi[2, 1] = 1
    grid = dict(add_grid=(0.6, 1.01), remove_grid=(1.0,), min_support=1)
    # F1 alone adds drug 2: 14 of 20 patients really get it (mean F1 0.9 against 0.77)
    plain = search_change_cutoffs(data, **grid)
    assert plain.add[2] == pytest.approx(0.6)
    assert plain.validation_f1 == pytest.approx(0.9)
    # every pair it would form interacts (DDI rate 1): with β = 1 that costs more than it earns
    controlled = search_change_cutoffs(data, **grid, ddi=ddi, ddi_penalty=1.0)
    assert controlled.add[2] == pytest.approx(1.01)
    assert controlled.validation_ddi_rate == 0.0
    assert controlled.validation_f1 == pytest.approx((14 * 2 / 3 + 6) / 20)
    # a small β leaves the F1 choice alone and reports the rate it accepted
    mild = search_change_cutoffs(data, **grid, ddi=ddi, ddi_penalty=0.05)
    assert mild.add[2] == pytest.approx(0.6) and mild.validation_ddi_rate == pytest.approx(1.0)


def test_interaction_stops_by_hand():
    partners = micron.interaction_partners(toy_ddi(), SIZES[2])
    assert partners[10] == {12} and partners[1] == {11} and partners[5] == frozenset()
    p = np.full(SIZES[2], 0.9)
    p[[12, 11]] = 0.03, 0.04
    # 12 clashes with 10 and is weak: stopped; 11 is weak too, but 1 is not on the list
    assert micron.interaction_stops({5, 10, 11, 12}, p, partners, below=0.05) == {12: 10}
    assert micron.interaction_stops({1, 11}, p, partners, below=0.05) == {11: 1}
    assert micron.interaction_stops({1, 11}, p, partners, below=0.04) == {}   # strictly below
    assert micron.interaction_stops({10, 12}, p, partners, below=0.0) == {}    # off
    # both members weak: only the weaker goes, the other has no partner left
    p[10] = 0.02
    assert micron.interaction_stops({10, 12}, p, partners, below=0.05) == {10: 12}
    # a chain 9 – 12 – 10 with 9 confident: 12 goes for 9, and 10 (weaker still) stays,
    # its only partner gone; weakest first alone would have stopped both
    chain = np.zeros((SIZES[2], SIZES[2]))
    for i, j in ((9, 12), (12, 10)):
        chain[i, j] = chain[j, i] = 1
    p[9] = 0.8
    assert micron.interaction_stops({9, 10, 12}, p, micron.interaction_partners(chain, SIZES[2]),
                                    below=0.05) == {12: 9}


def _stopping_predictor(below: float):
    """Never add, never remove: only the interaction stop changes the list."""
    from model_zoo.thresholds import MicronThresholds

    predictor, patients = _trained_predictor()
    thresholds = MicronThresholds(add=1.01, remove=0.0, ddi_stop_below=below)
    return micron.MicronPredictor(predictor.model, thresholds, toy_ddi()), patients


def test_predictor_stops_the_weaker_of_two_interacting_medicines():
    predictor, patients = _stopping_predictor(below=1.0)
    patient = patients[0]
    first = predictor.update(None, patient.dx[0], patient.proc[0], observed=[5, 10, 12])
    step = predictor.update(first.state, patient.dx[0] + [30], [])
    weak, strong = sorted((10, 12), key=lambda m: (step.scores[m], m))
    assert step.interaction_stops == {weak: strong}
    assert step.predicted == {5, strong} and step.removed == {weak} and step.kept == {5, strong}
    assert step.state.medications == {5, strong}    # stopped for good: the next visit starts without it
    # the batched recursion (evaluation) takes the same decision
    history = micron.PatientSequence("h", [patient.dx[0], patient.dx[0] + [30]],
                                     [patient.proc[0], []], [[5, 10, 12], []])
    record = predictor.predict_many([history])[0]
    assert record.predicted_sets[1] == {5, strong}
    # states made under another decision rule are not reused
    plain, _ = _stopping_predictor(below=0.0)
    assert plain.tag != predictor.tag
    with pytest.raises(micron.StateMismatch):
        plain.update(step.state.to_bytes(), patient.dx[0], patient.proc[0])


def test_thresholds_without_the_interaction_stop_load_as_before():
    from model_zoo.thresholds import MicronThresholds

    old = MicronThresholds(add=0.5, remove=0.1).to_dict()
    del old["ddi_stop_below"]
    assert MicronThresholds.from_dict(old).ddi_stop_below == 0.0
    config = micron.MicronConfig().to_dict()
    del config["ddi_stop_below"]
    assert micron.MicronConfig.from_dict(config).ddi_stop_below == 0.0


# ----------------------------------------------------------------------------- idempotent updates

def test_repeating_an_encounter_does_not_advance_the_state():
    predictor, patients = _trained_predictor()
    patient = max(patients, key=len)
    first = predictor.update(None, patient.dx[0], patient.proc[0], observed=patient.meds[0],
                             encounter="enc-1")
    second = predictor.update(first.state.to_bytes(), patient.dx[1], patient.proc[1],
                              encounter="enc-2")
    again = predictor.update(second.state.to_bytes(), patient.dx[1], patient.proc[1],
                             encounter="enc-2")
    assert again.state.to_bytes() == second.state.to_bytes()
    assert again.predicted == second.predicted and again.added == second.added
    np.testing.assert_array_equal(again.scores, second.scores)
    assert again.state.visits == 2
    # without an encounter id a call always advances
    advanced = predictor.update(second.state, patient.dx[1], patient.proc[1])
    assert advanced.state.visits == 3
    # a new encounter advances from the repeated state
    third = predictor.update(again.state, patient.dx[1], patient.proc[1], encounter="enc-3")
    assert third.state.visits == 3 and third.state.previous.visits == 2


def test_state_keeps_one_earlier_state_and_rejects_old_format():
    import struct

    predictor, patients = _trained_predictor()
    first = predictor.update(None, patients[0].dx[0], patients[0].proc[0], observed=[2, 3],
                             encounter="a")
    second = predictor.update(first.state, patients[0].dx[0], [], encounter="b")
    blob = second.state.to_bytes()
    back = micron.MicronState.from_bytes(blob, tag=predictor.tag)
    assert back.encounter == micron.encounter_key("b") and back.previous is not None
    assert back.previous.medications == frozenset({2, 3}) and back.previous.previous is None
    np.testing.assert_array_equal(back.previous.vector, first.state.vector)
    assert len(blob) < 2 * (32 + 4 * (SIZES[2] + 16) + 2 * SIZES[2])
    # version-1 bytes (no encounter, no earlier state) are refused with a clear reason
    old = struct.pack("<4sBBHIHH8s", b"MCRN", 1, 0, 0, 1, SIZES[2], 16, predictor.tag) + \
        b"\0" * (4 * (SIZES[2] + 16))
    with pytest.raises(micron.StateMismatch, match="format 1"):
        micron.MicronState.from_bytes(old, tag=predictor.tag)


def test_first_list_anchors_the_state():
    vectors = np.array([[-6.0, -5.0, 1.0, -2.0], [-6.0, -4.0, 1.5, -2.0]], dtype=np.float32)
    anchored = micron.anchor_first_list(vectors, [1, 2], 0.0)
    # medicine 1 was given but scored σ ≈ 0.007: it starts at σ = 0.5, and later visits keep
    # the model's update on top; medicine 2 already scored above the floor, 3 was not given
    np.testing.assert_allclose(anchored[:, 1], [0.0, 1.0])
    np.testing.assert_allclose(anchored[:, [0, 2, 3]], vectors[:, [0, 2, 3]])
    assert micron.anchor_first_list(vectors, [1], None) is vectors   # off (older artifacts)


def test_update_and_replay_anchor_the_first_visit_alike():
    predictor, patients = _trained_predictor()
    patient = patients[0]
    first = predictor.update(None, patient.dx[0], patient.proc[0], observed=patient.meds[0])
    for m in set(patient.meds[0]) - {0}:
        assert first.scores[m] >= 0.5 - 1e-6
    replayed = predictor.replay(patient, observed=patient.meds)
    np.testing.assert_allclose(replayed[0].state.vector, first.state.vector, atol=1e-5)
    second = predictor.update(first.state, patient.dx[1], patient.proc[1])
    np.testing.assert_allclose(replayed[1].state.vector, second.state.vector, atol=1e-5)
    batched = micron.batched_vectors(predictor.model, [patient], first_list_floor=0.0)[0]
    np.testing.assert_allclose(batched[:2], [first.state.vector, second.state.vector], atol=1e-5)
