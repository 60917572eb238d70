"""The CDS Hooks 2.0 service: medication-change and coding-suggestions, as a Flask app.

`create_app(settings)` builds the app; `fhir-assist serve` runs it (waitress in
production, Flask's server with --debug); `fhir-assist demo` runs it in-process.
"""
from .app import create_app

__all__ = ["create_app"]
