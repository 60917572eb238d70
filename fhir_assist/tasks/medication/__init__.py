"""Medication change (MICRON): a patient's visits → index lists over the diagnosis,
procedure and medication vocabularies, the DDI table over the medication vocabulary,
and the artifact that holds MICRON with its baselines.

    encoding      the one visit encoder, vocabularies, cohort → split index sequences
    interactions  DDI matrix over a medication vocabulary, stored as index pairs
    artifact      TrainedModels, save / restore of a medication-change artifact
"""
TASK = "medication-change"
