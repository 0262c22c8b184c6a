"""Route Prefect's ephemeral (embedded) server through steer_llm_sdk.prefect_server.

With no PREFECT_API_URL, Prefect starts a temporary server subprocess per process. We keep that
default (a user's first run needs nothing installed) and change only the module the subprocess
runs, so its SQLite transactions wait instead of failing (see steer_llm_sdk.prefect_server).
The command mirrors Prefect 3.9's ``SubprocessASGIServer._run_uvicorn_command``. Opt out with
STEER_PATCH_EPHEMERAL_SERVER=0.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import threading
from typing import Any

_APPLIED = False


def _command(port: int) -> list[str]:
    import prefect

    return [
        sys.executable, "-m", "steer_llm_sdk.prefect_server",
        "--app-dir", str(prefect.__module_path__.parent),
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "error", "--lifespan", "on",
    ]


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
        server_env = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                      "PREFECT__SERVER_FINAL": "1"}
        return subprocess.Popen(
            args=_command(self.port),
            env={**os.environ, **server_env,
                 **get_current_settings().to_environment_variables(exclude_unset=True)},
        )

    SubprocessASGIServer._run_uvicorn_command = _run_uvicorn_command
    _APPLIED = True
    return True


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
