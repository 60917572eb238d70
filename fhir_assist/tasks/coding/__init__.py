"""ICD/CCS coding: which codes an encounter gets, from its structured data or its notes.

An *encounter* is a Visit with at least one ICD-10-CM or ICD-9-CM diagnosis. Its
labels are every node of the ICD hierarchy above (and at) its codes — chapter, block,
3-char category, 4-char subcategory, billable code — plus their CCS/CCSR categories:
six label "heads". Label tokens carry the code system ("icd10:E11.65",
"icd9:428.0"), so ICD-9 and ICD-10 cohorts, or a mix, share one code path.

    ontology    label tokens of a code: hierarchy levels, CCS, descriptions
    encounters  timelines → Encounter examples (inputs, labels, split, feedback)
    feedback    coder feedback labels (JSON Lines) applied to encounters
    spaces      LabelSpace, FeatureSpace and the note-token encodings
    settings    typed training settings of the two models (defaults written once)
    evaluation  per-head ranking metrics, model-selection score, RE@R cut-offs
    artifact    RankerBundle / TextBundle and their artifact save / load
    models      the two coding models behind one protocol (structured ranker, text coder)
"""
TASK = "icd-coding"
