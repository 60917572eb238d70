"""The clinical course of one synthetic patient, visit by visit.

A patient carries latent chronic conditions (sampled with age, sex and
comorbidity odds) that persist across visits and keep their specific billing
code (with occasional drift as disease progresses). Each stay adds acute
problems with their complications, secondary and rare codes, procedures and
medications. Between stays the course moves on: new diagnoses start drugs,
acute events become chronic (MI → CAD, new AF), held drugs are stopped for
good or resumed, drugs are switched within their class, smokers quit.

Everything is drawn from one `random.Random` per patient, so a patient's
record depends only on (seed, index) and the tables — never on how many
patients are generated, in which order, or on the process's hash seed.
"""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta

from . import registration
from .knowledge import Knowledge
from .records import PatientRecord, VisitRecord

# Visits per patient: mostly 2, long tail beyond 10 (MIMIC-III multi-visit cohorts: mean ≈ 2.4).
VISIT_COUNTS = ((2, 0.81), (3, 0.10), (4, 0.04), (5, 0.018), (6, 0.011), (7, 0.007), (8, 0.005), (9, 0.003))
SETTING_WEIGHTS = (("IMP", 0.86), ("EMER", 0.10), ("AMB", 0.04))

P_MALE = 0.56
P_DDI_AVOIDED = 0.75          # a prescriber who notices an interaction picks another drug of the class
P_NEW_CHRONIC = 0.16          # per gap between visits
P_SWITCH = 0.04               # per chronic drug class per gap: substitution within the class
P_STOP = 0.025                # per chronic drug class per gap: stopped
P_STOP_HELD = 0.3             # a drug held during a stay is not restarted
P_EXTRA_ACUTE = 0.3           # a second, unrelated acute problem in an inpatient stay
P_QUIT_SMOKING = 0.1
P_ROUTINE_USUAL = 0.92
P_ROUTINE_RARE = 0.03
STAY_ALLOWANCE_DAYS = 60      # room left per visit when fitting a course into the date window


class Course:
    """Mutable state of one patient while their visits are drawn."""

    def __init__(self, k: Knowledge, rng: random.Random, sex: str, age: float):
        self.k, self.rng, self.sex, self.age = k, rng, sex, age
        self.chronic: dict[str, str] = {}        # key → the patient's code
        self.cancer = None                       # CancerSite
        self.meds: dict[str, str] = {}           # chronic drug class → RxCUI (currently taking)
        self.reasons: dict[str, list] = {}       # drug class → chronic keys it is taken for
        self.preferred: dict[str, str] = {}      # drug class → RxCUI this patient gets when the class is used
        self.background: list[str] = []          # status/history codes that stay with the patient
        # Routine orders follow habits (order sets for this patient's kind of stay): a class is
        # either usually ordered for this patient or rarely, which keeps stays alike.
        self.routine = {cls: (P_ROUTINE_USUAL if rng.random() < p else P_ROUTINE_RARE)
                        for cls, p in k.routine_inpatient}
        self.coding_factor = rng.uniform(0.8, 1.2)

    # -- chronic conditions -------------------------------------------------
    def chronic_probability(self, key: str) -> float:
        sex_only, intercept, log_age, log_male, log_odds = _chronic_model(self.k)[key]
        if sex_only and sex_only != self.sex:
            return 0.0
        z = intercept + log_age * (self.age - 65.0)
        if self.sex == "male":
            z += log_male
        present = self.chronic
        for other, value in log_odds:
            if other in present:
                z += value
        return 1.0 / (1.0 + math.exp(-z))

    def add_chronic(self, key: str) -> None:
        comp, rng = self.k.chronic[key], self.rng
        if key == "cancer":
            sites = [s for s in self.k.cancer_sites if s.sex in (None, self.sex)]
            if not sites:
                return
            self.cancer = rng.choice(sites) if rng.random() < 0.15 else _weighted_site(sites, rng)
            code = self.cancer.codes.pick(rng)
        else:
            if not comp.codes:
                return
            code = self.pick_code(comp)
        if key == "diabetes" and "ckd" in self.chronic and rng.random() < 0.5:
            code = "E11.22" if "E11.22" in comp.codes.items else code
        self.chronic[key] = code
        for cls, p in comp.meds + (self.cancer.meds if key == "cancer" else []):
            if rng.random() < p:
                self.start(cls, key)
        if key == "ckd" and code == "N18.6":
            for cls, p in (("phosphate_binder", 0.7), ("esa", 0.45), ("vitamin_d_active", 0.45)):
                if cls in self.k.drug_classes and rng.random() < p:
                    self.start(cls, key)

    def pick_code(self, comp) -> str:
        if comp.tail and self.rng.random() < comp.spec.tail_rate:
            return comp.tail.pick(self.rng)
        return comp.codes.pick(self.rng)

    def remove_chronic(self, key: str) -> None:
        self.chronic.pop(key, None)
        for cls in list(self.reasons):
            reasons = self.reasons[cls]
            if key in reasons:
                reasons.remove(key)
                if not reasons:
                    self.stop(cls)

    # -- medications ---------------------------------------------------------
    def choose(self, cls: str, current) -> str:
        """The ingredient this patient gets for a class, steering clear of interactions most of the time."""
        rxcui = self.preferred.get(cls)
        if rxcui is not None and not self.clashes(rxcui, current):
            return rxcui
        options = self.k.drug_classes[cls]
        pick = rxcui or options.pick(self.rng)
        if self.clashes(pick, current) and self.rng.random() < P_DDI_AVOIDED:
            for _ in range(4):
                candidate = options.pick(self.rng)
                if not self.clashes(candidate, current):
                    pick = candidate
                    break
        self.preferred.setdefault(cls, pick)
        return pick

    def clashes(self, rxcui: str, current) -> bool:
        ddi = self.k.ddi
        return any(frozenset((rxcui, other)) in ddi for other in current if other != rxcui)

    def start(self, cls: str, reason: str) -> None:
        if cls not in self.k.drug_classes:
            return
        if cls in self.meds:
            if reason not in self.reasons[cls]:
                self.reasons[cls].append(reason)
            return
        self.meds[cls] = self.choose(cls, self.meds.values())
        self.reasons[cls] = [reason]

    def stop(self, cls: str) -> None:
        self.meds.pop(cls, None)
        self.reasons.pop(cls, None)

    def switch(self, cls: str) -> None:
        options = self.k.drug_classes[cls]
        if len(options) < 2:
            return
        current = self.meds[cls]
        for _ in range(6):
            candidate = options.pick(self.rng)
            if candidate != current:
                others = [m for c, m in self.meds.items() if c != cls]
                if not self.clashes(candidate, others) or self.rng.random() > P_DDI_AVOIDED:
                    self.meds[cls] = candidate
                    self.preferred[cls] = candidate
                return


def _chronic_probability(spec, intercept: float, sex: str, age: float, present) -> float:
    if spec.sex and spec.sex != sex:
        return 0.0
    log_odds = intercept + math.log(spec.age_odds) * (age - 65.0) / 10.0
    if sex == "male":
        log_odds += math.log(spec.male_odds)
    for other, ratio in spec.odds.items():
        if other in present:
            log_odds += math.log(ratio)
    return 1.0 / (1.0 + math.exp(-log_odds))


def draw_sex_age(rng: random.Random) -> tuple[str, float]:
    sex = "male" if rng.random() < P_MALE else "female"
    return sex, 18.0 + 77.0 * rng.betavariate(3.4, 1.7)     # adults, skewed old (mean ≈ 69)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1.0 - p))


def _intercepts(k: Knowledge) -> dict:
    """Per-condition log-odds intercepts such that the *marginal* prevalence in the cohort's
    age/sex mix matches the table's `prevalence`, despite the comorbidity odds ratios
    compounding (fixed-point iteration on a reference population; deterministic)."""
    cached = getattr(k, "_chronic_intercepts", None)
    if cached is not None:
        return cached
    rng = random.Random("fhir-assist-synth:prevalence-calibration")
    order = k.chronic_order
    people = [draw_sex_age(rng) + ([rng.random() for _ in order],) for _ in range(1500)]
    intercept = {key: _logit(k.chronic[key].spec.prevalence) for key in order}
    for _ in range(5):
        totals = {key: 0.0 for key in order}
        counts = {key: 0 for key in order}
        for sex, age, draws in people:
            present = set()
            for key, u in zip(order, draws):
                spec = k.chronic[key].spec
                if spec.sex and spec.sex != sex:
                    continue
                p = _chronic_probability(spec, intercept[key], sex, age, present)
                totals[key] += p
                counts[key] += 1
                if u < p:
                    present.add(key)
        for key in order:
            if counts[key]:
                achieved = totals[key] / counts[key]
                intercept[key] += _logit(k.chronic[key].spec.prevalence) - _logit(achieved)
    k._chronic_intercepts = intercept
    return intercept


def _chronic_model(k: Knowledge) -> dict:
    """Per condition: (sex restriction, intercept, log-odds per year of age, male log-odds, [(other, log OR)])."""
    model = getattr(k, "_chronic_model", None)
    if model is None:
        intercepts = _intercepts(k)
        model = {}
        for key in k.chronic_order:
            spec = k.chronic[key].spec
            model[key] = (spec.sex, intercepts[key], math.log(spec.age_odds) / 10.0, math.log(spec.male_odds),
                          tuple((other, math.log(ratio)) for other, ratio in spec.odds.items()))
        k._chronic_model = model
    return model


def _weighted_site(sites, rng):
    # Common sites first: lung, breast, prostate, colorectal carry most of the weight.
    weights = {"lung": 5, "breast": 6, "prostate": 6, "colorectal": 4, "pancreas": 1.5, "lymphoma": 2,
               "leukemia": 1.5, "myeloma": 1, "bladder": 1.5, "kidney": 1, "liver": 1,
               "esophagus_stomach": 1, "ovary_uterus": 1.5}
    total = sum(weights.get(s.key, 1) for s in sites)
    r = rng.random() * total
    for s in sites:
        r -= weights.get(s.key, 1)
        if r <= 0:
            return s
    return sites[-1]


def _pick(pairs, rng):
    total = sum(w for _, w in pairs)
    r = rng.random() * total
    for item, w in pairs:
        r -= w
        if r <= 0:
            return item
    return pairs[-1][0]


def _poisson(lam: float, rng: random.Random) -> int:
    # Knuth's method: small λ only.
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _visit_count(rng: random.Random) -> int:
    r = rng.random()
    for n, p in VISIT_COUNTS:
        r -= p
        if r < 0:
            return n
    return 10 + min(int(rng.expovariate(0.25)), 30)   # the 10+ tail


def _hypertension_code(chronic: dict) -> str:
    """ICD-10-CM combination codes: hypertension with heart failure and/or CKD."""
    chf, ckd = "chf" in chronic, chronic.get("ckd")
    esrd = ckd in ("N18.5", "N18.6")
    if chf and ckd:
        return "I13.2" if esrd else "I13.0"
    if ckd:
        return "I12.0" if esrd else "I12.9"
    if chf:
        return "I11.0"
    return "I10"


def prepare(k: Knowledge) -> None:
    """Compute the derived tables now (before worker processes fork) rather than on first use."""
    _chronic_model(k)
    _acute_table(k)


def simulate_patient(k: Knowledge, seed: int, index: int, window: tuple[date, date]) -> PatientRecord:
    """Patient `index` of the cohort of `seed`; all their visits fall within `window`."""
    rng = random.Random(f"fhir-assist-synth:{seed}:{index}")
    sex, age = draw_sex_age(rng)
    course = Course(k, rng, sex, age)
    for key in k.chronic_order:
        if rng.random() < course.chronic_probability(key):
            course.add_chronic(key)
    n_background = _poisson(0.9, rng)
    for _ in range(n_background):
        code = k.background_secondary.pick(rng)
        if code not in course.background:
            course.background.append(code)

    # The course's timing first: readmissions within a month are common, otherwise months apart.
    n_visits = _visit_count(rng)
    gaps = [rng.uniform(3, 30) if rng.random() < 0.22 else min(rng.lognormvariate(math.log(150), 0.9), 1500)
            for _ in range(n_visits - 1)]
    window_days = (window[1] - window[0]).days
    span = sum(gaps) + STAY_ALLOWANCE_DAYS * n_visits
    if span > window_days:                      # a long course is compressed to fit the window
        gaps = [g * (window_days - STAY_ALLOWANCE_DAYS * n_visits) / sum(gaps) for g in gaps]
        span = window_days
    first = datetime.combine(window[0], datetime.min.time()) + timedelta(
        days=rng.randrange(max(1, int(window_days - span))), hours=rng.randrange(24), minutes=rng.randrange(60))
    birth = (first - timedelta(days=age * 365.25)).date()
    record = PatientRecord(index=index, sex=sex, birth_date=birth,
                           given=rng.choice(registration.GIVEN_NAMES[sex]), family=rng.choice(registration.FAMILY_NAMES),
                           tz=rng.choice(("-05:00", "-06:00", "-04:00", "-07:00", "-08:00")))

    when = first
    for v in range(n_visits):
        course.age = (when.date() - birth).days / 365.25
        visit = draw_visit(course, v, when)
        record.visits.append(visit)
        if v + 1 < n_visits:
            between_visits(course, visit)
            when = visit.end + timedelta(days=gaps[v], hours=rng.randrange(-6, 7))
    return record


def _draw_setting(course: Course) -> str:
    rng = course.rng
    if course.cancer is not None and rng.random() < 0.12:
        return "AMB"
    return _pick(SETTING_WEIGHTS, rng)


def _acute_table(k: Knowledge) -> dict:
    """Per encounter class: [(key, requires, sex, min_age, max_age, not_before, weight, boosts)]."""
    table = getattr(k, "_acute_table", None)
    if table is None:
        table = {}
        for setting in ("IMP", "EMER", "AMB"):
            table[setting] = [
                (key, comp.spec.requires, comp.spec.sex, comp.spec.min_age, comp.spec.max_age,
                 comp.spec.not_before, comp.spec.weight, tuple(comp.spec.boost.items()))
                for key, comp in k.acute.items() if setting in comp.settings and comp.codes]
        k._acute_table = table
    return table


def _acute_weights(course: Course, setting: str, when: datetime, exclude=()) -> list:
    today = when.date().isoformat()
    chronic, sex, age = course.chronic, course.sex, course.age
    out = []
    for key, requires, only_sex, min_age, max_age, not_before, weight, boosts in _acute_table(course.k)[setting]:
        if key in exclude or (only_sex and only_sex != sex) or not (min_age <= age <= max_age):
            continue
        if requires and not any(r in chronic for r in requires):
            continue
        if not_before and today < not_before:
            continue
        for chronic_key, mult in boosts:
            if chronic_key in chronic:
                weight *= mult
        out.append((key, weight))
    return out


def draw_visit(course: Course, v: int, when: datetime, setting: str | None = None) -> VisitRecord:
    # The steps draw from `course.rng` in this order: a cohort depends on it.
    setting = setting or _draw_setting(course)
    inpatient = setting == "IMP"
    principal, acute = _draw_acute_problems(course, setting, when)
    visit = VisitRecord(index=v, start=when, end=when + _draw_stay_length(course, principal, inpatient),
                        setting=setting, acute=acute, chronic=list(course.chronic),
                        cancer_site=course.cancer.key if course.cancer else None)
    dx: dict[str, str] = {}           # code → role, insertion-ordered (principal first)
    replaced = _code_acute_problems(course, acute, dx)
    coding = (1.0 if inpatient else 0.55) * course.coding_factor
    _code_chronic_conditions(course, visit, replaced, coding, dx)
    _code_secondary_diagnoses(course, len(acute), inpatient, coding, dx)
    visit.diagnoses = list(dx.items())
    visit.procedures = _draw_procedures(course, acute, inpatient)
    _draw_medications(course, visit, inpatient)
    if inpatient:
        visit.disposition = course.rng.choice(registration.DISPOSITIONS)
        visit.service = registration.SERVICE_FOR.get(principal) or course.rng.choice(registration.SERVICES)
    else:
        visit.disposition = "home"
        visit.service = "Emergency Medicine" if setting == "EMER" else "Outpatient"
    return visit


def _draw_acute_problems(course: Course, setting: str, when: datetime) -> tuple[str | None, list[str]]:
    """A principal problem, its complications, sometimes an unrelated second one."""
    k, rng = course.k, course.rng
    weights = _acute_weights(course, setting, when)
    principal = _pick(weights, rng) if weights else None
    acute = [principal] if principal else []
    if setting == "IMP":
        for key in list(acute):
            for comp_key, p in k.acute[key].complications:
                if comp_key not in acute and rng.random() < p:
                    acute.append(comp_key)
        if rng.random() < P_EXTRA_ACUTE:
            extra = _acute_weights(course, "IMP", when, exclude=acute)
            if extra:
                acute.append(_pick(extra, rng))
    return principal, acute


def _draw_stay_length(course: Course, principal: str | None, inpatient: bool) -> timedelta:
    days = course.k.acute[principal].spec.stay_days if principal else 3.0
    if inpatient:
        return timedelta(hours=max(20.0, 24.0 * course.rng.lognormvariate(math.log(days), 0.6)))
    return timedelta(minutes=course.rng.randrange(90, 12 * 60))


def _code_acute_problems(course: Course, acute: list[str], dx: dict) -> dict[str, str]:
    """Codes of the acute problems into `dx`; returns {chronic key: code it is replaced by this stay}."""
    replaced: dict[str, str] = {}
    for key in acute:
        comp = course.k.acute[key]
        own_codes_replace = False
        for chronic_key, code in course.chronic.items():
            if code in comp.replaces:
                replaced[chronic_key] = comp.replaces[code]
                own_codes_replace = True
        if own_codes_replace:
            for chronic_key, code in replaced.items():
                dx.setdefault(code, "acute")
        else:
            dx.setdefault(course.pick_code(comp), "acute")
        for code, p in comp.co_codes:
            if course.rng.random() < p:
                dx.setdefault(code, "secondary")
    return replaced


def _code_chronic_conditions(course: Course, visit: VisitRecord, replaced: dict, coding: float, dx: dict) -> None:
    """Chronic conditions: coded in most inpatient stays, fewer in ED / clinic visits."""
    k, rng = course.k, course.rng
    for key, code in course.chronic.items():
        comp = k.chronic[key]
        if key == "hypertension":
            combined = _hypertension_code(course.chronic)
            code = combined if combined in k.billable else code
        code = replaced.get(key, code)
        visit.chronic_codes[key] = code
        if key in replaced or rng.random() < min(0.98, comp.spec.coded * coding):
            dx.setdefault(code, "chronic")
            for co_code, p in comp.co_codes:
                if rng.random() < p * coding:
                    dx.setdefault(co_code, "secondary")
            if key == "cancer" and course.cancer is not None:
                for co_code, p in course.cancer.metastases:
                    if rng.random() < p * 2.5:
                        dx.setdefault(co_code, "secondary")
            if key == "ckd" and code == "N18.6" and "Z99.2" in k.billable and rng.random() < 0.9:
                dx.setdefault("Z99.2", "secondary")     # dependence on renal dialysis


def _code_secondary_diagnoses(course: Course, n_acute: int, inpatient: bool, coding: float, dx: dict) -> None:
    k, rng = course.k, course.rng
    # Status codes implied by long-term medications.
    for cls in course.meds:
        for code, p in k.med_status_codes.get(cls, ()):
            if rng.random() < p * coding:
                dx.setdefault(code, "secondary")
    # Background history/status codes, per-stay secondary problems, and the rare tail.
    for code in course.background:
        if rng.random() < 0.55 * coding:
            dx.setdefault(code, "secondary")
    lam = (1.9 if inpatient else 0.4) * coding * (1.0 + 0.12 * n_acute)
    for _ in range(_poisson(lam, rng)):
        dx.setdefault(k.common_secondary.pick(rng), "secondary")
    for _ in range(_poisson(0.6 if inpatient else 0.15, rng)):
        dx.setdefault(k.tail_pool.pick(rng), "secondary")


def _draw_procedures(course: Course, acute: list[str], inpatient: bool) -> list:
    """Procedures tied to the stay's problems (and dialysis for ESRD)."""
    k, rng = course.k, course.rng
    procs = []
    for key in acute:
        for pair, p in k.acute[key].procedures:
            if rng.random() < p and pair not in procs:
                procs.append(pair)
    if inpatient and course.chronic.get("ckd") == "N18.6" and rng.random() < 0.75:
        if k.dialysis != (None, None) and k.dialysis not in procs:
            procs.append(k.dialysis)
    return procs


def _draw_medications(course: Course, visit: VisitRecord, inpatient: bool) -> None:
    """Chronic medications (minus what the stay holds), the acute problems' drugs, routine orders."""
    k, rng = course.k, course.rng
    held = set()
    for key in visit.acute:
        held.update(k.acute[key].spec.holds)
    meds: list[str] = []
    for cls, rxcui in course.meds.items():
        if cls in held:
            continue
        if rng.random() < (0.98 if inpatient else 0.55):
            meds.append(rxcui)
    for key in visit.acute:
        for cls, p in k.acute[key].meds:
            if cls not in held and rng.random() < p:
                meds.append(course.choose(cls, meds))
    routine = course.routine.items() if inpatient else k.routine_other
    for cls, p in routine:
        if cls not in held and rng.random() < p:
            meds.append(course.choose(cls, meds))
    unique = sorted(set(meds))
    visit.medications = unique
    visit.ddi_pairs = sum(1 for i, a in enumerate(unique) for b in unique[i + 1:]
                          if frozenset((a, b)) in k.ddi)
    visit.held = sorted(held & set(course.meds))
    visit.held_drugs = [course.meds[cls] for cls in visit.held]


def between_visits(course: Course, visit: VisitRecord) -> None:
    k, rng = course.k, course.rng
    # Acute events that leave a chronic condition behind (MI → CAD, new AF, stroke → history of stroke).
    for key in visit.acute:
        becomes = k.acute[key].spec.becomes
        if becomes and becomes not in course.chronic and becomes in k.chronic:
            course.add_chronic(becomes)
        if key == "pe_dvt" and "anticoagulant" in k.drug_classes:
            course.start("anticoagulant", "pe_dvt")
    # Anticoagulation after a clot is time-limited.
    if "pe_dvt" not in visit.acute and "anticoagulant" in course.reasons \
            and course.reasons["anticoagulant"] == ["pe_dvt"] and rng.random() < 0.5:
        course.stop("anticoagulant")
    # Drugs held during the stay: usually resumed, sometimes stopped for good.
    for cls in visit.held:
        if rng.random() < P_STOP_HELD:
            course.stop(cls)
    # A new chronic diagnosis (with its drugs).
    if rng.random() < P_NEW_CHRONIC:
        candidates = [(key, course.chronic_probability(key)) for key in k.chronic_order
                      if key not in course.chronic]
        candidates = [(key, p) for key, p in candidates if p > 0]
        if candidates:
            course.add_chronic(_pick(candidates, rng))
    # Disease progression: the specific code drifts (E11.9 → E11.65, N18.30 → N18.4).
    for key in list(course.chronic):
        comp = k.chronic[key]
        if comp.spec.drift and rng.random() < comp.spec.drift and comp.codes:
            course.chronic[key] = course.pick_code(comp)
    # Smokers quit; the history code replaces the dependence code.
    if course.chronic.get("tobacco", "").startswith("F17") and rng.random() < P_QUIT_SMOKING:
        course.chronic["tobacco"] = "Z87.891"
        course.stop("nicotine")
    # Regimen changes: substitution within a class, stops, escalation.
    for cls in list(course.meds):
        r = rng.random()
        if r < P_SWITCH:
            course.switch(cls)
        elif r < P_SWITCH + P_STOP:
            course.stop(cls)
    for key in ("hypertension", "diabetes", "chf"):
        if key in course.chronic and rng.random() < 0.08:
            options = [cls for cls, _ in k.chronic[key].meds if cls not in course.meds]
            if options:
                course.start(options[int(rng.random() * len(options))], key)
    # Remission of mood disorders.
    for key in ("depression", "anxiety"):
        if key in course.chronic and rng.random() < 0.03:
            course.remove_chronic(key)
