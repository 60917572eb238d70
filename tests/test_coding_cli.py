"""`fhir-assist train icd-ranker|text-coder` and `fhir-assist evaluate --json` end to end."""
import json

import pytest

from fhir_assist.cli import main

LEVELS = {"chapter", "block", "3char", "4char", "billing", "ccs"}
KEYS = {"ndcg", "re@50", "re@75", "re@90", "re@100", "recall@5", "recall@10", "recall@20",
        "recall@30", "auprc_micro", "f1_micro"}


@pytest.fixture(scope="module")
def cohort_dir(small_cohort_dir):
    return small_cohort_dir


@pytest.fixture(scope="module")
def ranker_artifact(cohort_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "ranker"
    assert main(["train", "icd-ranker", "--data", str(cohort_dir), "--out", str(out),
                 "--epochs", "3", "--device", "cpu"]) == 0
    return out


def _evaluate(capsys, *argv):
    capsys.readouterr()
    assert main(["evaluate", *map(str, argv)]) == 0
    out = capsys.readouterr().out
    return json.loads(out)          # exactly one JSON object on stdout


def _check_shape(report, models):
    assert report["task"] == "icd-coding" and report["test_encounters"] > 0
    assert [m["model"] for m in report["models"]] == models
    for m in report["models"]:
        assert set(m["levels"]) == LEVELS
        for level, values in m["levels"].items():
            assert KEYS <= set(values), (m["model"], level)


def test_train_and_evaluate_ranker_json_and_plots(ranker_artifact, cohort_dir, tmp_path, capsys):
    report = _evaluate(capsys, ranker_artifact, "--data", cohort_dir, "--json", "--plots", tmp_path / "plots")
    _check_shape(report, ["multitask-ranker", "frequency", "logistic", "previous-visit", "problem-list"])
    for name in ("re_at_r.png", "recall_at_k.png", "calibration.png"):
        png = tmp_path / "plots" / name
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    config = json.loads((ranker_artifact / "config.json").read_text())
    assert config["task"] == "icd-coding" and config["hyperparameters"]["kind"] == "icd-ranker"


def test_readable_table_without_json(ranker_artifact, cohort_dir, capsys):
    assert main(["evaluate", str(ranker_artifact), "--data", str(cohort_dir)]) == 0
    out = capsys.readouterr().out
    assert "billing" in out and "multitask-ranker" in out and "re@90" in out


def test_feedback_is_used_in_training_and_shown_by_evaluate(ranker_artifact, cohort_dir, tmp_path, capsys):
    from fhir_assist.adapter.timeline import load_cohort

    cohort = load_cohort(cohort_dir, progress=False)
    lines = []
    for t in cohort.timelines[:30]:
        for v in t.visits[:1]:
            for d in v.diagnoses[:1]:
                lines.append({"patient": t.patient_id, "encounter": v.encounter_id, "system": d.system,
                              "code": d.code, "label": 0, "source": "coder-review", "user": "c1",
                              "at": "2026-01-01T00:00:00Z", "model_version": "x"})
            lines.append({"patient": t.patient_id, "encounter": v.encounter_id,
                          "system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9", "label": 1,
                          "source": "cds-feedback", "user": "c2", "at": "2026-01-01T00:00:00Z",
                          "model_version": "x"})
    fb = tmp_path / "feedback.jsonl"
    fb.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    out = tmp_path / "with-feedback"
    assert main(["train", "icd-ranker", "--data", str(cohort_dir), "--out", str(out), "--epochs", "2",
                 "--feedback", str(fb), "--device", "cpu"]) == 0
    report = _evaluate(capsys, ranker_artifact, "--data", cohort_dir, "--json", "--feedback", fb)
    names = [m["model"] for m in report["models"]]
    assert names[-1] == "multitask-ranker+feedback"


@pytest.fixture(scope="module")
def text_artifact(cohort_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "text"
    assert main(["train", "text-coder", "--data", str(cohort_dir), "--out", str(out), "--epochs", "1",
                 "--device", "cpu"]) == 0
    return out


def test_text_coder_train_and_evaluate(text_artifact, cohort_dir, capsys):
    report = _evaluate(capsys, text_artifact, "--data", cohort_dir, "--json")
    _check_shape(report, ["text-coder", "frequency", "logistic", "previous-visit", "problem-list"])


CUT_KEYS = {"mean_recommended", "p90_recommended", "recall_at_cut", "precision_at_cut", "re_at_cut"}


def test_evaluate_fused_list_reports_the_cut_of_every_model_and_the_calibration(
        ranker_artifact, text_artifact, cohort_dir, capsys):
    report = _evaluate(capsys, ranker_artifact, "--data", cohort_dir, "--json", "--fuse-with", text_artifact,
                       "--min-probability", "0.05")
    by_name = {m["model"]: m for m in report["models"]}
    for name in ("multitask-ranker", "fused", "fused, stacker only (no rank-band recalibration)",
                 "text-coder (visits with a note)", "ranker+text (higher score, before fusion)"):
        cut = by_name[name]["cut"]
        assert CUT_KEYS <= set(cut["per_encounter"]) and CUT_KEYS <= set(cut["global_k"]), name
        assert CUT_KEYS <= set(cut["expected_recall"]), name
        # the default per-encounter rule: a probability threshold fitted on the validation visits
        assert cut["per_encounter"]["rule"].startswith("probability threshold"), name
        assert 0 < cut["per_encounter"]["threshold"] < 1, name
        floor = cut["per_encounter_floor"]
        assert floor["min_probability"] == 0.05
        # The floor only ever shortens the expected-recall list.
        assert floor["mean_recommended"] <= cut["expected_recall"]["mean_recommended"], name
    for rule in ("previous-visit (rule)", "earlier-visits (rule)", "problem-list (rule)"):
        assert CUT_KEYS <= set(by_name[rule]["cut"]["per_encounter"])
    fusion = report["fusion"]
    assert {"ece_before", "ece_stacked", "ece_after"} <= set(fusion)
    assert len(fusion["rank_calibration"]["maps"]) == len(fusion["rank_calibration"]["edges"])
    assert [b["ranks"] for b in fusion["bands_after"]][0] == "1-2"


def test_user_errors_are_reported_without_traceback(ranker_artifact, tmp_path, capsys):
    assert main(["evaluate", str(ranker_artifact), "--data", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "icd-ranker", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "a")]) == 2
