"""One Prefect API client per event loop for in-process orchestrations.

Prefect's flow engine opens a new API client for every flow run unless one is already in
``AsyncClientContext``: a new httpx connection pool, and a CSRF-token request before the first
write (20-58 ms on the critical path of every orchestration, measured in docs/performance.md).
Orchestrations started from the same loop (a service, a notebook, ``asyncio.gather`` of many
runs) share one client instead; Prefect reuses it because it is in the context for the flow
call.

The client is closed when the loop shuts down: it is held by an async generator, and
``asyncio.run`` (like any loop closed through ``shutdown_asyncgens``) closes every async
generator it started while the loop can still await.

This leans on Prefect internals (``AsyncClientContext.__var__``, ``PrefectClient._closed``, the
client's API-version check); when one is missing, runs fall back to Prefect's own client per
flow run (steer_llm_sdk.prefect_patches logs which). Opt out with STEER_PREFECT_PATCHES=0 (all
Prefect patches) or STEER_SHARED_API_CLIENT=0.

A loop's client is created once, under a per-loop lock, and never replaced while open: the
first runs of a fresh loop (``asyncio.gather`` of many) used to race here, each built its own
client, the last one won the slot, and the losers' owner generators were garbage-collected,
which closed clients that their runs were still using ("the client has been closed").
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

from steer_llm_sdk.prefect_patches import allowed, patch_off

NAME = "shared-api-client"

# loop -> {settings key -> (client context, the async generator that owns it)}
_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)
# loop -> the lock its first runs take to create the client (one creator per loop)
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
_DICT_LOCK = threading.Lock()  # the dicts above are shared by every thread's loop


# Prefect's API-version checks, newest first (3.6.21 added the ``_once`` variant)
VERSION_CHECKS = ("raise_for_api_version_mismatch_once", "raise_for_api_version_mismatch")
_UNSUPPORTED: list[str] = []  # why this Prefect cannot share clients, once found out


class _Unsupported(Exception):
    pass


def _enabled() -> bool:
    return not _UNSUPPORTED and allowed(NAME, "STEER_SHARED_API_CLIENT")


async def _check_api_version(client: Any) -> None:
    """What ``AsyncClientContext.__aenter__`` does for the clients it opens."""
    from prefect.settings import get_current_settings

    client_settings = getattr(get_current_settings(), "client", None)
    if not getattr(client_settings, "server_version_check_enabled", True):
        return
    for name in VERSION_CHECKS:
        check = getattr(client, name, None)
        if callable(check):
            await check()
            return
    raise _Unsupported(f"PrefectClient has none of {', '.join(VERSION_CHECKS)}")


def _settings_key() -> str:
    """Clients are shared only between runs that would have built identical ones (API URL,
    key, TLS settings); the digest keeps the API key out of the dict."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api

    def secret(value: Any) -> str:
        return value.get_secret_value() if value is not None else ""

    def field(name: str) -> Any:  # a setting a Prefect release lacks counts as unset
        return getattr(api, name, None)

    raw = "\n".join(str(part) for part in (
        field("url"), secret(field("key")), secret(field("auth_string")),
        field("tls_insecure_skip_verify"), field("ssl_cert_file"), field("enable_http2"),
        field("request_timeout")))
    return hashlib.sha256(raw.encode()).hexdigest()


async def _owner(context: Any) -> AsyncIterator[Any]:
    """Suspended at ``yield`` for the loop's lifetime; closing it closes the client."""
    try:
        yield context
    finally:
        await context.client.__aexit__(None, None, None)


def _held(loop: asyncio.AbstractEventLoop, key: str) -> Any:
    with _DICT_LOCK:
        held = _BY_LOOP.get(loop, {}).get(key)
    return held[0] if held is not None and not held[0].client._closed else None


async def _client_context() -> Any:
    loop = asyncio.get_running_loop()
    key = _settings_key()
    context = _held(loop, key)
    if context is not None:
        return context
    with _DICT_LOCK:
        lock = _LOCKS.setdefault(loop, asyncio.Lock())
    async with lock:  # the first runs of a loop wait for one creator instead of racing
        context = _held(loop, key)
        if context is None:
            context = await _create(loop, key)
    return context


async def _create(loop: asyncio.AbstractEventLoop, key: str) -> Any:
    from prefect.context import AsyncClientContext

    context = AsyncClientContext()
    if not isinstance(getattr(context.client, "_closed", None), bool):
        raise _Unsupported("PrefectClient._closed is missing")
    await context.client.__aenter__()
    try:
        await _check_api_version(context.client)
    except BaseException:
        await context.client.__aexit__(None, None, None)
        raise
    owner = _owner(context)
    await owner.__anext__()
    with _DICT_LOCK:
        # only a closed client is ever replaced here; its owner closing it again is harmless
        _BY_LOOP.setdefault(loop, {})[key] = (context, owner)
    return context


@contextlib.asynccontextmanager
async def shared_api_client() -> AsyncIterator[bool]:
    """Puts this loop's client in ``AsyncClientContext`` for the block; yields whether it did
    (callers that keep API writes running after the flow returns need the shared client)."""
    if not _enabled():
        yield False
        return
    from prefect.context import AsyncClientContext

    variable = getattr(AsyncClientContext, "__var__", None)
    try:
        if not isinstance(variable, contextvars.ContextVar):
            raise _Unsupported("AsyncClientContext.__var__ is not a ContextVar")
        context = await _client_context()
    except _Unsupported as exc:
        _UNSUPPORTED.append(str(exc))
        patch_off(NAME, str(exc))
        yield False
        return
    token = variable.set(context)
    try:
        yield True
    finally:
        variable.reset(token)
