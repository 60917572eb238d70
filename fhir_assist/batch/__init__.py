"""Batch coding: a Bulk Data folder of NDJSON → coding suggestions for every encounter.

`groups` reads the export into per-patient resource groups, `patient` is the one per-patient
coding function (the service's models, list, cut and write-back rule), `output` writes the
suggestions NDJSON, transaction Bundles and the summary, and `local` / `spark` run the same
per-patient function on one machine's cores or on Apache Spark. `job` ties them together.
"""
