"""Provider rate limits shared by every process and host, on Prefect global concurrency limits.

Two limits per provider endpoint (the breaker name, e.g. ``openai`` or
``openai@10.0.0.5:8000``), optionally per model, each a Prefect global concurrency limit that
the UI's Concurrency page shows and edits:

* ``steer-rpm~<provider>[~<model>]`` -- requests per window (default 60 s): a *rate limit*
  (``slot_decay_per_second`` > 0) taken with ``prefect.concurrency.asyncio.rate_limit``.
  R requests per W seconds is stored as a burst of ``B = max(1, ceil(R / W))`` slots that decay
  at ``(R - B) / W`` per second, so no sliding window of W seconds ever admits more than
  ``B + (R - B) = R`` requests (the server decays whole slots only, which errs on the slow side).
* ``steer-concurrency~<provider>[~<model>]`` -- requests in flight at once, held with
  ``prefect.concurrency.asyncio.concurrency`` (a lease, released when the call returns).

Every provider call passes :func:`provider_slot`. A limit only makes calls *wait*: the wait is
bounded by the run's deadline (then ``BudgetExceeded("time")``) and otherwise unbounded; if the
Prefect API cannot be reached the call goes ahead (one warning per process). With no limit set
the cost is one read of the limit names per process every ``CACHE_TTL_S`` seconds (not per
call); ``STEER_RATE_LIMITS=off`` skips even that.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from steer_llm_sdk.errors import BudgetExceeded

logger = logging.getLogger(__name__)

RPM_PREFIX = "steer-rpm~"
CONCURRENCY_PREFIX = "steer-concurrency~"
CACHE_TTL_S = 10.0
DEFAULT_WINDOW_S = 60.0
LEASE_S = 600.0  # a crashed holder's concurrency slot comes back after this

__all__ = [
    "ProviderLimit",
    "adelete_provider_limit",
    "alist_provider_limits",
    "aset_provider_limit",
    "forget_cached_limits",
    "limit_names",
    "provider_slot",
    "rate_shape",
]


class ProviderLimit(BaseModel):
    """One provider's (or provider+model's) limits as stored on the server."""

    provider: str
    model: str | None = None
    rpm: float | None = Field(None, description="Requests per 60 s (burst + decay * 60).")
    burst: int | None = None
    decay_per_second: float | None = None
    concurrency: int | None = None
    active: bool = True


def _check_part(value: str, what: str) -> str:
    if not value or "~" in value or any(c in value for c in "/%&<>"):
        raise ValueError(f"{what} {value!r} must be non-empty and must not contain '~', '/', "
                         "'%', '&', '<' or '>'")
    return value


def limit_names(provider: str, model: str | None = None) -> tuple[str, str]:
    """(rate limit name, concurrency limit name) of a provider endpoint, optionally a model."""
    suffix = _check_part(provider, "provider") + (
        f"~{_check_part(model, 'model')}" if model else "")
    return RPM_PREFIX + suffix, CONCURRENCY_PREFIX + suffix


def rate_shape(requests: int, window_s: float = DEFAULT_WINDOW_S) -> tuple[int, float]:
    """(burst slots, decay per second) admitting at most ``requests`` in any ``window_s``."""
    if requests < 1:
        raise ValueError(f"rpm must be >= 1 request per window, got {requests}")
    if window_s <= 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    burst = max(1, min(math.ceil(requests / window_s), requests - 1 if requests > 1 else 1))
    return burst, max(requests - burst, 0.5) / window_s


# -- the process-wide cache of which limits exist ------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[str, Any] = {"names": frozenset(), "expires": 0.0}
_warned = False


class _NoServer(Exception):
    """PREFECT_API_URL is unset (an in-process run on the embedded server)."""


def forget_cached_limits() -> None:
    """Make the next call re-read the limits (after setting one in this process)."""
    with _cache_lock:
        _cache["expires"] = 0.0


async def _read_all(client: Any) -> list[Any]:
    found, offset = [], 0
    while True:
        page = await client.read_global_concurrency_limits(limit=200, offset=offset)
        found += page
        if len(page) < 200:
            return found
        offset += 200


async def _active_names() -> frozenset[str]:
    """Names of the active steer limits, read at most once per CACHE_TTL_S per process."""
    global _warned
    now = time.monotonic()
    with _cache_lock:
        if now < _cache["expires"]:
            return _cache["names"]
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    try:
        if not get_current_settings().api.url:  # no shared server: nobody to share limits with
            raise _NoServer
        async with get_client() as client:
            limits = await _read_all(client)
        names = frozenset(lim.name for lim in limits if lim.active
                          and lim.name.startswith((RPM_PREFIX, CONCURRENCY_PREFIX)))
    except _NoServer:
        names = frozenset()
    except Exception as exc:  # no API: calls are not limited rather than failed
        if not _warned:
            _warned = True
            logger.warning("provider rate limits not applied: cannot read them from the "
                           "Prefect API (%s: %s)", type(exc).__name__, exc)
        names = frozenset()
    with _cache_lock:
        _cache.update(names=names, expires=time.monotonic() + CACHE_TTL_S)
    return names


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def _over_budget(deadline: float, waited_from: float, names: list[str]) -> BudgetExceeded:
    waited = round((time.monotonic() - waited_from) * 1000, 3)
    return BudgetExceeded(
        "time", waited, waited,
        f"the run's time budget ran out while waiting {waited:.0f} ms for a provider slot "
        f"({', '.join(names)}); raise OrchestrationConfig.timeout_ms or the limit "
        "(`steer limits set`)")


@contextlib.asynccontextmanager
async def provider_slot(provider: str, model: str | None = None,
                        deadline: float | None = None) -> AsyncIterator[None]:
    """Hold the provider's rate and concurrency slots (if any are set) around one call."""
    if os.environ.get("STEER_RATE_LIMITS", "").lower() in {"off", "0", "false"}:
        yield
        return
    names = await _active_names()
    if not names:
        yield
        return
    rpm = [n for n in (limit_names(provider)[0],
                       limit_names(provider, model)[0] if model else None) if n in names]
    conc = [n for n in (limit_names(provider)[1],
                        limit_names(provider, model)[1] if model else None) if n in names]
    if not rpm and not conc:
        yield
        return
    from prefect.concurrency.asyncio import (
        AcquireConcurrencySlotTimeoutError,
        concurrency,
        rate_limit,
    )

    started = time.monotonic()
    try:
        if rpm:
            await rate_limit(rpm, timeout_seconds=_remaining(deadline))
    except AcquireConcurrencySlotTimeoutError as exc:
        raise _over_budget(deadline or 0.0, started, rpm) from exc
    except Exception as exc:  # API trouble: go ahead unlimited, never fail the run
        logger.warning("rate limit %s not applied: %s: %s", rpm, type(exc).__name__, exc)
    if not conc:
        yield
        return
    try:
        holder = concurrency(conc, timeout_seconds=_remaining(deadline), lease_duration=LEASE_S)
        await holder.__aenter__()
    except AcquireConcurrencySlotTimeoutError as exc:
        raise _over_budget(deadline or 0.0, started, conc) from exc
    except Exception as exc:
        logger.warning("concurrency limit %s not applied: %s: %s", conc, type(exc).__name__,
                       exc)
        yield
        return
    try:
        yield
    finally:
        await holder.__aexit__(None, None, None)


# -- managing limits (CLI `steer limits`, Python) -------------------------------------------

async def aset_provider_limit(provider: str, *, rpm: int | None = None,
                              concurrency: int | None = None, model: str | None = None,
                              window_s: float = DEFAULT_WINDOW_S) -> ProviderLimit:
    """Create or update the limits of ``provider`` (and ``model``); 0 removes one limit."""
    from prefect.client.orchestration import get_client

    if rpm is None and concurrency is None:
        raise ValueError("give rpm=... and/or concurrency=... (0 removes that limit)")
    rpm_name, conc_name = limit_names(provider, model)
    async with get_client() as client:
        if rpm == 0:
            with contextlib.suppress(Exception):
                await client.delete_global_concurrency_limit_by_name(rpm_name)
        elif rpm is not None:
            burst, decay = rate_shape(rpm, window_s)
            await client.upsert_global_concurrency_limit_by_name(rpm_name, burst, decay)
        if concurrency == 0:
            with contextlib.suppress(Exception):
                await client.delete_global_concurrency_limit_by_name(conc_name)
        elif concurrency is not None:
            if concurrency < 0:
                raise ValueError(f"concurrency must be >= 0, got {concurrency}")
            await client.upsert_global_concurrency_limit_by_name(conc_name, concurrency)
    forget_cached_limits()
    return next((lim for lim in await alist_provider_limits()
                 if lim.provider == provider and lim.model == model),
                ProviderLimit(provider=provider, model=model))


async def adelete_provider_limit(provider: str, model: str | None = None) -> None:
    await aset_provider_limit(provider, rpm=0, concurrency=0, model=model)


async def alist_provider_limits() -> list[ProviderLimit]:
    """Every steer provider limit on the server, merged per provider (+model)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        limits = await _read_all(client)
    merged: dict[tuple[str, str | None], ProviderLimit] = {}
    for lim in limits:
        for prefix in (RPM_PREFIX, CONCURRENCY_PREFIX):
            if not lim.name.startswith(prefix):
                continue
            provider, _, model = lim.name.removeprefix(prefix).partition("~")
            entry = merged.setdefault((provider, model or None),
                                      ProviderLimit(provider=provider, model=model or None))
            entry.active = entry.active and bool(lim.active)
            if prefix == RPM_PREFIX:
                decay = float(lim.slot_decay_per_second or 0.0)
                entry.burst, entry.decay_per_second = int(lim.limit), decay
                entry.rpm = round(lim.limit + decay * 60.0, 3)
            else:
                entry.concurrency = int(lim.limit)
    return sorted(merged.values(), key=lambda e: (e.provider, e.model or ""))
