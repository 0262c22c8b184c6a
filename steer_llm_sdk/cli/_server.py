"""`steer server start|stop|status`: one local `prefect server start` in the background.

Why: the embedded server Prefect starts per process costs 6-13 s and has no UI; a shared server
on 127.0.0.1 starts once (3-4 s, ~13 s on a fresh database), serves the UI, and every later
command reuses it through PREFECT_API_URL. State lives in STEER_HOME (default ~/.steer):
``server.pid`` (the process id), ``server.json`` (its URLs) and ``server.log``.
Stdlib only: `steer server status` must not pay for importing Prefect. Reading that state
(and finding the server from any process) is steer_llm_sdk.local_server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from steer_llm_sdk.local_server import (
    healthy,
    log_file,
    read_state,
    running_server,
    steer_home,
)
from steer_llm_sdk.local_server import pid_file as _pid_file
from steer_llm_sdk.local_server import state_file as _state_file

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerStartError", "free_port", "healthy",
           "log_file", "read_state", "running_server", "start_server", "steer_home",
           "stop_server", "wait_healthy"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 5) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


class ServerStartError(RuntimeError):
    pass


def start_server(host: str = DEFAULT_HOST, port: int | None = None,
                 timeout_s: float = 90.0) -> dict[str, Any]:
    """Start (or reuse) the background server and wait until /api/health answers.

    ``port=None`` means 4200, or a free port when 4200 is taken."""
    existing = read_state()
    if existing is not None:
        if wait_healthy(existing["api_url"], timeout_s):
            return {**existing, "reused": True}
        stop_server()
    if port == 0:  # "any free port", as for `steer simulator --port 0`
        port = free_port(host)
    elif port is None:
        port = DEFAULT_PORT if _port_free(host, DEFAULT_PORT) else free_port(host)
    elif not _port_free(host, port):
        raise ServerStartError(f"port {port} on {host} is in use; pick another with --port")
    home = steer_home()
    home.mkdir(parents=True, exist_ok=True)
    base = f"http://{host}:{port}"
    env = {**os.environ}
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env.pop("PREFECT_API_URL", None)  # the server must not point at another server
    # The UI asks /ui-settings where the API is; without this it answers port 4200 whatever
    # --port says, and the UI cannot load a run on any other port.
    env.setdefault("PREFECT_UI_API_URL", f"{base}/api")
    with open(log_file(), "ab") as log:
        process = subprocess.Popen(
            # Prefect's `server start`, with SQLite transactions that wait instead of failing
            [sys.executable, "-m", "steer_llm_sdk.prefect_server", "server", "start",
             "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # survives this command; stopped as a process group
        )
    state = {"host": host, "port": port, "url": base, "api_url": f"{base}/api",
             "started_at": time.time(), "log": str(log_file())}
    _pid_file().write_text(str(process.pid))
    _state_file().write_text(json.dumps(state, indent=2))
    started = time.monotonic()
    while not healthy(state["api_url"]):
        if process.poll() is not None:
            _forget()
            raise ServerStartError(f"prefect server exited with code {process.returncode}: "
                                   f"{_tail(log_file())} (log: {log_file()})")
        if time.monotonic() - started > timeout_s:
            stop_server()
            raise ServerStartError(f"prefect server did not answer {state['api_url']}/health "
                                   f"within {timeout_s:.0f} s (log: {log_file()})")
        time.sleep(0.25)
    return {**state, "pid": process.pid, "reused": False,
            "startup_s": round(time.monotonic() - started, 1)}


def wait_healthy(api_url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if healthy(api_url):
            return True
        time.sleep(0.25)
    return False


def _forget() -> None:
    for path in (_pid_file(), _state_file()):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def stop_server(timeout_s: float = 20.0) -> int | None:
    """SIGTERM the recorded server's process group, SIGKILL after ``timeout_s``; returns the
    pid that was stopped, or None when none was running."""
    state = read_state()
    _forget()
    if state is None:
        return None
    pid = int(state["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _exists(pid):
        time.sleep(0.2)
    if _exists(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return pid


def _exists(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # reap it if it is our child
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().split(") ", 1)[1][:1] != "Z"  # a zombie is as good as gone
    return True
