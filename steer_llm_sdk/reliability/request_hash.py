"""Request hashing and key scoping shared by every idempotency entry point.

Canonical JSON (sorted keys, no whitespace, pydantic models dumped in json mode) makes the hash
independent of dict order and formatting while any changed value changes it.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any
from uuid import UUID

__all__ = ["canonical_request_hash", "scoped_key", "steer_home"]


def _json_default(obj: Any) -> Any:
    """Turn the non-JSON types a request may carry into JSON values, deterministically."""
    model_dump = getattr(obj, "model_dump", None)
    if callable(model_dump):  # pydantic v2 model: json mode gives JSON-native values only
        return model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, UUID | Decimal | PurePath):
        return str(obj)
    if isinstance(obj, set | frozenset):  # sets have no order; sort their canonical forms
        return sorted(obj, key=_canonical_json)
    if isinstance(obj, bytes):
        return obj.hex()
    raise TypeError(
        f"cannot hash request value of type {type(obj).__name__}; pass JSON-compatible data "
        "or a pydantic model"
    )


def _canonical_json(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def canonical_request_hash(payload: Any) -> str:
    """Return the sha256 hex digest of ``payload``'s canonical JSON.

    Canonical means sorted keys and no whitespace, so two requests that differ only in dict key
    order (or formatting) hash the same, while any changed value changes the hash. Pydantic
    models are dumped in json mode first, so a model and its equivalent dict hash the same.
    Note ``1`` and ``1.0`` are different JSON and hash differently.
    """
    return hashlib.sha256(_canonical_json(payload).encode("utf-8")).hexdigest()


def scoped_key(key: str, tool_name: str) -> str:
    """Scope a caller's idempotency key to one tool, so one key can cover several tools."""
    return f"{key}:{tool_name}"


def steer_home() -> Path:
    """``$STEER_HOME`` or ``~/.steer``; where local state such as the SQLite store lives."""
    return Path(os.environ.get("STEER_HOME") or Path.home() / ".steer").expanduser()
