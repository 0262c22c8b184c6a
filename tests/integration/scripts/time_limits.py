"""timeout_ms and cancellation in a fresh process (issue 10, item 5).

argv: simulator base URL. In one fresh process (no Prefect server yet):
1. cancel a first run 0.5 s after calling it (the embedded server is still starting);
2. a run with timeout_ms=3000 started right after (start-up still in progress);
3. once the server is up, a run whose replicates hang, cancelled while its flow runs;
then reads every flow run back. Prints one JSON line with what happened and wall times.
"""

import asyncio
import json
import sys
import time
import uuid

from prefect.client.orchestration import get_client

from steer_llm_sdk.errors import BudgetExceeded
from steer_llm_sdk.orchestration import OrchestrationConfig, Orchestrator, ToolRegistry
from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.llm_bundle import LLMBundleTool

OPTIONS = {"k": 3, "early_stop": False}


def orchestrator(base_url: str) -> Orchestrator:
    registry = ToolRegistry()
    for name, model in (("healthy", "gpt-4o-mini"), ("hangs", "gpt-4o-mini+hang=30")):
        registry.register_tool(LLMBundleTool(
            name=name, model=f"openai:{model}", system="Answer.", user_template="{query}",
            provider=OpenAIProvider(api_key="sk-test", base_url=base_url)))
    return Orchestrator(registry)


async def cancelled_after(orch: Orchestrator, tool: str, delay: float) -> dict:
    trace = uuid.uuid4().hex
    task = asyncio.ensure_future(orch.run("q", tool, OPTIONS, OrchestrationConfig(
        trace_id=trace)))
    await asyncio.sleep(delay)
    cancelled_at = time.perf_counter()
    task.cancel()
    try:
        await task
        outcome = "finished"
    except asyncio.CancelledError:
        outcome = "cancelled"
    return {"outcome": outcome, "return_after_cancel_s": round(
        time.perf_counter() - cancelled_at, 3), "trace_id": trace}


async def timed(orch: Orchestrator) -> dict:
    started = time.perf_counter()
    try:
        out = await orch.run("q", "healthy", OPTIONS, OrchestrationConfig(timeout_ms=3000))
        result = {"outcome": out.status}
    except BudgetExceeded as exc:
        partial = getattr(exc, "partial_output", None)
        result = {"outcome": f"BudgetExceeded:{exc.budget_type}",
                  "partial_status": partial.status if partial else None,
                  "partial_replicates": partial.content["meta"]["k_completed"]
                  if partial else None}
    result["wall_s"] = round(time.perf_counter() - started, 3)
    return result


async def flow_run_states() -> dict[str, str]:
    async with get_client() as client:
        runs = await client.read_flow_runs()
    return {run.name: run.state.type.value for run in runs if run.state}


async def main(base_url: str) -> None:
    orch = orchestrator(base_url)
    report = {"cancel_during_startup": await cancelled_after(orch, "hangs", 0.5),
              "timeout_3000_during_startup": await timed(orch)}
    await orch.run("q", "healthy", OPTIONS)  # the server is up from here on
    report["cancel_while_flow_runs"] = await cancelled_after(orch, "hangs", 2.0)
    await asyncio.sleep(1.0)  # let the server record what the client sent
    report["flow_runs"] = await flow_run_states()
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
