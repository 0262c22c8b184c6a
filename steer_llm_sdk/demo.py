"""`make demo`: a real feasibility analysis end to end, K=5 replicates in one Prefect flow run.

Without OPENAI_API_KEY it starts the bundled OpenAI-compatible simulator on 127.0.0.1 and runs
against it (same openai client, HTTP, breakers and retries); with a key it calls OpenAI.
"""

from __future__ import annotations

import asyncio
import os
import sys

from steer_llm_sdk.quiet import quiet_prefect_console, ui_url_for

QUESTION = ("Migrate our 40-service monolith's billing module to an event-driven design in "
            "one quarter with a team of four engineers, without downtime.")


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
    print(f"Question: {QUESTION}\nRunning k=5 replicates as one Prefect flow run...\n")
    events: list[str] = []
    out = await Orchestrator().run(
        {"query": QUESTION}, "feasibility", {"k": 5, "early_stop": False},
        OrchestrationConfig(budget={"cost_usd": 0.50}),
        on_event=lambda e: events.append(e.type),
    )
    print(format_report(out, ui_url=ui_url_for(out.metadata.get("flow_run_id"))))
    print(f"Events: {' > '.join(dict.fromkeys(events))}")
    if not os.environ.get("PREFECT_API_URL"):
        print("\nThis run used Prefect's embedded server (no UI). To inspect runs in the "
              "Prefect UI:\n  .venv/bin/steer server start   # prints the UI address and the "
              "PREFECT_API_URL to export\n  export PREFECT_API_URL=http://127.0.0.1:4200/api && "
              "make demo   # then open the printed link")
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
