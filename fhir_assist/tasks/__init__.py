"""The tasks: what a model is asked, shared by training recipes, the CLI and the service.

One package per task — `medication` (MICRON medication change) and `coding` (ICD/CCS
coding) — each holding: timeline → model examples, the feature and label spaces, the
one visit encoder, and the artifact loader. Nothing here trains a model or parses
command-line arguments; serving imports this layer, never the recipes.
"""
from fhir_assist.tasks.errors import TaskError

__all__ = ["TaskError"]
