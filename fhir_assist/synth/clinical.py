"""Clinical knowledge the synthetic cohort is drawn from.

Plain tables, no logic: chronic conditions (latent, persistent across visits),
acute problems (per stay), drug classes (RxNorm ingredients by name, resolved
through `mappings.rxnorm` at load time), routine inpatient medications,
procedures (ICD-10-PCS with the ICD-9-CM volume 3 code beside it), common
secondary diagnoses, and the words discharge notes use for each condition.

Weighted lists are written compactly as "CODE:weight CODE:weight …"; the
weights within a list follow the long-tailed shape seen in inpatient coding
(one or two dominant codes, then a tail of specific ones).  Every code is
checked against `mappings` when the tables are compiled (`knowledge.py`), and a
code the mappings don't know is dropped and counted, never written.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chronic:
    """A latent chronic condition: present or not for a patient, persisting across visits."""

    key: str
    codes: str                      # weighted ICD-10-CM billing codes; one is the patient's own
    prevalence: float               # probability for a 65-year-old with no related condition
    terms: str                      # "|"-separated phrasings for notes (formal, synonyms, lay, abbreviations)
    age_odds: float = 1.0           # odds multiplier per decade above 65 (below: divided)
    male_odds: float = 1.0          # odds multiplier for male patients
    sex: str | None = None          # only in this sex ("male" / "female")
    odds: dict = field(default_factory=dict)   # {other chronic key: odds ratio when present}
    meds: tuple = ()                # ((drug class, probability of being on it), …)
    co_codes: str = ""              # "CODE:probability" coded alongside in a visit
    tail: str = ""                  # ICD-10-CM categories whose billable codes form the rare tail
    tail_rate: float = 0.08         # probability the patient's code comes from the tail
    coded: float = 0.82             # probability an inpatient stay codes the condition
    drift: float = 0.10             # per-visit probability the specific code changes


@dataclass(frozen=True)
class Acute:
    """A problem that brings a patient in (or complicates a stay)."""

    key: str
    codes: str
    weight: float                   # relative frequency as a principal problem
    terms: str
    requires: tuple = ()            # any of these chronic conditions must be present
    boost: dict = field(default_factory=dict)  # {chronic key: weight multiplier}
    settings: str = "IMP"           # encounter classes it can occur in (IMP, EMER, AMB)
    complications: str = ""         # "acute_key:probability"
    co_codes: str = ""              # "CODE:probability"
    meds: tuple = ()                # ((drug class, probability), …)
    procedures: tuple = ()          # ((ICD-10-PCS, ICD-9-CM proc, probability), …)
    holds: tuple = ()               # drug classes held during the stay
    becomes: str | None = None      # chronic condition the patient has from then on
    replaces: dict = field(default_factory=dict)  # {chronic code: code used instead this stay}
    tail: str = ""
    tail_rate: float = 0.10
    sex: str | None = None
    max_age: int = 120
    min_age: int = 0
    stay_days: float = 4.0          # median length of an inpatient stay
    not_before: str | None = None   # ISO date before which the problem cannot occur (e.g. COVID-19)


# ---------------------------------------------------------------------------
# Drug classes: ingredient names (resolved to RxCUIs by mappings.rxnorm) with
# prescribing weights. Substitutions between visits stay within a class.
# ---------------------------------------------------------------------------
DRUG_CLASSES: dict[str, str] = {
    "acei": "lisinopril:8 enalapril:1.5 ramipril:1.5 benazepril:1 captopril:0.3",
    "arb": "losartan:6 valsartan:2 irbesartan:1 olmesartan:0.7 telmisartan:0.5 candesartan:0.3",
    "arni": "sacubitril:1",
    "ccb": "amlodipine:10 nifedipine:1.5 diltiazem:1 felodipine:0.3",
    "thiazide": "hydrochlorothiazide:6 chlorthalidone:2 indapamide:0.3",
    "beta_blocker": "metoprolol:10 carvedilol:4 atenolol:2.5 labetalol:0.8 bisoprolol:0.6 propranolol:0.4 nebivolol:0.3",
    "hf_beta_blocker": "carvedilol:6 metoprolol:5 bisoprolol:0.7",
    "loop": "furosemide:10 torsemide:2.5 bumetanide:1.2",
    "mra": "spironolactone:8 eplerenone:0.7",
    "other_antihypertensive": "hydralazine:4 clonidine:2.5 isosorbide mononitrate:1 doxazosin:0.7",
    "nitrate": "isosorbide mononitrate:5 nitroglycerin:3 isosorbide dinitrate:1",
    "statin": "atorvastatin:10 simvastatin:4 rosuvastatin:3 pravastatin:2 lovastatin:0.6",
    "ezetimibe": "ezetimibe:1",
    "aspirin": "aspirin:1",
    "p2y12": "clopidogrel:8 ticagrelor:2 prasugrel:0.6",
    "anticoagulant": "apixaban:8 warfarin:6 rivaroxaban:3 dabigatran:0.5",
    "parenteral_anticoagulant": "heparin:6 enoxaparin:3",
    "rate_control": "metoprolol:8 diltiazem:3 digoxin:1 carvedilol:1",
    "antiarrhythmic": "amiodarone:6 sotalol:0.8 flecainide:0.4 dronedarone:0.3",
    "metformin": "metformin:1",
    "basal_insulin": "insulin glargine:8 insulin detemir:1.5 insulin isophane:1",
    "prandial_insulin": "insulin lispro:6 insulin aspart:3 insulin regular:2",
    "sulfonylurea": "glipizide:6 glimepiride:2 glyburide:1",
    "dpp4": "sitagliptin:6 linagliptin:3 saxagliptin:0.5",
    "sglt2": "empagliflozin:5 dapagliflozin:2.5 canagliflozin:0.7",
    "glp1": "liraglutide:3 semaglutide:3 dulaglutide:2 exenatide:0.3",
    "short_bronchodilator": "albuterol:8 ipratropium:3 levalbuterol:0.3",
    "long_bronchodilator": "tiotropium:6 salmeterol:3 formoterol:1.5 umeclidinium:0.7",
    "inhaled_steroid": "fluticasone:6 budesonide:3 mometasone:0.7 beclomethasone:0.5",
    "leukotriene": "montelukast:1",
    "systemic_steroid": "prednisone:8 methylprednisolone:3 dexamethasone:1 hydrocortisone:0.7",
    "ssri": "sertraline:8 citalopram:5 escitalopram:5 fluoxetine:3 paroxetine:1.5",
    "snri": "venlafaxine:4 duloxetine:4",
    "other_antidepressant": "bupropion:5 mirtazapine:4 trazodone:5",
    "benzodiazepine": "lorazepam:8 alprazolam:3 clonazepam:3 diazepam:1",
    "anxiolytic": "buspirone:1",
    "thyroid": "levothyroxine:1",
    "ppi": "pantoprazole:8 omeprazole:8 esomeprazole:1.5 lansoprazole:1",
    "h2_blocker": "famotidine:1",
    "lactulose": "lactulose:1",
    "rifaximin": "rifaximin:1",
    "nonselective_bb": "propranolol:3 nadolol:2 carvedilol:0.5",
    "cholinesterase": "donepezil:6 rivastigmine:1 galantamine:0.5",
    "memantine": "memantine:1",
    "antipsychotic": "quetiapine:6 olanzapine:3 haloperidol:3 risperidone:2 aripiprazole:1",
    "mood_stabilizer": "lithium:3 valproic acid:3 lamotrigine:2",
    "alpha_blocker": "tamsulosin:6 doxazosin:1 terazosin:1 alfuzosin:0.5",
    "five_ari": "finasteride:4 dutasteride:1",
    "bisphosphonate": "alendronic acid:6 risedronate:1 ibandronate:0.5",
    "calcium_vitd": "calcium carbonate:4 cholecalciferol:4 ergocalciferol:1",
    "iron": "ferrous sulfate:6 ferrous gluconate:1 iron sucrose:1",
    "urate": "allopurinol:8 febuxostat:1",
    "colchicine": "colchicine:1",
    "antiepileptic": "levetiracetam:8 phenytoin:2 lamotrigine:1.5 lacosamide:1 valproic acid:1 carbamazepine:0.5",
    "antiplatelet_pvd": "cilostazol:1",
    "parkinson": "carbidopa:1 levodopa:1",
    "dmard": "methotrexate:5 hydroxychloroquine:4 sulfasalazine:1 leflunomide:0.5",
    "folate": "folic acid:1",
    "thiamine": "thiamine:1",
    "b12": "cyanocobalamin:1",
    "nicotine": "nicotine:1",
    "phosphate_binder": "sevelamer:5 calcium acetate:3 lanthanum carbonate:0.5",
    "vitamin_d_active": "calcitriol:1",
    "esa": "epoetin alfa:4 darbepoetin alfa:1",
    "bicarbonate": "sodium bicarbonate:1",
    "hormonal_breast": "anastrozole:4 tamoxifen:3 letrozole:3 exemestane:0.5",
    "androgen_deprivation": "leuprolide:4 bicalutamide:2 enzalutamide:1 abiraterone:1",
    "antiemetic": "ondansetron:10 prochlorperazine:2 metoclopramide:2 promethazine:1",
    "opioid": "oxycodone:8 hydromorphone:5 morphine:5 tramadol:2 fentanyl:1.5 hydrocodone:1",
    "nonopioid": "acetaminophen:1",
    "nsaid": "ibuprofen:4 naproxen:2 ketorolac:2 meloxicam:1 celecoxib:1",
    "neuropathic": "gabapentin:6 pregabalin:2",
    "muscle_relaxant": "cyclobenzaprine:4 methocarbamol:2 tizanidine:1",
    "sedative_hypnotic": "zolpidem:4 melatonin:4",
    "stool_softener": "docusate:6 senna:5 polyethylene glycol 3350:4 bisacodyl:2",
    "laxative_bowel": "polyethylene glycol 3350:3 bisacodyl:1",
    "crystalloid": "sodium chloride:10 lactated ringer's:2",
    "potassium": "potassium chloride:1",
    "magnesium": "magnesium sulfate:4 magnesium oxide:2",
    "dextrose": "glucose:1",
    "glucagon": "glucagon:1",
    "vasopressor": "norepinephrine:8 vasopressin:3 phenylephrine:2 epinephrine:1 dopamine:0.5",
    "inotrope": "dobutamine:3 milrinone:1",
    "thrombolytic": "alteplase:1",
    "antiarrhythmic_acute": "amiodarone:4 adenosine:1 diltiazem:3",
    "pressor_free_rate": "digoxin:1",
    "octreotide": "octreotide:1",
    "vitamin_k": "phytonadione:1",
    "reversal": "protamine:1 naloxone:2 flumazenil:0.3",
    "acetylcysteine": "acetylcysteine:1",
    "cap_antibiotic": "ceftriaxone:8 azithromycin:7 levofloxacin:3 doxycycline:1.5",
    "broad_antibiotic": "vancomycin:10 piperacillin:7 tazobactam:7 cefepime:5 meropenem:2.5",
    "uti_antibiotic": "ceftriaxone:8 nitrofurantoin:3 ciprofloxacin:3 cephalexin:2 sulfamethoxazole:1.5 trimethoprim:1.5",
    "skin_antibiotic": "cefazolin:6 vancomycin:5 cephalexin:4 clindamycin:2 sulfamethoxazole:2 trimethoprim:2 doxycycline:1",
    "abdominal_antibiotic": "piperacillin:6 tazobactam:6 metronidazole:6 ceftriaxone:5 ciprofloxacin:3 ertapenem:1",
    "cdiff_antibiotic": "vancomycin:6 metronidazole:3 fidaxomicin:1",
    "sbp_prophylaxis": "ceftriaxone:4 ciprofloxacin:2",
    "antiviral_flu": "oseltamivir:1",
    "covid_treatment": "dexamethasone:5 remdesivir:3",
    "alcohol_withdrawal": "lorazepam:6 chlordiazepoxide:3 diazepam:1.5 phenobarbital:0.5",
    "antihistamine": "diphenhydramine:3 hydroxyzine:2 loratadine:1 cetirizine:1",
    "chemo": "carboplatin:3 cisplatin:2 paclitaxel:3 fluorouracil:3 oxaliplatin:2 gemcitabine:2 cyclophosphamide:2 doxorubicin:1.5 pembrolizumab:2 rituximab:1.5",
    "uricosuric_acute": "prednisone:1",
    "nephro_free_analgesic": "acetaminophen:1",
}


# ---------------------------------------------------------------------------
# Chronic conditions. Order matters: a condition's odds can only depend on
# conditions listed before it (they are sampled in this order).
# ---------------------------------------------------------------------------
CHRONIC: tuple[Chronic, ...] = (
    Chronic("tobacco", "Z87.891:6 F17.210:4 F17.200:0.8 F17.211:0.2 F17.290:0.2 F17.218:0.05",
            prevalence=0.32, age_odds=0.9, male_odds=1.4,
            meds=(("nicotine", 0.25),), coded=0.75,
            terms="tobacco use|smoker|former smoker|smoking history|cigarette smoking|quit smoking|"
                  "history of tobacco use|nicotine dependence"),
    Chronic("alcohol", "F10.20:5 F10.10:3 F10.21:1 F10.11:0.3 F10.220:0.2 F10.288:0.1",
            prevalence=0.08, age_odds=0.7, male_odds=2.5, odds={"tobacco": 3.0},
            meds=(("thiamine", 0.65), ("folate", 0.45), ("b12", 0.1)),
            terms="alcohol use disorder|EtOH abuse|alcohol dependence|heavy drinking|ETOH use|"
                  "drinks daily|alcoholism"),
    Chronic("obesity", "E66.9:5 E66.01:3 E66.09:0.5 E66.811:0.3 E66.2:0.2",
            prevalence=0.22, age_odds=0.8,
            co_codes="Z68.41:0.15 Z68.35:0.08 Z68.30:0.06 Z68.36:0.05 Z68.42:0.05 Z68.38:0.04 Z68.45:0.03",
            coded=0.6,
            terms="obesity|morbid obesity|obese|BMI over 35|elevated BMI|overweight"),
    Chronic("hypertension", "I10:1", prevalence=0.58, age_odds=1.25, odds={"obesity": 2.0},
            meds=(("acei", 0.38), ("arb", 0.2), ("ccb", 0.38), ("thiazide", 0.22),
                  ("beta_blocker", 0.3), ("other_antihypertensive", 0.1)),
            coded=0.9, drift=0.0,
            terms="hypertension|HTN|high blood pressure|elevated blood pressure|essential hypertension"),
    Chronic("hyperlipidemia", "E78.5:8 E78.00:3 E78.2:1.5 E78.49:0.7 E78.1:0.4",
            prevalence=0.42, age_odds=1.1, odds={"hypertension": 1.8, "obesity": 1.4},
            meds=(("statin", 0.82), ("ezetimibe", 0.05)), coded=0.72,
            terms="hyperlipidemia|HLD|high cholesterol|dyslipidemia|hypercholesterolemia"),
    Chronic("diabetes", "E11.9:6 E11.65:3 E11.22:2 E11.42:1 E11.40:0.7 E11.319:0.3 E11.51:0.4 "
            "E11.649:0.4 E11.69:0.4 E11.8:0.3 E11.21:0.2 E11.621:0.2 E11.3599:0.05",
            prevalence=0.27, age_odds=1.05, odds={"obesity": 2.6, "hypertension": 1.8, "hyperlipidemia": 1.6},
            meds=(("metformin", 0.45), ("basal_insulin", 0.32), ("sulfonylurea", 0.14),
                  ("dpp4", 0.12), ("sglt2", 0.08), ("glp1", 0.06)),
            tail="E11", tail_rate=0.05, coded=0.92,
            terms="type 2 diabetes|DM2|T2DM|diabetes mellitus type 2|diabetes|NIDDM|sugar diabetes|"
                  "high blood sugar|diabetic"),
    Chronic("type1_diabetes", "E10.9:5 E10.65:3 E10.22:0.6 E10.42:0.4 E10.319:0.2 E10.649:0.3",
            prevalence=0.012, age_odds=0.6,
            meds=(("basal_insulin", 0.95), ("prandial_insulin", 0.9)), coded=0.95,
            terms="type 1 diabetes|DM1|T1DM|insulin-dependent diabetes|juvenile diabetes"),
    Chronic("cad", "I25.10:10 I25.2:2.5 I25.119:0.6 I25.110:0.3 I25.5:0.3 I25.118:0.2 I25.84:0.1",
            prevalence=0.2, age_odds=1.35, male_odds=1.8,
            odds={"hypertension": 2.0, "hyperlipidemia": 2.4, "diabetes": 2.0, "tobacco": 1.8},
            meds=(("aspirin", 0.8), ("statin", 0.75), ("beta_blocker", 0.55), ("p2y12", 0.25),
                  ("nitrate", 0.15)),
            co_codes="Z95.5:0.25 Z95.1:0.15 Z86.79:0.03", coded=0.85,
            terms="coronary artery disease|CAD|coronary disease|heart disease|prior MI|"
                  "blocked heart arteries|ischemic heart disease"),
    Chronic("af", "I48.91:8 I48.20:2 I48.0:2 I48.21:1.2 I48.19:0.6 I48.11:0.2 I48.92:0.8 I48.4:0.1",
            prevalence=0.15, age_odds=1.6, male_odds=1.3, odds={"hypertension": 1.5, "cad": 1.5},
            meds=(("anticoagulant", 0.72), ("rate_control", 0.8), ("antiarrhythmic", 0.14)),
            coded=0.9,
            terms="atrial fibrillation|AFib|AF|a-fib|irregular heartbeat|paroxysmal atrial fibrillation|"
                  "afib on anticoagulation"),
    Chronic("chf", "I50.9:4 I50.32:3 I50.22:2.5 I50.42:1.2 I50.30:0.8 I50.20:0.7 I50.40:0.3 I50.810:0.1 I50.89:0.1",
            prevalence=0.13, age_odds=1.5,
            odds={"cad": 3.0, "af": 2.6, "hypertension": 1.6, "diabetes": 1.5, "obesity": 1.3},
            meds=(("loop", 0.82), ("hf_beta_blocker", 0.65), ("acei", 0.22), ("arb", 0.12),
                  ("arni", 0.08), ("mra", 0.22), ("sglt2", 0.06)),
            coded=0.93,
            terms="congestive heart failure|CHF|heart failure|HFpEF|HFrEF|weak heart|"
                  "fluid on the lungs|diastolic dysfunction|cardiomyopathy"),
    Chronic("ckd", "N18.30:3 N18.9:2.5 N18.4:1.5 N18.31:1 N18.32:1 N18.2:0.6 N18.5:0.4 N18.6:0.7",
            prevalence=0.12, age_odds=1.5,
            odds={"diabetes": 2.6, "hypertension": 2.2, "chf": 2.0},
            meds=(("vitamin_d_active", 0.1), ("bicarbonate", 0.1), ("iron", 0.12)),
            co_codes="D63.1:0.2", coded=0.88, drift=0.12,
            terms="chronic kidney disease|CKD|kidney disease|renal insufficiency|weak kidneys|"
                  "chronic renal failure"),
    Chronic("copd", "J44.9:8 J43.9:1.5 J44.89:0.2 J43.2:0.1",
            prevalence=0.13, age_odds=1.2, odds={"tobacco": 5.0},
            meds=(("short_bronchodilator", 0.82), ("long_bronchodilator", 0.5), ("inhaled_steroid", 0.4)),
            co_codes="Z99.81:0.15", coded=0.9,
            terms="COPD|chronic obstructive pulmonary disease|emphysema|chronic bronchitis|"
                  "lung disease|obstructive lung disease"),
    Chronic("asthma", "J45.909:6 J45.40:1 J45.50:0.6 J45.20:0.6 J45.30:0.3 J45.998:0.2",
            prevalence=0.07, age_odds=0.8, male_odds=0.6,
            meds=(("short_bronchodilator", 0.85), ("inhaled_steroid", 0.55), ("leukotriene", 0.2)),
            coded=0.75, terms="asthma|reactive airway disease|asthmatic|wheezy chest"),
    Chronic("depression", "F32.A:4 F32.9:3 F33.9:1.2 F33.1:0.6 F32.1:0.4 F34.1:0.4 F33.2:0.2 F33.0:0.2",
            prevalence=0.17, age_odds=0.85, male_odds=0.6,
            meds=(("ssri", 0.6), ("snri", 0.12), ("other_antidepressant", 0.25)),
            coded=0.7,
            terms="depression|major depressive disorder|MDD|depressed mood|low mood|feeling down"),
    Chronic("anxiety", "F41.9:6 F41.1:2.5 F41.0:0.5 F41.8:0.3", prevalence=0.12, age_odds=0.8,
            male_odds=0.6, odds={"depression": 3.5},
            meds=(("benzodiazepine", 0.22), ("anxiolytic", 0.15), ("ssri", 0.3)), coded=0.65,
            terms="anxiety|generalized anxiety disorder|GAD|anxious|nerves|panic attacks"),
    Chronic("hypothyroidism", "E03.9:10 E03.8:0.5 E89.0:0.7 E06.3:0.4", prevalence=0.11,
            age_odds=1.2, male_odds=0.35, meds=(("thyroid", 0.95),), coded=0.8,
            terms="hypothyroidism|underactive thyroid|low thyroid|hypothyroid|Hashimoto's"),
    Chronic("gerd", "K21.9:8 K21.00:0.7 K21.01:0.1", prevalence=0.2, age_odds=1.0,
            meds=(("ppi", 0.75), ("h2_blocker", 0.15)), coded=0.65,
            terms="GERD|gastroesophageal reflux disease|acid reflux|heartburn|reflux"),
    Chronic("cancer", "", prevalence=0.09, age_odds=1.3, odds={"tobacco": 1.8},
            meds=(("antiemetic", 0.45), ("opioid", 0.3)),
            coded=0.92, drift=0.0,
            terms="cancer|malignancy|tumor|oncologic history|neoplasm"),
    Chronic("cirrhosis", "K74.60:4 K70.30:2.5 K70.31:1 K74.69:1 K70.40:0.3 K74.5:0.1",
            prevalence=0.025, age_odds=0.85, male_odds=1.7, odds={"alcohol": 9.0, "obesity": 1.5, "diabetes": 1.4},
            meds=(("lactulose", 0.5), ("rifaximin", 0.3), ("mra", 0.45), ("loop", 0.3), ("nonselective_bb", 0.35)),
            co_codes="K76.6:0.3 R18.8:0.25 I85.10:0.12 D69.6:0.25 B18.2:0.1", coded=0.95,
            terms="cirrhosis|liver cirrhosis|end-stage liver disease|ESLD|scarring of the liver|"
                  "chronic liver disease|alcoholic liver disease"),
    Chronic("dementia", "F03.90:6 G30.9:2 F02.80:2 F01.50:1 G31.84:0.4", prevalence=0.07,
            age_odds=2.8, meds=(("cholinesterase", 0.42), ("memantine", 0.25), ("antipsychotic", 0.12)),
            co_codes="Z91.81:0.2 R26.81:0.1", coded=0.85,
            terms="dementia|Alzheimer's disease|memory loss|cognitive impairment|confusion at baseline|"
                  "major neurocognitive disorder"),
    Chronic("osteoarthritis", "M19.90:3 M17.11:1.2 M17.12:1.2 M17.0:1.5 M16.11:0.6 M16.12:0.6 M19.91:0.3 M47.816:0.6",
            prevalence=0.16, age_odds=1.4, male_odds=0.7, odds={"obesity": 1.8},
            meds=(("nonopioid", 0.5), ("nsaid", 0.12)), coded=0.55, tail="M17 M16 M19", tail_rate=0.08,
            terms="osteoarthritis|OA|degenerative joint disease|DJD|arthritis|joint pain|bad knees"),
    Chronic("bph", "N40.0:5 N40.1:3", prevalence=0.22, age_odds=1.6, sex="male",
            meds=(("alpha_blocker", 0.65), ("five_ari", 0.25)), coded=0.7,
            terms="benign prostatic hyperplasia|BPH|enlarged prostate|prostate enlargement"),
    Chronic("osteoporosis", "M81.0:8 M81.8:0.5 M80.08XA:0.3", prevalence=0.16, age_odds=1.8, sex="female",
            meds=(("bisphosphonate", 0.4), ("calcium_vitd", 0.55)), coded=0.6,
            terms="osteoporosis|osteopenia|thin bones|low bone density"),
    Chronic("anemia", "D64.9:6 D50.9:3 D63.8:0.5 D50.0:0.6 D51.9:0.3 D53.9:0.2", prevalence=0.12,
            age_odds=1.3, male_odds=0.8, odds={"ckd": 2.5, "cancer": 2.0, "cirrhosis": 2.5},
            meds=(("iron", 0.4), ("b12", 0.1), ("folate", 0.08)), coded=0.75,
            terms="anemia|chronic anemia|low blood count|iron deficiency anemia|low hemoglobin"),
    Chronic("osa", "G47.33:6 G47.30:1", prevalence=0.08, age_odds=0.9, male_odds=1.8, odds={"obesity": 4.0},
            coded=0.6, terms="obstructive sleep apnea|OSA|sleep apnea|snoring, uses CPAP"),
    Chronic("gout", "M10.9:6 M1A.9XX0:0.8 M10.00:0.3 M10.071:0.2 M10.072:0.2", prevalence=0.05,
            age_odds=1.2, male_odds=3.0, odds={"ckd": 2.2, "obesity": 1.6},
            meds=(("urate", 0.65), ("colchicine", 0.2)), coded=0.65, terms="gout|gouty arthritis|uric acid"),
    Chronic("epilepsy", "G40.909:6 G40.919:1 G40.209:1 G40.109:0.4 G40.409:0.4", prevalence=0.025,
            age_odds=0.8, meds=(("antiepileptic", 0.92),), coded=0.9,
            terms="seizure disorder|epilepsy|seizures|convulsions"),
    Chronic("pvd", "I73.9:6 I70.213:0.6 I70.209:0.6 I70.212:0.4 I70.211:0.3 I70.0:0.4 I73.89:0.2",
            prevalence=0.05, age_odds=1.4, male_odds=1.5, odds={"tobacco": 3.0, "diabetes": 2.5, "cad": 2.0},
            meds=(("aspirin", 0.6), ("statin", 0.5), ("antiplatelet_pvd", 0.12), ("p2y12", 0.2)), coded=0.8,
            terms="peripheral vascular disease|PVD|PAD|peripheral arterial disease|poor circulation in legs|claudication"),
    Chronic("prior_stroke", "Z86.73:8 I69.351:0.6 I69.354:0.4 I69.320:0.3 I69.391:0.3 I69.398:0.3 I69.30:0.4",
            prevalence=0.06, age_odds=1.4, odds={"af": 2.5, "hypertension": 1.8, "diabetes": 1.5},
            meds=(("aspirin", 0.55), ("p2y12", 0.3), ("statin", 0.6)), coded=0.75,
            terms="history of stroke|prior CVA|old stroke|h/o CVA|previous stroke with residual weakness"),
    Chronic("parkinson", "G20.A1:6 G20.A2:0.6 G20.C:0.5 G21.4:0.2", prevalence=0.015, age_odds=1.9, male_odds=1.5,
            meds=(("parkinson", 0.9),), coded=0.9,
            terms="Parkinson's disease|parkinsonism|PD|tremor disorder"),
    Chronic("serious_mental_illness", "F20.9:3 F31.9:3 F25.9:1 F31.30:0.4 F31.81:0.3 F20.0:0.4",
            prevalence=0.025, age_odds=0.6,
            meds=(("antipsychotic", 0.85), ("mood_stabilizer", 0.4)), coded=0.85,
            terms="schizophrenia|bipolar disorder|schizoaffective disorder|psychiatric illness|manic depression"),
    Chronic("valve_disease", "I35.0:4 I34.0:3 I36.1:0.3 I35.1:0.8 I34.1:0.3 I35.2:0.3 I08.0:0.2",
            prevalence=0.05, age_odds=1.8, odds={"chf": 2.5, "af": 1.8},
            co_codes="Z95.2:0.15", coded=0.7,
            terms="aortic stenosis|valvular heart disease|mitral regurgitation|heart murmur|valve disease"),
    Chronic("pulmonary_hypertension", "I27.20:4 I27.21:0.8 I27.23:0.8 I27.22:0.6 I27.29:0.3",
            prevalence=0.02, age_odds=1.3, odds={"chf": 4.0, "copd": 2.5, "osa": 2.0}, coded=0.75,
            terms="pulmonary hypertension|pulmonary HTN|PH|high pressure in the lungs"),
    Chronic("rheumatoid_arthritis", "M06.9:8 M05.79:0.5 M06.09:0.3", prevalence=0.02, male_odds=0.4,
            meds=(("dmard", 0.8), ("systemic_steroid", 0.3), ("folate", 0.35)), coded=0.8,
            terms="rheumatoid arthritis|RA|inflammatory arthritis"),
    Chronic("hepatitis_c", "B18.2:6 B19.20:1", prevalence=0.015, age_odds=0.8, male_odds=1.6,
            odds={"alcohol": 3.0}, coded=0.8,
            terms="hepatitis C|HCV|chronic hepatitis C|hep C"),
    Chronic("chronic_pain", "G89.29:6 G89.4:0.6 M54.50:1.5 M54.2:0.5 M79.7:0.6", prevalence=0.06,
            odds={"osteoarthritis": 2.0, "depression": 1.6},
            meds=(("opioid", 0.5), ("neuropathic", 0.35), ("muscle_relaxant", 0.15)), coded=0.6,
            terms="chronic pain|chronic back pain|fibromyalgia|long-standing pain"),
    Chronic("neuropathy", "G62.9:6 G60.9:0.5 G61.9:0.1 G62.1:0.3", prevalence=0.05, age_odds=1.2,
            odds={"diabetes": 3.0, "alcohol": 2.0}, meds=(("neuropathic", 0.6),), coded=0.6,
            terms="peripheral neuropathy|neuropathy|numbness in feet|nerve pain"),
)


# Cancer sites: (ICD-10-CM codes, sex or None, site-specific drug classes, metastasis codes, note terms).
CANCER_SITES: tuple = (
    ("lung", "C34.90:6 C34.11:1.5 C34.12:1 C34.31:1.2 C34.32:1 C34.91:0.7 C34.92:0.7 C34.10:0.4",
     None, (), "C79.51:0.15 C79.31:0.12 C78.7:0.1 C77.1:0.05", "lung cancer|non-small cell lung cancer|NSCLC|lung mass"),
    ("breast", "C50.911:4 C50.912:4 C50.919:2 C50.411:0.6 C50.412:0.6 C50.811:0.2",
     "female", (("hormonal_breast", 0.55),), "C79.51:0.12 C78.7:0.06 C78.00:0.05", "breast cancer|breast carcinoma|CA breast"),
    ("prostate", "C61:1", "male", (("androgen_deprivation", 0.5),), "C79.51:0.18 C77.5:0.03",
     "prostate cancer|prostate adenocarcinoma|CA prostate"),
    ("colorectal", "C18.9:4 C20:2.5 C18.7:1 C18.2:0.8 C18.0:0.6 C19:0.4", None, (),
     "C78.7:0.2 C78.6:0.05", "colon cancer|colorectal cancer|rectal cancer|colon adenocarcinoma"),
    ("pancreas", "C25.9:5 C25.0:2 C25.1:0.5", None, (), "C78.7:0.3 C78.6:0.08", "pancreatic cancer|pancreatic adenocarcinoma"),
    ("lymphoma", "C85.90:3 C83.30:3 C81.90:0.8 C82.90:0.6 C83.10:0.3", None, (), "",
     "lymphoma|non-Hodgkin lymphoma|DLBCL"),
    ("leukemia", "C91.10:4 C92.00:3 C92.10:1 C91.00:0.6 C91.12:0.2", None, (), "", "leukemia|CLL|AML|blood cancer"),
    ("myeloma", "C90.00:5 C90.01:0.8 C90.02:0.2", None, (), "", "multiple myeloma|myeloma"),
    ("bladder", "C67.9:5 C67.2:0.5", "male", (), "C79.51:0.05", "bladder cancer|urothelial carcinoma"),
    ("kidney", "C64.1:3 C64.2:3 C64.9:1", None, (), "C78.00:0.1", "renal cell carcinoma|kidney cancer|RCC"),
    ("liver", "C22.0:5 C22.1:0.5", None, (), "", "hepatocellular carcinoma|HCC|liver cancer"),
    ("esophagus_stomach", "C15.9:2 C16.9:3 C15.5:0.5 C16.0:0.4", None, (), "C78.7:0.1", "gastric cancer|esophageal cancer"),
    ("ovary_uterus", "C56.9:3 C54.1:3 C53.9:1", "female", (), "C78.6:0.15", "ovarian cancer|endometrial cancer|uterine cancer"),
)


# ---------------------------------------------------------------------------
# Acute problems.
# ---------------------------------------------------------------------------
RESP_FAILURE_PROCS = (("5A1955Z", "96.72", 0.35), ("5A1945Z", "96.72", 0.25), ("5A1935Z", "96.71", 0.3),
                      ("0BH17EZ", "96.04", 0.8))

ACUTE: tuple[Acute, ...] = (
    Acute("pneumonia", "J18.9:20 J69.0:4 J15.9:2 J18.1:1 J15.1:0.6 J15.212:0.4 J15.211:0.3 J13:0.6 "
          "J15.69:0.3 J12.9:0.6 J18.8:0.3 J15.0:0.2 J15.4:0.15 J15.5:0.15 J16.8:0.1",
          weight=14, settings="IMP EMER", boost={"copd": 2.0, "dementia": 1.8, "chf": 1.3},
          complications="sepsis:0.16 resp_failure:0.18 hyponatremia:0.12 aki:0.12 delirium:0.06",
          co_codes="B96.20:0.02 R09.02:0.1 B95.62:0.03",
          meds=(("cap_antibiotic", 0.75), ("broad_antibiotic", 0.3), ("short_bronchodilator", 0.3)),
          tail="J15 J12 J18", tail_rate=0.05,
          terms="pneumonia|PNA|community-acquired pneumonia|CAP|lung infection|aspiration pneumonia|"
                "right lower lobe infiltrate|chest infection"),
    Acute("sepsis", "A41.9:20 A41.51:3 A41.01:1 A41.02:0.8 A41.89:1 A41.59:0.6 A41.81:0.3 A41.50:0.5 A40.3:0.1 A41.3:0.2",
          weight=11, boost={"diabetes": 1.3, "cancer": 1.8, "ckd": 1.3, "cirrhosis": 1.5},
          complications="aki:0.38 uti:0.3 pneumonia:0.25 resp_failure:0.15 encephalopathy:0.12 lactic_acidosis:0.35 "
                        "thrombocytopenia:0.12",
          co_codes="R65.20:0.38 R65.21:0.22 R78.81:0.2 B96.20:0.15 B95.61:0.04",
          meds=(("broad_antibiotic", 0.95), ("crystalloid", 0.9), ("vasopressor", 0.22)),
          procedures=(("02HV33Z", "38.93", 0.3),) + RESP_FAILURE_PROCS[:1],
          holds=("acei", "arb", "thiazide", "loop", "beta_blocker", "ccb", "metformin"),
          tail="A41 A40", tail_rate=0.04, stay_days=6,
          terms="sepsis|septic|severe sepsis|septic shock|bloodstream infection|SIRS|blood infection"),
    Acute("uti", "N39.0:20 N10:2.5 N30.00:2 N30.01:0.6 N30.90:0.4 N34.1:0.2 T83.511A:0.5",
          weight=7, settings="IMP EMER", boost={"dementia": 2.0, "diabetes": 1.3, "bph": 1.5},
          complications="sepsis:0.08 aki:0.12 delirium:0.12 hyponatremia:0.05",
          co_codes="B96.20:0.35 B96.1:0.06 B95.2:0.05 B96.4:0.04",
          meds=(("uti_antibiotic", 0.9),), tail="N30", tail_rate=0.03,
          terms="urinary tract infection|UTI|bladder infection|cystitis|pyelonephritis|burning with urination"),
    Acute("aki", "N17.9:20 N17.0:2 N17.8:0.2 N17.1:0.1", weight=6, boost={"ckd": 2.5, "chf": 1.5, "diabetes": 1.3},
          complications="hyperkalemia:0.2 dehydration:0.3 hyponatremia:0.08 metabolic_acidosis:0.12",
          meds=(("crystalloid", 0.8), ("bicarbonate", 0.1)),
          procedures=(("5A1D70Z", "39.95", 0.06), ("0T9B70Z", "57.94", 0.1)),
          holds=("acei", "arb", "metformin", "nsaid", "thiazide", "loop", "sglt2", "mra"),
          terms="acute kidney injury|AKI|acute renal failure|ARF|worsening renal function|elevated creatinine|"
                "kidneys not working well"),
    Acute("mi", "I21.4:20 I21.A1:4 I21.3:2 I21.19:1 I21.09:1 I21.11:0.5 I21.29:0.3 I21.02:0.3 I24.9:0.5",
          weight=6, boost={"cad": 2.5, "diabetes": 1.3, "hyperlipidemia": 1.3, "tobacco": 1.2}, min_age=30,
          complications="chf_exacerbation:0.15 aki:0.08 cardiogenic_shock:0.04",
          co_codes="I25.10:0.55 Z95.5:0.1",
          meds=(("aspirin", 0.95), ("p2y12", 0.75), ("parenteral_anticoagulant", 0.8), ("statin", 0.9),
                ("beta_blocker", 0.75), ("nitrate", 0.5)),
          procedures=(("4A023N7", "37.22", 0.6), ("B2111ZZ", "88.56", 0.55), ("027034Z", "36.07", 0.42),
                      ("02703DZ", "36.06", 0.06), ("B2151ZZ", "88.53", 0.2)),
          becomes="cad", tail="I21", tail_rate=0.04,
          terms="myocardial infarction|MI|heart attack|NSTEMI|STEMI|acute coronary syndrome|ACS|troponin elevation"),
    Acute("chest_pain", "R07.9:10 R07.89:5 I20.0:2 I20.9:1.5 R07.2:0.5 I20.89:0.3", weight=6,
          settings="EMER IMP AMB", boost={"cad": 1.8},
          meds=(("aspirin", 0.5), ("nitrate", 0.2)), procedures=(("4A023N7", "37.22", 0.08),),
          terms="chest pain|chest pressure|angina|atypical chest pain|unstable angina|tightness in the chest"),
    Acute("stroke", "I63.9:12 I63.512:2 I63.511:2 I63.412:1 I63.411:1 I63.81:1 I63.50:1 I61.9:2.5 I61.0:0.4 "
          "G45.9:5 I60.9:0.5 I63.312:0.5 I63.311:0.5 I63.232:0.2",
          weight=5.5, boost={"af": 2.5, "hypertension": 1.3, "prior_stroke": 2.0, "diabetes": 1.2}, min_age=35,
          co_codes="R47.01:0.25 G81.91:0.18 G81.94:0.12 R29.810:0.15 R13.10:0.2 R29.702:0.05 R29.705:0.05 I69.391:0.02",
          meds=(("aspirin", 0.75), ("statin", 0.75), ("p2y12", 0.3), ("thrombolytic", 0.08)),
          procedures=(("B020ZZZ", "87.03", 0.15), ("0DH63UZ", "43.11", 0.05)),
          becomes="prior_stroke", tail="I63", tail_rate=0.1, stay_days=5,
          terms="stroke|CVA|cerebrovascular accident|ischemic stroke|TIA|transient ischemic attack|"
                "facial droop|brain attack|mini-stroke"),
    Acute("gi_bleed", "K92.2:10 K92.1:4 K92.0:2 K25.4:1 K26.4:1 K57.31:1.2 K57.33:0.5 K62.5:0.8 K92.81:0.3 "
          "K25.0:0.3 K29.71:0.3 K22.6:0.3 K31.811:0.2",
          weight=6, boost={"cirrhosis": 4.0, "af": 1.6, "cad": 1.3, "ckd": 1.3},
          complications="acute_blood_loss_anemia:0.65 aki:0.1",
          meds=(("ppi", 0.9), ("octreotide", 0.08), ("crystalloid", 0.6)),
          procedures=(("0DJ08ZZ", "45.13", 0.55), ("0DJD8ZZ", "45.23", 0.25), ("30233N1", "99.04", 0.5),
                      ("0DB68ZX", "45.16", 0.12), ("0W3P8ZZ", "44.43", 0.08)),
          holds=("anticoagulant", "aspirin", "p2y12", "nsaid", "antiplatelet_pvd"),
          tail="K25 K26 K57 K92", tail_rate=0.06,
          terms="GI bleed|gastrointestinal bleeding|GIB|upper GI bleed|melena|bloody stools|black tarry stools|"
                "hematochezia|coffee-ground emesis"),
    Acute("hip_fracture", "S72.001A:4 S72.002A:4 S72.141A:3 S72.142A:3 S72.011A:1 S72.012A:1 S72.21XA:0.5 "
          "S72.22XA:0.5 S72.091A:0.5 S72.092A:0.5",
          weight=4, boost={"osteoporosis": 2.5, "dementia": 1.8, "parkinson": 2.0}, min_age=55,
          complications="delirium:0.15 acute_blood_loss_anemia:0.2",
          co_codes="W19.XXXA:0.45 W01.0XXA:0.2 W18.30XA:0.08 Y92.009:0.25 Y92.129:0.08 Z91.81:0.15",
          meds=(("opioid", 0.9), ("nonopioid", 0.8), ("parenteral_anticoagulant", 0.75), ("stool_softener", 0.6)),
          procedures=(("0QS604Z", "79.35", 0.35), ("0QS704Z", "79.35", 0.3), ("0SR9019", "81.51", 0.15),
                      ("0SRB019", "81.51", 0.12), ("0SRR0J9", "81.52", 0.08), ("30233N1", "99.04", 0.15)),
          tail="S72", tail_rate=0.12, stay_days=5,
          terms="hip fracture|fractured hip|broken hip|femoral neck fracture|intertrochanteric fracture|fall with hip pain"),
    Acute("other_fracture", "S22.31XA:2 S22.32XA:2 S32.010A:1 S32.000A:1 S42.201A:1 S42.202A:1 S52.501A:1 "
          "S52.502A:1 S82.101A:0.5 S82.102A:0.5 S32.591A:0.4 S22.41XA:0.5 S12.100A:0.3 S02.0XXA:0.3",
          weight=3, settings="IMP EMER", boost={"osteoporosis": 1.8, "alcohol": 1.6, "epilepsy": 1.5},
          co_codes="W19.XXXA:0.4 W01.0XXA:0.2 W10.9XXA:0.08 V43.52XA:0.04 Y92.009:0.2",
          meds=(("opioid", 0.85), ("nonopioid", 0.75), ("muscle_relaxant", 0.15)),
          procedures=(("0PSJ04Z", "79.32", 0.05), ("0QSG04Z", "79.36", 0.05), ("0PS404Z", "79.31", 0.04)),
          tail="S22 S32 S42 S52 S82 S02 S12", tail_rate=0.35,
          terms="fracture|broken bone|rib fractures|vertebral compression fracture|wrist fracture|fall"),
    Acute("dka", "E11.10:4 E10.10:5 E10.11:0.3 E11.11:0.2 E13.10:0.1", weight=2.5, requires=("diabetes", "type1_diabetes"),
          boost={"type1_diabetes": 12.0},
          complications="dehydration:0.5 hypokalemia:0.4 aki:0.2 metabolic_acidosis:0.1",
          meds=(("prandial_insulin", 0.98), ("crystalloid", 0.95), ("potassium", 0.8), ("dextrose", 0.4)),
          replaces={"E11.9": "E11.10", "E11.65": "E11.10", "E10.9": "E10.10", "E10.65": "E10.10"},
          terms="diabetic ketoacidosis|DKA|ketoacidosis|anion gap acidosis|very high blood sugar"),
    Acute("hypoglycemia", "E11.649:5 E16.2:3 E10.649:1.5 E11.641:0.3 E16.0:0.3", weight=2.5,
          settings="IMP EMER", requires=("diabetes", "type1_diabetes"),
          meds=(("dextrose", 0.9), ("glucagon", 0.15)),
          holds=("sulfonylurea", "basal_insulin"),
          terms="hypoglycemia|low blood sugar|hypoglycemic episode|insulin reaction"),
    Acute("chf_exacerbation", "I50.9:1", weight=9, requires=("chf",), boost={"ckd": 1.3},
          complications="aki:0.22 hyponatremia:0.08 hypokalemia:0.1 resp_failure:0.08",
          co_codes="J81.0:0.04 R06.02:0.1 E87.70:0.1",
          meds=(("loop", 0.97), ("potassium", 0.4), ("nitrate", 0.12), ("inotrope", 0.04)),
          replaces={"I50.22": "I50.23", "I50.32": "I50.33", "I50.42": "I50.43", "I50.20": "I50.21",
                    "I50.30": "I50.31", "I50.40": "I50.41"},
          terms="CHF exacerbation|acute on chronic heart failure|decompensated heart failure|volume overload|"
                "fluid overload|ADHF|shortness of breath with leg swelling"),
    Acute("copd_exacerbation", "J44.1:10 J44.0:2", weight=8, settings="IMP EMER", requires=("copd",),
          complications="resp_failure:0.18 pneumonia:0.12",
          meds=(("systemic_steroid", 0.92), ("short_bronchodilator", 0.95), ("cap_antibiotic", 0.55)),
          procedures=(("5A09357", "93.90", 0.15),),
          replaces={"J44.9": "J44.1", "J43.9": "J44.1"},
          terms="COPD exacerbation|AECOPD|COPD flare|worsening shortness of breath and wheezing"),
    Acute("asthma_exacerbation", "J45.901:5 J45.41:1 J45.51:1", weight=2, settings="EMER IMP", requires=("asthma",),
          meds=(("systemic_steroid", 0.9), ("short_bronchodilator", 0.95)),
          replaces={"J45.909": "J45.901", "J45.40": "J45.41", "J45.50": "J45.51"},
          terms="asthma exacerbation|asthma attack|status asthmaticus|wheezing"),
    Acute("cellulitis", "L03.115:4 L03.116:4 L03.90:2 L03.119:1.5 L03.113:0.8 L03.114:0.8 L02.415:0.6 L02.416:0.6 "
          "L03.311:0.5 L03.211:0.3 L97.519:0.4 L97.529:0.4",
          weight=6, settings="IMP EMER", boost={"diabetes": 1.8, "obesity": 1.6, "pvd": 1.8},
          complications="sepsis:0.05",
          co_codes="B95.62:0.06 B95.61:0.05",
          meds=(("skin_antibiotic", 0.95),),
          procedures=(("0J9M0ZZ", "86.04", 0.08), ("0J9N0ZZ", "86.04", 0.06)),
          tail="L03 L02 L97", tail_rate=0.18,
          terms="cellulitis|skin infection|leg cellulitis|abscess|red swollen leg|soft tissue infection"),
    Acute("afib_rvr", "I48.91:8 I48.0:3 I48.92:1", weight=5, settings="IMP EMER", boost={"af": 2.5, "chf": 1.3},
          min_age=35,
          meds=(("antiarrhythmic_acute", 0.75), ("rate_control", 0.8), ("parenteral_anticoagulant", 0.45),
                ("anticoagulant", 0.5)),
          procedures=(("5A2204Z", "99.62", 0.1),), becomes="af",
          terms="atrial fibrillation with rapid ventricular response|AFib with RVR|rapid heart rate|palpitations|"
                "new onset atrial fibrillation"),
    Acute("pe_dvt", "I26.99:6 I26.09:1.5 I26.92:0.7 I82.401:2 I82.402:2 I82.411:1 I82.412:1 I82.4Y1:0.5 I82.409:1",
          weight=3.5, boost={"cancer": 3.0, "obesity": 1.4}, min_age=20,
          meds=(("parenteral_anticoagulant", 0.95), ("anticoagulant", 0.8)),
          procedures=(("06H033Z", "38.7", 0.04),),
          tail="I26 I82", tail_rate=0.15,
          terms="pulmonary embolism|PE|DVT|deep vein thrombosis|blood clot in the lung|blood clot in the leg|VTE"),
    Acute("syncope", "R55:10 I95.1:2 R42:1", weight=4, settings="EMER IMP",
          boost={"af": 1.3, "valve_disease": 1.6, "parkinson": 1.8},
          co_codes="W19.XXXA:0.15", meds=(("crystalloid", 0.5),),
          terms="syncope|passed out|fainting|loss of consciousness|near-syncope|orthostatic hypotension"),
    Acute("encephalopathy", "G93.41:6 G93.40:3 R41.82:4 F05:3 G93.49:0.5 K76.82:1.5", weight=4,
          boost={"dementia": 2.5, "cirrhosis": 4.0, "ckd": 1.3},
          meds=(("antipsychotic", 0.35), ("lactulose", 0.15)),
          replaces={},
          terms="altered mental status|AMS|encephalopathy|confusion|delirium|acting confused|not himself|"
                "hepatic encephalopathy|metabolic encephalopathy"),
    Acute("pancreatitis", "K85.90:8 K85.10:3 K85.20:3 K85.91:0.4 K86.1:1", weight=3,
          boost={"alcohol": 5.0, "obesity": 1.3}, max_age=85,
          complications="aki:0.1 dehydration:0.3",
          meds=(("opioid", 0.9), ("antiemetic", 0.85), ("crystalloid", 0.95)),
          terms="pancreatitis|acute pancreatitis|inflamed pancreas|epigastric pain radiating to the back|lipase elevation"),
    Acute("biliary", "K81.0:4 K80.00:2 K80.10:2 K80.20:1 K83.09:0.6 K80.50:0.6 K80.12:0.5", weight=3,
          boost={"obesity": 1.8}, max_age=90,
          meds=(("abdominal_antibiotic", 0.8), ("opioid", 0.7), ("antiemetic", 0.6)),
          procedures=(("0FT44ZZ", "51.23", 0.6), ("0FC98ZZ", "51.88", 0.1), ("0F798DZ", "51.87", 0.08)),
          terms="cholecystitis|gallbladder infection|gallstones|cholelithiasis|choledocholithiasis|RUQ pain"),
    Acute("appendicitis", "K35.80:6 K35.890:1.5 K35.209:1 K35.30:0.7 K35.32:0.5", weight=1.2, max_age=70,
          meds=(("abdominal_antibiotic", 0.95), ("opioid", 0.7)),
          procedures=(("0DTJ4ZZ", "47.01", 0.9),),
          terms="appendicitis|inflamed appendix|right lower quadrant pain"),
    Acute("cdiff", "A04.72:8 A04.71:1", weight=2.5, settings="IMP", boost={"cancer": 1.5, "ckd": 1.3},
          complications="dehydration:0.35 hypokalemia:0.2 aki:0.1",
          meds=(("cdiff_antibiotic", 0.95), ("crystalloid", 0.6)),
          terms="C. diff|Clostridioides difficile colitis|C diff infection|CDI|diarrhea after antibiotics"),
    Acute("diverticulitis", "K57.32:6 K57.20:1.5 K57.92:1 K57.80:0.3", weight=2.5, min_age=30,
          meds=(("abdominal_antibiotic", 0.95),),
          procedures=(("0DTN0ZZ", "45.75", 0.06),),
          terms="diverticulitis|inflamed diverticula|left lower quadrant pain"),
    Acute("bowel_obstruction", "K56.609:5 K56.699:1.5 K56.7:0.6 K56.51:0.4 K56.600:0.3", weight=2.5, min_age=30,
          meds=(("antiemetic", 0.8), ("opioid", 0.6), ("crystalloid", 0.9)),
          procedures=(("0D9670Z", "96.07", 0.35), ("0DN80ZZ", "54.59", 0.12)),
          terms="small bowel obstruction|SBO|bowel obstruction|ileus|blocked intestine"),
    Acute("alcohol_withdrawal", "F10.239:5 F10.231:1.5 F10.230:1 F10.139:0.3", weight=2.5, requires=("alcohol",),
          boost={"alcohol": 1.0},
          meds=(("alcohol_withdrawal", 0.95), ("thiamine", 0.9), ("folate", 0.7), ("magnesium", 0.4)),
          replaces={"F10.20": "F10.239", "F10.10": "F10.139"},
          terms="alcohol withdrawal|EtOH withdrawal|withdrawal tremors|DTs|delirium tremens|CIWA protocol"),
    Acute("seizure", "R56.9:5 G40.901:2 G40.911:0.5 R56.01:0.2", weight=2.5, settings="IMP EMER",
          boost={"epilepsy": 8.0, "alcohol": 2.0, "prior_stroke": 2.0},
          meds=(("antiepileptic", 0.9), ("benzodiazepine", 0.5)),
          replaces={"G40.909": "G40.901", "G40.919": "G40.911"},
          terms="seizure|convulsion|breakthrough seizure|tonic-clonic seizure|shaking episode"),
    Acute("hypertensive_urgency", "I16.0:5 I16.1:2 I16.9:1", weight=2, settings="EMER IMP", requires=("hypertension",),
          meds=(("other_antihypertensive", 0.7), ("ccb", 0.4), ("beta_blocker", 0.3)),
          terms="hypertensive urgency|hypertensive emergency|very high blood pressure|BP 210/110"),
    Acute("overdose", "T40.2X1A:2 T42.4X1A:2 T39.1X1A:2 T40.601A:0.8 T43.211A:0.6 T51.0X1A:1 T40.411A:0.8 "
          "T39.011A:0.4 T42.71XA:0.4",
          weight=1.5, settings="IMP EMER", boost={"depression": 3.0, "alcohol": 2.5, "chronic_pain": 2.0,
                                                   "serious_mental_illness": 3.0}, max_age=80,
          co_codes="F19.10:0.2 F11.20:0.15 R45.851:0.3",
          meds=(("reversal", 0.5), ("acetylcysteine", 0.3)),
          terms="overdose|ingestion|poisoning|took too many pills|intentional ingestion|intoxication"),
    Acute("influenza", "J11.1:4 J10.1:4 J09.X2:0.5 J10.00:0.4", weight=2, settings="IMP EMER",
          boost={"copd": 1.8, "asthma": 1.5}, meds=(("antiviral_flu", 0.85),),
          complications="pneumonia:0.1",
          terms="influenza|flu|influenza A|flu-like illness"),
    Acute("covid", "U07.1:1", weight=2.5, settings="IMP", not_before="2020-03-01", boost={"obesity": 1.4, "diabetes": 1.3},
          co_codes="J12.82:0.55 R09.02:0.3",
          complications="resp_failure:0.2",
          meds=(("covid_treatment", 0.75), ("parenteral_anticoagulant", 0.6)),
          terms="COVID-19|SARS-CoV-2 infection|COVID pneumonia|coronavirus"),
    Acute("weakness_falls", "R53.1:4 R29.6:3 R26.81:2 R53.81:2 M62.81:2 W19.XXXA:1", weight=3,
          settings="IMP EMER", boost={"dementia": 1.8, "parkinson": 2.0}, min_age=60,
          co_codes="Z91.81:0.35 Y92.009:0.15",
          meds=(), terms="generalized weakness|falls|frequent falls|failure to thrive|deconditioning|unsteady on feet"),
    Acute("abdominal_pain", "R10.9:5 R10.13:2 R10.31:1.5 R10.84:1 R10.11:1 R11.2:2 R19.7:1.5", weight=3,
          settings="EMER AMB IMP",
          meds=(("antiemetic", 0.6), ("opioid", 0.3)),
          terms="abdominal pain|belly pain|stomach ache|nausea and vomiting|epigastric pain"),
    Acute("back_pain", "M54.50:5 M54.16:1.5 M54.17:0.8 M51.26:0.6 M48.061:0.6 M54.2:1", weight=2,
          settings="EMER AMB",
          meds=(("nsaid", 0.45), ("muscle_relaxant", 0.4), ("opioid", 0.3)),
          terms="low back pain|back pain|sciatica|lumbar radiculopathy|neck pain"),
    Acute("cancer_treatment", "Z51.11:6 Z51.12:1.5 D70.1:1.5 R50.81:0.6 D61.810:1", weight=1.5,
          settings="AMB IMP", requires=("cancer",), boost={"cancer": 20.0},
          meds=(("chemo", 0.7), ("antiemetic", 0.9), ("systemic_steroid", 0.4)),
          procedures=(("3E04305", "99.25", 0.55), ("30233N1", "99.04", 0.1)),
          terms="chemotherapy|chemo cycle|scheduled chemotherapy|neutropenic fever|treatment for cancer"),
    Acute("elective_procedure", "Z12.11:3 K63.5:2 D12.6:2 K57.30:1 K64.8:0.5 R19.5:0.3", weight=1.5,
          settings="AMB", min_age=45,
          procedures=(("0DJD8ZZ", "45.23", 0.85), ("0DBN8ZX", "45.42", 0.3)),
          meds=(("laxative_bowel", 0.7),),
          terms="screening colonoscopy|colon polyps|surveillance colonoscopy|colonoscopy"),
    Acute("knee_hip_replacement", "M17.11:3 M17.12:3 M16.11:1.5 M16.12:1.5", weight=1.5, min_age=50,
          boost={"osteoarthritis": 6.0, "obesity": 1.3},
          meds=(("opioid", 0.9), ("parenteral_anticoagulant", 0.5), ("anticoagulant", 0.3), ("nonopioid", 0.8)),
          procedures=(("0SRD0J9", "81.54", 0.45), ("0SRC0J9", "81.54", 0.45), ("0SRB0J9", "81.51", 0.1),
                      ("0SR90J9", "81.51", 0.1)),
          co_codes="Z96.651:0.05 Z96.652:0.05",
          terms="total knee arthroplasty|knee replacement|hip replacement|end-stage osteoarthritis of the knee|TKA|THA"),
    # Secondary problems: rarely principal, usually complications of the above.
    Acute("resp_failure", "J96.01:10 J96.02:1.5 J96.00:1 J96.21:2 J96.22:0.8 J96.90:0.3 J80:0.8", weight=1.5,
          boost={"copd": 2.0, "chf": 1.5},
          procedures=RESP_FAILURE_PROCS, meds=(("sedative_hypnotic", 0.2),),
          replaces={}, stay_days=7,
          terms="acute respiratory failure|hypoxic respiratory failure|hypoxemia requiring high flow|"
                "respiratory distress|intubated|ARDS"),
    Acute("hyponatremia", "E87.1:1", weight=1.5, terms="hyponatremia|low sodium|hypo-osmolality"),
    Acute("hypokalemia", "E87.6:1", weight=0.5, meds=(("potassium", 0.95),), terms="hypokalemia|low potassium"),
    Acute("hyperkalemia", "E87.5:1", weight=0.5, terms="hyperkalemia|high potassium|elevated potassium"),
    Acute("dehydration", "E86.0:6 E86.1:1.5 E86.9:0.5", weight=1, settings="IMP EMER",
          meds=(("crystalloid", 0.95),), terms="dehydration|volume depletion|dry|poor oral intake|hypovolemia"),
    Acute("metabolic_acidosis", "E87.20:3 E87.22:1 E87.29:1", weight=0.3,
          meds=(("bicarbonate", 0.5),), terms="metabolic acidosis|acidosis|low bicarbonate"),
    Acute("lactic_acidosis", "E87.21:1", weight=0.1, terms="lactic acidosis|elevated lactate|lactate of 4"),
    Acute("delirium", "F05:5 R41.0:2 R41.82:1", weight=0.6, meds=(("antipsychotic", 0.4),),
          terms="delirium|acute confusion|sundowning|hospital delirium"),
    Acute("acute_blood_loss_anemia", "D62:1", weight=0.3, meds=(), procedures=(("30233N1", "99.04", 0.6),),
          terms="acute blood loss anemia|hemoglobin drop|anemia requiring transfusion|low blood count"),
    Acute("thrombocytopenia", "D69.6:5 D69.59:1 D69.9:0.5", weight=0.3,
          terms="thrombocytopenia|low platelets|platelet count low"),
    Acute("cardiogenic_shock", "R57.0:1", weight=0.2, meds=(("vasopressor", 0.9), ("inotrope", 0.6)),
          procedures=(("5A02210", "37.61", 0.3),), terms="cardiogenic shock|shock|pump failure"),
)


# ---------------------------------------------------------------------------
# Secondary diagnoses coded in many stays regardless of the reason for admission
# (status codes, electrolyte disturbances, symptoms, history). Weights are Zipf-like.
# ---------------------------------------------------------------------------
COMMON_SECONDARY = (
    "Z79.899:20 E87.1:9 E87.6:8 D64.9:7 Z66:6 E83.42:5 E87.5:3 D69.6:4 Z86.718:3 Z88.0:4 "
    "K59.00:4 R33.9:2.5 R53.1:2.5 Z91.81:3 E55.9:3 Z74.09:1.2 G47.00:2.5 E86.0:3 R09.02:2 "
    "D72.829:2 E87.70:1.5 Z95.0:1.5 Z96.651:1.2 Z96.641:1 Z96.652:0.8 Z96.642:0.7 Z99.11:0.4 Z93.0:0.4 "
    "Z74.01:0.8 Z60.2:1 Z59.00:0.6 Z51.5:1.5 L89.152:1 L89.153:0.6 L89.154:0.3 L89.159:0.5 M62.81:2 "
    "H91.90:1 H54.7:0.5 K44.9:1 K57.30:1.5 K64.9:0.5 N32.81:0.6 R32:1 R60.0:1.5 R06.02:1.5 R50.9:1.2 "
    "R51.9:0.8 R42:0.8 E87.0:1.2 E87.3:0.4 E87.4:0.3 E53.8:0.8 E61.1:0.5 E46:1.2 E43:0.6 E44.0:0.4 "
    "R63.4:0.8 G93.40:0.5 I95.9:1.5 I95.1:0.6 I49.9:0.4 I44.7:0.4 I45.10:0.4 I07.1:0.4 I87.2:0.5 "
    "J90:1.5 J98.11:1 J84.10:0.4 J30.9:0.8 K76.0:1 K29.70:0.6 N20.0:0.6 N28.1:0.5 R31.9:0.5 R80.9:0.3 "
    "B96.20:1 B95.62:0.4 B96.1:0.4 B37.0:0.5 Y92.239:1.5 Y92.230:0.4 Z87.440:0.5 Z85.3:0.5 Z85.46:0.5 "
    "Z85.038:0.3 Z85.118:0.3 Z90.49:0.3 Z90.710:0.3 Z98.890:0.5 Z95.810:0.3 Z94.0:0.15 Z94.4:0.1 "
    "Z88.1:0.6 Z88.2:0.8 Z88.5:0.6 Z91.041:0.3 Z80.3:0.4 Z82.49:0.5 Z80.0:0.3 Z83.3:0.3 Z79.51:0.8 "
    "Z79.891:0.4 Z79.2:0.3 Z79.3:0.1 Z79.52:0.2 Z92.21:0.2 Z92.3:0.2 Z86.0100:0.3 Z86.711:0.3 "
    "Z87.01:0.3 Z87.442:0.2 Z87.81:0.2 Z86.19:0.2 F17.290:0.1 R26.89:0.6 R26.2:0.4 R29.898:0.3 "
    "R41.841:0.3 R45.1:0.2 R73.9:0.8 R74.01:0.6 R79.89:0.3 R94.31:0.3 R00.0:0.5 R00.1:0.6 R07.89:0.5 "
    "R11.0:0.5 R11.10:0.4 R13.12:0.3 R19.7:0.6 R20.2:0.2 R25.1:0.2 R27.0:0.2 R39.15:0.2 R40.0:0.1 "
    "R44.3:0.1 R47.02:0.1 R49.0:0.1 R56.9:0.2 R64:0.3 R68.83:0.1 R82.998:0.2 R91.1:0.5 R91.8:0.4 "
    "R93.89:0.2 D68.9:0.2 D68.32:0.2 D75.1:0.1 D75.839:0.2 D72.819:0.2 D70.9:0.2 D47.3:0.1 E83.51:0.4 "
    "E83.39:0.3 E83.52:0.2 E87.8:0.2 E88.09:0.2 E27.40:0.1 E21.3:0.2 E04.2:0.3 E05.90:0.2 E72.20:0.05 "
    "F43.10:0.3 F43.20:0.2 F40.10:0.1 F99:0.05 F19.20:0.2 F11.20:0.3 F12.90:0.3 F12.10:0.3 F14.10:0.2 "
    "G25.81:0.3 G43.909:0.4 G82.20:0.1 G47.10:0.1 G56.00:0.1 G57.90:0.1 G93.89:0.1 H35.30:0.2 "
    "H40.9:0.3 H26.9:0.3 H81.10:0.1 I34.1:0.1 I47.10:0.2 I51.7:0.3 I62.00:0.05 I67.2:0.3 I65.29:0.2 "
    "I71.20:0.15 I71.40:0.1 I77.1:0.1 I78.1:0.05 I83.90:0.1 I89.0:0.2 J18.0:0.05 J32.9:0.1 J43.1:0.05 "
    "J94.8:0.1 J95.89:0.05 J98.4:0.2 K20.90:0.2 K22.2:0.1 K25.9:0.1 K31.89:0.1 K40.90:0.2 K43.9:0.1 "
    "K52.9:0.2 K58.9:0.2 K59.09:0.2 K62.1:0.1 K76.89:0.1 K80.20:0.2 K86.2:0.05 L30.9:0.2 L40.0:0.2 "
    "L57.0:0.05 L60.0:0.1 L72.3:0.05 L98.9:0.1 M25.50:0.2 M25.561:0.2 M25.562:0.2 M46.1:0.05 M48.02:0.1 "
    "M50.30:0.1 M51.369:0.2 M54.89:0.1 M60.9:0.05 M62.82:0.3 M72.2:0.05 M79.604:0.1 M79.605:0.1 "
    "M85.80:0.1 M89.9:0.05 N13.30:0.2 N26.9:0.1 N28.89:0.1 N32.0:0.1 N35.919:0.05 "
    "N52.9:0.2 N62:0.05 N80.9:0.03 N81.2:0.03 N83.209:0.03 N95.1:0.05"
)

# Status codes implied by the medications a patient is on (per drug class, coded with this probability).
MED_STATUS_CODES: dict[str, str] = {
    "anticoagulant": "Z79.01:0.75",
    "basal_insulin": "Z79.4:0.8",
    "prandial_insulin": "Z79.4:0.3",
    "metformin": "Z79.84:0.55",
    "sulfonylurea": "Z79.84:0.55",
    "dpp4": "Z79.84:0.5",
    "sglt2": "Z79.84:0.5",
    "aspirin": "Z79.82:0.45",
    "p2y12": "Z79.02:0.5",
    "systemic_steroid": "Z79.52:0.08",
    "opioid": "Z79.891:0.08",
    "hormonal_breast": "Z79.810:0.4",
}

# Routine inpatient medications: (drug class, probability per inpatient stay).
# A patient keeps the same choice within a class, so these add to overlap between stays.
ROUTINE_INPATIENT = (
    ("nonopioid", 0.72), ("parenteral_anticoagulant", 0.55), ("crystalloid", 0.55), ("stool_softener", 0.5),
    ("antiemetic", 0.38), ("potassium", 0.32), ("magnesium", 0.25), ("ppi", 0.22), ("opioid", 0.18),
    ("sedative_hypnotic", 0.12), ("antihistamine", 0.06), ("dextrose", 0.05), ("laxative_bowel", 0.08),
)
ROUTINE_OTHER = (("nonopioid", 0.3), ("crystalloid", 0.2), ("antiemetic", 0.15))

# Tail pool of rare secondary diagnoses: ICD-10-CM chapters (first letters) or
# categories a hospital stay of an adult can plausibly carry, with the share of
# tail draws each gets (within a group, codes follow a Zipf law).
TAIL_PREFIXES = "A04:0.2 A08:0.2 A49:0.3 B37:0.15 B34:0.1 B95:0.2 B96:0.3 B97:0.1 D:1.2 E:1.8 F:0.9 G:1.0 H:0.3 I:2.5 J:1.3 K:1.8 L:0.6 M:0.9 N:1.3 R:1.5 Z7:0.3 Z8:0.6 Z9:0.5"
TAIL_EXCLUDE_WORDS = ("pregnan", "newborn", "neonat", "childbirth", "puerper", "fetus", "fetal", "maternal",
                      "perinatal", "juvenile", "infant", "congenital", "lactation", "breast milk", "child",
                      "placenta", "obstetric", "gestation", "sequela", "subsequent encounter")

# Negated findings discharge notes mention (pertinent negatives): the text, the
# problems it would contradict, and words that must not occur in the description
# of any code of the stay (rare codes come from anywhere in ICD-10-CM).
NEGATIONS = (
    ("no evidence of pneumonia", "pneumonia covid influenza copd_exacerbation", "pneumonia|pneumonitis"),
    ("denies chest pain", "mi chest_pain", "chest pain|angina|myocardial infarction"),
    ("no fever or chills", "sepsis pneumonia uti cellulitis influenza covid cdiff biliary appendicitis",
     "fever|sepsis|bacteremia"),
    ("denies shortness of breath", "pneumonia chf_exacerbation copd_exacerbation resp_failure pe_dvt covid "
                                   "asthma_exacerbation influenza",
     "dyspnea|shortness of breath|respiratory failure|heart failure|embolism|pneumonia"),
    ("no focal neurologic deficits", "stroke seizure", "hemiplegia|infarction|aphasia|paralysis|hemiparesis|palsy"),
    ("no signs of GI bleeding", "gi_bleed acute_blood_loss_anemia", "hemorrhage|bleeding|melena"),
    ("negative for PE on CTA", "pe_dvt", "pulmonary embolism"),
    ("denies dysuria", "uti", "urinary tract|cystitis|dysuria"),
    ("no leg swelling", "chf_exacerbation cellulitis pe_dvt", "edema|cellulitis|thrombosis|lymphedema"),
    ("no acute intracranial process on CT head", "stroke", "intracranial|cerebral|subarachnoid|subdural"),
    ("troponins negative x2", "mi", "myocardial infarction"),
    ("denies abdominal pain", "abdominal_pain pancreatitis biliary appendicitis diverticulitis bowel_obstruction cdiff",
     "abdominal pain|pancreatitis|appendicitis"),
    ("no nausea or vomiting", "abdominal_pain pancreatitis bowel_obstruction dka", "nausea|vomiting"),
    ("no history of DVT", "pe_dvt", "thrombosis|embolism"),
    ("denies alcohol use", "alcohol_withdrawal pancreatitis", "alcohol"),
    ("no history of seizures", "seizure", "seizure|epilep|convulsion"),
    ("UA negative for infection", "uti sepsis", "urinary tract|cystitis|pyelonephritis"),
    ("no acute fracture on imaging", "hip_fracture other_fracture", "fracture"),
    ("denies melena or hematochezia", "gi_bleed", "melena|hemorrhage|bleeding"),
    ("no signs of heart failure", "chf_exacerbation", "heart failure"),
    ("chest x-ray without infiltrate", "pneumonia covid", "pneumonia|pneumonitis"),
    ("no known drug allergies", "", "allergy status"),
    ("denies suicidal ideation", "", "suicid"),
    ("no rash", "cellulitis", "rash|dermatitis|cellulitis|eruption"),
    ("blood cultures without growth", "sepsis", "sepsis|bacteremia"),
    ("no evidence of stroke on MRI", "stroke", "infarction|stroke"),
    ("denies palpitations", "afib_rvr", "fibrillation|tachycardia|palpitations|flutter"),
    ("no wheezing", "copd_exacerbation asthma_exacerbation", "asthma|wheezing"),
    ("no loss of consciousness", "syncope seizure", "syncope|collapse|seizure"),
    ("denies diarrhea", "cdiff", "diarrhea|colitis|enterocolitis"),
)

# Short forms notes use for some drugs.
DRUG_ABBREVIATIONS = {
    "aspirin": "ASA", "hydrochlorothiazide": "HCTZ", "potassium chloride": "KCl", "sodium chloride": "NS",
    "acetaminophen": "Tylenol", "piperacillin": "pip-tazo", "tazobactam": "Zosyn", "vancomycin": "vanc",
    "nitroglycerin": "NTG", "magnesium sulfate": "Mg", "insulin glargine": "Lantus", "insulin lispro": "Humalog",
    "apixaban": "Eliquis", "clopidogrel": "Plavix", "furosemide": "Lasix", "metoprolol": "metop",
    "levothyroxine": "Synthroid", "atorvastatin": "Lipitor", "ceftriaxone": "CTX", "enoxaparin": "Lovenox",
    "heparin": "SQH", "ondansetron": "Zofran", "pantoprazole": "Protonix", "polyethylene glycol 3350": "Miralax",
    "docusate": "Colace", "warfarin": "Coumadin",
}

VITALS_TEMPLATES = (
    "Vitals: T {t} HR {hr} BP {sbp}/{dbp} RR {rr} SpO2 {spo2}% on {o2}.",
    "VS on discharge T{t}, P {hr}, BP {sbp}/{dbp}, RR {rr}, O2 sat {spo2}% {o2}.",
    "Discharge vitals - temp {t}, pulse {hr}, BP {sbp}/{dbp}, sats {spo2}% on {o2}.",
)
O2_SUPPORT = ("RA", "room air", "2L NC", "RA", "3L nasal cannula", "RA", "4L NC")
DISPOSITIONS = ("home", "home with services", "skilled nursing facility", "home", "rehab", "home",
                "SNF", "long-term acute care", "home with VNA")
SERVICES = ("Medicine", "Hospital Medicine", "Internal Medicine", "Medicine")
# The admitting service follows the principal problem where one service obviously owns it.
SERVICE_FOR = {
    "mi": "Cardiology", "afib_rvr": "Cardiology", "chf_exacerbation": "Cardiology", "chest_pain": "Cardiology",
    "stroke": "Neurology", "seizure": "Neurology", "hip_fracture": "Orthopedics", "other_fracture": "Orthopedics",
    "knee_hip_replacement": "Orthopedics", "biliary": "General Surgery", "appendicitis": "General Surgery",
    "bowel_obstruction": "General Surgery", "diverticulitis": "General Surgery", "gi_bleed": "Gastroenterology",
    "cancer_treatment": "Oncology", "sepsis": "MICU", "resp_failure": "MICU", "dka": "MICU",
    "cardiogenic_shock": "CCU", "overdose": "MICU", "alcohol_withdrawal": "Medicine",
}
FOLLOW_UP = (
    "Follow up with PCP in 1 week.", "Follow-up with cardiology in 2 weeks.", "PCP f/u 7-10 days, labs at visit.",
    "Return to ED for fever, chest pain or shortness of breath.", "Follow up with specialist as scheduled.",
    "Repeat BMP in 3 days.", "Follow up in clinic in 2 wks.", "Call your doctor if symptoms worsen.",
)

GIVEN_NAMES = {
    "male": ("James John Robert Michael William David Richard Joseph Thomas Charles Daniel Matthew Anthony "
             "Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Edward Ronald Luis Carlos "
             "Jose Juan Wei Hiroshi Ahmed Mohammed Raj Samuel Walter Harold Frank Raymond").split(),
    "female": ("Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Nancy Lisa Betty "
               "Margaret Sandra Ashley Dorothy Kimberly Emily Donna Michelle Carol Amanda Maria Rosa Ana "
               "Mei Yuki Fatima Aisha Priya Helen Ruth Shirley Joan Evelyn Gloria Frances").split(),
}
FAMILY_NAMES = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
                "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
                "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
                "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Chen Wang Kim "
                "Patel Shah Cohen Murphy O'Brien Sullivan Kowalski Novak Schmidt Rossi").split()
