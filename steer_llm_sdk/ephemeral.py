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
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from steer_llm_sdk.prefect_patches import allowed, patch_off

NAME = "ephemeral-server-sqlite-immediate"
SERVER_MODULE = "steer_llm_sdk.prefect_server"
_APPLIED = False
_LAUNCH = threading.Lock()  # the module swap below is one launch at a time


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
    if server_cls is None:
        _APPLIED = True
    return True
