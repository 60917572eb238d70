"""MICRON: recurrent residual medication-change prediction (tensors in, tensors out).

Training (paper Sec. 3.3–3.4) works on consecutive visit pairs (t−1, t):
    d_e = E_d d, p_e = E_p p                     (Eq. 1, embedding tables)
    h = NET_health([d_e ‖ p_e])                  (Eq. 2, affine)
    m̂(t−1) = NET_med(h(t−1)), m̂(t) = NET_med(h(t)), u(t) = NET_med(h(t) − h(t−1))
and minimises the four losses of Eq. 10 (`model_zoo.losses.micron_loss`).

Inference (Sec. 3.5) keeps a small per-patient `MicronState` — the medication
vector m̃, the medication set M̃ and the last health representation h — and
updates it from one new visit (Eq. 11–14):
    m̃(t) = m̃(t−1) + NET_med(h(t) − h(t−1)),  N = {σ(m̃) ≥ δ1},  O = {σ(m̃) ≤ δ2},
    M̃(t) = (M̃(t−1) ∪ N) \\ O.
DDI control at decision time (`interaction_stops`): of two interacting medicines
both in M̃(t), one the model gives σ(m̃) < `ddi_stop_below` is stopped too.
h(t) is computed from the new visit's codes alone (a sum of embedding rows), so
an update costs O(codes of the new visit + |M|), whatever the history length.
States serialise to a few kilobytes at most (`MicronState.to_bytes`, versioned)
for Redis; a state remembers the encounter that produced it and the state before
it, so a repeated call for the same encounter does not advance twice.
δ1/δ2 are per medicine by default (`fit_thresholds`).

Index conventions: every vocabulary reserves index 0 for out-of-vocabulary
codes; medication index 0 is never predicted.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from . import losses
from .metrics.medication import PatientPrediction
from .micron_state import STATE_VERSION, MicronState, StateMismatch, encounter_key, model_tag
from .recall_cut import sigmoid
from .stored_config import StoredConfig
from .thresholds import MicronThresholds, interaction_partners

__all__ = [
    "PatientSequence", "MicronConfig", "HealthEncoder", "Micron", "MicronState", "MicronStep",
    "MicronPredictor", "StateMismatch", "pad_indices", "densify", "pair_batches",
    "count_parameters", "label_rows", "train_micron", "model_tag", "encounter_key", "STATE_VERSION",
    "interaction_partners", "interaction_stops", "decide", "anchor_first_list", "fit_thresholds", "fit_cut_offs",
]

# the cut-off fitting lives in `micron_cutoffs` (it imports this module); its names stay
# importable from here
_CUTOFF_NAMES = frozenset({"fit_thresholds", "fit_cut_offs", "fit_interaction_stop", "change_search_data",
                           "ADD_GRID", "REMOVE_GRID", "STOP_CUTOFFS"})


def __getattr__(name: str):
    if name in _CUTOFF_NAMES:
        from . import micron_cutoffs
        return getattr(micron_cutoffs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

OOV = 0


# ----------------------------------------------------------------------------- data

@dataclass
class PatientSequence:
    """One patient's visits as vocabulary indices (index lists, one per visit)."""

    patient_id: str
    dx: list[list[int]]
    proc: list[list[int]]
    meds: list[list[int]]

    def __post_init__(self) -> None:
        if not (len(self.dx) == len(self.proc) == len(self.meds)):
            raise ValueError(f"patient {self.patient_id}: dx/proc/meds visit counts differ")

    def __len__(self) -> int:
        return len(self.dx)

    def med_sets(self) -> list[set[int]]:
        return [set(m) - {OOV} for m in self.meds]


def pad_indices(index_lists: Sequence[Iterable[int]], pad: int) -> torch.Tensor:
    """[B, L] LongTensor of unique indices per row, right-padded with `pad`."""
    rows = [sorted(set(int(i) for i in lst)) for lst in index_lists]
    width = max((len(r) for r in rows), default=0) or 1
    out = torch.full((len(rows), width), pad, dtype=torch.long)
    for row, values in enumerate(rows):
        if values:
            out[row, : len(values)] = torch.tensor(values, dtype=torch.long)
    return out


def densify(indices: torch.Tensor, size: int) -> torch.Tensor:
    """Padded index tensor [..., L] (padding == size) → multi-hot float [..., size]."""
    shape = indices.shape[:-1] + (size + 1,)
    dense = torch.zeros(shape, device=indices.device, dtype=torch.float32)
    dense.scatter_(-1, indices, 1.0)
    return dense[..., :size]


def label_rows(med_lists: Sequence[Iterable[int]], n_med: int) -> np.ndarray:
    """[len(med_lists), n_med] 0/1 int8 rows of medication sets (the OOV slot never set)."""
    rows = np.zeros((len(med_lists), n_med), dtype=np.int8)
    for row, meds in enumerate(med_lists):
        rows[row, [m for m in set(meds) if m != OOV]] = 1
    return rows


def pair_batches(patients: Sequence[PatientSequence], sizes: tuple[int, int, int],
                 batch_size: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """All consecutive visit pairs as padded-index batches (shuffled once by `seed`)."""
    n_dx, n_proc, n_med = sizes
    pairs = [(p, t) for p in patients for t in range(1, len(p))]
    random.Random(seed).shuffle(pairs)
    batches = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start: start + batch_size]
        batches.append({
            "dx_prev": pad_indices([p.dx[t - 1] for p, t in chunk], n_dx),
            "proc_prev": pad_indices([p.proc[t - 1] for p, t in chunk], n_proc),
            "dx": pad_indices([p.dx[t] for p, t in chunk], n_dx),
            "proc": pad_indices([p.proc[t] for p, t in chunk], n_proc),
            "med_prev": pad_indices([p.meds[t - 1] for p, t in chunk], n_med),
            "med": pad_indices([p.meds[t] for p, t in chunk], n_med),
        })
    return batches


def count_parameters(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# ----------------------------------------------------------------------------- model

@dataclass
class MicronConfig(StoredConfig):
    """Hyperparameters (stored in the artifact)."""

    dim: int = 32                 # s: embedding / health representation size
    hidden: int = 64              # NET_med hidden layer
    dropout: float = 0.3
    lr: float = 5e-3
    weight_decay: float = 1e-4
    epochs: int = 15
    batch_size: int = 64
    gamma: float = 0.75           # weight of visit t vs t−1 in BCE and margin losses
    lambda_rec: float = 1.0       # λ1 reconstruction (Eq. 6)
    lambda_ddi: float = 0.1       # λ2 DDI (Eq. 7); 0 with --no-ddi-loss
    lambda_bce: float = 1.0       # λ3 BCE (Eq. 8)
    lambda_multi: float = 1.0     # λ4 multi-label margin (Eq. 9)
    ddi_loss: bool = True
    add_percentile: float = 5.0   # δ1: position in the descending ROC cut-off list
    remove_percentile: float = 95.0
    threshold_mode: str = "global"    # ROC rule: "global" (paper) or "per-medicine"
    # "per-medicine" (default; "auto" is the same): per-medicine (δ1, δ2) searched on validation
    # F1 with a removal-recall floor; "roc-percentile": the paper's rule; "validation-grid": one
    # global pair on validation F1 (tends to δ2 = 0, i.e. never stop a drug)
    threshold_rule: str = "per-medicine"
    removal_recall_floor: float = 0.3  # share of real validation stops the thresholds must catch
    threshold_min_support: int = 8     # validation visits prescribing/stopping a drug to tune it alone
    threshold_objective: str = "f1+jaccard"  # validation objective of the search ("f1" or mean of both)
    # DDI control in the search: objective − β · validation DDI rate (0: the objective alone).
    # Off by default: the interaction stop below does more, and a penalty tuned per medicine
    # gives back what the DDI loss did to the scores
    threshold_ddi_penalty: float = 0.0
    # DDI control at decision time: of two interacting medicines both in M̃(t), the one whose
    # σ(m̃) is below this is stopped (0: off). One cut-off for all medicines, so the DDI loss's
    # lower scores for interacting drugs count (see `interaction_stops`)
    ddi_stop_below: float = 0.05
    # the state at the first visit: the given list's medicines start at a logit of at least
    # this (0: σ = 0.5), so that a drug the patient is on but the model would not have
    # chosen is not stopped at the next visit for that alone (None: m̃(1) = m̂(1), the paper)
    first_list_floor: float | None = 0.0

    # artifacts from before each kind of DDI control, and before the first-list floor
    LEGACY_DEFAULTS = {"threshold_ddi_penalty": 0.0, "ddi_stop_below": 0.0, "first_list_floor": None}


class HealthEncoder(nn.Module):
    """Eq. 1–2: diagnosis and procedure embedding tables and the affine health network."""

    def __init__(self, n_dx: int, n_proc: int, dim: int):
        super().__init__()
        self.n_dx, self.n_proc, self.dim = n_dx, n_proc, dim
        self.dx_embedding = nn.Embedding(n_dx, dim)     # rows = columns of E_d
        self.proc_embedding = nn.Embedding(n_proc, dim)
        self.health = nn.Linear(2 * dim, dim)            # NET_health, no activation
        for table in (self.dx_embedding, self.proc_embedding):
            nn.init.normal_(table.weight, std=1.0 / math.sqrt(dim))

    def embed(self, dx: torch.Tensor, proc: torch.Tensor) -> torch.Tensor:
        """[d_e ‖ p_e] from multi-hot [..., n_dx], [..., n_proc]."""
        return torch.cat([dx @ self.dx_embedding.weight, proc @ self.proc_embedding.weight], -1)

    def forward(self, dx: torch.Tensor, proc: torch.Tensor) -> torch.Tensor:
        return self.health(self.embed(dx, proc))

    def encode_visit(self, dx: Sequence[int], proc: Sequence[int]) -> torch.Tensor:
        """h for one visit from its code indices: O(codes · dim + dim²)."""
        device = self.dx_embedding.weight.device
        d = self.dx_embedding.weight[torch.as_tensor(sorted(set(dx)), dtype=torch.long,
                                                     device=device)].sum(0)
        p = self.proc_embedding.weight[torch.as_tensor(sorted(set(proc)), dtype=torch.long,
                                                       device=device)].sum(0)
        return self.health(torch.cat([d, p], -1))


class Micron(nn.Module):
    """Health encoder + prescription network NET_med: R^s → R^|M| (logits)."""

    def __init__(self, n_dx: int, n_proc: int, n_med: int, dim: int = 64, hidden: int = 128,
                 dropout: float = 0.2):
        super().__init__()
        self.sizes = (n_dx, n_proc, n_med)
        self.encoder = HealthEncoder(n_dx, n_proc, dim)
        self.net_med = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(hidden, n_med))

    @classmethod
    def from_config(cls, sizes: tuple[int, int, int], config: MicronConfig) -> "Micron":
        return cls(*sizes, dim=config.dim, hidden=config.hidden, dropout=config.dropout)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(m̂(t−1), m̂(t), u(t)) logits for a batch of visit pairs (padded indices)."""
        n_dx, n_proc, _ = self.sizes
        h_prev = self.encoder(densify(batch["dx_prev"], n_dx), densify(batch["proc_prev"], n_proc))
        h_cur = self.encoder(densify(batch["dx"], n_dx), densify(batch["proc"], n_proc))
        return self.net_med(h_prev), self.net_med(h_cur), self.net_med(h_cur - h_prev)

    def health_sequence(self, patient: PatientSequence) -> torch.Tensor:
        """h(1..T) of a patient [T, dim] (batched, for evaluation and replay)."""
        n_dx, n_proc, _ = self.sizes
        device = self.encoder.dx_embedding.weight.device
        dx = densify(pad_indices(patient.dx, n_dx).to(device), n_dx)
        proc = densify(pad_indices(patient.proc, n_proc).to(device), n_proc)
        return self.encoder(dx, proc)

    def medication_vectors(self, patient: PatientSequence) -> torch.Tensor:
        """m̃(1..T) [T, |M|] by the inference recursion: m̃(1) = m̂(1),
        m̃(t) = m̃(t−1) + NET_med(h(t) − h(t−1))."""
        health = self.health_sequence(patient)
        first = self.net_med(health[:1])
        if health.shape[0] == 1:
            return first
        updates = self.net_med(health[1:] - health[:-1])
        return torch.cat([first, first + torch.cumsum(updates, 0)], 0)


def micron_loss_fn(config: MicronConfig, ddi: torch.Tensor | None, mask: torch.Tensor):
    """loss_fn(model, batch) for `model_zoo.train.fit`."""
    weights = (config.lambda_rec, config.lambda_ddi if config.ddi_loss else 0.0,
               config.lambda_bce, config.lambda_multi)
    cache: dict[str, torch.Tensor] = {}

    def on(device: torch.device, name: str, tensor: torch.Tensor | None) -> torch.Tensor | None:
        if tensor is None:
            return None
        key = f"{name}@{device}"
        if key not in cache:
            cache[key] = tensor.to(device)
        return cache[key]

    def loss_fn(model: Micron, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        n_med = batch_n_med(model)
        prev_logits, cur_logits, residual = model(batch)
        device = cur_logits.device
        total, _ = losses.micron_loss(
            prev_logits, cur_logits, residual,
            densify(batch["med_prev"], n_med), densify(batch["med"], n_med),
            on(device, "ddi", ddi) if config.ddi_loss else None,
            gamma=config.gamma, weights=weights, mask=on(device, "mask", mask))
        return total

    return loss_fn


def batch_n_med(model: nn.Module) -> int:
    inner = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    return inner.sizes[2]


def medication_mask(n_med: int) -> torch.Tensor:
    """1 for real medicines, 0 for the OOV slot."""
    mask = torch.ones(n_med)
    mask[OOV] = 0.0
    return mask


# ----------------------------------------------------------------------------- inference state

# the per-patient state and its bytes: `micron_state`
def interaction_stops(chosen: Iterable[int], probabilities: np.ndarray,
                      partners: Sequence[frozenset[int]], below: float) -> dict[int, int]:
    """{medicine stopped: the partner it interacts with} for a set M̃(t).

    A medicine is weak when σ(m̃) < `below`. First every weak medicine that interacts
    with one that is not weak is stopped (that partner stays in any case); then,
    weakest first, a weak medicine that still interacts with another weak one left.
    So no pair with a weak member stays, and no medicine is stopped for a partner
    that goes too. Most interacting pairs in a predicted set are carried on from
    earlier prescriptions, and a stop cut-off tuned per medicine on F1 keeps them;
    this one cut-off stops the member the model hardly supports. O(|M̃| · partners)."""
    if below <= 0:
        return {}
    remaining = set(chosen)
    weak = [m for m in remaining if probabilities[m] < below and partners[m] & remaining]
    if not weak:
        return {}
    weak.sort(key=lambda m: (probabilities[m], m))

    def strongest(clash: set[int]) -> int:
        return max(clash, key=lambda j: (probabilities[j], -j))

    confident = remaining.difference(weak)
    stops = {}
    for medicine in weak:
        clash = partners[medicine] & confident
        if clash:
            stops[medicine] = strongest(clash)
    remaining.difference_update(stops)
    for medicine in weak:
        clash = partners[medicine] & remaining
        if medicine not in stops and clash:
            remaining.discard(medicine)
            stops[medicine] = strongest(clash)
    return stops


def decide(base: Iterable[int], probabilities: np.ndarray, delta_add: np.ndarray,
           delta_remove: np.ndarray, partners: Sequence[frozenset[int]] | None = None,
           stop_below: float = 0.0) -> tuple[frozenset[int], dict[int, int]]:
    """Eq. 12–14, then the interaction stop (with `partners`): M̃(t) from M̃(t−1) = `base`
    and σ(m̃(t)) = `probabilities`, and {medicine stopped for an interaction: its partner}."""
    add = probabilities >= delta_add
    add[OOV] = False
    new = frozenset(np.flatnonzero(add).tolist())
    old = frozenset(np.flatnonzero(probabilities <= delta_remove).tolist())
    chosen = (frozenset(base) | new) - old - {OOV}
    stops = interaction_stops(chosen, probabilities, partners, stop_below) if partners is not None else {}
    return chosen - stops.keys(), stops


@dataclass
class MicronStep:
    """Result of one update: the sets and the scores σ(m̃(t))."""

    state: MicronState
    scores: np.ndarray
    predicted: frozenset[int]     # M̃(t)
    added: frozenset[int]         # M̃(t) \ M̃(t−1)
    removed: frozenset[int]       # M̃(t−1) \ M̃(t)
    kept: frozenset[int]          # M̃(t−1) ∩ M̃(t)
    interaction_stops: dict[int, int] = field(default_factory=dict)  # stopped → its partner


class MicronPredictor:
    """Eq. 11–14 on a trained model, no grad: one visit in numpy on the CPU, batches in torch."""

    def __init__(self, model: Micron, thresholds: MicronThresholds, ddi: np.ndarray | None = None):
        """`ddi`: the |M|×|M| interaction matrix; needed when the thresholds stop
        interacting medicines (`ddi_stop_below` > 0)."""
        self.model = model.eval()
        self.thresholds = thresholds
        self.n_med = model.sizes[2]
        if thresholds.ddi_stop_below > 0 and ddi is None:
            raise ValueError("these thresholds stop interacting medicines: pass the DDI matrix")
        self.partners = interaction_partners(ddi, self.n_med)
        self.dim = model.encoder.dim
        delta_add, delta_remove = thresholds.vectors(self.n_med)
        self.delta_add = np.asarray(delta_add, dtype=np.float64)
        self.delta_remove = np.asarray(delta_remove, dtype=np.float64)
        self.tag = model_tag(model, thresholds)

    # one visit ---------------------------------------------------------------
    def update(self, state: MicronState | bytes | None, dx: Sequence[int], proc: Sequence[int],
               observed: Iterable[int] | None = None, base: Iterable[int] | None = None,
               encounter: str | None = None) -> MicronStep:
        """Apply one visit. `observed`: the medications actually prescribed at this
        visit, when known; they become the base set of the next update (the paper's
        M̃(1) = M(1) for a first visit). Without them the predicted set carries on.
        `base`: the set M̃(t−1) the changes apply to (default: the state's set).
        `encounter`: the visit's encounter id; when the state was produced by that
        same encounter, the update is recomputed from the state before it (a repeat
        gives the same step, it does not advance twice)."""
        if isinstance(state, (bytes, bytearray, memoryview)):
            state = MicronState.from_bytes(bytes(state), tag=self.tag, n_med=self.n_med,
                                           dim=self.dim)
        key = encounter_key(encounter)
        if state is not None and key and state.encounter == key:
            state = state.previous
        health, vector = self._advance(state, dx, proc)
        base = (frozenset() if state is None else state.medications) if base is None else base
        if not isinstance(base, frozenset):
            base = frozenset(int(m) for m in base)
        if state is None:   # the list known at the first visit anchors the state
            first = base if observed is None else observed
            vector = anchor_first_list(vector[None], first, self.thresholds.first_list_floor)[0]
        step = self._step(vector, health, base, observed, 0 if state is None else state.visits)
        step.state.encounter = key
        step.state.previous = None if state is None else state.without_history()
        return step

    def _advance(self, state: MicronState | None, dx: Sequence[int], proc: Sequence[int]
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(h(t), m̃(t)) as float32 numpy: m̂(t) without a state, else m̃(t−1) + NET_med(h(t) − h(t−1));
        in numpy on the CPU (`row_inference`: one visit's few products), else in torch."""
        from .row_inference import for_micron

        row = for_micron(self.model)
        if row is not None:
            health = row.health(dx, proc)
            if state is None:
                return health, row.net_med(health)
            return health, state.vector + row.net_med(health - state.health)
        with torch.no_grad():
            health = self.model.encoder.encode_visit(dx, proc)
            vector = self.model.net_med(health) if state is None else (
                torch.as_tensor(state.vector, device=health.device)
                + self.model.net_med(health - torch.as_tensor(state.health, device=health.device)))
        return health.to("cpu", torch.float32).numpy(), vector.to("cpu", torch.float32).numpy()

    def _step(self, vector: np.ndarray, health: np.ndarray, base: frozenset[int],
              observed: Iterable[int] | None, visits: int) -> MicronStep:
        scores = sigmoid(vector.astype(np.float64))
        predicted, stops = decide(base, scores, self.delta_add, self.delta_remove, self.partners,
                                  self.thresholds.ddi_stop_below)
        carried = predicted if observed is None else frozenset(int(m) for m in observed) - {OOV}
        state = MicronState(vector=vector.astype(np.float32), medications=carried,
                            health=health.astype(np.float32), visits=visits + 1, tag=self.tag)
        return MicronStep(state=state, scores=scores, predicted=predicted, added=predicted - base,
                          removed=base - predicted, kept=base & predicted, interaction_stops=stops)

    # whole history -----------------------------------------------------------
    @torch.no_grad()
    def replay(self, patient: PatientSequence, observed: Sequence[Iterable[int] | None] | None = None
               ) -> list[MicronStep]:
        """Recompute every step from visit 1 (batched encoder; same result as
        calling `update` visit by visit). observed[t]: medications known at t."""
        vectors = self.model.medication_vectors(patient).to("cpu", torch.float32).numpy()
        if observed is not None and len(observed) and observed[0] is not None:
            vectors = anchor_first_list(vectors, observed[0], self.thresholds.first_list_floor)
        health = self.model.health_sequence(patient).to("cpu", torch.float32).numpy()
        steps: list[MicronStep] = []
        base: frozenset[int] = frozenset()
        for t in range(len(patient)):
            seen = observed[t] if observed is not None else None
            step = self._step(vectors[t], health[t], base, seen, t)
            steps.append(step)
            base = step.state.medications
        return steps

    def predict_patient(self, patient: PatientSequence, anchor: str = "predicted") -> PatientPrediction:
        return self.predict_many([patient], anchor)[0]

    def predict_many(self, patients: Sequence[PatientSequence], anchor: str = "predicted"
                     ) -> list[PatientPrediction]:
        """Evaluation records: M̃(1) = M(1); from visit 2 on, the base set is the
        previous prediction ("predicted", the paper's protocol) or the previous
        prescription ("observed"). Vectors are computed for all patients at once."""
        if anchor not in ("predicted", "observed"):
            raise ValueError("anchor must be 'predicted' or 'observed'")
        vectors = batched_vectors(self.model, patients, first_list_floor=self.thresholds.first_list_floor)
        return records_from_vectors(patients, vectors,
                                    self.delta_add, self.delta_remove, anchor, partners=self.partners,
                                    stop_below=self.thresholds.ddi_stop_below)

    def validation_scores(self, patients: Sequence[PatientSequence]) -> tuple[np.ndarray, np.ndarray]:
        """σ(m̃(t)) and 0/1 labels for every visit t ≥ 2 of `patients` (for δ1/δ2)."""
        return _recursion_scores(self.model, patients, self.thresholds.first_list_floor)


def records_from_vectors(patients: Sequence[PatientSequence], vectors: Sequence[np.ndarray],
                         delta_add: np.ndarray, delta_remove: np.ndarray,
                         anchor: str = "predicted", *, partners: Sequence[frozenset[int]] | None = None,
                         stop_below: float = 0.0) -> list[PatientPrediction]:
    """Eq. 12–14 over precomputed m̃(1..T) of each patient → evaluation records
    (with the interaction stop when `partners` and `stop_below` > 0 are given)."""
    records = []
    for patient, vector in zip(patients, vectors):
        truth = patient.med_sets()
        probabilities = sigmoid(vector.astype(np.float64))
        predicted, scores = [set(truth[0])], [None]
        for t in range(1, len(patient)):
            base = truth[t - 1] if anchor == "observed" else predicted[t - 1]
            chosen, _ = decide(base, probabilities[t], delta_add, delta_remove, partners, stop_below)
            predicted.append(set(chosen))
            scores.append(probabilities[t])
        previous = [set()] + truth[:-1] if anchor == "observed" else None
        records.append(PatientPrediction(true_sets=truth, predicted_sets=predicted,
                                         scores=scores, previous=previous))
    return records


@torch.no_grad()
def batched_vectors(model: Micron, patients: Sequence[PatientSequence], chunk: int = 2048,
                    first_list_floor: float | None = None) -> list[np.ndarray]:
    """m̃(1..T) of every patient (the inference recursion), encoding all visits of
    all patients in a few large batches; with `first_list_floor`, the state is anchored
    at the first visit's given list (`anchor_first_list`)."""
    n_dx, n_proc, _ = model.sizes
    device = model.encoder.dx_embedding.weight.device
    dx = [visit for p in patients for visit in p.dx]
    proc = [visit for p in patients for visit in p.proc]
    if not dx:
        return [np.zeros((0, model.sizes[2]), dtype=np.float32) for _ in patients]
    health = []
    for start in range(0, len(dx), chunk):
        health.append(model.encoder(
            densify(pad_indices(dx[start:start + chunk], n_dx).to(device), n_dx),
            densify(pad_indices(proc[start:start + chunk], n_proc).to(device), n_proc)))
    h = torch.cat(health, 0)
    starts = np.cumsum([0] + [len(p) for p in patients])[:-1]
    is_first = torch.zeros(h.shape[0], dtype=torch.bool, device=device)
    is_first[torch.as_tensor(starts[[len(p) > 0 for p in patients]], dtype=torch.long, device=device)] = True
    previous = torch.cat([h[:1], h[:-1]], 0)
    # first visit: m̂(1) = NET_med(h(1)); later visits: u(t) = NET_med(h(t) − h(t−1))
    steps = model.net_med(torch.where(is_first.unsqueeze(1), h, h - previous)).to("cpu").numpy()
    out = []
    for start, patient in zip(starts, patients):
        vectors = np.cumsum(steps[start:start + len(patient)], 0, dtype=np.float64).astype(np.float32)
        out.append(anchor_first_list(vectors, patient.meds[0], first_list_floor) if len(patient) else vectors)
    return out


def anchor_first_list(vectors: np.ndarray, first: Iterable[int] | None, floor: float | None) -> np.ndarray:
    """m̃(1..T) [T, |M|] with the first visit's given medicines raised to a logit of at
    least `floor` at visit 1, and by as much at every later visit (the recursion adds
    updates to m̃(1)). m̂(1) is what the model would prescribe from the first visit's
    codes alone; the list the patient is on says more, and without this a drug the
    model would not have chosen sits near σ = 0 and is stopped at the next visit by a
    stop cut-off or the interaction stop, whatever happens to the patient."""
    if floor is None or first is None:
        return vectors
    columns = sorted(set(int(m) for m in first) - {OOV})
    if not columns or len(vectors) == 0:
        return vectors
    out = np.array(vectors, dtype=np.float32, copy=True)
    out[:, columns] += np.maximum(0.0, floor - out[0, columns])[None]
    return out


@torch.no_grad()
def _recursion_scores(model: Micron, patients: Sequence[PatientSequence],
                      first_list_floor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    n_med = model.sizes[2]
    multi = [p for p in patients if len(p) > 1]
    scores, labels = [], []
    for patient, vectors in zip(multi, batched_vectors(model, multi, first_list_floor=first_list_floor)):
        scores.append(sigmoid(vectors[1:].astype(np.float64)))
        labels.append(label_rows(patient.meds[1:], n_med))
    if not scores:
        return np.zeros((0, n_med)), np.zeros((0, n_med), dtype=np.int8)
    return np.concatenate(scores), np.concatenate(labels)


# ----------------------------------------------------------------------------- training

def train_micron(train: Sequence[PatientSequence], validation: Sequence[PatientSequence],
                 sizes: tuple[int, int, int], ddi: np.ndarray | None, config: MicronConfig, *,
                 seed: int = 0, device: str | torch.device | None = None, progress: bool = True,
                 desc: str = "MICRON"):
    """Train MICRON, keep the epoch with the best validation PRAUC of the inference
    recursion σ(m̃(t)), then fit δ1/δ2 on validation (`fit_thresholds`).
    Returns (model, thresholds, FitResult)."""
    from .metrics.medication import medication_change_metrics
    from .micron_cutoffs import fit_thresholds
    from .train import fit, seed_everything

    seed_everything(seed)
    model = Micron.from_config(sizes, config)
    ddi_tensor = torch.as_tensor(np.asarray(ddi), dtype=torch.float32) if ddi is not None else None
    batches = pair_batches(train, sizes, config.batch_size, seed)
    if not batches:
        raise ValueError("no patient in the training split has two visits; MICRON needs visit pairs")
    loss_fn = micron_loss_fn(config, ddi_tensor, medication_mask(sizes[2]))

    scored = [p for p in validation if len(p) > 1]
    roc_only = MicronConfig.from_dict({**config.to_dict(), "threshold_rule": "roc-percentile"})

    def validate(current: Micron) -> dict[str, float]:
        # epochs are compared on PRAUC of σ(m̃(t)) (threshold free); F1 shown with the ROC rule
        predictor = MicronPredictor(current, fit_thresholds(current, scored, roc_only))
        metrics = medication_change_metrics(predictor.predict_many(scored), ddi)
        return {"prauc": metrics["prauc"], "f1": metrics["f1"]}

    has_validation = any(len(p) > 1 for p in validation)
    result = fit(model, batches, loss_fn, epochs=config.epochs, lr=config.lr,
                 weight_decay=config.weight_decay, validate=validate if has_validation else None,
                 select="prauc", mode="max", seed=seed, device=device, progress=progress, desc=desc)
    model.to("cpu").eval()
    thresholds = fit_thresholds(model, validation if has_validation else train, config, ddi)
    return model, thresholds, result
