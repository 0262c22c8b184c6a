"""Fleet numbers for docs/scaling.md, on the fleet of tests/cluster/fleet.py.

    .venv/bin/python -m benchmarks.cluster [--runs 30]

1. orchestrations per minute with 1 worker, then 2 workers (each run: feasibility, k=2)
2. requests reaching an endpoint that breaks mid-way: per-process breakers vs shared (Redis)
3. the highest request count the simulator saw in any window vs a configured rate limit

Needs the local PostgreSQL and Redis services. Prints one JSON object. Not a test: nothing is
asserted, and the numbers depend on what else the machine is doing (report the load average).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from typing import Any

from tests.cluster.fleet import Cluster, start_cluster, start_workers, stop_workers

K = 2


def _params(label: str) -> dict[str, Any]:
    trace = f"{label}-{uuid.uuid4().hex[:12]}"
    return {"request": {"query": f"Benchmark {trace}"}, "tool": "feasibility",
            "tool_options": {"k": K, "early_stop": False},
            "config": {"trace_id": trace, "budget": {"cost_usd": 1.0}}}


def throughput(cluster: Cluster, runs: int) -> float:
    started = time.monotonic()
    ids = [cluster.trigger(_params("bench"))["id"] for _ in range(runs)]
    cluster.wait_final(ids, timeout_s=900)
    return round(runs / (time.monotonic() - started) * 60, 1)


def broken_endpoint(cluster: Cluster, runs: int = 8) -> int:
    cluster.clear_breakers()
    cluster.wait_final([cluster.trigger(_params("warm"))["id"]])
    broke_at = time.time()
    cluster.sim.set_faults("status=503")
    try:
        cluster.wait_final([cluster.trigger(_params("broken"))["id"] for _ in range(runs)],
                           timeout_s=600)
    finally:
        cluster.sim.set_faults(None)
    count = sum(1 for r in cluster.sim.stats.records if r.received_at >= broke_at)
    cluster.clear_breakers()
    return count


def rate_limited(cluster: Cluster, limit: int, window_s: float, runs: int = 6) -> int:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from steer_llm_sdk.reliability.rate_limits import adelete_provider_limit, aset_provider_limit

    provider = f"openai@127.0.0.1:{cluster.sim.port}"
    with temporary_settings({PREFECT_API_URL: cluster.api_url}):
        asyncio.run(aset_provider_limit(provider, rpm=limit, window_s=window_s))
        try:
            started = time.time()
            cluster.wait_final([cluster.trigger(_params("rl"))["id"] for _ in range(runs)],
                               timeout_s=600)
        finally:
            asyncio.run(adelete_provider_limit(provider))
    times = sorted(r.received_at for r in cluster.sim.stats.records if r.received_at >= started)
    return max(sum(1 for u in times[i:] if u - t < window_s) for i, t in enumerate(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    result: dict[str, Any] = {"load_average_start": os.getloadavg()[0], "k": K}
    with start_cluster(workers=1, shared_breakers=False) as cluster:
        result["runs_per_minute_1_worker"] = throughput(cluster, args.runs)
        stop_workers(cluster)
        start_workers(cluster, 2, shared_breakers=False)
        result["runs_per_minute_2_workers"] = throughput(cluster, args.runs)
        result["requests_after_break_local_breakers"] = broken_endpoint(cluster)
        stop_workers(cluster)
        start_workers(cluster, 2, shared_breakers=True)
        result["requests_after_break_shared_breakers"] = broken_endpoint(cluster)
        result["rate_limit"] = {"limit": 4, "window_s": 5.0,
                                "max_seen_in_window": rate_limited(cluster, 4, 5.0)}
        result["timings"] = cluster.timings
    result["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
