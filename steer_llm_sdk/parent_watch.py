"""Exit when the process that started us dies: the embedded Prefect server must not outlive it.

Prefect's embedded server is a subprocess of the SDK process. If that process is killed
(``kill -9``, OOM) nobody stops the server: it keeps its port, its SQLite file and ~100 MB.
``steer_llm_sdk.prefect_server`` (which ``ephemeral.py`` starts in place of Prefect's command)
calls :func:`exit_with_parent` with the starter's pid, passed as ``STEER_PARENT_PID``.

Why polling and not Linux's ``prctl(PR_SET_PDEATHSIG)``: that signal fires when the *thread*
that forked the child ends, and Prefect may start the server from a worker thread (``run_sync``
runs the orchestration on a private thread) that ends while the process lives on. A daemon
thread that checks once a second whether we were re-parented (POSIX) or, elsewhere, whether
the pid is still alive, is portable and costs nothing measurable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

ENV_PARENT_PID = "STEER_PARENT_PID"


def parent_alive(parent_pid: int) -> bool:
    if sys.platform != "win32":
        return os.getppid() == parent_pid  # re-parented to init/a subreaper once it died
    try:
        import psutil
    except ImportError:  # pragma: no cover - Windows without psutil: cannot tell, keep going
        return True
    return bool(psutil.pid_exists(parent_pid))


def _stop_self(grace_s: float) -> None:
    """SIGTERM first (uvicorn shuts down cleanly, closing the database), then hard exit."""
    with contextlib.suppress(OSError):
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_s)
    os._exit(0)


def exit_with_parent(parent_pid: int | None = None, poll_s: float = 1.0,
                     grace_s: float = 10.0) -> threading.Thread | None:
    """Start a daemon thread that ends this process once ``parent_pid`` (default
    ``$STEER_PARENT_PID``) is gone. Returns the thread, or None when there is nothing to watch."""
    if parent_pid is None:
        raw = os.environ.get(ENV_PARENT_PID, "")
        parent_pid = int(raw) if raw.isdigit() else None
    if parent_pid is None or not parent_alive(parent_pid):
        return None

    def watch() -> None:
        while parent_alive(parent_pid):
            time.sleep(poll_s)
        _stop_self(grace_s)

    thread = threading.Thread(target=watch, name="steer-parent-watch", daemon=True)
    thread.start()
    return thread
