"""The plain text of clinical notes: DocumentReference attachments, HTML included."""
from __future__ import annotations

import base64
import binascii
import html
import re


_TAG_RE = re.compile(r"<[^>]*>")
_BLOCK_RE = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.I)
_SCRIPT_RE = re.compile(r"<\s*(script|style)\b.*?<\s*/\s*\1\s*>", re.I | re.S)
_SPACES_RE = re.compile(r"[ \t\r\f\v]+")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML note: scripts/styles dropped, block ends as new lines."""
    text = _SCRIPT_RE.sub(" ", markup)
    text = _BLOCK_RE.sub("\n", text)
    text = html.unescape(_TAG_RE.sub(" ", text))
    lines = (_SPACES_RE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def attachment_text(attachment: dict, report) -> str | None:
    """The plain text of a note attachment (base64 text or HTML inline), None if unreadable;
    what cannot be read is counted in `report` (an IngestReport)."""
    content_type = attachment.get("contentType") or "text/plain"
    data = attachment.get("data")
    if data is None:
        if attachment.get("url"):
            report.skip("note attachment by URL (not fetched)")
        else:
            report.skip("note attachment without data")
        return None
    kind = content_type.split(";")[0].strip().lower()
    if kind not in ("text/plain", "text/html", "application/xhtml+xml"):
        report.skip(f"note content type {kind} not read")
        return None
    try:
        raw = base64.b64decode(data)
    except (binascii.Error, ValueError, TypeError):
        report.skip("note attachment not valid base64")
        return None
    try:
        text = raw.decode(_charset(content_type), errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    text = text.lstrip("\ufeff")
    if kind != "text/plain":
        text = html_to_text(text)
    return text.strip() or None
