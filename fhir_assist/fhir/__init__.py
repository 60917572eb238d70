"""FHIR basics shared by the adapter, the CDS service, the review app and write-back.

ids          the FHIR id rule and turning "Type/id" or "id" into a safe bare id
references   Reference strings in every form ("Type/id", absolute URLs, urn:uuid:, "#contained")
datetimes    FHIR date / dateTime / instant: checking and reading (offsets, fractions, partial dates)
validation   full FHIR R4 validation with readable messages naming the field
medications  MedicationRequest → the medication concept it names → RxNorm ingredient RxCUIs
tokens       the one written form of a code in vocabularies and label spaces ("icd10:E11.65")
"""
