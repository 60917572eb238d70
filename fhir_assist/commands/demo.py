"""`fhir-assist demo`: the whole product in one minute, on this machine, with nothing to set up.

Starts the CDS Hooks service in-process (bundled demo models, in-process state,
authentication off, an ephemeral loopback port), generates a small synthetic
cohort and prints its statistics, sends the example hook calls of
examples/hooks/ (or calls built from the cohort when the examples are not at
hand), prints the cards, sends one feedback, and stops.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

from fhir_assist.cli import CliError

log = logging.getLogger("fhir_assist.demo")
REPO_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hooks"
_ICONS = {"info": "ℹ", "warning": "⚠", "critical": "‼"}


def register(sub: argparse._SubParsersAction, help_text: str) -> None:
    parser = sub.add_parser(
        "demo", help=help_text,
        description="Run the CDS Hooks service on the embedded default (bundled demo models, "
        "in-process state, authentication off, loopback only), generate a small synthetic cohort "
        "and print its statistics, send the example hook calls and print the cards, then stop.")
    parser.add_argument("--patients", type=int, default=60, help="size of the demo cohort (default 60)")
    parser.add_argument("--seed", type=int, default=7, help="cohort seed (default 7)")
    parser.add_argument("--models", default=None, metavar="DIR",
                        help="artifact directory (default: the bundled demo models)")
    parser.add_argument("--examples", default=None, metavar="DIR",
                        help="directory of hook request JSON files (default: examples/hooks of the "
                        "source tree, else calls built from the demo cohort)")
    parser.add_argument("--keep", default=None, metavar="DIR", help="write the cohort to DIR and keep it")
    parser.add_argument("--json", action="store_true", help="print the raw CDS responses as JSON")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.patients < 2:
        raise CliError("--patients must be at least 2")
    from fhir_assist.config import Settings, SettingsError, env_values

    try:
        # The worklist's sign-in and session key come from the environment, as in `serve`.
        worklist = {k: v for k, v in env_values(Settings, os.environ).items() if k in ("review", "session_key")}
        settings = Settings(host="127.0.0.1", port=0, no_auth=True, models_dir=args.models, **worklist).checked()
    except SettingsError as exc:
        raise CliError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="fhir-assist-demo-") as tmp:
        cohort_dir = Path(args.keep) if args.keep else Path(tmp) / "cohort"
        cohort_dir.mkdir(parents=True, exist_ok=True)
        resources = _cohort(args, cohort_dir)
        with running_service(settings) as base_url:
            requests_to_send = _example_calls(args, resources)
            _send_all(base_url, requests_to_send, as_json=args.json)
    return 0


# ------------------------------------------------------------------ service
class running_service:
    """Context manager: the service on an ephemeral loopback port, served by waitress in a thread."""

    def __init__(self, settings, **app_options) -> None:
        self.settings = settings
        self.app_options = app_options
        self.server = None
        self.thread = None
        self.app = None

    def __enter__(self) -> str:
        from waitress import create_server

        from fhir_assist.cds import create_app

        print("starting the CDS Hooks service (bundled demo models, authentication off)…", file=sys.stderr)
        self.app = create_app(self.settings, **self.app_options)
        models = self.app.extensions["fhir_assist"].models
        if not models.ready:
            raise CliError("the demo models could not be loaded: "
                           + "; ".join(f"{k}: {v}" for k, v in models.errors.items())
                           + " (rebuild them with scripts/build-demo-models.sh)")
        # The body limit at the server: waitress would otherwise buffer up to 1 GiB per
        # request before Flask's own check sees it.
        self.server = create_server(self.app, host=self.settings.host, port=self.settings.port, threads=4,
                                    ident="fhir-assist-demo",
                                    max_request_body_size=self.settings.max_request_mb * 1024 * 1024)
        self.thread = threading.Thread(target=self.server.run, name="fhir-assist-demo", daemon=True)
        self.thread.start()
        return f"http://{self.settings.host}:{self.server.effective_port}"

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            from waitress import wasyncore

            server = self.server
            # Close every socket from inside the server's own loop (closing them from this
            # thread races its select()); the loop then ends as it has nothing left to watch.
            try:
                server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
            except OSError:
                # The wake-up pipe is already closed (seen once in CI, cause not found): the
                # loop can no longer be woken, so close its sockets from here instead.
                wasyncore.close_all(server._map, ignore_all=True)
            if self.thread is not None:
                self.thread.join(timeout=5)
            server.task_dispatcher.shutdown()
        if self.app is not None:
            self.app.extensions["fhir_assist"].close()


# ------------------------------------------------------------------- cohort
def _cohort(args: argparse.Namespace, out_dir: Path) -> list[dict]:
    from fhir_assist.adapter.files import iter_resources
    from fhir_assist.adapter.report import IngestReport
    from fhir_assist.adapter.timeline import build_timelines

    try:
        from fhir_assist.synth.generate import generate_cohort
        from fhir_assist.synth.stats import cohort_stats
    except ImportError as exc:
        raise CliError(f"the cohort generator is not available: {exc}") from None
    print(f"generating a synthetic cohort of {args.patients} patients (seed {args.seed})…", file=sys.stderr)
    generate_cohort(args.patients, args.seed, str(out_dir), progress=True)
    report = IngestReport()
    resources = list(iter_resources(out_dir, report=report))
    stats = cohort_stats(build_timelines(resources, report))
    print("\n== Demo cohort ==")
    for key, value in stats.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in list(value.items())[:6]) or "none"
        print(f"  {key:28s} {value}")
    if args.keep:
        print(f"  (cohort kept in {out_dir})")
    return resources


def _example_calls(args: argparse.Namespace, resources: list[dict]) -> list[tuple[str, str, dict]]:
    """(label, service id, request body) for each example to send."""
    folder = Path(args.examples) if args.examples else REPO_EXAMPLES
    calls = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                body = json.loads(path.read_text())
            except ValueError as exc:
                raise CliError(f"{path} is not valid JSON: {exc}") from None
            service_id = _service_for(path.stem, body)
            if service_id is None:
                continue
            if "prefetch" not in body and "fhirServer" in body:
                print(f"  skipping {path.name}: it needs a FHIR server (see examples/hooks/README.md)",
                      file=sys.stderr)
                continue
            calls.append((path.name, service_id, body))
    elif args.examples:
        raise CliError(f"no directory {folder}")
    if not calls:
        calls = _calls_from_cohort(resources)
    return calls


def _service_for(stem: str, body: dict) -> str | None:
    from fhir_assist.cds.catalog import BY_ID
    for service_id in sorted(BY_ID, key=len, reverse=True):
        if stem.startswith(service_id):
            return service_id
    return None


def _calls_from_cohort(resources: list[dict]) -> list[tuple[str, str, dict]]:
    from fhir_assist.cds.catalog import SERVICES
    from fhir_assist.cds.hook_requests import build_request, encounters_of, group_by_patient

    patients = group_by_patient(resources)
    chosen = [pid for pid, items in sorted(patients.items())
              if len(encounters_of(items)) >= 2 and any(r.get("resourceType") == "MedicationRequest" for r in items)]
    if not chosen:
        raise CliError("the demo cohort has no patient with two visits and medications; try more --patients")
    pid = chosen[0]
    return [(f"{entry.id} (built from demo patient {pid})", entry.id, build_request(entry, patients[pid], pid))
            for entry in SERVICES]


# ------------------------------------------------------------------ calling
def _send_all(base_url: str, calls: list[tuple[str, str, dict]], *, as_json: bool) -> None:
    import requests

    session = requests.Session()
    discovery = session.get(f"{base_url}/cds-services", timeout=10).json()
    print(f"\n== CDS Hooks service at {base_url} ==")
    for service in discovery["services"]:
        print(f"  {service['id']:42s} hook {service['hook']}")
    feedback_sent = False
    for label, service_id, body in calls:
        response = session.post(f"{base_url}/cds-services/{service_id}", json=body, timeout=60)
        print(f"\n== {label} → POST /cds-services/{service_id}: HTTP {response.status_code} ==")
        try:
            answer = response.json()
        except ValueError:
            print(textwrap.indent(response.text[:500], "  "))
            continue
        if as_json:
            print(json.dumps(answer, indent=2))
            continue
        if response.status_code != 200:
            issue = (answer.get("issue") or [{}])[0]
            print(f"  {issue.get('details', {}).get('text', answer)}")
            continue
        print_cards(answer)
        if not feedback_sent:
            feedback_sent = _send_feedback(session, base_url, service_id, answer)


def print_cards(answer: dict, out=None) -> None:
    out = out or sys.stdout
    cards = answer.get("cards") or []
    if not cards:
        print("  (no cards: nothing to suggest)", file=out)
    for card in cards:
        icon = _ICONS.get(card.get("indicator"), "•")
        print(f"  {icon} [{card.get('indicator')}] {card.get('summary')}", file=out)
        print(f"    source: {card['source'].get('label')}", file=out)
        detail = card.get("detail")
        if detail:
            for line in detail.splitlines():
                print(f"    {line}" if line.strip() else "", file=out)
        for s in card.get("suggestions") or []:
            actions = ", ".join(f"{a['type']} {a.get('resource', {}).get('resourceType') or a.get('resourceId', '')}"
                                for a in s.get("actions") or [])
            mark = "*" if s.get("isRecommended") else "-"
            print(f"    {mark} {s['label']}  ({actions})", file=out)
        for link in card.get("links") or []:
            print(f"    link: {link['label']} <{link['url']}>", file=out)
    for action in answer.get("systemActions") or []:
        print(f"  system action: {action['type']} {action.get('resource', {}).get('resourceType', '')}", file=out)


def _send_feedback(session, base_url: str, service_id: str, answer: dict) -> bool:
    from datetime import datetime, timezone

    card = next((c for c in answer.get("cards") or [] if c.get("suggestions")), None)
    if card is None:
        return False
    first = card["suggestions"][0]
    body = {"feedback": [{"card": card["uuid"], "outcome": "accepted",
                          "acceptedSuggestions": [{"id": first["uuid"]}],
                          "outcomeTimestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    response = session.post(f"{base_url}/cds-services/{service_id}/feedback", json=body, timeout=10)
    stored = session.get(f"{base_url}/cds-services/{service_id}/feedback", timeout=10).json()
    print(f"  feedback: accepted '{first['label']}' → HTTP {response.status_code}; "
          f"{stored.get('count', 0)} feedback event(s) stored for {service_id}")
    return response.status_code == 200
