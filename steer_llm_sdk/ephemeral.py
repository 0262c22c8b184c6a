"""Route Prefect's ephemeral (embedded) server through steer_llm_sdk.prefect_server.

With no PREFECT_API_URL, Prefect starts a temporary server subprocess per process. We keep that
default (a user's first run needs nothing installed) and change only the module the subprocess
runs, so its SQLite transactions wait instead of failing (see steer_llm_sdk.prefect_server),
and so it exits when the process that started it dies (steer_llm_sdk.parent_watch).
The command mirrors Prefect 3.9's ``SubprocessASGIServer._run_uvicorn_command``. Opt out with
STEER_PATCH_EPHEMERAL_SERVER=0.

That temporary server's anonymous usage telemetry is off unless the user set
PREFECT_SERVER_ANALYTICS_ENABLED (environment or Prefect profile): offline, every start logged
``ERROR | prefect.server.services.telemetry - Failed to send telemetry`` into the user's
script. The CLI turns it off the same way (steer_llm_sdk.quiet).

It also gets 90 s to start instead of Prefect's 20 s (a first start migrates a new database),
unless PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS is set.

Before any of that, :func:`use_local_steer_server` lets a script find the server `steer server
start` runs, as the CLI does (steer_llm_sdk.local_server; STEER_DISCOVER_SERVER=0 opts out).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import subprocess
import sys
import threading
from typing import Any

_APPLIED = False
# Defaults for the temporary server only; the user's environment and profile override them.
_SERVER_ENV_DEFAULTS = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
# Prefect waits 20 s for it; a first start migrates a fresh SQLite database (13 s on an idle
# 2-core machine, over 20 s on a busy one), and a timeout there is a user's first impression.
# PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, when set, wins.
STARTUP_TIMEOUT_S = 90
logger = logging.getLogger("steer_llm_sdk")


def _command(port: int) -> list[str]:
    import prefect

    return [
        sys.executable, "-m", "steer_llm_sdk.prefect_server",
        "--app-dir", str(prefect.__module_path__.parent),
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "error", "--lifespan", "on",
    ]


def server_env() -> dict[str, str]:
    """What the embedded server gets on top of our environment; STEER_PARENT_PID makes it
    exit when this process dies (steer_llm_sdk/parent_watch.py), even after ``kill -9``."""
    from steer_llm_sdk.parent_watch import ENV_PARENT_PID

    return {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1", ENV_PARENT_PID: str(os.getpid())}


def ephemeral_mode() -> bool:
    """True when Prefect would start its embedded server (no API URL configured)."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def use_patched_ephemeral_server() -> bool:
    """Call before the first flow run. Imports Prefect's server module (~4 s), so callers do it
    only in ephemeral mode, where Prefect is about to import it anyway."""
    global _APPLIED
    if _APPLIED or os.environ.get("STEER_PATCH_EPHEMERAL_SERVER", "1") == "0":
        return _APPLIED
    try:
        from prefect.server.api.server import SubprocessASGIServer
        from prefect.settings import get_current_settings
    except ImportError:
        return False
    if not hasattr(SubprocessASGIServer, "_run_uvicorn_command"):
        return False

    def _run_uvicorn_command(self: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(
            args=_command(self.port),
            env={**_SERVER_ENV_DEFAULTS, **os.environ, **server_env(),
                 **get_current_settings().to_environment_variables(exclude_unset=True)},
        )

    original_start = SubprocessASGIServer.start

    def start(self: Any, timeout: int | None = None) -> None:
        ephemeral = get_current_settings().server.ephemeral
        if timeout is None and "startup_timeout_seconds" not in ephemeral.model_fields_set:
            timeout = STARTUP_TIMEOUT_S
        original_start(self, timeout=timeout)

    SubprocessASGIServer._run_uvicorn_command = _run_uvicorn_command
    SubprocessASGIServer.start = start
    _APPLIED = True
    return True


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
