"""Per-session CSRF token, required on every state-changing request of the worklist."""
from __future__ import annotations

import hmac
import secrets

from flask import session

SESSION_KEY = "review_csrf"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def token() -> str:
    value = session.get(SESSION_KEY)
    if not value:
        value = secrets.token_urlsafe(32)
        session[SESSION_KEY] = value
    return value


def is_valid(request) -> bool:
    expected = session.get(SESSION_KEY)
    sent = request.form.get(FORM_FIELD) or request.headers.get(HEADER) or ""
    return bool(expected) and hmac.compare_digest(str(expected), str(sent))
