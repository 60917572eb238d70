"""Clinical vocabularies for fhir-assist, loaded offline.

Modules:
  codesystems  canonical code-system URLs, tolerant URL/OID recognition, ICD version detection
  icd          ICD-10-CM / ICD-9-CM hierarchies (chapter → block → 3char → 4char → billing)
  gem          ICD-9-CM ↔ ICD-10-CM General Equivalence Mappings
  ccs          HCUP CCS (ICD-9-CM) and CCSR (ICD-10-CM) categories
  procedures   ICD-10-PCS and ICD-9-CM procedure descriptions
  rxnorm       ingredient normalisation and drug–drug-interaction pairs

Each module loads its data on first use; see mappings/README.md for sources and licences.
"""
