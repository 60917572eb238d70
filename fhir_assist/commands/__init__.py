"""Sub-commands of `fhir-assist`; each module has `register(subparsers, help_text)`."""
