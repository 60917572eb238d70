"""One fused, calibrated coding list for a visit (a "coding-fusion" artifact at serving time).

    fused = FusedCoder.load("coding-fusion")
    if fused.fits(ranker, text_coder):
        result = fused.suggest(visit, timeline, ranker, text_coder, target_recall=0.9)

Each billing code of the ranker's label space gets one probability from the stacker
(`model_zoo.fusion`), fed by the ranker's calibrated score, the text coder's where the visit
has a note, whether the code was recorded at the previous or an earlier visit, and whether it
is on the active problem list; then recalibrated by its rank in the encounter's list
(`model_zoo.rank_calibration`, fitted on validation; an artifact stored before it keeps the
stacker's probabilities). The list is cut per encounter at the probability threshold that reached
the target recall on validation (`model_zoo.recall_cut`; the expected-recall rule for an artifact
stored before it, or on request), optionally also where the next code falls below a probability
floor; each code carries the evidence of every source that spoke for it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_zoo.fusion import Stacker
from model_zoo.rank_calibration import RankBandCalibration
from model_zoo.recall_cut import list_cut, precision_floor

from . import fusion as F
from .coding import CodeSuggestion, CodingSuggester, CodingSuggestions

__all__ = ["FusedCoder", "FUSED_NAME"]

FUSED_NAME = "fused"


class FusedCoder:
    def __init__(self, artifact) -> None:
        hp = artifact.hyperparameters
        if hp.get("kind") != "coding-fusion":
            raise ValueError(f"{artifact.path} is not a coding-fusion artifact")
        self.artifact = artifact
        self.stacker = Stacker.from_dict(hp["stacker"])
        self.rank_calibration = RankBandCalibration.from_dict(hp.get("rank_calibration"))
        self.ranker_version = hp.get("ranker_version")
        self.text_version = hp.get("text_version")
        billing = ((artifact.thresholds or {}).get("cutoffs") or {}).get(FUSED_NAME, {}).get("billing", {})
        self.precision_curve = billing.get("precision_curve")
        self.global_k = billing.get("overall")
        self.recall_thresholds = billing.get("recall_thresholds")   # absent before the threshold rule
        self._columns: tuple | None = None

    @classmethod
    def load(cls, artifact: str | Path | Any) -> "FusedCoder":
        from model_zoo import registry

        return cls(artifact if hasattr(artifact, "hyperparameters") else registry.load(artifact))

    @property
    def model_version(self) -> str:
        return self.artifact.version

    def fits(self, ranker: CodingSuggester, text: CodingSuggester | None) -> bool:
        """Fitted on exactly these two models' scores (else its weights mean nothing)."""
        return ranker.model_version == self.ranker_version and (
            text is None or text.model_version == self.text_version)

    def write_floor(self, precision: float) -> float:
        return precision_floor(self.precision_curve, precision)

    def suggest(self, visit, patient, ranker: CodingSuggester, text: CodingSuggester | None, *,
                top: int = 50, target_recall: float = 0.9, rule: str = "per-encounter",
                evidence: bool = True, min_probability: float | None = None) -> CodingSuggestions:
        r_probs, r_inputs, unknown, model_input = ranker.billing_probabilities(visit, patient)
        n = r_probs.size
        t_probs, known, t_inputs = np.zeros(n), np.zeros(n, dtype=bool), 0
        if text is not None and visit.notes:
            probs, t_inputs, _, _ = text.billing_probabilities(visit, patient)
            if self._columns is None:
                self._columns = F.text_columns(text.labels, ranker.labels)
            src, dst = self._columns
            t_probs[dst], known[dst] = probs[src], t_inputs > 0
        earlier = [v for v in (patient.visits if patient is not None else []) if v is not visit
                   and (v.start is None or visit.start is None or v.start <= visit.start)]
        history = F.history_columns(earlier + [visit], ranker.labels, patient)[visit.encounter_id]
        rows = F.feature_rows(r_probs[None], t_probs[None], known[None], [history])[0]
        fused, order = self.rank_calibration.ranked(self.stacker.predict(rows))
        cutoff_k, expected, threshold = list_cut(fused[order], target_recall, rule, self.recall_thresholds)
        if min_probability and rule != "global-k":
            # Stop where each further code is very unlikely; say the recall that reaches.
            cutoff_k = max(min(cutoff_k, int((fused >= min_probability).sum())), 1)
            expected = float(fused[order][:cutoff_k].sum() / max(fused.sum(), 1e-12))
        if rule == "global-k":
            cutoff_k = self.global_k
            expected = float(fused[order][: cutoff_k or 0].sum() / max(fused.sum(), 1e-12))
        k = min(top, n)
        start = ranker.labels.slices()["billing"].start
        columns = (order[:k] + start).tolist()
        # With `evidence`, attribution for the recommended codes only; a caller that shows
        # fewer asks `ranker.add_evidence` for exactly those afterwards.
        attributions = ranker._evidence(model_input, columns[: cutoff_k or 0]) if evidence and cutoff_k else []
        suggestions, by_code = [], {}
        top_order = order[:k]
        # Plain Python numbers for the per-code loop: the same values, formatted the same.
        positions, r_top, t_top = top_order.tolist(), r_probs[top_order].tolist(), t_probs[top_order].tolist()
        known_top, fused_top = known[top_order].tolist(), fused[top_order].tolist()
        previous, earlier_codes, problems = history[0], history[1], history[2]
        for rank, (i, col, r, t, on_note, score) in enumerate(
                zip(positions, columns, r_top, t_top, known_top, fused_top), 1):
            head, system, code, display = ranker.column_code(col)
            # The patient's own record first, then each model's score (a coder checks those first).
            ev = []
            if i in problems:
                ev.append(("history", "on the active problem list", 1.0))
            if i in previous:
                ev.append(("history", "recorded at the previous visit", 1.0))
            elif i in earlier_codes:
                ev.append(("history", "recorded at an earlier visit", 1.0))
            ev.append(("ranker", f"score {r:.2f}", round(r, 4)))
            if on_note:
                ev.append(("text-coder", f"score {t:.2f} on the note", round(t, 4)))
            if rank <= len(attributions):
                ev += attributions[rank - 1]
            suggestions.append(CodeSuggestion(system=system, code=code, display=display, level=head, score=score,
                                              rank=rank, recommended=cutoff_k is not None and rank <= cutoff_k,
                                              evidence=ev))
            by_code[(system, code)] = col
        return CodingSuggestions(suggestions, cutoff_k, target_recall, self.model_version, unknown,
                                 expected_recall=expected, score_total=float(fused.sum()), cut_rule=rule,
                                 cut_threshold=threshold if rule == "per-encounter" else None,
                                 n_inputs=r_inputs + t_inputs,
                                 model_input=model_input, columns=by_code)

