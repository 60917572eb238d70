"""Why each code was suggested: the inputs with the largest attribution for it.

The coding model explains a code for one visit (`CodingSuggester.explain`, attribution
computed by the model zoo); the visit is rebuilt from the patient's record on the FHIR
server exactly as the service builds it for a hook call. Explanations are cached per
(encounter, model, code): they only change when the model does.
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fhir_assist.fhir_server import error_kind
from fhir_assist.tasks.artifacts import BUNDLED_DIR

log = logging.getLogger(__name__)

TOP_EVIDENCE = 4
SUGGEST_TOP = 100
KIND_LABELS = {"medication": "Medication", "procedure": "Procedure", "note": "Note",
               "demographic": "Patient", "diagnosis": "Diagnosis"}


@dataclass(frozen=True)
class Evidence:
    kind: str          # medication | procedure | note | demographic | …
    label: str         # what a coder recognises: drug name, procedure, the note span
    weight: float      # attribution for this code (larger = pushed the score up more)

    @property
    def weight_text(self) -> str:
        # occlusion deltas are often small probabilities: keep two significant digits
        return f"{self.weight:.2f}" if self.weight >= 0.1 else f"{self.weight:.2g}"

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.capitalize())


@dataclass(frozen=True)
class Explanation:
    evidence: dict[tuple[str, str], list[Evidence]]
    cutoff_k: int | None          # RE@R list length for this encounter's stratum
    target_recall: float | None
    model_version: str | None     # of the model that explained (the current one)
    problem: str | None           # why there is no evidence, for the page


class EvidenceSource:
    """Loads the coding model once, on first use, and explains codes for encounters."""

    def __init__(self, model: str, models_dir: str | None, max_cached: int = 500):
        self.model = model
        self.models_dir = models_dir
        self._suggester = None
        self._load_error: str | None = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()     # guards the cache
        self._model_lock = threading.Lock()   # torch modules are used by one thread at a time
        self._cache: OrderedDict[tuple, Explanation] = OrderedDict()
        self._max_cached = max_cached

    @property
    def artifact_path(self) -> Path:
        candidate = Path(self.model).expanduser()
        if candidate.is_dir():
            return candidate
        base = Path(self.models_dir).expanduser() if self.models_dir else BUNDLED_DIR
        return base / self.model

    @property
    def load_error(self) -> str | None:
        return self._load_error

    def suggester(self):
        with self._load_lock:
            if self._suggester is None and self._load_error is None:
                try:
                    self._suggester, self._model_lock = _load_suggester(self.artifact_path)
                    log.info("review evidence uses the coding model at %s", self.artifact_path)
                except Exception as exc:  # noqa: BLE001 - the worklist works without evidence
                    self._load_error = f"{type(exc).__name__}: {exc}"
                    log.warning("review evidence unavailable: cannot load %s: %s",
                                self.artifact_path, self._load_error)
            return self._suggester

    def explain(self, fhir, patient: str, encounter: str,
                codes: list[tuple[str, str]]) -> Explanation:
        """Evidence for each (system, code) at this encounter, and the RE@R cut-off K for
        this encounter's stratum. Codes the model cannot explain (unknown to it, or the
        record cannot be read) get an empty list."""
        suggester = self.suggester()
        if suggester is None:
            return Explanation({c: [] for c in codes}, None, None, None,
                               "Evidence is unavailable: the coding model could not be loaded (see the service log).")
        version = str(suggester.model_version)
        key = (encounter, version)
        with self._run_lock:
            cached = self._cache.get(key)
        if cached is not None and all(c in cached.evidence for c in codes):
            return cached
        found = self._visit(fhir, patient, encounter)
        if found is None:
            return Explanation({c: [] for c in codes}, None, None, version,
                               "Evidence is unavailable: the patient's record could not be read from the FHIR server.")
        timeline, visit = found
        evidence: dict[tuple[str, str], list[Evidence]] = dict(cached.evidence) if cached else {}
        try:
            with self._model_lock:
                # one pass ranks the codes and gives this encounter's cut-off; evidence is
                # computed for the codes on the page only, in one batch
                result = suggester.suggest(visit, timeline, top=SUGGEST_TOP, evidence=False)
                wanted = {c for c in codes if c not in evidence}
                for key, found in suggester.add_evidence(result, wanted).items():
                    evidence[key] = _top(found)
                for system, code in codes:
                    if (system, code) not in evidence:
                        evidence[(system, code)] = _top(suggester.explain(visit, code, timeline))
        except Exception:  # noqa: BLE001 - the page must work without evidence
            log.exception("evidence for an encounter could not be computed")
            return Explanation({c: [] for c in codes}, None, None, version,
                               "Evidence could not be computed for this encounter (see the service log).")
        explanation = Explanation(evidence, result.cutoff_k, result.target_recall, version, None)
        with self._run_lock:
            self._cache[key] = explanation
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_cached:
                self._cache.popitem(last=False)
        return explanation

    @staticmethod
    def _visit(fhir, patient: str, encounter: str):
        from fhir_assist.adapter.report import IngestReport
        from fhir_assist.adapter.timeline import build_timelines

        try:
            resources = fhir.patient_resources(patient)
        except Exception as exc:  # noqa: BLE001 - evidence is optional on the page
            log.warning("cannot read the patient's record for evidence: %s", error_kind(exc))
            return None
        report = IngestReport()
        for timeline in build_timelines(resources, report):
            for visit in timeline.visits:
                if visit.covers(encounter):
                    return timeline, visit
        return None


_LOADED: dict[str, tuple[object, threading.Lock]] = {}
_LOADED_LOCK = threading.Lock()


def _load_suggester(path: Path):
    """One loaded model per artifact directory and process, however many blueprints use it,
    with the lock that makes its users take turns."""
    from fhir_assist.suggest.loading import load_coder

    key = str(path.resolve())
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = (load_coder(key), threading.Lock())
        return _LOADED[key]


def _top(raw) -> list[Evidence]:
    items = []
    for entry in raw or []:
        if isinstance(entry, dict):
            kind, label, weight = entry.get("kind"), entry.get("label"), entry.get("weight")
        else:
            kind, label, weight = (tuple(entry) + (None, None, None))[:3]
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            continue
        if label and weight > 0:
            items.append(Evidence(str(kind or "input"), str(label), weight))
    items.sort(key=lambda e: e.weight, reverse=True)
    return items[:TOP_EVIDENCE]
