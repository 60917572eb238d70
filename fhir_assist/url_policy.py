"""Which URLs the service may send an EHR's token to: parsing, normalising, comparing.

A prefix check on the raw string is not enough: `HTTP://other/...`, a leading space
or tab, `…/fhir/../x` or a userinfo part all pass one and reach another host. Every
URL is therefore parsed and compared as (scheme, host, port, path segments); URLs
with whitespace or control characters, dot segments (plain or percent-encoded),
userinfo or a scheme other than http(s) are refused outright, never repaired.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import unquote, urljoin, urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")     # whitespace, controls, backslash (browsers read it as /)


class UrlRefused(ValueError):
    """The URL cannot be used to reach a FHIR server (malformed, or not allowed)."""


@dataclass(frozen=True)
class Location:
    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]       # non-empty path segments

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port

    def contains(self, other: "Location") -> bool:
        """True when `other` is this location or below it (same origin, path prefix by segment)."""
        return (other.origin == self.origin
                and other.segments[:len(self.segments)] == self.segments)

    def __str__(self) -> str:
        default = _DEFAULT_PORTS[self.scheme] == self.port
        port = "" if default else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}/" + "/".join(self.segments)


def parse(url: object) -> Location:
    """A strict parse of an absolute http(s) URL; raises UrlRefused."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("not a URL")
    if _UNSAFE.search(url):
        raise UrlRefused("the URL contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlRefused("only http and https URLs are allowed")
    if "@" in parts.netloc:
        raise UrlRefused("URLs with a user name or password are not allowed")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise UrlRefused("the URL has no host")
    segments = tuple(s for s in parts.path.split("/") if s)
    if any(unquote(s) in (".", "..") or "/" in unquote(s) for s in segments):
        raise UrlRefused("the URL path has '.' or '..' segments")
    return Location(scheme, host, port or _DEFAULT_PORTS[scheme], segments)


def allowed(url: object, prefixes: Iterable[Location]) -> bool:
    try:
        where = parse(url)
    except UrlRefused:
        return False
    return any(prefix.contains(where) for prefix in prefixes)


def parse_all(urls: Iterable[str]) -> tuple[Location, ...]:
    """Configured prefixes (settings): a bad one is a configuration error, raised."""
    return tuple(parse(u.strip()) for u in urls if u and u.strip())


def resolve_link(base_url: str, link: object) -> str:
    """A link a FHIR server (or a prefetch Bundle) gave, resolved against `base_url` and
    refused unless it stays under it: the token we hold is for that server only."""
    if not isinstance(link, str) or not link:
        raise UrlRefused("the link is empty")
    if _UNSAFE.search(link):
        raise UrlRefused("the link contains whitespace, control characters or a backslash")
    base = parse(base_url)
    directory = str(base) if not base.segments else str(base) + "/"
    absolute = urljoin(directory, link)
    if not base.contains(parse(absolute)):
        raise UrlRefused("the link leads outside the FHIR server")
    return absolute
