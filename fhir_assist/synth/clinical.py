"""Clinical knowledge the synthetic cohort is drawn from.

Plain tables, no logic: chronic conditions (latent, persistent across visits),
drug classes (RxNorm ingredients by name, resolved through `mappings.rxnorm` at
load time), cancer sites, routine inpatient medications, common secondary
diagnoses and the rare-code tail. Acute problems live in `acute_problems`, the
words of discharge notes in `note_vocabulary`, names and services in `registration`.

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
