"""Fault grammar shared by model names and the ``X-Sim-Fault`` header.

Faults are encoded in the *request* rather than configured on the server so that one simulator
can serve a whole test session: each test states the behaviour it wants where it makes the call
(``model="gpt-4o-mini+fail=2:503"`` or ``X-Sim-Fault: latency=0.2;retry_after=1``), and tests
running in parallel against the same server cannot disturb each other.

Grammar (tokens separated by ``+`` in a model name, by ``;`` in the header)::

    latency=S            sleep S seconds before answering
    hang=S               sleep S seconds, then answer (meant to exceed a client timeout)
    fail=N:STATUS        the first N requests per counter key fail with STATUS, then succeed
    status=STATUS        always fail with STATUS
    retry_after=S        add ``Retry-After: S`` to 429/503 responses
    retry_after_date=S   add ``Retry-After`` as an HTTP date S seconds in the future
    malformed            200 with a body that is not JSON
    drop                 close the connection without sending any response
    content_filter       finish_reason "content_filter" with empty content
    invalid_json_content 200 whose message content is not JSON, even in JSON mode
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

FLAG_FAULTS = ("malformed", "drop", "content_filter", "invalid_json_content")
SECONDS_FAULTS = ("latency", "hang", "retry_after", "retry_after_date")


class FaultSpecError(ValueError):
    """A fault token could not be parsed; the server answers 400 so typos surface in tests."""


@dataclass(frozen=True)
class FaultSpec:
    """The parsed faults of one request (model-name faults merged with header faults)."""

    latency: float = 0.0
    hang: float = 0.0
    fail_count: int = 0
    fail_status: int = 0
    status: int | None = None
    retry_after: float | None = None
    retry_after_date: float | None = None
    malformed: bool = False
    drop: bool = False
    content_filter: bool = False
    invalid_json_content: bool = False

    @property
    def empty(self) -> bool:
        return self == FaultSpec()

    def canonical(self) -> str:
        """A stable textual form, used as part of the ``fail=`` counter key."""
        parts: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if f.name == "fail_status":
                continue
            if f.name == "fail_count":
                parts.append(f"fail={value}:{self.fail_status}")
            elif isinstance(value, bool):
                parts.append(f.name)
            elif isinstance(value, float):
                parts.append(f"{f.name}={value:g}")
            else:
                parts.append(f"{f.name}={value}")
        return ";".join(parts)

    def merged(self, other: FaultSpec) -> FaultSpec:
        """``other`` wins on every field it sets (header faults override model-name faults)."""
        changes = {
            f.name: getattr(other, f.name)
            for f in fields(other)
            if getattr(other, f.name) != f.default
        }
        if "fail_count" in changes:
            changes["fail_status"] = other.fail_status
        return replace(self, **changes)


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise FaultSpecError(f"fault {name!r} needs seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise FaultSpecError(f"fault {name!r} needs a finite value >= 0, got {raw!r}")
    return value


def _status(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise FaultSpecError(f"fault {name!r} needs an HTTP status, got {raw!r}") from None
    if not 400 <= value <= 599:
        raise FaultSpecError(f"fault {name!r} needs a 4xx/5xx status, got {value}")
    return value


def parse_tokens(tokens: list[str]) -> FaultSpec:
    """Parse already-split fault tokens; blank tokens are ignored."""
    values: dict[str, object] = {}
    for token in (t.strip() for t in tokens):
        if not token:
            continue
        name, sep, arg = token.partition("=")
        name = name.strip().lower().replace("-", "_")
        arg = arg.strip()
        if name in FLAG_FAULTS:
            if sep:
                raise FaultSpecError(f"fault {name!r} takes no value")
            values[name] = True
        elif name in SECONDS_FAULTS:
            values[name] = _seconds(name, arg)
        elif name == "status":
            values["status"] = _status(name, arg)
        elif name == "fail":
            count, colon, status = arg.partition(":")
            try:
                n = int(count)
            except ValueError:
                raise FaultSpecError(f"fault 'fail' needs N:STATUS, got {arg!r}") from None
            if n < 0:
                raise FaultSpecError(f"fault 'fail' needs N >= 0, got {n}")
            values["fail_count"] = n
            values["fail_status"] = _status(name, status) if colon else 503
        else:
            raise FaultSpecError(f"unknown simulator fault {token!r}")
    return FaultSpec(**values)  # type: ignore[arg-type]


def split_model(model: str) -> tuple[str, FaultSpec]:
    """``"gpt-4o-mini+latency=0.2+fail=2:503"`` -> ``("gpt-4o-mini", FaultSpec(...))``."""
    base, _, rest = model.partition("+")
    return base, parse_tokens(rest.split("+")) if rest else FaultSpec()


def parse_header(value: str | None) -> FaultSpec:
    """Parse an ``X-Sim-Fault`` header; ``;`` separates tokens (``+`` and ``,`` also accepted)."""
    if not value:
        return FaultSpec()
    for sep in ("+", ","):
        value = value.replace(sep, ";")
    return parse_tokens(value.split(";"))
