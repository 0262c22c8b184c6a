"""Run one idempotent orchestration in a fresh process (used by the cross-process test).

argv: simulator base URL, idempotency key, query. Prints the OrchestrationOutput JSON.
"""

import asyncio
import sys

from steer_llm_sdk.orchestration import OrchestrationConfig, ReliableOrchestrator, ToolRegistry
from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.llm_bundle import LLMBundleTool


async def main(base_url: str, key: str, query: str) -> None:
    registry = ToolRegistry()
    registry.register_tool(LLMBundleTool(
        name="idem", model="openai:gpt-4o-mini", system="Answer.", user_template="{query}",
        provider=OpenAIProvider(api_key="sk-test", base_url=base_url)))
    out = await ReliableOrchestrator(registry=registry).run(
        query, "idem", {"k": 2, "early_stop": False}, OrchestrationConfig(idempotency_key=key))
    print(out.model_dump_json())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
