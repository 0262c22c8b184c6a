"""First runs in a fresh process, started concurrently (issue 10, item 1).

argv: simulator base URL. Runs, in this order, in one fresh process: 3 then 20 runs gathered on
one new loop each, 8 threads calling run_sync at once, and 3 threads each running its own loop
with 2 gathered runs. Prints one JSON line: scenario -> list of outcomes ("succeeded" or the
exception text), plus the number of requests each scenario is expected to send.
"""

import asyncio
import json
import sys
import threading
import time

from steer_llm_sdk.orchestration import Orchestrator, ToolRegistry
from steer_llm_sdk.providers import OpenAIProvider
from steer_tools.llm_bundle import LLMBundleTool

OPTIONS = {"k": 2, "early_stop": False}


def orchestrator(base_url: str) -> Orchestrator:
    registry = ToolRegistry()
    registry.register_tool(LLMBundleTool(
        name="cold", model="openai:gpt-4o-mini", system="Answer.", user_template="{query}",
        provider=OpenAIProvider(api_key="sk-test", base_url=base_url)))
    return Orchestrator(registry)


def outcome(result: object) -> str:
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    return str(getattr(result, "status", result))


async def gathered(orch: Orchestrator, n: int) -> list[str]:
    results = await asyncio.gather(*(orch.run(f"q{i}", "cold", OPTIONS) for i in range(n)),
                                   return_exceptions=True)
    return [outcome(r) for r in results]


def in_threads(count: int, target) -> list[str]:
    results: list[str] = [""] * count

    def work(i: int) -> None:
        try:
            results[i] = target(i)
        except BaseException as exc:  # reported, not raised
            results[i] = outcome(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main(base_url: str) -> None:
    orch = orchestrator(base_url)
    report: dict[str, list[str]] = {}
    walls: dict[str, float] = {}
    started = time.perf_counter()
    report["gather3"] = asyncio.run(gathered(orch, 3))
    walls["gather3"] = time.perf_counter() - started
    report["gather20"] = asyncio.run(gathered(orch, 20))
    report["run_sync_8_threads"] = in_threads(
        8, lambda i: outcome(orch.run_sync(f"t{i}", "cold", OPTIONS)))
    loops = in_threads(3, lambda i: json.dumps(asyncio.run(gathered(orch, 2))))
    report["3_loops_x2"] = [o for text in loops for o in json.loads(text)]
    walls["total"] = time.perf_counter() - started
    print(json.dumps({"outcomes": report, "wall_s": walls}))


if __name__ == "__main__":
    main(sys.argv[1])
