"""`fhir-assist feedback export --out FILE`: coder and clinician decisions as training labels."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fhir_assist.cli import CliError


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    parser = sub.add_parser(
        "feedback",
        help=help_text,
        description="Work with the feedback the service records: decisions coders make in the "
        "worklist (/review) and the outcomes EHRs send to the CDS feedback endpoint.",
    )
    actions = parser.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write accepted / rejected codes as JSON Lines training labels",
        description="Write one JSON object per line: {patient, encounter, system, code, label "
        "(1 = the code is right for the encounter, 0 = a coder or clinician refuted it), source "
        "(coder-review | cds-feedback), user, at, model_version, reason?}. The latest decision "
        "per code and encounter wins; an undone decision is left out. The file is what "
        "`fhir-assist train icd-ranker --feedback FILE` and `evaluate --feedback FILE` read.",
    )
    export.add_argument("--out", required=True, metavar="FILE",
                        help="file to write (replaced atomically); '-' for standard output")
    export.add_argument("--redis-url", metavar="URL", default=None,
                        help="Redis holding the feedback (default: $FHIR_ASSIST_REDIS_URL)")
    export.add_argument("--since", metavar="ISO", default=None,
                        help="only feedback recorded at or after this ISO-8601 time, "
                        "e.g. 2026-01-31 or 2026-01-31T08:00:00Z")
    export.add_argument("--tenant", default=None,
                        help="only this tenant's feedback (default: every tenant)")
    export.add_argument("--source", choices=["coder-review", "cds-feedback"], default=None,
                        help="only labels from the worklist or only from CDS feedback (default: both)")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from fhir_assist.fhir.datetimes import parse_timestamp
    from fhir_assist.review.labels import ExportReport, labels_from_events, to_jsonl
    from fhir_assist.store import StoreUnavailable, open_store

    url = args.redis_url or os.environ.get("FHIR_ASSIST_REDIS_URL", "").strip()
    if not url:
        raise CliError("feedback is kept in Redis: give --redis-url URL (or set FHIR_ASSIST_REDIS_URL); "
                       "a service running without Redis keeps feedback only in its own memory")
    since = None
    if args.since:
        since = parse_timestamp(args.since)
        if since is None:
            raise CliError(f"--since {args.since!r} is not an ISO-8601 date or date-time")
    try:
        store = open_store(url)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        events = store.list_feedback(tenant=args.tenant, since=since, source=args.source)
    except StoreUnavailable as exc:
        raise CliError(f"cannot read feedback: {exc}") from None
    finally:
        store.close()
    report = ExportReport()
    labels = labels_from_events(events, report)
    if args.out == "-":
        sys.stdout.writelines(to_jsonl(labels))
    else:
        _write_atomically(Path(args.out), to_jsonl(labels))
    print(f"{report.summary()} → {args.out}", file=sys.stderr)
    return 0


def _write_atomically(path: Path, lines) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
        os.replace(tmp, path)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from None
