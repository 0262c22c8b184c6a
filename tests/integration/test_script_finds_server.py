"""A plain Python script (not the CLI), as a new user writes it: it finds the server
`steer server start` runs, as `steer run` does, and offline it prints no telemetry error.

One real `prefect server start` (via steer's own helper) in temporary STEER_HOME/PREFECT_HOME,
and real script processes with PREFECT_API_URL unset. "Offline" is made certain, not assumed:
HTTPS_PROXY points at a closed port, so Prefect's telemetry POST fails exactly as it does on a
machine without network, while 127.0.0.1 (simulator, servers) stays reachable.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

SCRIPT = """
from steer_llm_sdk import SteerLLMClient
from steer_llm_sdk.orchestration import Orchestrator
from steer_llm_sdk.providers import OpenAIProvider
from steer_llm_sdk.testing import SimulatorServer
from steer_tools.examples import feasibility_tool

with SimulatorServer() as sim:
    tool = feasibility_tool()
    tool.llm = OpenAIProvider(api_key="sk-simulator", base_url=sim.base_url)
    tool.provider = tool.llm.breaker_name
    SteerLLMClient().register_tool(tool, replace=True)
    out = Orchestrator().run_sync({"query": "Ship v2 in a week"}, "feasibility",
                                  {"k": 2, "early_stop": False})
    print("STATUS", out.status)
    print("FLOW_RUN", out.metadata["flow_run_id"])
"""



def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def steer_server(tmp_path_factory):
    """`steer server start` in a temporary STEER_HOME, stopped at the end."""
    home = tmp_path_factory.mktemp("first-hour")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEER_HOME", str(home / "steer"))
        mp.setenv("PREFECT_HOME", str(home / "server-prefect"))
        mp.delenv("PREFECT_API_URL", raising=False)
        from steer_llm_sdk.cli._server import free_port, start_server, stop_server

        state = start_server(port=free_port(), timeout_s=120)
        try:
            yield home, state
        finally:
            stop_server()


def _run_script(home: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    script = home / "analysis.py"
    script.write_text(SCRIPT)
    # A user's shell, not the test process's: tests/conftest.py sets PREFECT_* quieting (e.g.
    # PREFECT_SERVER_LOGGING_LEVEL=CRITICAL) that would hide the very line looked for here.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STEER_"))}
    env.update({
        "STEER_HOME": str(home / "steer"),
        "PREFECT_HOME": str(home / "script-prefect"),  # its own DB when it runs embedded
        "HTTPS_PROXY": f"http://127.0.0.1:{_closed_port()}", "NO_PROXY": "127.0.0.1,localhost",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",  # 2 shared cores
        **extra,
    })
    proc = subprocess.run([sys.executable, str(script)], cwd=home, capture_output=True,
                          text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STATUS succeeded" in proc.stdout
    return proc


def _flow_run_id(proc: subprocess.CompletedProcess[str]) -> str:
    return next(line.split()[1] for line in proc.stdout.splitlines()
                if line.startswith("FLOW_RUN "))


def test_discovery_follows_steer_home_and_can_be_turned_off(steer_server, monkeypatch):
    from steer_llm_sdk.local_server import discovered_api_url

    home, state = steer_server
    monkeypatch.setenv("STEER_HOME", str(home / "steer"))
    assert discovered_api_url() == state["api_url"]
    monkeypatch.setenv("STEER_DISCOVER_SERVER", "0")
    assert discovered_api_url() is None
    monkeypatch.delenv("STEER_DISCOVER_SERVER")
    monkeypatch.setenv("STEER_HOME", str(home / "elsewhere"))
    assert discovered_api_url() is None


def test_opted_out_script_runs_embedded_and_prints_no_telemetry_error(steer_server):
    home, state = steer_server
    proc = _run_script(home, STEER_DISCOVER_SERVER="0")
    assert "Starting temporary server" in proc.stderr  # it really ran Prefect's embedded one
    assert "telemetry" not in proc.stderr.lower(), proc.stderr
    with httpx.Client(base_url=state["api_url"], timeout=10) as http:
        assert http.get(f"/flow_runs/{_flow_run_id(proc)}").status_code == 404


def test_script_without_prefect_api_url_uses_the_running_steer_server(steer_server):
    home, state = steer_server
    proc = _run_script(home)
    assert "Starting temporary server" not in proc.stderr, proc.stderr
    with httpx.Client(base_url=state["api_url"], timeout=10) as http:
        response = http.get(f"/flow_runs/{_flow_run_id(proc)}")
        assert response.status_code == 200, response.text
        run = response.json()
    assert run["name"].startswith("feasibility-")
    assert run["state"]["type"] == "COMPLETED"
