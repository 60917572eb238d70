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


def search_change_cutoffs(data: ChangeSearchData, add_grid: Iterable[float],
                          remove_grid: Iterable[float], *, removal_recall_floor: float = 0.0,
                          min_support: int = 8, remove_wins: bool = True, skip: Iterable[int] = (0,),
                          allowed=None, passes: int = 2, objective: str = "f1",
                          ddi: np.ndarray | None = None, ddi_penalty: float = 0.0) -> ChangeCutoffs:
    """Per-medicine (add, remove) cut-offs maximising validation F1 (paper protocol)
    subject to removal recall ≥ `removal_recall_floor` on real stops.

    First the best global pair; then coordinate ascent, medicine by medicine (most
    frequent first), over the same grid, keeping a change when F1 rises (and caught
    stops stay at or above the floor); then, while removal recall is below the
    floor, the medicines whose extra removals cost the least F1 per stop caught get
    more aggressive pairs. Medicines with fewer than `min_support` validation visits
    that prescribe or stop them keep the global pair. `allowed(add, remove) -> bool` filters pairs.

    With `ddi` (|M|×|M|) and `ddi_penalty` β > 0 the objective becomes F1 − β · DDI rate
    (pooled, as the metric): F1 alone rewards copying the interacting pairs the
    validation prescriptions contain, most of them pairs carried on from an earlier
    visit that a per-medicine stop cut-off tuned on F1 never stops."""
    pairs = [(float(a), float(r)) for a in add_grid for r in remove_grid
             if allowed is None or allowed(a, r)]
    if not pairs:
        raise ValueError("empty threshold grid")
    add_cuts = np.asarray([p[0] for p in pairs])
    remove_cuts = np.asarray([p[1] for p in pairs])
    P, T, size = data.truth.shape
    skip = set(skip)
    truth = data.truth & data.valid[..., None]
    true_counts = truth.sum(-1).astype(np.float64)
    # real stops: prescribed at t−1, not at t (t ≥ 1)
    stops = truth[:, :-1] & ~truth[:, 1:] & data.valid[:, 1:, None]
    total_stops = max(int(stops.sum()), 1)

    def stop_hits(medicine: int) -> np.ndarray:   # [G] stops caught by each pair
        events = stops[:, :, medicine]
        scores = data.remove_scores[:, 1:, medicine][events]
        return (scores[None, :] >= remove_cuts[:, None]).sum(-1)

    medicines = [m for m in range(size) if m not in skip]
    def membership(m: int) -> np.ndarray:   # recomputed, not stored: [G, P, T] per medicine adds up
        return _membership(data, m, add_cuts, remove_cuts, remove_wins)

    catches = {m: stop_hits(m) for m in medicines}
    scored_visits = data.valid.copy()
    scored_visits[:, 0] = False
    interactions = _InteractionCounter(ddi if ddi_penalty > 0 else None, medicines, scored_visits)

    def score(hits, predicted, ddi_pairs) -> np.ndarray:
        value = _mean_f1(hits, predicted, true_counts[None], data.valid, objective)
        if ddi_penalty > 0:
            value = value - ddi_penalty * interactions.rate(predicted, ddi_pairs)
        return value

    # global pair: sum every medicine's contribution per candidate
    hits = np.zeros((len(pairs), P, T))
    predicted = np.zeros((len(pairs), P, T))
    caught = np.zeros(len(pairs))
    tracked = {}
    for m in medicines:
        member = membership(m) & data.valid[None]
        hits += member & truth[None, :, :, m]
        predicted += member
        caught += catches[m]
        if interactions.tracks(m):
            tracked[m] = member
    f1 = score(hits, predicted, interactions.count(tracked, hits.shape))
    best = int(np.argmax(f1))    # the floor is met below, medicine by medicine, where it costs least
    choice = {m: best for m in medicines}
    hits_now, predicted_now, caught_now = hits[best].copy(), predicted[best].copy(), float(caught[best])
    interactions.start({m: member[best] for m, member in tracked.items()})
    del tracked
    current_f1 = float(f1[best])
    floor_hits = removal_recall_floor * total_stops

    support = (truth.sum((0, 1)) + stops.sum((0, 1)))
    tunable = [m for m in sorted(medicines, key=lambda m: -support[m]) if support[m] >= min_support]

    def options(m: int):
        """(member [G, P, T], objective [G], caught [G], own member [P, T], DDI pairs
        [G, P, T]) of medicine m with the other medicines as they are now."""
        member = membership(m) & data.valid[None]
        old = member[choice[m]]
        base_hits = hits_now - (old & truth[:, :, m])
        base_predicted = predicted_now - old
        candidate_pairs = interactions.candidates(m, member)
        value = score(base_hits[None] + (member & truth[None, :, :, m]),
                      base_predicted[None] + member, candidate_pairs)
        return member, value, caught_now - catches[m][choice[m]] + catches[m], old, candidate_pairs

    def apply(m: int, candidate: int, member, value, caught_m, old, candidate_pairs) -> None:
        nonlocal hits_now, predicted_now, caught_now, current_f1
        hits_now = hits_now - (old & truth[:, :, m]) + (member[candidate] & truth[:, :, m])
        predicted_now = predicted_now - old + member[candidate]
        caught_now, current_f1 = float(caught_m[candidate]), float(value[candidate])
        interactions.apply(m, member[candidate], candidate_pairs[candidate])
        choice[m] = candidate

    # 1. coordinate ascent on the objective, never losing caught stops below the floor
    for _ in range(passes):
        changed = False
        for m in tunable:
            found = options(m)
            member, value, caught_m = found[:3]
            ok = caught_m >= min(floor_hits, caught_now) - 1e-9
            candidate = int(np.argmax(np.where(ok, value, -np.inf)))
            if value[candidate] > current_f1 + 1e-9 and candidate != choice[m]:
                apply(m, candidate, *found)
                changed = True
        if not changed:
            break
    # 2. below the floor: per round, each tunable medicine's cheapest move that catches
    # more stops (objective lost per stop gained), cheapest medicines first
    while caught_now < floor_hits - 1e-9:
        moves = []
        for m in tunable:
            member, value, caught_m = options(m)[:3]
            gain = caught_m - caught_now
            if not (gain > 0).any():
                continue
            cost = np.where(gain > 0, (current_f1 - value) / np.maximum(gain, 1), np.inf)
            moves.append((float(cost.min()), m))
        if not moves:
            break
        for _, m in sorted(moves)[: max(1, len(moves) // 4)]:
            found = options(m)
            value, caught_m = found[1], found[2]
            gain = caught_m - caught_now
            if not (gain > 0).any():
                continue
            cost = np.where(gain > 0, (current_f1 - value) / np.maximum(gain, 1), np.inf)
            apply(m, int(np.argmin(cost)), *found)
            if caught_now >= floor_hits - 1e-9:
                break
    add = np.full(size, add_cuts[best])
    remove = np.full(size, remove_cuts[best])
    for m in medicines:
        add[m], remove[m] = add_cuts[choice[m]], remove_cuts[choice[m]]
    ddi_rate = None
    if ddi_penalty > 0:
        ddi_rate = float(interactions.rate(predicted_now, interactions.pairs))
        current_f1 += ddi_penalty * ddi_rate
    return ChangeCutoffs(add=add, remove=remove, global_pair=pairs[best], validation_f1=current_f1,
                         removal_recall=caught_now / total_stops,
                         tuned=sum(choice[m] != best for m in medicines),
                         validation_ddi_rate=ddi_rate)


__all__ += ["ChangeSearchData", "ChangeCutoffs", "search_change_cutoffs", "interaction_partners"]
