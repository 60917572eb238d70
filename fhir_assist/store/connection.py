"""The one Redis client of the service, and its one failure policy.

Every Redis call goes through `RedisConnection.call`: connect and socket timeouts of
0.5 s, one immediate retry (it heals a pooled connection that a Redis restart closed,
without stacking timeouts when Redis is really gone), and after a failure every call
fails fast for `retry_after_s` (2 s) instead of each waiting on a timeout. Any failure
is raised as `StoreUnavailable`; what each record does then is in docs/storage.md.
"""
from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

from .base import StoreUnavailable

SOCKET_TIMEOUT_S = 0.5
CONNECT_TIMEOUT_S = 0.5
RETRY_AFTER_S = 2.0
SCHEMES = ("redis", "rediss", "unix")


def redacted(url: str) -> str:
    """The URL without its credentials, safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class RedisConnection:
    def __init__(self, url: str, *, socket_timeout: float = SOCKET_TIMEOUT_S,
                 connect_timeout: float = CONNECT_TIMEOUT_S, retry_after_s: float = RETRY_AFTER_S):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if urlsplit(url).scheme not in SCHEMES:
            raise ValueError(f"the Redis URL must start with redis://, rediss:// or unix://, got {url!r}")
        self.url = url
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        self._error = redis.RedisError
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout,
                retry=Retry(NoBackoff(), 1), health_check_interval=30)
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL {redacted(url)}: {exc}") from exc

    def describe(self) -> str:
        return redacted(self.url)

    def call(self, what: str, fn):
        """fn(client) → its result; StoreUnavailable when Redis fails or failed moments ago."""
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"Redis at {self.describe()} is unavailable (failed less than "
                                   f"{self.retry_after_s:g} s ago); not retrying yet")
        try:
            return fn(self._client)
        except self._error as exc:
            self._down_until = time.monotonic() + self.retry_after_s
            raise StoreUnavailable(f"Redis at {self.describe()} failed during {what}: {exc}") from exc

    def ping(self) -> bool:
        try:
            ok = bool(self._client.ping())
        except self._error:
            return False
        if ok:
            self._down_until = 0.0   # back: stop failing fast
        return ok

    def close(self) -> None:
        try:
            self._client.close()
        except self._error:
            pass
