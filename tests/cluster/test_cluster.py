"""The fleet of tests/cluster/conftest.py: throughput across two workers, exactly-once
execution, idempotent triggers, shared breakers against an endpoint that breaks mid-way, and a
provider rate limit every worker obeys. Run with `make e2e-cluster`."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(400)]

K = 2
THRESHOLD = 5  # CircuitBreakerConfig().failure_threshold: deployed runs use the defaults
RESULTS: dict[str, Any] = {}  # printed at the end (docs/scaling.md quotes them)


def _params(cluster, label: str, **config: Any) -> dict[str, Any]:
    trace = f"{label}-{uuid.uuid4().hex[:12]}"
    return {"request": {"query": f"Cluster analysis {trace}"}, "tool": "feasibility",
            "tool_options": {"k": K, "early_stop": False},
            "config": {"trace_id": trace, "budget": {"cost_usd": 1.0}, **config}}


def _trace(run: dict[str, Any]) -> str:
    return run["parameters"]["config"]["trace_id"]


def _requests_by_trace(cluster) -> Counter[str]:
    return Counter(r.trace_id for r in cluster.sim.stats.records if r.trace_id)


def _max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u - t < window_s) for i, t in enumerate(times)),
               default=0)


def test_thirty_runs_complete_once_each_across_both_workers(cluster):
    started = time.monotonic()
    ids = [cluster.trigger(_params(cluster, "bulk"))["id"] for _ in range(30)]
    runs = cluster.wait_final(ids, timeout_s=240)
    elapsed = time.monotonic() - started
    RESULTS["runs_per_minute_2_workers"] = round(30 / elapsed * 60, 1)
    RESULTS["thirty_runs_s"] = round(elapsed, 1)
    states = Counter(r["state"]["type"] for r in runs)
    assert states == {"COMPLETED": 30}, states
    workers = Counter(r["labels"].get("prefect.worker.name") for r in runs)
    assert set(workers) == {"cluster-w1", "cluster-w2"}, workers  # both ran some
    RESULTS["runs_per_worker"] = dict(workers)
    assert all(r["run_count"] == 1 for r in runs)  # no run was started twice
    seen = _requests_by_trace(cluster)
    assert all(seen[_trace(r)] == K for r in runs), {_trace(r): seen[_trace(r)] for r in runs}


def test_duplicate_triggers_with_one_key_execute_once(cluster):
    key = f"cluster-{uuid.uuid4().hex}"
    params = _params(cluster, "idem")
    ids: list[str] = []
    lock = threading.Lock()

    def trigger() -> None:
        run = cluster.trigger(params, idempotency_key=key)
        with lock:
            ids.append(run["id"])

    threads = [threading.Thread(target=trigger) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1, ids
    (run,) = cluster.wait_final(ids[:1])
    assert run["state"]["type"] == "COMPLETED" and run["run_count"] == 1
    assert _requests_by_trace(cluster)[params["config"]["trace_id"]] == K


def test_fleet_stops_calling_an_endpoint_that_broke(cluster):
    cluster.clear_breakers()
    warm = [cluster.trigger(_params(cluster, "pre"))["id"]]
    cluster.wait_final(warm)
    broke_at = time.time()
    cluster.sim.set_faults("status=503")  # the endpoint is down from now on
    try:
        # One run at a time, one call at a time: each run is a new process on either worker,
        # so what stops the calls is the state the earlier runs left in the shared breaker.
        # Retries off: breakers count sustained failures, i.e. a call's last attempt
        # (docs/reliability.md), so with retries on every request here would be one attempt
        # of a retried call and the threshold would count calls, not requests.
        runs = [cluster.wait_final([cluster.trigger(_params(
                    cluster, "broken", max_parallel=1, retry_on_failure=False))["id"]])[0]
                for _ in range(3)]  # ~one reset timeout (30 s): at most one half-open trial
    finally:
        cluster.sim.set_faults(None)
        states = cluster.redis().hgetall(f"{cluster.redis_prefix}:breaker:openai@"
                                         f"127.0.0.1:{cluster.sim.port}")
        cluster.clear_breakers()  # the next tests need a closed breaker whatever happened here
    after = [r for r in cluster.sim.stats.records if r.received_at >= broke_at]
    RESULTS["requests_after_break_shared"] = len(after)
    assert all(r["state"]["type"] in {"COMPLETED", "FAILED"} for r in runs)
    assert len(after) <= THRESHOLD + 1, len(after)
    assert states[b"state"] == b"open"


def test_rate_limit_holds_across_the_fleet(cluster):
    from steer_llm_sdk.reliability.rate_limits import (
        adelete_provider_limit,
        aset_provider_limit,
    )

    provider, limit, window = f"openai@127.0.0.1:{cluster.sim.port}", 4, 5.0
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: cluster.api_url}):
        asyncio.run(aset_provider_limit(provider, rpm=limit, window_s=window))
        try:
            started = time.time()
            ids = [cluster.trigger(_params(cluster, "limited"))["id"] for _ in range(4)]
            runs = cluster.wait_final(ids, timeout_s=180)
        finally:
            asyncio.run(adelete_provider_limit(provider))
    assert all(r["state"]["type"] == "COMPLETED" for r in runs)
    times = [r.received_at for r in cluster.sim.stats.records if r.received_at >= started]
    assert len(times) == 4 * K
    RESULTS["rate_limit"] = {"limit": limit, "window_s": window,
                             "max_seen_in_window": _max_in_window(times, window)}
    assert _max_in_window(times, window) <= limit


def test_zz_report(cluster):
    """Not an assertion: prints the measured numbers for docs/scaling.md."""
    print("\ncluster results:", RESULTS, "timings:", cluster.timings)
