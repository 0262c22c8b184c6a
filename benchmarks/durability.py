"""What durability costs: keyed runs (replicates persisted) vs unkeyed runs, paired.

    .venv/bin/python -m benchmarks.durability [--reps 5]

Each rep runs the same K orchestrations twice, alternating the order: once without an
idempotency key (nothing persisted) and once with a fresh key (every finished replicate is
written through Prefect's result persistence, the claim is heartbeated). Prints medians.
Numbers are quoted in docs/durability.md; never asserted in tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid

CASES = ((10, 1.0), (50, 0.1))


async def main(reps: int) -> None:
    from benchmarks.workload import QUERY, Workload, check_output
    from steer_llm_sdk.orchestration import OrchestrationConfig, Orchestrator
    from steer_llm_sdk.testing import SimulatorServer

    with SimulatorServer() as sim:
        work = Workload(sim)
        orchestrator = Orchestrator(work.registry)

        async def once(k: int, latency: float, key: str | None) -> float:
            tool = work.tool(latency)
            started = time.perf_counter()
            out = await orchestrator.run({"query": QUERY}, tool.name, {"k": k,
                                         "early_stop": False},
                                         OrchestrationConfig(max_parallel=min(k, 50),
                                                             idempotency_key=key))
            elapsed = time.perf_counter() - started
            check_output(out, k)
            return elapsed

        await once(3, 0.0, None)  # warm-up: server start, imports
        await once(3, 0.0, uuid.uuid4().hex)
        for k, latency in CASES:
            plain, keyed = [], []
            for rep in range(reps):
                order = (None, uuid.uuid4().hex) if rep % 2 == 0 else (uuid.uuid4().hex, None)
                for key in order:
                    (keyed if key else plain).append(await once(k, latency, key))
            p, q = statistics.median(plain), statistics.median(keyed)
            print(f"K={k} L={latency:g}s  unkeyed {p:.3f} s  keyed {q:.3f} s  "
                  f"keyed/unkeyed {q / p:.3f}x  (+{(q - p) / k * 1000:.1f} ms per replicate)")
        await work.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="steer-durability-bench-")
    os.environ.setdefault("PREFECT_HOME", os.path.join(home, "prefect"))
    os.environ.setdefault("STEER_HOME", os.path.join(home, "steer"))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.pop("PREFECT_API_URL", None)
    asyncio.run(main(args.reps))
