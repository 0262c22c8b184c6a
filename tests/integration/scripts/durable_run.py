"""Run one keyed orchestration in a fresh process; the durability test kills it mid-run.

argv: simulator base URL, idempotency key, seeds (JSON list), lease seconds.
"""

import asyncio
import json
import sys

from steer_llm_sdk.config import ReliabilityConfig
from steer_llm_sdk.orchestration import OrchestrationConfig, Orchestrator, ToolRegistry
from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.llm_bundle import LLMBundleTool


def tool(base_url: str) -> LLMBundleTool:
    return LLMBundleTool(
        name="durable", model="openai:gpt-4o-mini+latency=1", system="Answer.",
        user_template="{query}", provider=OpenAIProvider(api_key="sk-test", base_url=base_url))


async def main(base_url: str, key: str, seeds: str, lease_s: str) -> None:
    registry = ToolRegistry()
    registry.register_tool(tool(base_url))
    orchestrator = Orchestrator(registry, reliability_config=ReliabilityConfig(
        idempotency_lease_s=float(lease_s)))
    options = {"k": len(json.loads(seeds)), "seeds": json.loads(seeds), "early_stop": False}
    out = await orchestrator.run("Will it survive a crash?", "durable", options,
                                 OrchestrationConfig(idempotency_key=key, max_parallel=1))
    print(out.model_dump_json())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
