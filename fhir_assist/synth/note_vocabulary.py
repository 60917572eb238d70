"""Words discharge notes are written with: pertinent negatives, drug short forms,
vital-sign lines and follow-up instructions."""
from __future__ import annotations

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
FOLLOW_UP = (
    "Follow up with PCP in 1 week.", "Follow-up with cardiology in 2 weeks.", "PCP f/u 7-10 days, labs at visit.",
    "Return to ED for fever, chest pain or shortness of breath.", "Follow up with specialist as scheduled.",
    "Repeat BMP in 3 days.", "Follow up in clinic in 2 wks.", "Call your doctor if symptoms worsen.",
)
