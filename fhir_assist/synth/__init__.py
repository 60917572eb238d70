"""Synthetic FHIR cohorts calibrated to MIMIC-III, and cohort statistics.

- `generate.generate_cohort(patients, seed, out_dir, progress=True, icd_version="icd10cm")`
  writes Bulk Data style NDJSON (see `fhir-assist synth --help`);
- `stats.cohort_stats(timelines)` computes the calibration figures of any cohort.

Modules: `clinical` (knowledge tables), `knowledge` (tables compiled against
`mappings`), `simulate` (a patient's clinical course), `ambulatory` and
`ambulatory_resources` (the outpatient-heavy profile), `notes` (discharge
summaries), `resources` (FHIR R4 dicts), `generate` (writing), `stats`.
Importing this package is cheap; the tables are compiled on first use.
"""

ICD_VERSIONS = ("icd10cm", "icd9cm", "mixed")
PROFILES = ("inpatient", "ambulatory")
