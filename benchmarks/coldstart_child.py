"""One orchestration in a fresh process, like ``python -m steer_llm_sdk.demo`` but K=3 and
silent: simulator on 127.0.0.1 (no latency), one flow run, then exit.

The parent (``benchmarks.coldstart``) times the whole subprocess; this prints one JSON line
with the phases it can see from inside (imports, the run) and its own peak RSS.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import asyncio  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

from steer_llm_sdk.quiet import quiet_prefect_console  # noqa: E402

MARKER = "COLDSTART_RESULT "


async def _run(base_url: str, k: int) -> dict[str, float]:
    t_import = time.perf_counter()
    from steer_llm_sdk.orchestration import Orchestrator, ToolRegistry
    from steer_llm_sdk.providers import OpenAIProvider
    from steer_tools.examples import feasibility_tool

    imported = time.perf_counter()
    tool = feasibility_tool()
    tool.llm = OpenAIProvider(api_key="sk-simulator", base_url=base_url)
    tool.provider = tool.llm.breaker_name
    registry = ToolRegistry()
    registry.register_tool(tool)
    out = await Orchestrator(registry).run(
        {"query": "Ship the billing migration in one quarter with four engineers."},
        "feasibility", {"k": k, "early_stop": False},
    )
    done = time.perf_counter()
    if out.status != "succeeded":
        raise RuntimeError(f"cold-start orchestration ended {out.status}: {out.errors}")
    return {"import_engine_s": imported - t_import, "first_run_s": done - imported,
            "flow_reported_ms": float(out.elapsed_ms)}


def main() -> int:
    quiet_prefect_console()
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    from steer_llm_sdk.testing import SimulatorServer

    with SimulatorServer() as sim:
        phases = asyncio.run(_run(sim.base_url, k))
    phases["in_process_total_s"] = time.perf_counter() - _T0
    phases["self_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(MARKER + json.dumps(phases), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
