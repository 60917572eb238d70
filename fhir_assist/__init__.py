"""fhir-assist: a FHIR-native coding assistant (CDS Hooks service, model zoo glue)."""

__version__ = "0.1.0"
