"""Who a record belongs to (`Scope`) and the one Redis key layout (see docs/storage.md).

Every key starts with `fhir-assist:` and, for per-scope records, the scope's segment:
the percent-encoded tenant alone when no issuer is given (the layout every stored
key already has, so existing MICRON states keep loading), else `tenant@issuer`.
Percent-encoding makes each segment free of ':' and '@', so an id chosen by a client
can never spell another scope's key.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

KEY_PREFIX = "fhir-assist"
DEFAULT_TENANT = "default"
FEEDBACK_SCOPES = f"{KEY_PREFIX}:feedback-tenants"


def segment(value: object, *, default: str = DEFAULT_TENANT) -> str:
    text = str(value) if value not in (None, "") else default
    return quote(text, safe="")


@dataclass(frozen=True)
class Scope:
    """The owner of stored records: a tenant, optionally within the token issuer that named it."""

    tenant: str = DEFAULT_TENANT
    issuer: str | None = None

    @classmethod
    def of(cls, value: "Scope | str | None") -> "Scope":
        """A Scope as given, or the scope of a bare tenant name (None/"" = the default tenant)."""
        if isinstance(value, Scope):
            return value
        return cls(tenant=str(value) if value not in (None, "") else DEFAULT_TENANT)

    @property
    def key(self) -> str:
        if self.issuer in (None, ""):
            return segment(self.tenant)
        return f"{segment(self.tenant)}@{segment(self.issuer)}"

    @classmethod
    def from_key(cls, text: str) -> "Scope":
        tenant, _, issuer = text.partition("@")
        return cls(tenant=unquote(tenant), issuer=unquote(issuer) if issuer else None)


def micron_state(scope: Scope, patient: str) -> str:
    return f"{KEY_PREFIX}:{scope.key}:micron:{segment(patient, default='-')}"


def feedback_stream(scope_key: str) -> str:
    return f"{KEY_PREFIX}:{scope_key}:feedback"


# Every card key of every scope, scored by when it expires: what bounds the ledger.
CARD_INDEX = f"{KEY_PREFIX}:cds-card-index"


def card(scope: Scope, card_uuid: str) -> str:
    return f"{KEY_PREFIX}:{scope.key}:cds-card:{segment(card_uuid, default='-')}"


def pending_actions(scope: Scope, queue: str = "review") -> str:
    return f"{KEY_PREFIX}:{scope.key}:{segment(queue)}:pending"


def pending_scopes(queue: str) -> str:
    return f"{KEY_PREFIX}:pending-scopes:{segment(queue)}"


def lease(name: str) -> str:
    return f"{KEY_PREFIX}:lease:{segment(name, default='-')}"


def jti(issuer: str, token_id: str) -> str:
    return f"{KEY_PREFIX}:jti:{segment(issuer, default='-')}:{segment(token_id, default='-')}"
