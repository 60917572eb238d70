"""Code-system URLs as FHIR uses them, and tolerant recognition of the variants met in real feeds.

EHR exports rarely agree on how to name a code system: HL7 v3 OIDs (with or without
`urn:oid:`), `https` instead of `http`, trailing slashes, upper case, `icd10cm` without
hyphens, vendor URLs such as icd10data.com. `canonical_system` folds all of these onto
one URL per system so the rest of the product can compare systems with `==`.
"""
from __future__ import annotations

import re

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10 = "http://hl7.org/fhir/sid/icd-10"  # WHO ICD-10: kept distinct, looked up through ICD-10-CM
ICD9CM = "http://hl7.org/fhir/sid/icd-9-cm"
ICD9CM_PROC = ICD9CM  # FHIR names ICD-9-CM volume 3 (procedures) with the same URL
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
NDC = "http://hl7.org/fhir/sid/ndc"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"   # HCPCS Level II

# Short names used in tokens ("icd10:E11.65") and in messages.
SHORT_NAMES = {
    ICD10CM: "icd10",
    ICD10: "icd10who",
    ICD9CM: "icd9",
    ICD10PCS: "pcs",
    RXNORM: "rxnorm",
    SNOMED: "snomed",
    LOINC: "loinc",
    CPT: "cpt",
    NDC: "ndc",
    HCPCS: "hcpcs",
}

# HL7 v3 OIDs (https://terminology.hl7.org, "OID" registry entries of the code systems).
_OIDS = {
    "2.16.840.1.113883.6.90": ICD10CM,
    "2.16.840.1.113883.6.3": ICD10,
    "2.16.840.1.113883.6.103": ICD9CM,   # ICD-9-CM diagnoses (vol. 1-2)
    "2.16.840.1.113883.6.104": ICD9CM,   # ICD-9-CM procedures (vol. 3)
    "2.16.840.1.113883.6.2": ICD9CM,     # ICD-9-CM (unspecified volume)
    "2.16.840.1.113883.6.42": ICD9CM,    # ICD-9 (used loosely for ICD-9-CM by many senders)
    "2.16.840.1.113883.6.4": ICD10PCS,
    "2.16.840.1.113883.6.88": RXNORM,
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.12": CPT,
    "2.16.840.1.113883.6.69": NDC,
    "2.16.840.1.113883.6.285": HCPCS,
}

# Keys are URLs after `_fold` (no scheme, no "www.", lower case, no trailing "/").
_URL_ALIASES = {
    "hl7.org/fhir/sid/icd-10-cm": ICD10CM,
    "hl7.org/fhir/sid/icd10cm": ICD10CM,
    "hl7.org/fhir/sid/icd-10cm": ICD10CM,
    "hl7.org/fhir/sid/icd10-cm": ICD10CM,
    "hl7.org/fhir/sid/icd-10-cm-diagnosis": ICD10CM,
    "icd10data.com/icd10cm": ICD10CM,
    "cdc.gov/nchs/icd/icd10cm": ICD10CM,
    "cdc.gov/nchs/icd/icd10cm.htm": ICD10CM,
    "hl7.org/fhir/sid/icd-10": ICD10,
    "hl7.org/fhir/sid/icd10": ICD10,
    "who.int/classifications/icd10": ICD10,
    "hl7.org/fhir/sid/icd-9-cm": ICD9CM,
    "hl7.org/fhir/sid/icd9cm": ICD9CM,
    "hl7.org/fhir/sid/icd-9cm": ICD9CM,
    "hl7.org/fhir/sid/icd9-cm": ICD9CM,
    "hl7.org/fhir/sid/icd-9": ICD9CM,
    "hl7.org/fhir/sid/icd9": ICD9CM,
    "hl7.org/fhir/sid/icd-9-cm/diagnosis": ICD9CM,
    "hl7.org/fhir/sid/icd-9-cm/procedure": ICD9CM,
    "hl7.org/fhir/sid/icd-9-cm-procedures": ICD9CM,
    "icd9data.com": ICD9CM,
    "cms.gov/medicare/coding/icd10": ICD10PCS,
    "cms.gov/medicare/coding/hcpcsreleasecodesets": HCPCS,
    "cms.gov/medicare/coding/icd-10": ICD10PCS,
    "hl7.org/fhir/sid/icd-10-pcs": ICD10PCS,
    "hl7.org/fhir/sid/icd10pcs": ICD10PCS,
    "icd10data.com/icd10pcs": ICD10PCS,
    "cms.gov/medicare/coding/icd10/icd-10-pcs": ICD10PCS,
    "nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "nlm.nih.gov/research/umls/rxnorm/": RXNORM,
    "hl7.org/fhir/sid/rxnorm": RXNORM,
    "snomed.info/sct": SNOMED,
    "snomed.info/id": SNOMED,
    "snomed.org": SNOMED,
    "loinc.org": LOINC,
    "ama-assn.org/go/cpt": CPT,
    "hl7.org/fhir/sid/cpt": CPT,
    "hl7.org/fhir/sid/ndc": NDC,
}

# Bare names some systems put in `system` instead of a URL ("ICD-10-CM", "RxNorm").
_NAME_ALIASES = {
    "icd10cm": ICD10CM, "icd-10-cm": ICD10CM, "icd10-cm": ICD10CM, "icd-10cm": ICD10CM,
    "icd10": ICD10, "icd-10": ICD10,
    "icd9cm": ICD9CM, "icd-9-cm": ICD9CM, "icd9-cm": ICD9CM, "icd-9cm": ICD9CM,
    "icd9": ICD9CM, "icd-9": ICD9CM, "icd9proc": ICD9CM, "icd-9-cm-proc": ICD9CM,
    "icd10pcs": ICD10PCS, "icd-10-pcs": ICD10PCS, "icd10-pcs": ICD10PCS, "pcs": ICD10PCS,
    "rxnorm": RXNORM, "rxcui": RXNORM,
    "snomed": SNOMED, "snomedct": SNOMED, "snomed-ct": SNOMED, "sct": SNOMED,
    "loinc": LOINC, "cpt": CPT, "cpt4": CPT, "cpt-4": CPT, "ndc": NDC,
}

_OID_RE = re.compile(r"^(?:urn:oid:|oid:)?((?:\d+\.)+\d+)$")
_SNOMED_EDITION_RE = re.compile(r"^snomed\.info/sct/\d+(?:/version/\d+)?$")


def _fold(url: str) -> str:
    folded = url.strip().lower()
    folded = re.sub(r"^[a-z][a-z0-9+.-]*://", "", folded)
    if folded.startswith("www."):
        folded = folded[4:]
    return folded.rstrip("/#?")


def canonical_system(url: str | None) -> str | None:
    """The canonical FHIR URL for a code-system URL, OID or common name.

    Unknown systems come back stripped but otherwise unchanged, so that callers can
    still count them by name; None and blank strings give None.
    """
    if url is None:
        return None
    stripped = url.strip()
    if not stripped:
        return None
    oid = _OID_RE.match(stripped.lower())
    if oid:
        return _OIDS.get(oid.group(1), stripped)
    folded = _fold(stripped)
    if folded in _URL_ALIASES:
        return _URL_ALIASES[folded]
    if _SNOMED_EDITION_RE.match(folded):  # edition URIs: http://snomed.info/sct/731000124108
        return SNOMED
    compact = folded.replace(" ", "").replace("_", "-")
    if compact in _NAME_ALIASES:
        return _NAME_ALIASES[compact]
    return stripped


def short_name(system: str | None) -> str | None:
    """Short token prefix of a canonical system ("icd10", "icd9", "pcs", ...)."""
    canonical = canonical_system(system)
    if canonical is None:
        return None
    return SHORT_NAMES.get(canonical)


# Shapes of diagnosis codes, dots optional. ICD-10-CM: letter, digit, alphanumeric, then up
# to four alphanumerics. ICD-9-CM: three digits (+2), V + two digits (+2), E + three digits (+1).
_ICD10_SHAPE = re.compile(r"^[A-Z]\d[0-9A-Z](?:\.?[0-9A-Z]{1,4})?$")
_ICD9_SHAPE = re.compile(r"^(?:\d{3}(?:\.?\d{1,2})?|V\d{2}(?:\.?\d{1,2})?|E\d{3}(?:\.?\d)?)$")


def detect_icd_system(code: str | None) -> str | None:
    """Guess whether a diagnosis code is ICD-10-CM or ICD-9-CM from its shape.

    Meant for codes filed under a wrong or missing system URL. Shapes that both
    systems allow (V and E codes) are settled by looking the code up in both code
    sets; None when the code is neither.
    """
    if not code:
        return None
    text = code.strip().upper()
    as10 = bool(_ICD10_SHAPE.match(text))
    as9 = bool(_ICD9_SHAPE.match(text))
    if as10 and not as9:
        return ICD10CM
    if as9 and not as10:
        return ICD9CM
    if not (as10 or as9):
        return None
    # Ambiguous (e.g. "V4581", "E8809", "V45.81"): a dot after the third character is
    # ICD-10-CM or ICD-9 V-code style; E-codes of ICD-9 put the dot after the fourth.
    from . import icd  # late import: the hierarchies are only needed for this case

    in10 = icd.icd10cm().is_valid(text)
    in9 = icd.icd9cm().is_valid(text)
    if in10 and not in9:
        return ICD10CM
    if in9 and not in10:
        return ICD9CM
    if in10 and in9:
        # Both exist (a few V-codes): ICD-9 V codes have at most 5 characters undotted,
        # ICD-10 V codes of that length are non-billable headers; prefer the billable one.
        if icd.icd9cm().is_billable(text) and not icd.icd10cm().is_billable(text):
            return ICD9CM
        return ICD10CM
    return None
