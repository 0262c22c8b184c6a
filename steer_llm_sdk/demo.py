"""`make demo`: a real feasibility analysis end to end, K=5 replicates in one Prefect flow run.

Without OPENAI_API_KEY it starts the bundled OpenAI-compatible simulator on 127.0.0.1 and runs
against it (same openai client, HTTP, breakers and retries); with a key it calls OpenAI.
It ends with where the wall time went: the analysis itself takes milliseconds against the
simulator, while starting Python and Prefect (above all Prefect's embedded server) takes seconds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

_STARTED = time.perf_counter()  # this module loads first: ~ the start of the process

from steer_llm_sdk.quiet import (  # noqa: E402
    flush_prefect_workers,
    quiet_prefect_console,
    ui_url_for,
)

QUESTION = ("Migrate our 40-service monolith's billing module to an event-driven design in "
            "one quarter with a team of four engineers, without downtime.")


async def _prefect_server() -> str:
    """Connect to the Prefect API before the run, so its start-up is timed on its own: the
    running `steer server` if there is one (steer_llm_sdk.local_server), else Prefect's embedded
    server, which starts here (what the flow run would otherwise do first)."""
    from prefect.client.orchestration import get_client

    from steer_llm_sdk.ephemeral import (
        ephemeral_mode,
        use_local_steer_server,
        use_patched_ephemeral_server,
    )

    if not ephemeral_mode():
        where = "at PREFECT_API_URL"
    elif use_local_steer_server():
        where = "the running `steer server`"
    else:
        use_patched_ephemeral_server()
        where = "Prefect's embedded server, started for this process"
    try:
        async with get_client() as client:
            await client.api_healthcheck()
    except RuntimeError as exc:
        if "Timed out" not in str(exc):
            raise
        raise SystemExit(
            "error: Prefect's embedded server did not start in time (its first start creates "
            "its database; a busy machine takes longer). Start a shared server once with "
            "`.venv/bin/steer server start` and run `make demo` again (it finds that server), "
            "or raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.") from None
    return where


async def _run(base_url: str | None, api_key: str | None) -> int:
    from steer_llm_sdk import SteerLLMClient
    from steer_llm_sdk.orchestration import OrchestrationConfig, Orchestrator
    from steer_llm_sdk.providers import OpenAIProvider
    from steer_llm_sdk.report import format_report
    from steer_tools.examples import feasibility_tool

    tool = feasibility_tool()
    tool.llm = OpenAIProvider(api_key=api_key, base_url=base_url)
    tool.provider = tool.llm.breaker_name
    client = SteerLLMClient()
    client.register_tool(tool, replace=True)
    print(f"Registered tools: {client.list_tools()}")
    imported = time.perf_counter()
    where = await _prefect_server()
    server_ready = time.perf_counter()
    print(f"Prefect API: {where} ({server_ready - imported:.1f} s)")
    print(f"Question: {QUESTION}\nRunning k=5 replicates as one Prefect flow run...\n")
    events: list[str] = []
    out = await Orchestrator().run(
        {"query": QUESTION}, "feasibility", {"k": 5, "early_stop": False},
        OrchestrationConfig(budget={"cost_usd": 0.50}),
        on_event=lambda e: events.append(e.type),
    )
    finished = time.perf_counter()
    print(format_report(out, ui_url=ui_url_for(out.metadata.get("flow_run_id"))))
    print(f"Events: {' > '.join(dict.fromkeys(events))}")
    print(f"\nWall time {finished - _STARTED:.1f} s: Python and imports "
          f"{imported - _STARTED:.1f} s, Prefect API ready {server_ready - imported:.1f} s, "
          f"the flow run {finished - server_ready:.1f} s, of which the analysis itself "
          f"{out.elapsed_ms / 1000:.2f} s (5 LLM calls + statistics); the rest of the flow run "
          "is Prefect's own work (creating it, recording states, task runs and artifacts).")
    if "embedded" in where:
        print("\nThat embedded server has no UI and stops with this process. To skip its start-up "
              "and see runs in the Prefect UI:\n  .venv/bin/steer server start   # once; prints "
              "the UI address\n  make demo                      # this and later runs (and your "
              "scripts) find it by themselves")
    await asyncio.to_thread(flush_prefect_workers)  # while the simulator and server still run
    return 0 if out.status != "failed" else 1


def main() -> int:
    quiet_prefect_console()
    api_key = os.environ.get("OPENAI_API_KEY")
    if api_key:
        print("OPENAI_API_KEY is set: calling the OpenAI API "
              f"({os.environ.get('OPENAI_BASE_URL', 'https://api.openai.com/v1')}).")
        return asyncio.run(_run(None, None))
    from steer_llm_sdk.testing import SimulatorServer

    with SimulatorServer() as sim:
        print(f"No OPENAI_API_KEY: using the bundled OpenAI-compatible simulator at "
              f"{sim.base_url}")
        return asyncio.run(_run(sim.base_url, "sk-simulator"))


if __name__ == "__main__":
    sys.exit(main())
