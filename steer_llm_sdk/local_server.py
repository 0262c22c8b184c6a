"""Where `steer server start` left its server, so the CLI and plain Python scripts find it.

State lives in STEER_HOME (default ~/.steer): ``server.pid`` (the process id), ``server.json``
(its URLs) and ``server.log``. A process with PREFECT_API_URL unset that finds a healthy server
there uses it instead of starting Prefect's embedded one (6-13 s per process, no UI, and a
second writer on the same SQLite file). STEER_DISCOVER_SERVER=0 turns the lookup off.
Stdlib only: `steer server status` and the library's first run must not pay for Prefect here.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

DISCOVER_ENV = "STEER_DISCOVER_SERVER"


def steer_home() -> Path:
    return Path(os.environ.get("STEER_HOME") or "~/.steer").expanduser()


def pid_file() -> Path:
    return steer_home() / "server.pid"


def state_file() -> Path:
    return steer_home() / "server.json"


def log_file() -> Path:
    return steer_home() / "server.log"


def healthy(api_url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout_s) as r:
            return r.status == 200
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a recycled pid must not be mistaken for our server
        args = cmdline.read_bytes().split(b"\0")
        return b"prefect" in b" ".join(args) and b"server" in args
    return True


def read_state() -> dict[str, Any] | None:
    """The recorded server if its process is still alive (healthy or still starting)."""
    try:
        pid = int(pid_file().read_text().strip())
        state = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    return {**state, "pid": pid}


def running_server() -> dict[str, Any] | None:
    """The recorded server if it answers its health check, else None."""
    state = read_state()
    if state is None or not healthy(state["api_url"]):
        return None
    return state


def discovery_enabled() -> bool:
    return os.environ.get(DISCOVER_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def discovered_api_url() -> str | None:
    """The API URL of `steer server start`'s healthy server, unless STEER_DISCOVER_SERVER=0.
    Callers use it only when PREFECT_API_URL is unset: an explicit URL always wins."""
    if not discovery_enabled():
        return None
    server = running_server()
    return str(server["api_url"]) if server else None
