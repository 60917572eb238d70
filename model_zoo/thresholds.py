"""Decision thresholds chosen on validation data.

MICRON (Sec. 3.5): for every medicine, the cut-off thresholds of its validation
ROC curve are listed in descending order; the addition threshold δ1 is the
average over medicines of the 5th percentile of that list (a high score) and
the removal threshold δ2 the average of the 95th percentile (a low score), so
1 ≥ δ1 ≥ δ2 ≥ 0. Per-medicine values are kept too. `grid_search_thresholds`
is the alternative when that rule suits a cohort badly: (δ1, δ2) maximising
validation F1. A single global pair, though, is set by the frequent medicines
that are rarely stopped, and ends at δ2 = 0 (never stop anything);
`search_change_cutoffs` (the default for MICRON and the change baselines) picks a
pair per medicine on validation, under a floor on the share of real stops caught,
optionally for F1 less a penalty on the DDI rate (DDI control).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from .stored_config import StoredConfig

__all__ = ["roc_cutoffs", "MicronThresholds", "micron_thresholds", "best_f1_threshold",
           "grid_search_thresholds"]


def roc_cutoffs(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The thresholds at the corners of the ROC curve of one binary problem, in
    descending order (collinear points dropped, no artificial +inf first point).
    Empty when the labels hold a single class."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if labels.all() or not labels.any():
        return np.empty(0)
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    ends = np.r_[np.nonzero(np.diff(scores))[0], scores.shape[0] - 1]
    tps = np.cumsum(labels)[ends]
    fps = (ends + 1) - tps
    thresholds = scores[ends]
    if thresholds.shape[0] > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        thresholds = thresholds[keep]
    return thresholds


@dataclass
class MicronThresholds(StoredConfig):
    """δ1 (add) and δ2 (remove), global and per medicine (probability scale)."""

    add: float
    remove: float
    per_medicine_add: list[float] = field(default_factory=list)
    per_medicine_remove: list[float] = field(default_factory=list)
    mode: str = "global"  # "global" (the paper's averages) or "per-medicine"
    add_percentile: float = 5.0
    remove_percentile: float = 95.0
    # how add/remove were chosen: "roc-percentile" | "validation-grid" | "per-medicine"
    rule: str = "roc-percentile"
    validation_f1: dict = field(default_factory=dict)  # validation F1 of each rule tried
    removal_recall: float | None = None   # share of real validation stops caught ("per-medicine")
    tuned_medicines: int = 0              # medicines with their own pair ("per-medicine")
    validation_ddi_rate: float | None = None  # of the whole rule, when fitted with a DDI matrix
    ddi_stop_below: float = 0.0  # stop the weaker of two interacting medicines below this σ (0: off)
    # how far the per-medicine search went, chosen on held-out validation patients:
    # "per-medicine", "global" (one pair for all) or "no-change" (never add or stop)
    search_scope: str = "per-medicine"
    # MICRON's state at the first visit: the given list's medicines start at a logit of at
    # least this (None: not anchored, as in artifacts from before it)
    first_list_floor: float | None = None

    def vectors(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(δ1, δ2) as arrays of length `size` for the active mode."""
        if self.mode == "per-medicine" and len(self.per_medicine_add) == size:
            return np.asarray(self.per_medicine_add), np.asarray(self.per_medicine_remove)
        return np.full(size, self.add), np.full(size, self.remove)


def micron_thresholds(scores: np.ndarray, labels: np.ndarray, *, add_percentile: float = 5.0,
                      remove_percentile: float = 95.0, skip: Iterable[int] = (0,),
                      mode: str = "global") -> MicronThresholds:
    """δ1/δ2 from validation probabilities `scores` [visits, |M|] and 0/1 `labels`.

    Percentiles are positions in each medicine's descending cut-off list (5 → near
    the top, a high threshold). Medicines whose validation labels hold one class
    (and `skip`, the OOV slot) get the global values.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    size = scores.shape[1]
    skip = set(skip)
    add_values = np.full(size, np.nan)
    remove_values = np.full(size, np.nan)
    for medicine in range(size):
        if medicine in skip:
            continue
        cutoffs = roc_cutoffs(scores[:, medicine], labels[:, medicine])
        if cutoffs.size == 0:
            continue
        ascending = cutoffs[::-1]
        # position p% into the descending list == (100-p)th percentile of the values
        add_values[medicine] = np.percentile(ascending, 100 - add_percentile)
        remove_values[medicine] = np.percentile(ascending, 100 - remove_percentile)
    known = ~np.isnan(add_values)
    if known.any():
        delta_add = float(np.mean(add_values[known]))
        delta_remove = float(np.mean(remove_values[known]))
    else:  # no usable validation labels: the usual 0.5 for both (full-set prediction)
        delta_add = delta_remove = 0.5
    delta_remove = min(delta_remove, delta_add)
    add_values[~known] = delta_add
    remove_values[~known] = delta_remove
    remove_values = np.minimum(remove_values, add_values)
    return MicronThresholds(add=delta_add, remove=delta_remove,
                            per_medicine_add=[float(v) for v in add_values],
                            per_medicine_remove=[float(v) for v in remove_values],
                            mode=mode, add_percentile=add_percentile,
                            remove_percentile=remove_percentile)


def best_f1_threshold(scores: np.ndarray, labels: np.ndarray,
                      candidates: Iterable[float] | None = None) -> tuple[float, float]:
    """(threshold, mean per-row F1) maximising the mean per-row set F1 of
    `scores >= threshold` against 0/1 `labels` ([rows, items])."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    grid = np.asarray(list(candidates) if candidates is not None else np.linspace(0.05, 0.95, 37))
    best = (0.5, -1.0)
    true_counts = labels.sum(1)
    for threshold in grid:
        predicted = scores >= threshold
        hits = (predicted & labels).sum(1)
        sizes = predicted.sum(1) + true_counts
        f1 = np.where(sizes == 0, 1.0, 2 * hits / np.maximum(sizes, 1))
        value = float(f1.mean())
        if value > best[1]:
            best = (float(threshold), value)
    return best


# ----------------------------------------------------------------------------- coding (ICD/CCS)
# Per-level μF1 thresholds for automatic coding, and the RE@R-oriented list length a
# coder should read for assisted coding. Scores/labels are [encounters, labels] arrays.

def f1_thresholds_per_level(scores, labels, slices) -> dict:
    """{level: threshold maximising μF1 of that level's columns}, fitted on validation.
    `slices`: {level: slice of columns}."""
    from model_zoo.metrics.ranking import best_threshold_f1_micro

    s, y = np.asarray(scores), np.asarray(labels)
    return {level: best_threshold_f1_micro(s[:, sl], y[:, sl])[0] for level, sl in slices.items()}


def recall_cutoff(scores, labels, target_recall: float = 0.9, max_k: int | None = None):
    """Smallest list length K whose sample-averaged Recall@K reaches `target_recall`
    (None when no encounter has a positive; the full list length when even that falls
    short, e.g. labels never seen in training)."""

    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels) > 0.5
    keep = y.any(axis=1)
    if not keep.any():
        return None
    s, y = s[keep], y[keep]
    order = np.argsort(-s, axis=1, kind="stable")
    hits = np.take_along_axis(y, order, axis=1)
    mean_recall = (np.cumsum(hits, axis=1) / hits.sum(axis=1, keepdims=True)).mean(axis=0)
    reached = np.nonzero(mean_recall >= target_recall - 1e-12)[0]
    k = int(reached[0]) + 1 if len(reached) else hits.shape[1]
    return min(k, max_k) if max_k else k


def stratified_recall_cutoffs(scores, labels, strata, target_recall: float = 0.9,
                              min_samples: int = 20) -> dict:
    """Cut-offs per stratum of "encounters like this one" (e.g. bucketed number of
    input codes): {"overall": K, "by_stratum": {stratum: K}}. Strata with fewer than
    `min_samples` validation encounters with a positive fall back to the overall K."""

    s, y = np.asarray(scores), np.asarray(labels) > 0.5
    strata = np.asarray(strata)
    overall = recall_cutoff(s, y, target_recall)
    by_stratum = {}
    for value in sorted(set(strata.tolist())):
        rows = (strata == value) & y.any(axis=1)
        k = recall_cutoff(s[rows], y[rows], target_recall) if rows.sum() >= min_samples else None
        by_stratum[str(value)] = overall if k is None else k
    return {"overall": overall, "by_stratum": by_stratum, "target_recall": target_recall}
__all__ += ["f1_thresholds_per_level", "recall_cutoff", "stratified_recall_cutoffs"]


def grid_search_thresholds(evaluate, add_grid: Iterable[float] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
                           remove_grid: Iterable[float] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
                           ) -> tuple[float, float, float]:
    """(δ1, δ2, value) maximising `evaluate(δ1, δ2)` over the grid with δ1 ≥ δ2.

    Used when the ROC-percentile rule does not suit a cohort: the pair is chosen
    on validation patients, never on test patients."""
    best: tuple[float, float, float] | None = None
    for add in add_grid:
        for remove in remove_grid:
            if remove > add:
                continue
            value = float(evaluate(add, remove))
            if best is None or value > best[2]:
                best = (float(add), float(remove), value)
    if best is None:
        raise ValueError("empty threshold grid")
    return best


# ----------------------------------------------------------------------------- per-medicine change cut-offs
# Medication change (MICRON and the change baselines): each medicine is added when its
# "add" score reaches a_j and stopped when its "remove" score reaches r_j. One global
# pair lets the frequent, rarely stopped medicines decide for everyone (in practice:
# never remove); per-medicine pairs, searched on validation, let a drug that really
# gets stopped be stopped. A floor on removal recall (over the real stops of the
# validation visits, previous prescription → this one) keeps removals in play when
# they cost a little F1, and rare medicines keep the global pair.

@dataclass
class ChangeSearchData:
    """Validation visits padded to [patients, T] (t = 0 is the given first visit).

    add_scores / remove_scores [P, T, |M|]: higher means "add" / "stop"; truth
    [P, T, |M|] the prescribed sets; valid [P, T] real visits."""

    add_scores: np.ndarray
    remove_scores: np.ndarray
    truth: np.ndarray
    valid: np.ndarray

    @classmethod
    def from_patients(cls, add_scores: list, remove_scores: list, truth: list) -> "ChangeSearchData":
        """Lists (one per patient) of [T_p, |M|] arrays; row 0 is never scored."""
        patients = len(truth)
        length = max((t.shape[0] for t in truth), default=1)
        size = truth[0].shape[1] if truth else 0
        data = cls(np.zeros((patients, length, size), np.float32),
                   np.zeros((patients, length, size), np.float32),
                   np.zeros((patients, length, size), bool), np.zeros((patients, length), bool))
        for p, (a, r, y) in enumerate(zip(add_scores, remove_scores, truth)):
            n = y.shape[0]
            data.add_scores[p, :n], data.remove_scores[p, :n] = a, r
            data.truth[p, :n], data.valid[p, :n] = y, True
        return data


def _membership(data: ChangeSearchData, medicine: int, add_cuts: np.ndarray,
                remove_cuts: np.ndarray, remove_wins: bool) -> np.ndarray:
    """[G, P, T] membership of one medicine under the paper's protocol (base = previous
    prediction) for G candidate (add, remove) cut-off pairs."""
    a_scores = data.add_scores[:, :, medicine]
    r_scores = data.remove_scores[:, :, medicine]
    out = np.zeros((add_cuts.shape[0],) + a_scores.shape, bool)
    current = np.broadcast_to(data.truth[:, 0, medicine], out.shape[:2]).copy()
    out[:, :, 0] = current
    a_cut, r_cut = add_cuts[:, None], remove_cuts[:, None]
    for t in range(1, a_scores.shape[1]):
        add = a_scores[None, :, t] >= a_cut
        remove = r_scores[None, :, t] >= r_cut
        if remove_wins:          # MICRON: (M̃ ∪ N) \ O
            current = (current | add) & ~remove
        else:                    # change baselines: conflicting decisions cancel
            current = np.where(add & ~remove, True, np.where(remove & ~add, False, current))
        out[:, :, t] = current
    return out


def _mean_f1(hits: np.ndarray, predicted: np.ndarray, true: np.ndarray, valid: np.ndarray,
             objective: str = "f1") -> np.ndarray:
    """Mean over patients of the mean per-visit set F1 (visits t ≥ 1), or of
    (F1 + Jaccard) / 2 with objective="f1+jaccard"; leading axes kept."""
    sizes = predicted + true
    f1 = np.where(sizes == 0, 1.0, 2.0 * hits / np.maximum(sizes, 1))
    if objective == "f1+jaccard":
        union = sizes - hits
        f1 = 0.5 * (f1 + np.where(union == 0, 1.0, hits / np.maximum(union, 1)))
    elif objective != "f1":
        raise ValueError(f"unknown threshold objective {objective!r}")
    mask = valid[:, 1:]
    per_patient = (f1[..., 1:] * mask).sum(-1) / np.maximum(mask.sum(-1), 1)
    scored = mask.any(-1)
    return (per_patient * scored).sum(-1) / max(int(scored.sum()), 1)


@dataclass
class ChangeCutoffs:
    add: np.ndarray            # [|M|] add cut-off on the add score
    remove: np.ndarray         # [|M|] stop cut-off on the remove score
    global_pair: tuple[float, float]
    validation_f1: float       # the search objective (less the DDI penalty, if any)
    removal_recall: float      # over real validation stops
    tuned: int                 # medicines with their own pair (others: the global pair)
    validation_ddi_rate: float | None = None   # pooled DDI rate of the chosen cut-offs


def interaction_partners(ddi: np.ndarray | None, size: int, skip: Iterable[int] = (0,)
                         ) -> list[frozenset[int]]:
    """partners[i]: the medicines that interact with medicine i, from a |M|×|M| 0/1 matrix
    (`skip`, the OOV slot, never a partner)."""
    if ddi is None:
        return [frozenset()] * size
    matrix = np.asarray(ddi) > 0
    if matrix.shape != (size, size):
        raise ValueError(f"DDI matrix is {matrix.shape}, the model has {size} medicines")
    skip = set(skip)
    return [frozenset(int(j) for j in np.flatnonzero(row) if j != i and j not in skip)
            for i, row in enumerate(matrix)]


class _InteractionCounter:
    """Interacting pairs per validation visit while cut-offs change one medicine at a time.

    Only medicines with a partner in the DDI matrix are tracked, so a cohort without
    interactions (or a search without a penalty) pays nothing."""

    def __init__(self, ddi: np.ndarray | None, medicines: Iterable[int], scored: np.ndarray):
        medicines = set(medicines)
        self.partners: dict[int, list[int]] = {}
        if ddi is not None:
            every = interaction_partners(ddi, len(ddi), skip=())
            for m in sorted(medicines):
                if every[m] & medicines:
                    self.partners[m] = sorted(every[m] & medicines)
        self.scored = scored            # [P, T] visits that count (real, t ≥ 1)
        self.members: dict[int, np.ndarray] = {}   # current [P, T] membership of tracked medicines
        self.pairs = np.zeros(scored.shape)        # interacting pairs per visit, current cut-offs

    def tracks(self, medicine: int) -> bool:
        return medicine in self.partners

    def count(self, members: dict[int, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        """Interacting pairs per visit ([..., P, T]) of memberships given per tracked medicine."""
        pairs = np.zeros(shape)
        for m, partners in self.partners.items():
            for j in partners:
                if j > m:
                    pairs += members[m] & members[j]
        return pairs

    def start(self, members: dict[int, np.ndarray]) -> None:
        """Take the current memberships ([P, T] per tracked medicine)."""
        self.members = members
        self.pairs = self.count(members, self.scored.shape)

    def candidates(self, medicine: int, member: np.ndarray) -> np.ndarray:
        """[G, P, T] pair counts if `medicine` took each candidate membership [G, P, T]."""
        if medicine not in self.partners:
            return np.broadcast_to(self.pairs, member.shape)
        partners = sum(self.members[j].astype(np.int32) for j in self.partners[medicine])
        base = self.pairs - self.members[medicine] * partners
        return base[None] + member * partners[None]

    def apply(self, medicine: int, member: np.ndarray, pairs: np.ndarray) -> None:
        if medicine in self.partners:
            self.members[medicine] = member
        self.pairs = np.array(pairs)

    def rate(self, predicted: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """Pooled DDI rate (interacting / all unordered pairs over scored visits); leading axes kept."""
        all_pairs = (predicted * (predicted - 1) / 2 * self.scored).sum((-2, -1))
        return (pairs * self.scored).sum((-2, -1)) / np.maximum(all_pairs, 1)


class _CutoffSearch:
    """State of the per-medicine search: the chosen candidate pair of every medicine and
    the per-visit hits / predicted counts / DDI pairs they add up to."""

    def __init__(self, data: ChangeSearchData, pairs: list[tuple[float, float]], *, skip,
                 remove_wins: bool, objective: str, ddi, ddi_penalty: float):
        self.data, self.pairs = data, pairs
        self.add_cuts = np.asarray([p[0] for p in pairs])
        self.remove_cuts = np.asarray([p[1] for p in pairs])
        self.remove_wins, self.objective, self.ddi_penalty = remove_wins, objective, ddi_penalty
        skip = set(skip)
        self.medicines = [m for m in range(data.truth.shape[2]) if m not in skip]
        self.truth = data.truth & data.valid[..., None]
        self.true_counts = self.truth.sum(-1).astype(np.float64)
        # real stops: prescribed at t−1, not at t (t ≥ 1)
        self.stops = self.truth[:, :-1] & ~self.truth[:, 1:] & data.valid[:, 1:, None]
        self.total_stops = max(int(self.stops.sum()), 1)
        self.catches = {m: self._stop_hits(m) for m in self.medicines}
        scored = data.valid.copy()
        scored[:, 0] = False
        self.interactions = _InteractionCounter(ddi if ddi_penalty > 0 else None, self.medicines, scored)

    def _stop_hits(self, medicine: int) -> np.ndarray:   # [G] stops caught by each pair
        events = self.stops[:, :, medicine]
        scores = self.data.remove_scores[:, 1:, medicine][events]
        return (scores[None, :] >= self.remove_cuts[:, None]).sum(-1)

    def membership(self, m: int) -> np.ndarray:   # recomputed, not stored: [G, P, T] per medicine adds up
        return _membership(self.data, m, self.add_cuts, self.remove_cuts, self.remove_wins) & self.data.valid[None]

    def score(self, hits, predicted, ddi_pairs) -> np.ndarray:
        value = _mean_f1(hits, predicted, self.true_counts[None], self.data.valid, self.objective)
        if self.ddi_penalty > 0:
            value = value - self.ddi_penalty * self.interactions.rate(predicted, ddi_pairs)
        return value

    def no_change_value(self) -> float:
        """The objective of keeping the first visit's list for ever (repeat-last under the
        paper's protocol), the floor below which no search step may go."""
        kept = np.broadcast_to(self.truth[:, :1], self.truth.shape) & self.data.valid[..., None]
        hits = (kept & self.truth).sum(-1).astype(np.float64)
        pairs = np.zeros(self.data.valid.shape)
        if self.ddi_penalty > 0:
            pairs = self.interactions.count({m: kept[:, :, m] for m in self.interactions.partners},
                                            pairs.shape)
        return float(self.score(hits[None], kept.sum(-1)[None].astype(np.float64), pairs[None])[0])

    def start_global(self) -> None:
        """Every medicine on the one pair that is best summed over all of them."""
        G, (P, T) = len(self.pairs), self.data.valid.shape
        hits, predicted, caught, tracked = np.zeros((G, P, T)), np.zeros((G, P, T)), np.zeros(G), {}
        for m in self.medicines:
            member = self.membership(m)
            hits += member & self.truth[None, :, :, m]
            predicted += member
            caught += self.catches[m]
            if self.interactions.tracks(m):
                tracked[m] = member
        value = self.score(hits, predicted, self.interactions.count(tracked, hits.shape))
        self.best = int(np.argmax(value))
        self.choice = {m: self.best for m in self.medicines}
        self.hits, self.predicted = hits[self.best].copy(), predicted[self.best].copy()
        self.caught, self.value = float(caught[self.best]), float(value[self.best])
        self.interactions.start({m: member[self.best] for m, member in tracked.items()})

    def options(self, m: int):
        """(member [G, P, T], objective [G], caught [G], own member [P, T], DDI pairs
        [G, P, T]) of medicine m with the other medicines as they are now."""
        member = self.membership(m)
        old = member[self.choice[m]]
        own = self.truth[:, :, m]
        pairs = self.interactions.candidates(m, member)
        value = self.score((self.hits - (old & own))[None] + (member & own[None]),
                           (self.predicted - old)[None] + member, pairs)
        return member, value, self.caught - self.catches[m][self.choice[m]] + self.catches[m], old, pairs

    def apply(self, m: int, candidate: int, member, value, caught, old, pairs) -> None:
        own = self.truth[:, :, m]
        self.hits = self.hits - (old & own) + (member[candidate] & own)
        self.predicted = self.predicted - old + member[candidate]
        self.caught, self.value = float(caught[candidate]), float(value[candidate])
        self.interactions.apply(m, member[candidate], pairs[candidate])
        self.choice[m] = candidate

    def ascend(self, tunable: list[int], passes: int, floor_hits: float) -> None:
        """Coordinate ascent on the objective, never losing caught stops below the floor."""
        for _ in range(passes):
            changed = False
            for m in tunable:
                found = self.options(m)
                ok = found[2] >= min(floor_hits, self.caught) - 1e-9
                candidate = int(np.argmax(np.where(ok, found[1], -np.inf)))
                if found[1][candidate] > self.value + 1e-9 and candidate != self.choice[m]:
                    self.apply(m, candidate, *found)
                    changed = True
            if not changed:
                return

    def _cheapest(self, m: int, lowest: float):
        """(cost per stop gained, candidate, options) of m's cheapest move that catches more
        stops and keeps the objective at or above `lowest`; None when there is none."""
        found = self.options(m)
        gain = found[2] - self.caught
        usable = (gain > 0) & (found[1] >= lowest - 1e-12)
        if not usable.any():
            return None
        cost = np.where(usable, (self.value - found[1]) / np.maximum(gain, 1), np.inf)
        return float(cost.min()), int(np.argmin(cost)), found

    def meet_floor(self, tunable: list[int], floor_hits: float, lowest: float) -> None:
        """While caught stops are below the floor: per round, the cheapest quarter of the
        medicines' moves (objective lost per stop gained), never below `lowest`."""
        while self.caught < floor_hits - 1e-9:
            moves = sorted((found[0], m) for m in tunable
                           if (found := self._cheapest(m, lowest)) is not None)
            if not moves:
                return
            for _, m in moves[: max(1, len(moves) // 4)]:
                found = self._cheapest(m, lowest)
                if found is not None:
                    self.apply(m, found[1], *found[2])
                if self.caught >= floor_hits - 1e-9:
                    return


def search_change_cutoffs(data: ChangeSearchData, add_grid: Iterable[float],
                          remove_grid: Iterable[float], *, removal_recall_floor: float = 0.0,
                          min_support: int = 8, remove_wins: bool = True, skip: Iterable[int] = (0,),
                          allowed=None, passes: int = 2, objective: str = "f1",
                          ddi: np.ndarray | None = None, ddi_penalty: float = 0.0,
                          floor_above_no_change: bool = True) -> ChangeCutoffs:
    """Per-medicine (add, remove) cut-offs maximising validation F1 (paper protocol)
    subject to removal recall ≥ `removal_recall_floor` on real stops.

    First the best global pair; then coordinate ascent, medicine by medicine (most
    frequent first), over the same grid, keeping a change when F1 rises (and caught
    stops stay at or above the floor); then, while removal recall is below the
    floor, the medicines whose extra removals cost the least F1 per stop caught get
    more aggressive pairs — but, with `floor_above_no_change`, only while the objective
    stays at or above that of never changing the first list (repeat-last): where
    consecutive lists barely change, stops are rare and hard to tell from
    continuations, and a floor met at any price made the rule worse than repeating
    the list. Medicines with fewer than `min_support` validation visits that
    prescribe or stop them keep the global pair. `allowed(add, remove) -> bool`
    filters pairs.

    With `ddi` (|M|×|M|) and `ddi_penalty` β > 0 the objective becomes F1 − β · DDI rate
    (pooled, as the metric): F1 alone rewards copying the interacting pairs the
    validation prescriptions contain, most of them pairs carried on from an earlier
    visit that a per-medicine stop cut-off tuned on F1 never stops."""
    pairs = [(float(a), float(r)) for a in add_grid for r in remove_grid
             if allowed is None or allowed(a, r)]
    if not pairs:
        raise ValueError("empty threshold grid")
    search = _CutoffSearch(data, pairs, skip=skip, remove_wins=remove_wins, objective=objective,
                           ddi=ddi, ddi_penalty=ddi_penalty)
    search.start_global()
    support = search.truth.sum((0, 1)) + search.stops.sum((0, 1))
    tunable = [m for m in sorted(search.medicines, key=lambda m: -support[m]) if support[m] >= min_support]
    floor_hits = removal_recall_floor * search.total_stops
    search.ascend(tunable, passes, floor_hits)
    lowest = min(search.no_change_value(), search.value) if floor_above_no_change else -np.inf
    search.meet_floor(tunable, floor_hits, lowest)
    add = np.full(data.truth.shape[2], search.add_cuts[search.best])
    remove = np.full(data.truth.shape[2], search.remove_cuts[search.best])
    for m in search.medicines:
        add[m], remove[m] = search.add_cuts[search.choice[m]], search.remove_cuts[search.choice[m]]
    ddi_rate, value = None, search.value
    if ddi_penalty > 0:
        ddi_rate = float(search.interactions.rate(search.predicted, search.interactions.pairs))
        value += ddi_penalty * ddi_rate
    return ChangeCutoffs(add=add, remove=remove, global_pair=pairs[search.best], validation_f1=value,
                         removal_recall=search.caught / search.total_stops,
                         tuned=sum(search.choice[m] != search.best for m in search.medicines),
                         validation_ddi_rate=ddi_rate)


__all__ += ["ChangeSearchData", "ChangeCutoffs", "search_change_cutoffs", "interaction_partners"]
