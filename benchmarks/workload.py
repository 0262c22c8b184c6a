"""The measured work: K replicates of one LLMBundleTool against the simulator, run either as an
orchestration (one Prefect flow run, K task runs) or as a bare-asyncio baseline that makes the
same K calls with the same openai client settings concurrently.

Import only after ``_env.prepare_process_env`` (this imports Prefect).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.orchestration import Orchestrator, ToolRegistry
from steer_llm_sdk.output import OrchestrationOutput
from steer_llm_sdk.providers import OpenAIProvider
from steer_llm_sdk.testing import SimulatorServer
from steer_tools.llm_bundle import LLMBundleTool

QUERY = ("Migrate our 40-service monolith's billing module to an event-driven design in one "
         "quarter with a team of four engineers, without downtime.")
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "feasible": {"type": "boolean"},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "risks": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
    },
    "required": ["feasible", "score", "risks"],
}
API_KEY = "sk-simulator"


def tool_name(latency_s: float) -> str:
    return f"bench_l{round(latency_s * 1000)}ms"


@dataclass
class Workload:
    """One simulator, one provider (one openai client per loop, as in production) and one
    bundle tool per injected latency."""

    sim: SimulatorServer | Any  # or benchmarks._env.SimulatorProcess: only base_url is used
    registry: ToolRegistry = field(default_factory=ToolRegistry)
    tools: dict[float, LLMBundleTool] = field(default_factory=dict)
    baseline_client: AsyncOpenAI | None = None

    def __post_init__(self) -> None:
        self.provider = OpenAIProvider(api_key=API_KEY, base_url=self.sim.base_url)

    def tool(self, latency_s: float) -> LLMBundleTool:
        tool = self.tools.get(latency_s)
        if tool is None:
            model = "openai:gpt-4o-mini" + (f"+latency={latency_s:g}" if latency_s else "")
            tool = LLMBundleTool(
                name=tool_name(latency_s), model=model,
                system="You are a pragmatic delivery lead. Answer only with JSON.",
                user_template="Assess the feasibility of this plan: {query}",
                output_schema=SCHEMA, temperature=0.8, provider=self.provider,
            )
            self.registry.register_tool(tool)
            self.tools[latency_s] = tool
        return tool

    async def orchestrate(self, k: int, latency_s: float,
                          orchestrator: Orchestrator | None = None) -> float:
        """Wall time of one ``Orchestrator().run``; fails loudly unless all K succeeded."""
        tool = self.tool(latency_s)
        orchestrator = orchestrator or Orchestrator(self.registry)
        started = time.perf_counter()
        out = await orchestrator.run({"query": QUERY}, tool.name,
                                     {"k": k, "early_stop": False},
                                     OrchestrationConfig(max_parallel=min(k, 50)))
        elapsed = time.perf_counter() - started
        check_output(out, k)
        return elapsed

    async def baseline(self, k: int, latency_s: float) -> float:
        """The same K requests (model, messages, seed, response_format, temperature, timeout),
        issued concurrently with one openai client and no engine around them."""
        tool = self.tool(latency_s)
        if self.baseline_client is None:
            self.baseline_client = AsyncOpenAI(api_key=API_KEY, base_url=self.sim.base_url,
                                               max_retries=0, timeout=60.0)
        client = self.baseline_client
        messages = tool.messages({"query": QUERY})
        response_format = tool.response_format()

        async def one(seed: int) -> Any:
            response = await client.chat.completions.create(
                model=tool.model_name, messages=messages,  # type: ignore[arg-type]
                temperature=tool.temperature, seed=seed,
                response_format=response_format,  # type: ignore[arg-type]
                timeout=60.0,
            )
            return json.loads(response.choices[0].message.content or "null")

        started = time.perf_counter()
        results = await asyncio.gather(*(one(seed) for seed in range(1, k + 1)))
        elapsed = time.perf_counter() - started
        if len(results) != k or any(r is None for r in results):
            raise RuntimeError("baseline: a call returned no content")
        return elapsed

    async def aclose(self) -> None:
        if self.baseline_client is not None:
            await self.baseline_client.close()
            self.baseline_client = None


def check_output(out: OrchestrationOutput, k: int) -> None:
    bundle = out.evidence_bundle
    if out.status != "succeeded" or bundle is None or bundle.meta.k_completed != k:
        raise RuntimeError(f"orchestration did not complete all {k} replicates: "
                           f"status={out.status} errors={out.errors}")


@dataclass
class Samples:
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def as_dict(self) -> dict[str, Any]:
        return {"median_s": round(self.median, 4), "min_s": round(min(self.values), 4),
                "max_s": round(max(self.values), 4),
                "samples_s": [round(v, 4) for v in self.values]}


async def paired(reps: int, first: Callable[[], Awaitable[float]],
                 second: Callable[[], Awaitable[float]]) -> tuple[Samples, Samples]:
    """Alternate the two measurements so slow drift (server DB growth, GC) hits both."""
    a, b = Samples(), Samples()
    for _ in range(reps):
        a.values.append(await first())
        b.values.append(await second())
    return a, b
