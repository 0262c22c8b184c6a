"""Route Prefect's ephemeral (embedded) server through steer_llm_sdk.prefect_server.

With no PREFECT_API_URL, Prefect starts a temporary server subprocess per process. We keep that
default (a user's first run needs nothing installed) and change only the module the subprocess
runs, so its SQLite transactions wait instead of failing (see steer_llm_sdk.prefect_server),
and so it exits when the process that started it dies (steer_llm_sdk.parent_watch).
The command mirrors Prefect 3.9's ``SubprocessASGIServer._run_uvicorn_command``. Opt out with
STEER_PATCH_EPHEMERAL_SERVER=0.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
            env={**os.environ, **server_env(),
                 **get_current_settings().to_environment_variables(exclude_unset=True)},
        )

    SubprocessASGIServer._run_uvicorn_command = _run_uvicorn_command
    _APPLIED = True
    return True
