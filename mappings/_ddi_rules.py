"""Class-level interaction rules that `data/ddi_pairs.csv` is generated from.

Each rule names two groups of ingredients (by their names in `data/rxnorm_ingredients.csv`)
whose every cross pair interacts, with a severity, the clinical effect and the public
source. Expanding the rules over the ingredient list gives the shipped pair list;
regenerate it after editing either file with:

    python -m mappings._ddi_rules            # rewrites mappings/data/ddi_pairs.csv
    python -m mappings._ddi_rules --check    # exit 1 if the CSV is out of date

Where a pair is produced by several rules, the most severe one is kept.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import sys

from ._sources import SHIPPED

ONC = "ONC high-priority DDI list (Phansalkar et al., JAMIA 2012;19:735-43)"
FDA = "FDA prescribing information (Drug Interactions / Contraindications)"
QT = "FDA prescribing information (QT prolongation warnings)"
BOX_OPI = "FDA boxed warning 2016: opioids with benzodiazepines"
MB = "FDA drug safety communication 2011: methylene blue with serotonergic drugs"

NSAIDS = "ibuprofen,naproxen,celecoxib,meloxicam,diclofenac,ketorolac,indomethacin,flurbiprofen"
ACEI = "lisinopril,enalapril,ramipril,captopril,benazepril"
ARB = "losartan,valsartan,irbesartan,olmesartan,telmisartan,candesartan"
KSPARING = "spironolactone,eplerenone,triamterene,amiloride"
ANTICOAG = "warfarin,heparin,enoxaparin,apixaban,rivaroxaban,dabigatran etexilate"
OPIOIDS = "morphine,hydromorphone,oxycodone,hydrocodone,fentanyl,tramadol,methadone,codeine,buprenorphine"
BENZOS = "lorazepam,alprazolam,diazepam,clonazepam,midazolam,chlordiazepoxide,oxazepam,clobazam"
SSRI_SNRI = "sertraline,fluoxetine,citalopram,escitalopram,paroxetine,fluvoxamine,venlafaxine,duloxetine"
STRONG3A4 = "clarithromycin,itraconazole,ketoconazole,voriconazole,atazanavir"
PPI = "omeprazole,pantoprazole,esomeprazole,lansoprazole,rabeprazole"

RULES = [
    # (group A, group B, severity, source, clinical effect)
    ("warfarin", NSAIDS+",aspirin", "major", FDA+"; "+ONC, "bleeding"),
    ("warfarin", "amiodarone,fluconazole,metronidazole,sulfamethoxazole,trimethoprim,voriconazole,ciprofloxacin,levofloxacin,clarithromycin,erythromycin,capecitabine,fluorouracil", "major", FDA, "raised INR / bleeding"),
    ("warfarin", "rifampin,carbamazepine,phenytoin", "major", FDA, "lowered INR / loss of anticoagulation"),
    ("warfarin", "clopidogrel,prasugrel,ticagrelor", "major", FDA, "bleeding"),
    ("warfarin", "sertraline,fluoxetine,citalopram,escitalopram,paroxetine", "moderate", FDA, "bleeding"),
    ("apixaban,rivaroxaban", "ketoconazole,itraconazole,rifampin,carbamazepine,phenytoin,clarithromycin", "major", FDA, "altered anticoagulant exposure"),
    ("dabigatran etexilate", "ketoconazole,rifampin", "major", FDA, "altered anticoagulant exposure (P-gp)"),
    ("simvastatin,lovastatin", STRONG3A4+",erythromycin,cyclosporine,gemfibrozil", "contraindicated", ONC+"; "+FDA, "myopathy / rhabdomyolysis"),
    ("simvastatin,lovastatin", "amiodarone,diltiazem,verapamil", "major", FDA, "myopathy (dose limit)"),
    ("simvastatin", "amlodipine", "moderate", FDA, "myopathy (dose limit)"),
    ("atorvastatin", "clarithromycin,itraconazole,cyclosporine,gemfibrozil", "major", FDA, "myopathy"),
    ("rosuvastatin,pravastatin", "cyclosporine,gemfibrozil", "major", FDA, "myopathy"),
    ("colchicine", "clarithromycin,ketoconazole,itraconazole,cyclosporine,verapamil,diltiazem", "major", FDA, "colchicine toxicity"),
    ("methotrexate", "trimethoprim,sulfamethoxazole", "major", ONC+"; "+FDA, "bone marrow suppression"),
    ("methotrexate", NSAIDS+",aspirin", "major", FDA, "methotrexate toxicity"),
    ("methotrexate", "omeprazole,pantoprazole,esomeprazole", "moderate", FDA, "raised methotrexate levels"),
    ("lithium carbonate", NSAIDS+","+ACEI+","+ARB+",hydrochlorothiazide,chlorthalidone", "major", FDA, "lithium toxicity"),
    (ACEI+","+ARB, KSPARING+",potassium chloride,trimethoprim", "major", FDA, "hyperkalemia"),
    (ACEI, ARB, "major", FDA, "dual RAAS blockade: hyperkalemia, renal failure"),
    ("potassium chloride", KSPARING, "major", FDA, "hyperkalemia"),
    ("eplerenone", "ketoconazole,itraconazole,clarithromycin", "contraindicated", FDA, "hyperkalemia"),
    ("clopidogrel", "omeprazole,esomeprazole", "major", FDA, "reduced antiplatelet effect (CYP2C19)"),
    ("sildenafil,tadalafil", "nitroglycerin,isosorbide dinitrate", "contraindicated", ONC+"; "+FDA, "severe hypotension"),
    (OPIOIDS, BENZOS, "major", BOX_OPI, "respiratory depression"),
    ("linezolid", SSRI_SNRI, "major", FDA, "serotonin syndrome"),
    ("methylene blue", SSRI_SNRI, "contraindicated", MB, "serotonin syndrome"),
    ("tramadol", SSRI_SNRI, "major", FDA, "serotonin syndrome / seizures"),
    ("tizanidine", "ciprofloxacin,fluvoxamine", "contraindicated", ONC+"; "+FDA, "hypotension, sedation (CYP1A2)"),
    ("allopurinol", "azathioprine,mercaptopurine", "major", ONC+"; "+FDA, "bone marrow suppression"),
    ("atazanavir", PPI, "major", ONC+"; "+FDA, "loss of atazanavir effect"),
    ("irinotecan", "ketoconazole", "contraindicated", FDA, "irinotecan toxicity"),
    ("digoxin", "amiodarone,dronedarone,verapamil,quinidine,clarithromycin", "major", FDA, "digoxin toxicity"),
    ("dronedarone", "ketoconazole,itraconazole,voriconazole,clarithromycin", "contraindicated", FDA, "dronedarone toxicity / QT"),
    ("dronedarone", "simvastatin,lovastatin", "major", FDA, "myopathy"),
    ("theophylline", "ciprofloxacin,fluvoxamine,erythromycin,clarithromycin", "major", FDA, "theophylline toxicity"),
    ("carbamazepine", "clarithromycin,erythromycin", "major", FDA, "carbamazepine toxicity"),
    ("valproic acid", "lamotrigine", "major", FDA, "lamotrigine toxicity / rash"),
    ("tacrolimus,cyclosporine", "ketoconazole,itraconazole,voriconazole,clarithromycin,fluconazole,rifampin", "major", FDA, "altered immunosuppressant levels"),
    ("glipizide,glyburide,glimepiride", "fluconazole", "major", FDA, "hypoglycemia"),
    ("metoprolol,carvedilol,atenolol,propranolol,bisoprolol", "verapamil,diltiazem", "moderate", FDA, "bradycardia, heart block"),
    ("methylene blue", "clomipramine,imipramine,desipramine,doxepin,trimipramine,vortioxetine", "major", MB, "serotonin syndrome"),
    ("sirolimus", "ketoconazole,itraconazole,voriconazole,clarithromycin,rifampin", "major", FDA, "altered sirolimus levels"),
    ("darifenacin,fesoterodine,tolterodine", "ketoconazole,itraconazole,clarithromycin", "moderate", FDA, "antimuscarinic toxicity (dose limit)"),
    ("methotrexate", "probenecid", "major", FDA, "methotrexate toxicity (reduced renal clearance)"),
]

# QT prolongation: high-risk "anchor" drugs pair with each other and with the other drugs
# of known torsades risk (pairs among the others alone are left to clinical judgement).
QT_ANCHORS = "amiodarone,sotalol,thioridazine,pimozide,ziprasidone,methadone"
QT_OTHERS = "haloperidol,quinidine,citalopram,ondansetron,erythromycin,clarithromycin,levofloxacin,moxifloxacin,fluconazole,hydroxychloroquine"
QT_CONTRAINDICATED = {"thioridazine", "pimozide", "ziprasidone"}


_RANK = {"contraindicated": 3, "major": 2, "moderate": 1}


def expand() -> list[tuple[int, int, str, str, str, str, str]]:
    """The pair rows (rxcui_a < rxcui_b) the rules give over the shipped ingredient list."""
    with open(SHIPPED / "rxnorm_ingredients.csv", newline="", encoding="utf-8") as fh:
        rx = {row["name"]: row["rxcui"] for row in csv.DictReader(fh)}
    name = {v: k for k, v in rx.items()}

    def ids(names: str) -> list[str]:
        missing = [n for n in names.split(",") if n not in rx]
        if missing:
            raise KeyError(f"DDI rules name ingredients missing from rxnorm_ingredients.csv: {missing}")
        return [rx[n] for n in names.split(",")]

    pairs: dict[frozenset[str], tuple[str, str, str]] = {}

    def add(a: str, b: str, severity: str, source: str, effect: str) -> None:
        if a == b:
            return
        key = frozenset((a, b))
        if key in pairs and _RANK[pairs[key][0]] >= _RANK[severity]:
            return
        pairs[key] = (severity, source, effect)

    for group_a, group_b, severity, source, effect in RULES:
        for a in ids(group_a):
            for b in ids(group_b):
                add(a, b, severity, source, effect)
    for a, b in itertools.combinations(ids(ANTICOAG), 2):
        add(a, b, "major", FDA, "bleeding (duplicate anticoagulation)")
    qt_effect = "QT prolongation / torsades de pointes"
    anchors = QT_ANCHORS.split(",")
    for a, b in itertools.combinations(anchors, 2):
        involved = {a, b}
        severity = "contraindicated" if involved & QT_CONTRAINDICATED else "major"
        source = QT + "; " + ONC if involved & {"thioridazine", "pimozide"} else QT
        add(rx[a], rx[b], severity, source, qt_effect)
    for a in anchors:
        for b in QT_OTHERS.split(","):
            severity = "contraindicated" if a in QT_CONTRAINDICATED else "major"
            source = QT + "; " + ONC if a in {"thioridazine", "pimozide"} else QT
            add(rx[a], rx[b], severity, source, qt_effect)
    for b in ids("clarithromycin,itraconazole,ketoconazole,voriconazole,atazanavir,fluvoxamine"):
        add(rx["pimozide"], b, "contraindicated", ONC + "; " + FDA, "pimozide toxicity (CYP3A4) / QT")
    for b in ids("fluoxetine,paroxetine,fluvoxamine"):
        add(rx["thioridazine"], b, "contraindicated", ONC + "; " + FDA, "thioridazine toxicity (CYP2D6) / QT")

    out = []
    for key, (severity, source, effect) in pairs.items():
        a, b = sorted(key, key=int)
        out.append((int(a), int(b), name[a], name[b], severity, effect, source))
    return sorted(out)


def render() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rxcui_a", "rxcui_b", "name_a", "name_b", "severity", "effect", "source"])
    writer.writerows(expand())
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate mappings/data/ddi_pairs.csv from the DDI rules.")
    parser.add_argument("--check", action="store_true", help="only check that the shipped CSV is up to date")
    args = parser.parse_args(argv)
    target = SHIPPED / "ddi_pairs.csv"
    text = render()
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is out of date: run python -m mappings._ddi_rules", file=sys.stderr)
            return 1
        print(f"{target} is up to date ({text.count(chr(10)) - 1} pairs)")
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({text.count(chr(10)) - 1} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
