"""One real stack for every e2e test, started once per session:

    steer server start  -> `prefect server start` on 127.0.0.1:<free port>, temp PREFECT_HOME
    SimulatorServer     -> the OpenAI-compatible model the served runs call over HTTP
    steer serve         -> the deployments, flow runs in child processes (poll every 1 s)

Everything is stopped at the end (the serve process only after its runs have finished: a
SIGTERM right after a run once overwrote COMPLETED with CANCELLED) and temp dirs are removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from steer_llm_sdk.testing import SimulatorServer
from tests.helpers.waiting import wait_for as _wait_for

REPO = Path(__file__).resolve().parents[2]
FLOW = "steer-orchestrate"
ACTIVE_STATES = ["PENDING", "RUNNING", "CANCELLING"]
# Marker to prove the provider key never reaches parameters, results, artifacts or logs.
SECRET_KEY = f"sk-e2e-{uuid.uuid4().hex}"
TIMINGS: dict[str, float] = {}  # printed in the terminal summary


@dataclass
class Stack:
    root: Path
    url: str
    api_url: str
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    secret_key: str = SECRET_KEY

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=30)

    @staticmethod
    def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
        return _wait_for(predicate, timeout_s, what, interval_s)

    @staticmethod
    def free_port() -> int:
        return _free_port()

    def deployment(self, name: str) -> dict[str, Any]:
        with self.http() as http:
            response = http.get(f"/deployments/name/{FLOW}/{name}")
            response.raise_for_status()
            return response.json()

    def create_run(self, name: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """The REST path a non-Python caller uses: look the deployment up, create a run."""
        dep_id = self.deployment(name)["id"]
        with self.http() as http:
            response = http.post(f"/deployments/{dep_id}/create_flow_run",
                                 json={"parameters": parameters})
            response.raise_for_status()
            return response.json()

    def wait_final(self, flow_run_id: str, timeout_s: float = 120) -> dict[str, Any]:
        with self.http() as http:
            def final() -> dict[str, Any] | None:
                run = http.get(f"/flow_runs/{flow_run_id}").json()
                state = (run.get("state") or {}).get("type")
                return run if state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

            return _wait_for(final, timeout_s, f"flow run {flow_run_id} to finish", 0.2)

    def artifacts(self, flow_run_id: str) -> dict[str, dict[str, Any]]:
        """Latest artifact per key of one flow run, as the UI's Artifacts tab lists them."""
        with self.http() as http:
            found = http.post("/artifacts/filter", json={
                "artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).json()
        return {a["key"]: a for a in found if a.get("key")}

    def steer(self, *args: str, timeout: float = 180, home: str = "client-home",
              **env: str) -> subprocess.CompletedProcess[str]:
        """Run the `steer` CLI in a fresh process, as a user would (own PREFECT_HOME)."""
        run_env = {**self.env, "PREFECT_HOME": str(self.root / home), **env}
        return subprocess.run([*steer_command(), *args], capture_output=True, text=True,
                              env=run_env, timeout=timeout, cwd=self.root)


def steer_command() -> list[str]:
    script = Path(sys.executable).with_name("steer")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from steer_llm_sdk.cli import main; main()"]


def _base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PREFECT_API_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"}}
    env.update({
        "STEER_HOME": str(root / "steer-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        # the operator's allowlist: the served runs may load the e2e tools by import path
        "STEER_TOOL_MODULES": "tests.e2e",
    })
    return env


def _start_server(root: Path, env: dict[str, str]) -> tuple[str, float]:
    port = _free_port()
    started = time.monotonic()
    result = subprocess.run(
        [*steer_command(), "server", "start", "--port", str(port), "--timeout", "120"],
        capture_output=True, text=True, timeout=150,
        env={**env, "PREFECT_HOME": str(root / "server-home")},
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr + result.stdout
    api_url = next(line.split("=", 1)[1] for line in result.stdout.splitlines()
                   if line.startswith("export PREFECT_API_URL="))
    return api_url, elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_server(env: dict[str, str]) -> None:
    subprocess.run([*steer_command(), "server", "stop"], env=env, capture_output=True,
                   timeout=60)


def _kill_leftover(pid_file: Path) -> None:
    """Belt and braces: if `steer server stop` failed, end the server we started, by pid."""
    with contextlib.suppress(OSError, ValueError):
        os.killpg(int(pid_file.read_text().strip()), signal.SIGKILL)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="steer-e2e-"))
    env = _base_env(root)
    try:
        api_url, startup_s = _start_server(root, env)
        env["PREFECT_API_URL"] = api_url
        TIMINGS["server_start"] = startup_s
        yield Stack(root=root, url=api_url.removesuffix("/api"), api_url=api_url, env=env,
                    timings=TIMINGS)
    finally:
        _stop_server(env)
        _kill_leftover(root / "steer-home" / "server.pid")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer() as sim:
        yield sim


def _children(pid: int) -> list[int]:
    found = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in path.read_text().split()]
    return found


def _active_runs(stack: Stack) -> list[dict[str, Any]]:
    with stack.http() as http:
        response = http.post("/flow_runs/filter", json={
            "flow_runs": {"state": {"type": {"any_": ACTIVE_STATES}}}})
        return response.json() if response.status_code == 200 else []


@pytest.fixture(scope="session")
def served(stack: Stack, simulator: SimulatorServer) -> Iterator[subprocess.Popen[bytes]]:
    """`steer serve` with the simulator as the model; the key is a marker, not a real key."""
    env = {**stack.env, "PREFECT_HOME": str(stack.root / "serve-home"),
           "OPENAI_BASE_URL": simulator.base_url, "OPENAI_API_KEY": SECRET_KEY,
           "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = open(stack.root / "serve.log", "wb")  # noqa: SIM115 - closed in teardown
    process = subprocess.Popen([*steer_command(), "serve", "--interval", "3600"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                               start_new_session=True)
    started = time.monotonic()

    def registered() -> bool:
        if process.poll() is not None:
            raise RuntimeError((stack.root / "serve.log").read_text()[-3000:])
        with stack.http() as http:
            names = [f"/deployments/name/{FLOW}/feasibility-{s}" for s in ("daily", "interval")]
            return all(http.get(n).status_code == 200 for n in names)

    try:
        _wait_for(registered, 90, "steer serve to register its deployments", 0.5)
        time.sleep(1.5)  # the runner starts polling right after registering
        stack.timings["serve_ready"] = time.monotonic() - started
        yield process
    finally:
        with contextlib.suppress(TimeoutError):
            _wait_for(lambda: not _active_runs(stack), 120, "active runs to finish", 0.5)
            _wait_for(lambda: not _children(process.pid), 30, "run processes to exit", 0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()


@pytest.fixture(scope="session")
def completed_run(stack: Stack, served: subprocess.Popen[bytes]) -> dict[str, Any]:
    """One run created through the REST API (no SDK), waited for until COMPLETED."""
    started = time.monotonic()
    run = stack.create_run("feasibility-interval", {
        "request": {"query": "Launch the mobile app in six weeks with two developers."},
        "tool_options": {"k": 3, "early_stop": False},
    })
    final = stack.wait_final(run["id"])
    stack.timings["rest_trigger_to_completed"] = time.monotonic() - started
    assert final["state"]["type"] == "COMPLETED", final["state"]
    return final


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the measured timings: they are the numbers worth watching."""
    if TIMINGS:
        terminalreporter.write_line(
            "e2e timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in TIMINGS.items()))


DRIFT_QUERY = "Rebuild the data warehouse in two months with one analyst."
DRIFT_VARIANT = "updated-model"  # the simulator's "model update": feasible and score move


@pytest.fixture(scope="session")
def drift_runs(stack: Stack, served: subprocess.Popen[bytes],
               simulator: SimulatorServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two deployed runs of one analysis (same deployment, tool and request); between them
    the simulated model changes its answers. Returns both final flow runs."""
    parameters = {"request": {"query": DRIFT_QUERY},
                  "tool_options": {"k": 8, "early_stop": False}}
    first = stack.wait_final(stack.create_run("feasibility-interval", parameters)["id"])
    assert first["state"]["type"] == "COMPLETED", first["state"]
    simulator.answer_variant = DRIFT_VARIANT
    try:
        second = stack.wait_final(stack.create_run("feasibility-interval", parameters)["id"])
    finally:
        simulator.answer_variant = ""
    assert second["state"]["type"] == "COMPLETED", second["state"]
    return first, second
