"""Route Prefect's ephemeral (embedded) server through steer_llm_sdk.prefect_server.

With no PREFECT_API_URL, Prefect starts a temporary server subprocess per process. We keep that
default (a user's first run needs nothing installed) and change only the module the subprocess
runs, so its SQLite transactions wait instead of failing (see steer_llm_sdk.prefect_server).

Prefect's own ``SubprocessASGIServer._run_uvicorn_command`` still builds the command and the
environment (so upstream changes there are kept); the wrapper only swaps ``-m uvicorn`` for
``-m steer_llm_sdk.prefect_server``, which runs the same uvicorn CLI. If the method or the
command is not shaped as expected, Prefect's command runs unchanged (steer_llm_sdk.
prefect_patches logs which optimisation is off). Opt out with STEER_PREFECT_PATCHES=0 (all
Prefect patches) or STEER_PATCH_EPHEMERAL_SERVER=0.

The same wrapper adds to the server's environment: ``STEER_PARENT_PID``, so the server exits
when the process that started it dies (steer_llm_sdk.parent_watch), and telemetry off unless
the user set PREFECT_SERVER_ANALYTICS_ENABLED (environment or Prefect profile): offline, every
start logged ``ERROR | prefect.server.services.telemetry - Failed to send telemetry`` into the
user's script. The CLI turns it off the same way (steer_llm_sdk.quiet). It also gets 90 s to
start instead of Prefect's 20 s (a first start migrates a new database), unless
PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS is set.

Before any of that, :func:`use_local_steer_server` lets a script find the server `steer server
start` runs, as the CLI does (steer_llm_sdk.local_server; STEER_DISCOVER_SERVER=0 opts out).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys
import threading
from typing import Any

from steer_llm_sdk.prefect_patches import allowed, patch_off

NAME = "ephemeral-server-sqlite-immediate"
SERVER_MODULE = "steer_llm_sdk.prefect_server"
_APPLIED = False
_LAUNCH = threading.Lock()  # the module swap below is one launch at a time
# Defaults for the temporary server only; the user's environment and profile override them.
_SERVER_ENV_DEFAULTS = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
# Prefect waits 20 s for it; a first start migrates a fresh SQLite database (13 s on an idle
# 2-core machine, over 20 s on a busy one), and a timeout there is a user's first impression.
# PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, when set, wins.
STARTUP_TIMEOUT_S = 90
logger = logging.getLogger("steer_llm_sdk")


def server_env(env: Any = None) -> dict[str, str]:
    """The embedded server's environment: ``env`` (Prefect's, else ours) over our defaults,
    plus STEER_PARENT_PID, which makes it exit when this process dies
    (steer_llm_sdk/parent_watch.py), even after ``kill -9``."""
    from steer_llm_sdk.parent_watch import ENV_PARENT_PID

    base = dict(os.environ if env is None else env)
    return {**_SERVER_ENV_DEFAULTS, **base, ENV_PARENT_PID: str(os.getpid())}


def ephemeral_mode() -> bool:
    """True when Prefect would start its embedded server (no API URL configured)."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def rewrite_command(args: Any) -> list[str] | None:
    """``[python, -m, uvicorn, ...]`` as ``[python, -m, steer_llm_sdk.prefect_server, ...]``;
    None when ``args`` is not that shape (then Prefect's command must run unchanged)."""
    if not isinstance(args, list | tuple) or len(args) < 3 or list(args[1:3]) != ["-m", "uvicorn"]:
        return None
    from steer_llm_sdk.prefect_server import APP_FACTORY

    if APP_FACTORY not in args:
        return None
    return [args[0], "-m", SERVER_MODULE, *args[3:]]


class _RewritingSubprocess:
    """Stands in for the ``subprocess`` module inside Prefect's server module for the one call
    that launches the server; everything but ``Popen``'s command passes through."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def Popen(self, args: Any, *rest: Any, **kwargs: Any) -> Any:  # noqa: N802 - mirrors it
        rewritten = rewrite_command(args)
        if rewritten is None and _is_ours(args):
            rewritten = list(args)  # already rewritten by a wrapper further in
        if rewritten is None:
            patch_off(NAME, "Prefect's server command is not `python -m uvicorn ... create_app`")
            return self._real.Popen(args, *rest, **kwargs)
        kwargs["env"] = server_env(kwargs.get("env"))
        return self._real.Popen(rewritten, *rest, **kwargs)


def _is_ours(args: Any) -> bool:
    return isinstance(args, list | tuple) and list(args[1:3]) == ["-m", SERVER_MODULE]


def _server_class() -> Any:
    from prefect.server.api.server import SubprocessASGIServer

    return SubprocessASGIServer


def use_patched_ephemeral_server(server_cls: Any = None) -> bool:
    """Call before the first flow run. Imports Prefect's server module (~4 s), so callers do it
    only in ephemeral mode, where Prefect is about to import it anyway. ``server_cls`` is for
    tests; by default Prefect's ``SubprocessASGIServer``."""
    global _APPLIED
    if server_cls is None and _APPLIED:
        return True
    if not allowed(NAME, "STEER_PATCH_EPHEMERAL_SERVER"):
        return False
    try:
        cls = server_cls or _server_class()
    except ImportError as exc:
        patch_off(NAME, f"cannot import SubprocessASGIServer: {exc}")
        return False
    original = getattr(cls, "_run_uvicorn_command", None)
    module = sys.modules.get(getattr(original, "__module__", ""), None)
    if getattr(original, "_steer_wrapper", False):  # patched already (e.g. inherited)
        return True
    if not callable(original) or getattr(module, "subprocess", None) is None:
        patch_off(NAME, "SubprocessASGIServer._run_uvicorn_command or its module's "
                        "`subprocess` is missing")
        return False

    def _run_uvicorn_command(self: Any) -> Any:
        with _LAUNCH:
            real = module.subprocess
            module.subprocess = _RewritingSubprocess(real)
            try:
                return original(self)
            finally:
                module.subprocess = real

    _run_uvicorn_command.__wrapped__ = original  # type: ignore[attr-defined]
    _run_uvicorn_command._steer_wrapper = True  # type: ignore[attr-defined]
    cls._run_uvicorn_command = _run_uvicorn_command
    if server_cls is None:  # a test double has no real start to time
        _give_start_more_time(cls)
    if server_cls is None:
        _APPLIED = True
    return True


def _give_start_more_time(cls: Any) -> None:
    """Prefect's ``start(timeout=None)`` waits 20 s; default it to :data:`STARTUP_TIMEOUT_S`
    unless the user set the startup timeout. Skipped (Prefect's default) if ``start`` is not
    the shape we know."""
    import inspect

    original_start = getattr(cls, "start", None)
    if getattr(original_start, "_steer_wrapper", False):
        return
    try:
        params = inspect.signature(original_start).parameters
    except (TypeError, ValueError):
        params = {}
    if "timeout" not in params:
        patch_off("ephemeral-server-start-timeout", "SubprocessASGIServer.start has no timeout")
        return

    def start(self: Any, timeout: int | None = None) -> None:
        from prefect.settings import get_current_settings

        ephemeral = get_current_settings().server.ephemeral
        if timeout is None and "startup_timeout_seconds" not in ephemeral.model_fields_set:
            timeout = STARTUP_TIMEOUT_S
        original_start(self, timeout=timeout)

    start._steer_wrapper = True  # type: ignore[attr-defined]
    cls.start = start


def use_local_steer_server() -> str | None:
    """In ephemeral mode, point this process at the server `steer server start` runs (when one
    answers in STEER_HOME) instead of starting a temporary one; returns its API URL or None.

    Sets PREFECT_API_URL for the whole process, as the CLI does before importing Prefect, and
    refreshes Prefect's global settings so the change applies to everything that follows.
    Never switches once this process has started a temporary server (its runs, events and logs
    would be split over two servers), and never overrides a configured PREFECT_API_URL."""
    if not ephemeral_mode() or _temporary_server_started():
        return None
    from steer_llm_sdk.local_server import discovered_api_url

    api_url = discovered_api_url()
    if api_url is None:
        return None
    os.environ["PREFECT_API_URL"] = api_url
    _refresh_prefect_settings()
    if ephemeral_mode():  # the caller pinned settings in a context of its own: leave it be
        os.environ.pop("PREFECT_API_URL", None)
        _refresh_prefect_settings()
        return None
    logger.info("using the local steer server: PREFECT_API_URL=%s (%s=0 turns this off)",
                api_url, "STEER_DISCOVER_SERVER")
    return api_url


def _temporary_server_started() -> bool:
    """Without importing Prefect's server module (~4 s) when nothing has imported it yet."""
    module = sys.modules.get("prefect.server.api.server")
    server_cls = getattr(module, "SubprocessASGIServer", None)
    return bool(getattr(server_cls, "_instances", None))


def _refresh_prefect_settings() -> None:
    """Prefect reads the environment once, into a process-global settings context."""
    import prefect.context

    refresh = getattr(prefect.context, "refresh_global_settings_context", None)
    if refresh is not None:
        refresh()
    else:  # older Prefect 3: the same step by hand
        prefect.context.GLOBAL_SETTINGS_CONTEXT = prefect.context.root_settings_context()


_START: concurrent.futures.Future[None] | None = None
_START_LOCK = threading.Lock()


def _start_in_thread(done: concurrent.futures.Future[None]) -> None:
    try:
        use_patched_ephemeral_server()  # imports Prefect's server module: seconds of CPU
        from prefect.server.api.server import SubprocessASGIServer
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        # blocks until /health answers (6-13 s on a fresh DB, more on a busy machine); the
        # callers' own timeouts bound their wait, so allow a slow start its time
        timeout = max(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value(), 90)
        SubprocessASGIServer().start(timeout=timeout)
    except BaseException as exc:  # noqa: BLE001 - handed to every waiter
        done.set_exception(exc)
    else:
        done.set_result(None)


async def start_ephemeral_server() -> None:
    """Start the embedded server (once per process) on a worker thread and wait for it.

    Prefect starts it synchronously inside the first API call, on the event loop: nothing
    else on that loop runs for 6-13 s, so neither ``timeout_ms`` nor cancelling ``run()``
    could take effect, and concurrent first runs from several threads raced (Prefect marks
    the server running before it answers). Awaiting it here keeps the loop free: a waiter
    can time out or be cancelled at once while the start goes on for the next run.
    """
    global _START
    with _START_LOCK:
        if _START is None or (_START.done() and _START.exception() is not None):
            _START = concurrent.futures.Future()
            _START.set_running_or_notify_cancel()  # no waiter can cancel it for the others
            threading.Thread(target=_start_in_thread, args=(_START,), daemon=True,
                             name="steer-prefect-server-start").start()
        started = _START
    if not started.done():
        await asyncio.shield(asyncio.wrap_future(started))
    else:
        started.result()
