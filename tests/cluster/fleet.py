"""A small fleet on one machine, for `make e2e-cluster` and benchmarks/cluster.py:

    PostgreSQL 127.0.0.1:5432  -> a fresh database steer_cluster_<random> (dropped at the end)
    prefect server start       -> API on a free port, backed by that database
    Redis 127.0.0.1:6379       -> shared breakers (unique key prefix), idempotency store
    SimulatorServer            -> the model endpoint, in this process (faults switched here)
    2 x prefect worker start   -> one process work pool, separate PREFECT_HOME / STEER_HOME
    steer schedule create      -> the deployment the workers run (paused: runs are triggered)

Everything started here is stopped here, by pid. Needs the local PostgreSQL (trust auth, user
postgres or root) and Redis services; skips with a reason when they are not running.
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
from tests.helpers.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
PG = "postgresql://{user}@127.0.0.1:5432/{db}"
REDIS_URL = "redis://127.0.0.1:6379/14"
POOL = "steer-cluster"
DEPLOYMENT = "cluster-feasibility"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _pg_user() -> str:
    import psycopg

    for user in ("postgres", "root"):
        with contextlib.suppress(psycopg.Error):
            psycopg.connect(PG.format(user=user, db="postgres"), connect_timeout=3).close()
            return user
    pytest.skip("PostgreSQL on 127.0.0.1:5432 accepts neither user postgres nor root")


def _admin_sql(user: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(PG.format(user=user, db="postgres"), autocommit=True) as conn:
        conn.execute(sql)


@dataclass
class Cluster:
    root: Path
    api_url: str
    env: dict[str, str]
    sim: SimulatorServer
    redis_prefix: str
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=30)

    def deployment_id(self) -> str:
        with self.http() as http:
            response = http.get(f"/deployments/name/steer-orchestrate/{DEPLOYMENT}")
            response.raise_for_status()
            return response.json()["id"]

    def trigger(self, parameters: dict[str, Any], idempotency_key: str | None = None
                ) -> dict[str, Any]:
        body: dict[str, Any] = {"parameters": parameters}
        if idempotency_key:
            body["idempotency_key"] = idempotency_key
        with self.http() as http:
            response = http.post(f"/deployments/{self.deployment_id()}/create_flow_run",
                                 json=body)
            response.raise_for_status()
            return response.json()

    def runs(self, ids: list[str]) -> list[dict[str, Any]]:
        with self.http() as http:
            response = http.post("/flow_runs/filter", json={
                "flow_runs": {"id": {"any_": ids}}, "limit": 200})
            response.raise_for_status()
            return response.json()

    def wait_final(self, ids: list[str], timeout_s: float = 180) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            runs = self.runs(ids)
            final = [r for r in runs if (r.get("state") or {}).get("type") in FINAL]
            return runs if len(final) == len(set(ids)) else None

        return wait_for(done, timeout_s, f"{len(set(ids))} flow runs to finish", 0.5)

    def redis(self) -> Any:
        import redis

        return redis.Redis.from_url(REDIS_URL)

    def clear_breakers(self) -> None:
        client = self.redis()
        for key in client.scan_iter(match=f"{self.redis_prefix}:breaker:*"):
            client.delete(key)


def _steer() -> list[str]:
    script = Path(sys.executable).with_name("steer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "steer_llm_sdk.cli"]


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _start_worker(cluster: Cluster, name: str, shared_breakers: bool = True
                  ) -> subprocess.Popen[bytes]:
    home = cluster.root / name
    for sub in ("prefect", "steer"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = {**cluster.env,
           "PREFECT_HOME": str(home / "prefect"), "STEER_HOME": str(home / "steer"),
           "OPENAI_BASE_URL": cluster.sim.base_url, "OPENAI_API_KEY": "sk-cluster",
           "STEER_BREAKER_PREFIX": cluster.redis_prefix, "STEER_IDEMPOTENCY_URL": REDIS_URL,
           "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "2"}
    if shared_breakers:
        env["STEER_BREAKER_URL"] = REDIS_URL
    log = open(cluster.root / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type",
         "process", "--name", name, "--limit", "4"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cluster.root,
        start_new_session=True)


@contextlib.contextmanager
def start_cluster(workers: int = 2, shared_breakers: bool = True) -> Iterator[Cluster]:
    """Start the fleet (skips the calling test when PostgreSQL or Redis is down)."""
    if not _reachable(5432):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    if not _reachable(6379):
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    user = _pg_user()
    db = f"steer_cluster_{uuid.uuid4().hex[:10]}"
    root = Path(tempfile.mkdtemp(prefix="steer-cluster-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "OPENAI_", "STEER_"))}
    env.update({"PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
                "STEER_RESULTS_DIR": str(root / "results"), "PYTHONUNBUFFERED": "1"})
    _admin_sql(user, f'CREATE DATABASE "{db}"')
    processes: list[subprocess.Popen[bytes]] = []
    sim = SimulatorServer().start()
    cluster = Cluster(root=root, api_url=env["PREFECT_API_URL"], env=env, sim=sim,
                      redis_prefix=f"steer-cluster-{uuid.uuid4().hex[:8]}")
    try:
        started = time.monotonic()
        for sub in ("server", "client"):
            (root / sub).mkdir()
        server_env = {**env, "PREFECT_HOME": str(root / "server"),
                      "PREFECT_SERVER_DATABASE_CONNECTION_URL":
                      f"postgresql+asyncpg://{user}@127.0.0.1:5432/{db}",
                      "PREFECT_SERVER_LOGGING_LEVEL": "WARNING", "PREFECT_UI_ENABLED": "false",
                      # 2 cores: only the services these runs need (runs are triggered, the
                      # deployment's schedule is paused)
                      **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
                          "SCHEDULER", "LATE_RUNS", "PAUSE_EXPIRATIONS", "FOREMAN",
                          "CANCELLATION_CLEANUP", "TRIGGERS", "DB_VACUUM", "EVENT_LOGGER")}}
        server_log = open(root / "server.log", "wb")  # noqa: SIM115
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)], env=server_env, stdout=server_log,
            stderr=subprocess.STDOUT, cwd=root, start_new_session=True))

        def healthy() -> bool:
            if processes[0].poll() is not None:
                raise RuntimeError((root / "server.log").read_text()[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(cluster.api_url + "/health", timeout=2).status_code == 200
            return False

        wait_for(healthy, 120, "the PostgreSQL-backed Prefect server", 0.5)
        cluster.timings["server_start_s"] = time.monotonic() - started
        created = subprocess.run(
            [*_steer(), "schedule", "create", DEPLOYMENT, "--tool", "feasibility",
             "--request", "Ship the mobile app in six weeks?", "--options", '{"k": 2}',
             "--interval", "86400", "--paused", "--pool", POOL],
            env={**env, "PREFECT_HOME": str(root / "client")}, capture_output=True,
            text=True, timeout=120, cwd=root)
        assert created.returncode == 0, created.stderr + created.stdout
        start_workers(cluster, workers, shared_breakers)
        cluster.timings["fleet_ready_s"] = time.monotonic() - started
        yield cluster
    finally:
        stop_workers(cluster)
        for process in reversed(processes):
            _stop(process)
        sim.stop()
        with contextlib.suppress(Exception):
            cluster.clear_breakers()
        with contextlib.suppress(Exception):
            _admin_sql(user, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if os.environ.get("STEER_CLUSTER_KEEP"):
            print(f"cluster logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def start_workers(cluster: Cluster, count: int, shared_breakers: bool = True) -> None:
    """``count`` workers named cluster-w1.., each its own PREFECT_HOME / STEER_HOME; returns
    once all of them poll the pool."""
    for i in range(1, count + 1):
        name = f"cluster-w{i}"
        cluster.workers[name] = _start_worker(cluster, name, shared_breakers)
    names = set(cluster.workers)

    def polling() -> bool:
        for name, proc in cluster.workers.items():
            if proc.poll() is not None:
                raise RuntimeError((cluster.root / f"{name}.log").read_text()[-3000:])
        with cluster.http() as http:
            found = http.post(f"/work_pools/{POOL}/workers/filter", json={}).json()
        return {w["name"] for w in found if w.get("status") == "ONLINE"} >= names

    wait_for(polling, 90, f"{count} workers to poll the pool", 0.5)


def stop_workers(cluster: Cluster) -> None:
    for process in cluster.workers.values():
        _stop(process)
    cluster.workers.clear()
