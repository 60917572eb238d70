"""The clinical course of one patient of the ambulatory profile, encounter by encounter.

Shaped like a health system's Bulk Data export rather than like MIMIC: about six
encounters per patient-year, most of them clinic (AMB) or virtual (VR) visits,
with emergency visits (EMER) and admissions (IMP) in between. What such exports
do that the inpatient profile does not:

- annual check-ups known only by their reason (Z00.0x in `Encounter.reasonCode`,
  no diagnosis) and vaccination visits coded Z23 alone;
- chronic problems re-cited at every follow-up through `Encounter.diagnosis`;
- an admission that is `partOf` the emergency visit it came through (their
  periods touch), and a readmission `partOf` the index stay weeks earlier;
- a stay still in progress at the time of the export (no `period.end`);
- CPT, HCPCS, SNOMED CT and local procedure codes; drugs outside the curated
  ingredient list.

The clinical draws (chronic conditions, acute problems, medications) are the
inpatient profile's (`simulate`); only the encounter mix and timing are new.
One `random.Random` per patient, so a record depends only on (seed, index).
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from mappings import codesystems

from . import registration
from .knowledge import Knowledge
from .records import PatientRecord, VisitRecord
from .simulate import Course, _hypertension_code, _pick, _poisson, between_visits, draw_visit

VISITS_PER_YEAR = 4.4         # slots per patient-year; with admissions and readmissions ≈ 6 encounters
# Encounter kinds between the yearly check-ups (weights).
KINDS = (("followup", 0.40), ("virtual", 0.14), ("vaccination", 0.14), ("sick", 0.17), ("ed", 0.16))
P_ADMITTED_FROM_ED = 0.30     # the ED visit continues as an admission (partOf the ED encounter)
P_DIRECT_ADMISSION = 0.03     # per encounter slot: an elective/direct admission
P_READMISSION = 0.15          # a readmission within 30 days (partOf the index stay)
P_OPEN_LAST_STAY = 0.35       # the last encounter, when a stay, is still in progress at export time
P_CHRONIC_CODED = 0.9         # a follow-up re-cites each chronic problem
P_NEW_CHRONIC = 0.05          # per encounter: the course moves on (new diagnoses, switches)

# Procedure codes: CPT and HCPCS Level II codes (no CPT descriptions are shipped: the
# text is our own short wording), SNOMED CT procedures and a local code system.
CPT, HCPCS, SNOMED = codesystems.CPT, codesystems.HCPCS, codesystems.SNOMED
LOCAL_PROCEDURES = "http://hospital.example.org/fhir/CodeSystem/procedure-codes"
PREVENTIVE_VISIT = ((40, "99395"), (65, "99396"), (200, "99397"))      # by age: under 40, 40–64, 65+
CHECKUP_LABS = ((CPT, "36415", "blood draw"), (CPT, "80053", "metabolic panel"),
                (CPT, "80061", "lipid panel"), (CPT, "85025", "blood count"))
OFFICE_VISIT = ((CPT, "99213", "office visit, established patient"),
                (CPT, "99214", "office visit, established patient, moderate"))
VACCINE = ((CPT, "90471", "vaccine administration"), (CPT, "90686", "influenza vaccine"))
VACCINE_MEDICARE = ((HCPCS, "G0008", "influenza vaccine administration"),
                    (CPT, "90686", "influenza vaccine"))
ED_PROCEDURES = (((SNOMED, "29303009", "Electrocardiographic procedure"), 0.45),
                 ((SNOMED, "399208008", "Plain chest X-ray"), 0.35),
                 ((SNOMED, "396550006", "Blood test"), 0.7),
                 ((SNOMED, "77477000", "Computerized axial tomography"), 0.2),
                 ((SNOMED, "18629005", "Administration of drug or medicament"), 0.4),
                 ((LOCAL_PROCEDURES, "ED-TRIAGE-2", "ED triage level 2 assessment"), 0.15))
# RxNorm ingredients outside the curated list (mappings/data/rxnorm_ingredients.csv).
OTHER_DRUGS = {"parkinson": (("2019", "carbidopa"), ("6375", "levodopa")),
               "breast": (("224905", "trastuzumab"),), "lung": (("1721560", "osimertinib"),)}
ED_OTHER_DRUGS = ((("1815", "bupivacaine"), 0.08), (("42372", "mupirocin"), 0.05))


def simulate_ambulatory(k: Knowledge, seed: int, index: int, window: tuple[date, date]) -> PatientRecord:
    """Patient `index` of the ambulatory cohort of `seed`; all encounters start within `window`."""
    rng = random.Random(f"fhir-assist-synth:ambulatory:{seed}:{index}")
    sex = "male" if rng.random() < 0.46 else "female"
    age = 18.0 + 72.0 * rng.betavariate(2.0, 2.0)          # adults of every age (mean ≈ 54)
    course = Course(k, rng, sex, age)
    for key in k.chronic_order:
        if rng.random() < course.chronic_probability(key):
            course.add_chronic(key)
    for _ in range(_poisson(0.5, rng)):
        code = k.background_secondary.pick(rng)
        if code not in course.background:
            course.background.append(code)

    window_days = (window[1] - window[0]).days
    years = rng.uniform(1.0, 4.0)
    first = datetime.combine(window[0], datetime.min.time()) + timedelta(
        days=rng.randrange(max(1, window_days - int(years * 365))), hours=rng.randrange(7, 17))
    record = PatientRecord(index=index, sex=sex, birth_date=(first - timedelta(days=age * 365.25)).date(),
                           given=rng.choice(registration.GIVEN_NAMES[sex]), family=rng.choice(registration.FAMILY_NAMES),
                           tz=rng.choice(("-05:00", "-06:00", "-04:00", "-07:00", "-08:00")))
    # Sicker patients come more often.
    rate = VISITS_PER_YEAR * rng.lognormvariate(-0.12, 0.5) * (0.7 + 0.1 * min(len(course.chronic), 6))
    last = first + timedelta(days=years * 365)
    when, next_checkup = first, first
    while when < last:
        if when >= next_checkup:
            kind, next_checkup = "checkup", when + timedelta(days=rng.uniform(330, 400))
        elif rng.random() < P_DIRECT_ADMISSION:
            kind = "admission"
        else:
            kind = _pick(KINDS, rng)
        for visit in _encounters(course, record, kind, when):
            record.visits.append(visit)
        end = record.visits[-1].end
        when = max(when + timedelta(days=rng.expovariate(rate / 365.0)), end + timedelta(days=1))
        when = when.replace(hour=rng.randrange(7, 18), minute=rng.randrange(60))
    last_visit = record.visits[-1]
    if last_visit.setting == "IMP" and rng.random() < P_OPEN_LAST_STAY:
        last_visit.open = True
    return record


def _encounters(course: Course, record: PatientRecord, kind: str, when: datetime) -> list[VisitRecord]:
    """One encounter, or an ED visit with the admission that followed and perhaps a readmission."""
    rng, v = course.rng, len(record.visits)
    if kind in ("checkup", "vaccination", "followup", "virtual"):
        visit = _clinic_visit(course, v, when, kind)
    elif kind == "sick":
        visit = draw_visit(course, v, when, setting="AMB")
        visit.kind = "sick"
        _recite_chronic(course, visit)
        visit.outpatient_procedures = [OFFICE_VISIT[rng.random() < 0.4]]
    else:
        visit = _stay(course, v, when, "EMER" if kind == "ed" else "IMP", kind)
    visits = [visit]
    if visit.setting == "EMER" and rng.random() < P_ADMITTED_FROM_ED:
        # The admission starts when the ED visit ends (or within two hours): one episode.
        start = visit.end + timedelta(minutes=rng.choice((0, 0, 20, 45, 110)))
        admission = _stay(course, v + 1, start, "IMP", "admission")
        admission.part_of = visit.index
        visits.append(admission)
    if visits[-1].setting == "IMP" and rng.random() < P_READMISSION:
        index_stay = visits[-1]
        start = index_stay.end + timedelta(days=rng.uniform(4, 30), hours=rng.randrange(-6, 7))
        readmission = _stay(course, index_stay.index + 1, start, "IMP", "readmission")
        readmission.part_of = index_stay.index
        visits.append(readmission)
    if kind in ("sick", "ed", "admission") or rng.random() < P_NEW_CHRONIC:
        between_visits(course, visits[-1])
    return visits


def _stay(course: Course, v: int, when: datetime, setting: str, kind: str) -> VisitRecord:
    rng = course.rng
    visit = draw_visit(course, v, when, setting=setting)
    visit.kind = kind
    _recite_chronic(course, visit)
    visit.outpatient_procedures = [proc for proc, p in ED_PROCEDURES if rng.random() < p]
    for drug, p in ED_OTHER_DRUGS:
        if rng.random() < p:
            visit.other_drugs.append(drug)
    _other_drugs(course, visit)
    if setting == "IMP":
        # Procedures coded in ICD-10-PCS by the hospital's coders half the time, else only in SNOMED CT.
        if rng.random() < 0.5:
            visit.outpatient_procedures = visit.outpatient_procedures[:2]
    else:
        visit.procedures = []
    return visit


def _clinic_visit(course: Course, v: int, when: datetime, kind: str) -> VisitRecord:
    k, rng = course.k, course.rng
    setting = "VR" if kind == "virtual" else "AMB"
    minutes = 20 if kind == "vaccination" else rng.randrange(20, 60)
    visit = VisitRecord(index=v, start=when, end=when + timedelta(minutes=minutes), setting=setting,
                        chronic=list(course.chronic),
                        cancer_site=course.cancer.key if course.cancer else None, kind=kind,
                        service="Telehealth" if kind == "virtual" else "Primary Care")
    for key, code in course.chronic.items():
        if key == "hypertension":
            combined = _hypertension_code(course.chronic)
            code = combined if combined in k.billable else code
        visit.chronic_codes[key] = code
    if kind == "checkup":
        visit.reasons = ["Z00.01" if course.chronic and rng.random() < 0.5 else "Z00.00"]
        code = next(c for limit, c in PREVENTIVE_VISIT if course.age < limit)
        visit.outpatient_procedures = [(CPT, code, "preventive visit")] + [
            proc for proc in CHECKUP_LABS if rng.random() < 0.7]
        if "diabetes" in course.chronic:
            visit.outpatient_procedures.append((CPT, "83036", "glycated hemoglobin"))
    elif kind == "vaccination":
        visit.diagnoses = [("Z23", "z")]
        visit.outpatient_procedures = list(VACCINE_MEDICARE if course.age >= 65 else VACCINE)
    else:
        _recite_chronic(course, visit)
        if visit.diagnoses:
            visit.reasons = [visit.diagnoses[0][0]] if rng.random() < 0.6 else []
        visit.outpatient_procedures = [OFFICE_VISIT[rng.random() < 0.5]] if setting == "AMB" else [
            (LOCAL_PROCEDURES, "TELE-FU", "telehealth follow-up")]
        # Renewals of the regular medicines.
        visit.medications = sorted({rxcui for rxcui in course.meds.values() if rng.random() < 0.8})
        visit.ddi_pairs = sum(1 for i, a in enumerate(visit.medications) for b in visit.medications[i + 1:]
                              if frozenset((a, b)) in k.ddi)
        _other_drugs(course, visit)
    return visit


def _recite_chronic(course: Course, visit: VisitRecord) -> None:
    """Chronic problems cited again at this encounter (from the problem list), after its own codes."""
    present = {code for code, _ in visit.diagnoses}
    for key, code in course.chronic.items():
        code = visit.chronic_codes.get(key, code)
        if code not in present and course.rng.random() < P_CHRONIC_CODED:
            visit.diagnoses.append((code, "chronic"))
            present.add(code)


def _other_drugs(course: Course, visit: VisitRecord) -> None:
    keys = list(course.chronic) + ([course.cancer.key] if course.cancer is not None else [])
    for key in keys:
        for drug in OTHER_DRUGS.get(key, ()):
            if drug not in visit.other_drugs and course.rng.random() < 0.85:
                visit.other_drugs.append(drug)
