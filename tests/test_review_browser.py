"""The coder worklist in headless Chromium, against the real service (CDS app served by
waitress), a real FHIR server and a real Redis.

Chromium is Debian's (`scripts/system-deps.sh` installs it); Playwright drives it and
never downloads a browser of its own. The encounter page's screenshot goes to the test's
temporary directory; with FHIR_ASSIST_REFRESH_SCREENSHOTS=1 it replaces the README's
docs/screenshots/review-encounter.png.
"""
from __future__ import annotations

import os
import shutil
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.test_review_views import ICD10, conditions_of, put, seed_encounter, status_of

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[1]
README_SCREENSHOT = ROOT / "docs" / "screenshots" / "review-encounter.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CODER = "coder.ann"
TIMEOUT_MS = 20_000


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def screenshot_path(tmp_path: Path) -> Path:
    """The README's screenshot only when asked to refresh it, else a throwaway file."""
    if os.environ.get("FHIR_ASSIST_REFRESH_SCREENSHOTS", "").strip() not in ("", "0"):
        return README_SCREENSHOT
    return tmp_path / README_SCREENSHOT.name


@pytest.fixture(scope="module")
def browser(require_service):
    executable = chromium_path()
    if not executable:
        require_service("Chromium is not installed; run `make system-deps` (scripts/system-deps.sh)")
    try:
        from playwright import sync_api
    except ImportError:
        require_service("playwright is not installed: pip install -e '.[test]'")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def service(fhir_base_url, redis_url):
    """The real service (`fhir_assist.cds.app.create_app`) with the worklist at /review,
    served by waitress on a free loopback port."""
    from waitress import create_server

    from fhir_assist.cds.app import create_app
    from fhir_assist.config import Settings
    from fhir_assist.store import open_store

    tenant = f"browser-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FHIR_ASSIST_REVIEW_USER", CODER)
        env.setenv("FHIR_ASSIST_REVIEW_TENANT", tenant)
        env.setenv("FHIR_ASSIST_SECRET_KEY", uuid.uuid4().hex)
        store = open_store(redis_url)
        app = create_app(Settings.from_env().with_(fhir_base_url=fhir_base_url, redis_url=redis_url), store=store)
        assert "review" in app.blueprints, "the service did not register the worklist"
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        stopping = threading.Event()

        def serve():
            try:
                server.run()
            except OSError:
                if not stopping.is_set():   # closing the socket under select() is the way to stop
                    raise

        thread = threading.Thread(target=serve, name="review-service", daemon=True)
        thread.start()
        try:
            yield {"url": f"http://127.0.0.1:{server.effective_port}", "store": store, "tenant": tenant,
                   "fhir": fhir_base_url}
        finally:
            stopping.set()
            server.task_dispatcher.shutdown()
            server.close()
            thread.join(timeout=5)


def seed_with_record(base_url: str, start: datetime, name: tuple[str, str]) -> dict:
    """An inpatient encounter with medications and a procedure (the model's inputs), and its
    suggested codes written back as the service does: ranked by the bundled coding model
    when it loads, else a fixed list."""
    seeded = seed_encounter(base_url, [], start=start, name=name)
    patient, encounter = seeded["patient"], seeded["encounter"]
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    for i, (rxcui, drug) in enumerate([("6809", "metformin"), ("274783", "insulin glargine"),
                                       ("29046", "lisinopril"), ("36567", "simvastatin")]):
        put(base_url, {"resourceType": "MedicationRequest", "id": f"{encounter}-m{i}", "status": "active",
                       "intent": "order", "subject": {"reference": f"Patient/{patient}"},
                       "encounter": {"reference": f"Encounter/{encounter}"},
                       "authoredOn": start.isoformat(),
                       "medicationCodeableConcept": {"coding": [{"system": rxnorm, "code": rxcui, "display": drug}]}})
    put(base_url, {"resourceType": "Procedure", "id": f"{encounter}-p0", "status": "completed",
                   "subject": {"reference": f"Patient/{patient}"}, "encounter": {"reference": f"Encounter/{encounter}"},
                   "performedDateTime": start.isoformat(),
                   "code": {"coding": [{"system": "http://www.cms.gov/Medicare/Coding/ICD10", "code": "5A1D70Z",
                                        "display": "Performance of urinary filtration, intermittent"}]}})
    from fhir_assist.fhir_server import FhirServer

    suggestions, version = model_suggestions(base_url, patient, encounter)
    with FhirServer(base_url) as fhir:
        stored = fhir.write_suggested_conditions(patient, encounter, suggestions, version)
    seeded["conditions"] = {c["code"]["coding"][0]["code"]: c["id"] for c in stored}
    seeded["order"] = [c["code"]["coding"][0]["code"] for c in stored]
    seeded["model_version"] = version
    return seeded


def model_suggestions(base_url: str, patient: str, encounter: str):
    fixed = [{"system": ICD10, "code": c, "rank": i + 1, "score": s} for i, (c, s) in enumerate(
        [("E11.65", 0.91), ("I10", 0.84), ("E78.5", 0.62), ("J18.9", 0.41), ("Z79.4", 0.33), ("I50.9", 0.18)])]
    try:
        from fhir_assist.review.evidence import EvidenceSource
        model = os.environ.get("FHIR_ASSIST_REVIEW_MODEL") or "icd-ranker"   # as the service picks it
        suggester = EvidenceSource(model, os.environ.get("FHIR_ASSIST_MODELS")).suggester()
    except Exception:  # noqa: BLE001 - the flow is the same with the fixed list
        suggester = None
    if suggester is None:
        return fixed, "fixed-list@test"
    from fhir_assist.adapter.report import IngestReport
    from fhir_assist.adapter.timeline import build_timelines
    from fhir_assist.fhir_server import FhirServer

    with FhirServer(base_url) as fhir:
        timeline = build_timelines(fhir.patient_resources(patient), IngestReport())[0]
    visit = next(v for v in timeline.visits if v.encounter_id == encounter)
    result = suggester.suggest(visit, timeline, top=12, evidence=False)
    keep = min(max(6, (result.cutoff_k or 0) + 3), 8)   # a few below the cut line when K is small
    icd = [s for s in result.suggestions if s.system == ICD10][:keep]
    return (icd if len(icd) >= 4 else fixed), result.model_version


def missed_code(seeded: dict) -> str:
    """A billable code the suggestions do not contain, for the coder to add."""
    return next(c for c in ("N17.9", "K21.9", "M54.50", "R73.9", "E87.1") if c not in seeded["order"])


def open_page(browser, base_url: str):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, base_url=base_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def row_of(page, condition_id: str):
    return page.locator(f"#s-{condition_id}")


def feedback_of(service) -> list[dict]:
    return service["store"].list_feedback(tenant=service["tenant"], source="coder-review")


def test_coder_reviews_an_encounter_in_the_browser(browser, service, tmp_path):
    seeded = seed_with_record(service["fhir"], datetime(2026, 11, 20, 8, tzinfo=timezone.utc), ("Ann", "Lee"))
    first, second = seeded["order"][0], seeded["order"][1]
    missed = missed_code(seeded)
    context, page, errors = open_page(browser, service["url"])
    try:
        page.goto("/review/")
        link = page.locator(f"a[href='/review/encounter/{seeded['encounter']}']")
        assert link.count() == 1
        with page.expect_navigation():
            link.click()
        assert page.locator("h1").inner_text() == "Ann Lee"
        assert page.locator(".suggestion-table tbody tr[data-row]").count() == len(seeded["order"])
        assert page.locator(f"#s-{seeded['conditions'][first]} .path li").count() == 3   # chapter › block › code

        with page.expect_navigation():
            row_of(page, seeded["conditions"][first]).get_by_role("button", name="Accept").click()
        assert "status-confirmed" in row_of(page, seeded["conditions"][first]).get_attribute("class")

        row = row_of(page, seeded["conditions"][second])
        row.get_by_role("button", name="Reject").click()            # opens the reason field
        reason = row.get_by_label(f"Reason for rejecting {second}")
        assert reason.is_visible()
        reason.fill("not supported by the discharge summary")
        with page.expect_navigation():
            reason.press("Enter")
        row = row_of(page, seeded["conditions"][second])
        assert "status-refuted" in row.get_attribute("class")
        assert "not supported by the discharge summary" in row.inner_text()

        search = page.get_by_role("combobox")
        search.click()
        search.fill(missed)
        option = page.locator(f"#code-results [role=option][data-code='{missed}']")
        option.wait_for()
        with page.expect_navigation():
            option.get_by_role("button").click()
        assert missed in page.locator("#confirmed-codes").inner_text()
        assert "added by a coder" in page.locator("#confirmed-codes").inner_text()

        page.locator("body").press("Escape")
        screenshot = screenshot_path(tmp_path)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
        assert errors == []
    finally:
        context.close()

    on_server = conditions_of(service["fhir"], seeded["encounter"])
    assert status_of(on_server[first][0]) == "confirmed"
    assert status_of(on_server[second][0]) == "refuted"
    assert on_server[second][0]["note"][-1]["text"] == "not supported by the discharge summary"
    assert len(on_server[missed]) == 1 and status_of(on_server[missed][0]) == "confirmed"
    events = {e["code"]: e for e in feedback_of(service) if e["encounter"] == seeded["encounter"]}
    assert set(events) == {first, second, missed}
    assert (events[first]["label"], events[second]["label"], events[missed]["label"]) == (1, 0, 1)
    assert events[second]["reason"] == "not supported by the discharge summary"
    assert all(e["user"] == CODER and e["model_version"] == seeded["model_version"] for e in events.values())


def test_coder_finishes_an_encounter_with_the_keyboard_alone(browser, service):
    seeded = seed_with_record(service["fhir"], datetime(2026, 11, 22, 8, tzinfo=timezone.utc), ("Kim", "Keys"))
    context, page, errors = open_page(browser, service["url"])
    try:
        page.goto("/review/")
        target = f"/review/encounter/{seeded['encounter']}"
        for _ in range(200):                        # j until our encounter's row has the focus
            if page.evaluate("document.activeElement.dataset.href") == target:
                break
            page.keyboard.press("j")
        else:
            pytest.fail("j never reached the encounter's row")
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        with page.expect_navigation():
            page.keyboard.press("Enter")

        # the first undecided row has the focus, visibly
        first = seeded["conditions"][seeded["order"][0]]
        assert page.evaluate("document.activeElement.id") == f"s-{first}"
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        with page.expect_navigation():
            page.keyboard.press("a")
        # focus moved on to the next row: reject it with a reason
        second = seeded["conditions"][seeded["order"][1]]
        assert page.evaluate("document.activeElement.id") == f"s-{second}"
        page.keyboard.press("r")                    # Esc cancels: nothing is sent
        assert page.evaluate("document.activeElement.name") == "reason"
        page.keyboard.press("Escape")
        assert page.evaluate("document.activeElement.id") == f"s-{second}"
        assert not page.locator(f"#reason-{second}").is_visible()
        page.keyboard.press("?")                    # the shortcuts help opens and closes
        assert page.locator("#shortcuts").is_visible()
        page.keyboard.press("Escape")
        assert not page.locator("#shortcuts").is_visible()
        assert page.evaluate("document.activeElement.id") == f"s-{second}"   # focus comes back
        page.keyboard.press("r")
        page.keyboard.type("coded elsewhere")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        # j / k move between rows
        page.keyboard.press("k")
        page.keyboard.press("j")
        # search and add a missed code
        page.keyboard.press("/")
        assert page.evaluate("document.activeElement.id") == "code-search"
        missed = missed_code(seeded)
        page.keyboard.type(missed)
        page.locator(f"#code-results [role=option][data-code='{missed}']").wait_for()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowUp")
        for _ in range(20):
            if page.locator("#code-results [aria-selected=true]").get_attribute("data-code") == missed:
                break
            page.keyboard.press("ArrowDown")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "code-search"   # ready for another
        page.keyboard.press("Escape")                                         # back to the codes
        # accept every remaining code: a, a, a …
        for _ in range(len(seeded["order"])):
            if page.locator("tr[data-row][data-status=provisional]").count() == 0:
                break
            focused = page.evaluate("document.activeElement.id")
            assert focused.startswith("s-")
            with page.expect_navigation():
                page.keyboard.press("a")
        assert page.locator("tr[data-row][data-status=provisional]").count() == 0
        assert "reviewed" in page.locator("#review-state").inner_text()
        assert page.evaluate("document.activeElement.id") == "next-encounter"
        assert errors == []
    finally:
        context.close()

    on_server = conditions_of(service["fhir"], seeded["encounter"])
    statuses = {code: status_of(found[0]) for code, found in on_server.items()}
    assert statuses.pop(seeded["order"][1]) == "refuted"
    assert missed in statuses
    assert set(statuses.values()) == {"confirmed"}
    labels = [e for e in feedback_of(service) if e["encounter"] == seeded["encounter"]]
    assert len(labels) == len(set((e["code"] for e in labels)))     # one label per code
    assert {e["code"] for e in labels} == set(seeded["order"]) | {missed}
