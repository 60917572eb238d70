"""End to end: `fhir-assist train micron` then `fhir-assist evaluate --json` on a small cohort."""
import json

import pytest

from fhir_assist import cli

pytestmark = pytest.mark.slow

MODELS = {"MICRON", "SimNN", "DualNN", "RepeatLast", "GRU"}
KEYS = {"model", "jaccard", "f1", "prauc", "ddi_rate", "err_add", "err_remove", "params", "s_per_epoch"}


@pytest.fixture(scope="module")
def cohort_dir(tmp_path_factory):
    from fhir_assist.synth.generate import generate_cohort

    out = tmp_path_factory.mktemp("micron-cohort")
    generate_cohort(150, 11, out, progress=False)
    return out


@pytest.fixture(scope="module")
def artifact(cohort_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("artifacts") / "micron"
    code = cli.main(["train", "micron", "--data", str(cohort_dir), "--out", str(out),
                     "--epochs", "2", "--seed", "3", "--device", "cpu"])
    assert code == 0
    return out


def test_train_writes_a_loadable_artifact(artifact):
    from model_zoo import registry

    loaded = registry.load(artifact)
    assert loaded.task == "medication-change"
    assert set(loaded.weights) == {"micron", "simnn", "dualnn", "gru", "frequency"}
    assert set(loaded.vocabularies) == {"dx", "proc", "med"}
    assert loaded.hyperparameters["split_seed"] == 3
    # δ1 = 1.01 is "never add" (the search may keep the first list unchanged)
    assert 1.01 >= loaded.thresholds["add"] >= loaded.thresholds["remove"] >= 0
    assert loaded.thresholds["search_scope"] in ("per-medicine", "global", "no-change")
    # DDI control is on by default: MICRON stops the weak member of an interacting pair (at
    # the configured cut-off, or lower where that cost more than repeating the list on
    # validation), the change baselines search their cut-offs for F1 less a DDI penalty
    assert loaded.hyperparameters["micron"]["ddi_stop_below"] > 0
    assert 0 <= loaded.thresholds["ddi_stop_below"] <= loaded.hyperparameters["micron"]["ddi_stop_below"]
    assert loaded.hyperparameters["baselines"]["threshold_ddi_penalty"] > 0
    assert 0 <= loaded.thresholds["validation_ddi_rate"] <= 1
    assert loaded.config["data_fingerprint"]
    assert {row["model"] for row in loaded.metrics["test"]} >= MODELS


def test_evaluate_json_shape(artifact, cohort_dir, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", str(artifact), "--data", str(cohort_dir), "--json"]) == 0
    out = capsys.readouterr().out
    document = json.loads(out)  # exactly one JSON object on stdout
    assert document["task"] == "medication-change"
    assert isinstance(document["test_patients"], int) and document["test_patients"] > 0
    rows = {row["model"]: row for row in document["models"]}
    assert MODELS <= set(rows)
    for row in rows.values():
        assert KEYS <= set(row)
        for key in ("jaccard", "f1"):
            assert 0.0 <= row[key] <= 1.0
    assert rows["MICRON"]["params"] > 0 and rows["RepeatLast"]["params"] == 0
    assert document["same_data_as_training"] is True
    assert document["thresholds"]["ddi_stop_below"] >= 0


def test_evaluate_text_table(artifact, cohort_dir, capsys):
    capsys.readouterr()
    assert cli.main(["evaluate", str(artifact), "--data", str(cohort_dir)]) == 0
    out = capsys.readouterr().out
    assert "Err(add)" in out and "MICRON" in out and "RepeatLast" in out


def test_user_errors_are_clean(tmp_path, capsys, cohort_dir):
    code = cli.main(["train", "micron", "--data", str(tmp_path / "missing"), "--out",
                     str(tmp_path / "a")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = cli.main(["evaluate", str(tmp_path / "nothing"), "--data", str(cohort_dir)])
    assert code == 2
    code = cli.main(["train", "micron", "--data", str(cohort_dir), "--out", str(tmp_path / "b"),
                     "--ddi-penalty", "-1"])
    assert code == 2 and "--ddi-penalty must not be negative" in capsys.readouterr().err
    code = cli.main(["train", "micron", "--data", str(cohort_dir), "--out", str(tmp_path / "c"),
                     "--ddi-stop-below", "1.5"])
    assert code == 2 and "--ddi-stop-below must be between 0 and 1" in capsys.readouterr().err


def test_suggester_incremental_matches_replay(artifact, cohort_dir):
    from fhir_assist.adapter.timeline import load_cohort
    from fhir_assist.suggest.medication import MedicationChangeSuggester

    suggester = MedicationChangeSuggester.load(str(artifact))
    timelines = load_cohort(str(cohort_dir), progress=False).timelines
    patient = max(timelines, key=lambda t: len(t.visits))
    visits = [v for v in patient.visits if v.diagnoses or v.procedures or v.medications]
    assert len(visits) >= 3
    state = suggester.new_state()
    for visit in visits[:-1]:
        state = suggester.update(state, visit).state
    incremental = suggester.update(state, visits[-1])
    replayed = suggester.update(None, visits[-1], history=visits[:-1])
    assert replayed.replayed_visits == len(visits) - 1
    assert incremental.state == replayed.state
    assert incremental.add == replayed.add and incremental.remove == replayed.remove
    for rxcui, name, score in incremental.add + incremental.remove + incremental.keep:
        assert rxcui.isdigit() and name and 0.0 <= score <= 1.0
    current = set(visits[-1].medications)
    assert {r for r, _, _ in incremental.remove} <= current
    assert not ({r for r, _, _ in incremental.add} & current)
    # a state from another model version is ignored, not trusted
    fresh = suggester.update(b"MCRN" + b"\0" * 40, visits[0])
    assert fresh.state


def test_suggester_repeat_encounter_is_idempotent(artifact, cohort_dir):
    import struct

    from fhir_assist.adapter.timeline import load_cohort
    from fhir_assist.suggest.medication import MedicationChangeSuggester
    from model_zoo.micron import MicronState

    suggester = MedicationChangeSuggester.load(str(artifact))
    timelines = load_cohort(str(cohort_dir), progress=False).timelines
    patient = max(timelines, key=lambda t: len(t.visits))
    visits = [v for v in patient.visits if v.diagnoses or v.procedures or v.medications]
    assert all(v.encounter_id for v in visits)
    state = suggester.new_state()
    for visit in visits[:-1]:
        state = suggester.update(state, visit).state
    once = suggester.update(state, visits[-1])
    twice = suggester.update(once.state, visits[-1])          # order-select fired again
    thrice = suggester.update(twice.state, visits[-1])
    for repeat in (twice, thrice):
        assert repeat.repeated_encounter and not once.repeated_encounter
        assert (repeat.add, repeat.remove, repeat.keep, repeat.ddi_pairs) == \
            (once.add, once.remove, once.keep, once.ddi_pairs)
        assert repeat.state == once.state
    # full recomputation from history still gives the same answer and state
    replayed = suggester.update(None, visits[-1], history=visits[:-1])
    assert replayed.state == once.state and replayed.add == once.add
    # the next encounter advances
    later = suggester.update(twice.state, visits[0])
    assert MicronState.from_bytes(later.state).visits == MicronState.from_bytes(once.state).visits + 1
    # old-format (version 1) bytes are rejected and the state rebuilt from the history
    stored = MicronState.from_bytes(once.state)
    old = struct.pack("<4sBBHIHH8s", b"MCRN", 1, 0, 0, stored.visits, stored.vector.size,
                      stored.health.size, stored.tag) + b"\0" * (4 * (stored.vector.size
                                                                     + stored.health.size))
    rebuilt = suggester.update(old, visits[-1], history=visits[:-1])
    assert rebuilt.replayed_visits == len(visits) - 1 and rebuilt.state == once.state


def test_threshold_rule_flag_picks_the_papers_rule(cohort_dir, tmp_path):
    from model_zoo import registry

    out = tmp_path / "paper-rule"
    assert cli.main(["train", "micron", "--data", str(cohort_dir), "--out", str(out), "--epochs", "1",
                     "--seed", "3", "--device", "cpu", "--threshold-rule", "roc-percentile",
                     "--ddi-stop-below", "0", "--ddi-penalty", "1.5"]) == 0
    loaded = registry.load(out)
    thresholds = loaded.thresholds
    assert thresholds["rule"] == "roc-percentile" and thresholds["mode"] == "global"
    assert 1 >= thresholds["add"] >= thresholds["remove"] >= 0
    assert thresholds["ddi_stop_below"] == 0          # the interaction stop turned off
    assert loaded.hyperparameters["micron"]["threshold_ddi_penalty"] == 1.5
    assert loaded.hyperparameters["baselines"]["threshold_ddi_penalty"] == 1.5
