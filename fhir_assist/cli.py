"""`fhir-assist` command line.

Each sub-command lives in its own module under `fhir_assist.commands` and exposes
`register(subparsers)`; this module only wires them together, so a slow import
(torch, flask) is paid only by the command that needs it.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .tasks.errors import TaskError

# (command, one-line help; its module under fhir_assist.commands has `_` for `-`) in the order `--help` lists them.
COMMANDS = [
    ("synth", "generate a synthetic FHIR cohort, or print a cohort's statistics"),
    ("train", "train a model of the zoo on a cohort and save it as an artifact"),
    ("evaluate", "evaluate an artifact against its baselines on a cohort"),
    ("serve", "run the CDS Hooks service"),
    ("code-batch", "code every encounter of a Bulk Data export (local processes or Spark)"),
    ("demo", "run the service on the bundled demo models and print the example cards"),
    ("feedback", "export coder and clinician feedback as training labels"),
]


class CliError(Exception):
    """An error the user can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fhir-assist",
        description="FHIR-native coding assistant: medication-change (MICRON) and ICD/CCS "
        "coding suggestions served over CDS Hooks.",
    )
    parser.add_argument("--version", action="version", version=f"fhir-assist {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS:
        module_name = f"fhir_assist.commands.{name.replace('-', '_')}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # command not shipped in this build
            raise
        module.register(sub, help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CliError, TaskError) as exc:   # TaskError: bad data or settings met by a task or recipe
        print(f"fhir-assist: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    # `python -m fhir_assist.cli` (torchrun, accelerate launch): run the package's own module,
    # so the commands' CliError is the class `main` catches, not a second copy of it.
    from fhir_assist.cli import main as package_main
    sys.exit(package_main())
