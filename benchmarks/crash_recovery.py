"""Crash recovery as a user meets it: ``kill -9`` mid-run, then the same call again.

    .venv/bin/python -m benchmarks.crash_recovery [--lease 30]

Default settings (embedded Prefect server, SQLite idempotency store, 30 s lease). k=5,
max_parallel=1, simulator latency 1 s. The first process is killed while replicate r3 is in
flight; the script reports whether its embedded server exited, how long the re-run took, the
provider requests per seed of the re-run, and the state of the killed process's flow run.
Figures are quoted in docs/durability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests/integration/scripts/durable_run.py"
REPORT = """
import asyncio, hashlib, sys
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
async def main():
    tag = "idem:" + hashlib.sha256(sys.argv[1].encode()).hexdigest()[:12]
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[tag])))
    for r in runs:
        print(r.id, r.state.type.value, (r.state.message or "")[:80])
asyncio.run(main())
"""


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(c) for c in path.read_text().split()]
    return found


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def main(lease: float) -> None:
    from steer_llm_sdk.testing import SimulatorServer

    home = Path(tempfile.mkdtemp(prefix="steer-crash-"))
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home / "prefect"), STEER_HOME=str(home / "steer"),
               PYTHONPATH=str(REPO), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
               PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="ERROR",
               PREFECT_SERVER_LOGGING_LEVEL="CRITICAL")
    key, seeds = f"crash-{time.time_ns()}", [101, 102, 103, 104, 105]
    args = [sys.executable, str(SCRIPT), "", key, json.dumps(seeds), str(lease)]
    with SimulatorServer() as sim:
        args[2] = sim.base_url
        child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        while not sim.stats.requests_for(seed=seeds[2]):
            time.sleep(0.05)
        servers = [c for c in _children(child.pid) if _alive(c)]
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = time.monotonic()
        while any(_alive(s) for s in servers) and time.monotonic() - killed_at < 30:
            time.sleep(0.1)
        server_gone = time.monotonic() - killed_at
        print(f"killed with r3 in flight; embedded server pids {servers} "
              f"{'exited' if not any(_alive(s) for s in servers) else 'STILL ALIVE'} "
              f"{server_gone:.1f} s later")
        before = {s: len(sim.stats.requests_for(seed=s)) for s in seeds}
        started = time.monotonic()
        rerun = subprocess.run(args, env=env, capture_output=True, text=True)
        took = time.monotonic() - started
        out = json.loads(rerun.stdout.strip().splitlines()[-1])
        after = {s: len(sim.stats.requests_for(seed=s)) - before[s] for s in seeds}
        print(f"re-run: {took:.1f} s (process start + lease wait + 3 replicates), status "
              f"{out['status']}, resumed {out['metadata'].get('resumed_replicates')}")
        print(f"requests per seed: killed run {before}, re-run {after}")
        report = subprocess.run([sys.executable, "-c", REPORT, key], env=env,
                                capture_output=True, text=True)
        print("flow runs of the key:\n" + report.stdout.strip())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease", type=float, default=30.0)
    main(parser.parse_args().lease)
