"""Registration details of a synthetic stay: admitting services, discharge dispositions
and patient names."""
from __future__ import annotations

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
