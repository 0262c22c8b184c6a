"""The embedded Prefect server exits when the process that started it dies (even kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from steer_llm_sdk.ephemeral import server_env
from steer_llm_sdk.parent_watch import ENV_PARENT_PID, exit_with_parent

REPO = Path(__file__).resolve().parents[2]

# parent: starts a child that watches it, prints the child's pid, then waits to be killed
_PARENT = textwrap.dedent("""
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", (
        "import time; from steer_llm_sdk.parent_watch import exit_with_parent; "
        "exit_with_parent(poll_s=0.05, grace_s=1); time.sleep(120)")],
        env={**os.environ, "STEER_PARENT_PID": str(os.getpid())})
    print(child.pid, flush=True)
    time.sleep(120)
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")  # zombie = exited


def test_child_exits_after_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    child = int(parent.stdout.readline())
    time.sleep(0.5)
    assert _alive(child)  # watching a live parent: keeps running
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 20
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the watcher outlived its parent"


def test_embedded_server_is_told_its_parent() -> None:
    assert server_env()[ENV_PARENT_PID] == str(os.getpid())


def test_nothing_to_watch_without_a_live_parent(monkeypatch) -> None:
    monkeypatch.delenv(ENV_PARENT_PID, raising=False)
    assert exit_with_parent() is None  # `steer server start` is not tied to the CLI process
    assert exit_with_parent(parent_pid=os.getppid() + 10**6) is None
