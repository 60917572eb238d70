"""Hyperparameter dataclasses as they travel in an artifact's config.json."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar


class StoredConfig:
    """`to_dict` / `from_dict` for a dataclass of hyperparameters.

    `from_dict` ignores keys it does not know (an artifact written by newer code).
    `LEGACY_DEFAULTS` fills keys that older artifacts lack where today's default
    would describe how they were made wrongly."""

    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**cls.LEGACY_DEFAULTS, **known})
