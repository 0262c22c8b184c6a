"""Fault matrix and random-fault run against the bundled simulator (``make faults``).

    python scripts/fault_matrix.py [--write docs/reliability.md] [--runs 30] [--seed 7]

Part 1, the matrix: one k=3 orchestration per fault with the default configuration (default
retries and breakers; breakers reset between rows so rows are independent), reporting the run
status, HTTP status, error categories, requests the simulator received, wall time, and tokens
reported by the SDK vs. billed by the simulator.

Part 2, the random-fault run: ``--runs`` orchestrations (seeded), 5 at a time on one loop
sharing the process-wide breakers, each replicate drawing its own fault; it counts hangs
(a run not back within its timeout + 5 s), unclassified errors (no category, or ``unknown``)
and runs whose reported tokens differ from what the simulator answered for that run.

With ``--write`` the two tables replace the block between the ``fault-matrix`` markers of the
given markdown file. Prefect runs on its embedded server in a throwaway PREFECT_HOME.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HOME = tempfile.mkdtemp(prefix="steer-faults-")
os.environ.setdefault("PREFECT_HOME", os.path.join(_HOME, "prefect"))
os.environ["STEER_HOME"] = os.path.join(_HOME, "steer")
for key, value in {"PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                   "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
                   "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}.items():
    os.environ.setdefault(key, value)
os.environ.pop("PREFECT_API_URL", None)

from steer_llm_sdk.config import OrchestrationConfig  # noqa: E402
from steer_llm_sdk.errors import BudgetExceeded  # noqa: E402
from steer_llm_sdk.orchestration import BundleTool, Orchestrator, ToolRegistry  # noqa: E402
from steer_llm_sdk.providers import OpenAIProvider  # noqa: E402
from steer_llm_sdk.reliability import get_breaker_registry  # noqa: E402
from steer_llm_sdk.testing import SimulatorServer  # noqa: E402
from steer_tools.llm_bundle import LLMBundleTool  # noqa: E402

CHAT = "/v1/chat/completions"
MARK_START, MARK_END = "<!-- fault-matrix:start -->", "<!-- fault-matrix:end -->"
# (fault tokens in the model name, HTTP status the fault answers with, extra config)
MATRIX: list[tuple[str, str, dict[str, Any]]] = [
    ("", "200", {}),
    ("fail=1:503", "503 then 200", {}),
    ("fail=2:503", "503 x2 then 200", {}),
    ("fail=2:429", "429 x2 then 200", {}),
    ("fail=1:429+retry_after=1", "429 (Retry-After 1) then 200", {}),
    ("status=429", "429", {}),
    ("status=500", "500", {}),
    ("status=503", "503", {}),
    ("status=400", "400", {}),
    ("status=401", "401", {}),
    ("drop", "none (connection dropped)", {}),
    ("malformed", "200, body not JSON", {}),
    ("content_filter", "200, finish_reason content_filter", {}),
    ("invalid_json_content", "200, content not JSON", {}),
    ("hang=30", "none (hangs)", {"per_agent_timeout_ms": 1000}),
    ("hang=30", "none (hangs)", {"timeout_ms": 3000}),
]
RANDOM_FAULTS = ["", "", "", "fail=1:503", "fail=2:503", "fail=1:429", "status=500", "drop",
                 "malformed", "content_filter", "invalid_json_content", "latency=0.3",
                 "hang=30", "status=400"]


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"},
                                           "score": {"type": "number"}},
          "required": ["answer", "score"]}


class PerReplicateFaults(BundleTool):
    """Each replicate asks for its own fault (``faults[replicate_id]``) via the model name;
    otherwise exactly ``LLMBundleTool`` with a JSON schema (one per fault, same provider)."""

    name = "faulty"
    eager_start = True
    output_schema = SCHEMA

    def __init__(self, base_url: str, faults: dict[str, str]) -> None:
        self.llm = OpenAIProvider(api_key="sk-sim", base_url=base_url)
        self.provider = self.llm.breaker_name
        self.faults = faults
        self._tools: dict[str, LLMBundleTool] = {}

    def _tool(self, fault: str) -> LLMBundleTool:
        if fault not in self._tools:
            model = "openai:gpt-4o-mini" + (f"+{fault}" if fault else "")
            self._tools[fault] = LLMBundleTool(
                name=self.name, model=model, system="Answer.", user_template="{query}",
                output_schema=SCHEMA, provider=self.llm)
        return self._tools[fault]

    async def run_replicate(self, request: dict[str, Any], seed: int, context: Any) -> Any:
        tool = self._tool(self.faults.get(context.replicate_id, ""))
        return await tool.run_replicate(request, seed, context)


def orchestrator(tool: BundleTool) -> Orchestrator:
    registry = ToolRegistry()
    registry.register_tool(tool)
    return Orchestrator(registry)


async def one_run(sim: SimulatorServer, faults: dict[str, str], extra: dict[str, Any],
                  query: str) -> dict[str, Any]:
    tool = PerReplicateFaults(sim.base_url, faults)
    cfg = OrchestrationConfig(**extra)
    started = time.perf_counter()
    limit = (cfg.timeout_ms or 60_000) / 1000 + 5
    row: dict[str, Any] = {}
    try:
        out = await asyncio.wait_for(
            orchestrator(tool).run(query, tool.name, {"k": 3, "early_stop": False}, cfg), limit)
    except TimeoutError:
        return {"status": "HANG", "wall_s": time.perf_counter() - started, "categories": [],
                "tokens": None, "unaccounted": None, "trace_id": cfg.trace_id}
    except BudgetExceeded as exc:
        out = exc.partial_output
        row["stopped"] = exc.budget_type
    row["wall_s"] = time.perf_counter() - started
    row["status"] = (out.status if out is not None else "failed") + (
        f" ({row['stopped']} stop)" if "stopped" in row else "")
    errors = (out.errors or {}) if out is not None else {}
    row["categories"] = sorted({str(e.get("category") or e.get("code") or "NONE")
                                for e in errors.values()})
    row["unclassified"] = [name for name, e in errors.items()
                           if not (e.get("category") or e.get("code"))
                           or e.get("category") == "unknown"]
    row["tokens"] = out.usage.get("total_tokens", 0) if out is not None else 0
    row["unaccounted"] = out.metadata.get("unaccounted_calls") if out is not None else None
    row["trace_id"] = out.metadata.get("trace_id") if out is not None else None
    return row


def requests_of(sim: SimulatorServer, trace_id: str | None) -> tuple[int, int]:
    records = [r for r in sim.stats.records if r.path == CHAT and r.trace_id == trace_id]
    return len(records), sum(r.usage_tokens or 0 for r in records if r.outcome == "ok")


async def matrix(sim: SimulatorServer) -> list[str]:
    lines = ["| fault (per request) | HTTP status | run status | categories | requests | "
             "wall (s) | tokens reported / billed | unaccounted calls |",
             "|---|---|---|---|---|---|---|---|"]
    for fault, status, extra in MATRIX:
        get_breaker_registry().clear()
        trace = os.urandom(8).hex()
        row = await one_run(sim, dict.fromkeys(("r1", "r2", "r3"), fault),
                            {**extra, "trace_id": trace}, f"matrix {fault}")
        requests, billed = requests_of(sim, trace)
        label = fault or "(none)"
        label += "".join(f", {k}={v}" for k, v in extra.items())
        lines.append(f"| `{label}` | {status} | {row['status']} | "
                     f"{', '.join(row['categories']) or '-'} | {requests} | "
                     f"{row['wall_s']:.2f} | {row['tokens']} / {billed} | "
                     f"{row['unaccounted']} |")
        print(lines[-1], flush=True)
    return lines


async def random_runs(sim: SimulatorServer, runs: int, seed: int) -> list[str]:
    get_breaker_registry().clear()
    rng = random.Random(seed)
    plans = []
    for i in range(runs):
        faults = {f"r{j + 1}": rng.choice(RANDOM_FAULTS) for j in range(3)}
        extra = {"timeout_ms": 15000, "per_agent_timeout_ms": 1000,
                 "trace_id": f"{seed:04d}{i:04d}{os.urandom(4).hex()}"}
        plans.append((faults, extra))
    rows: list[dict[str, Any]] = []
    for start in range(0, runs, 5):
        batch = plans[start:start + 5]
        rows += await asyncio.gather(*(one_run(sim, f, e, f"random {start + i}")
                                       for i, (f, e) in enumerate(batch)))
    hangs = sum(r["status"] == "HANG" for r in rows)
    unclassified = sum(len(r.get("unclassified", [])) for r in rows)
    mismatched = []
    for (faults, _), row in zip(plans, rows, strict=True):
        _, billed = requests_of(sim, row["trace_id"])
        if row["tokens"] is not None and row["tokens"] != billed:
            mismatched.append((faults, row["tokens"], billed))
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    walls = sorted(r["wall_s"] for r in rows)
    lines = [f"Random-fault run: {runs} orchestrations (seed {seed}, 5 at a time, k=3, each "
             f"replicate drawing from {len(RANDOM_FAULTS)} faults, timeout_ms=15000, "
             "per_agent_timeout_ms=1000, default retries and shared breakers).", "",
             "| hangs | unclassified errors | runs whose reported tokens differ from the "
             "simulator's | run statuses | unaccounted calls | wall p50 / max (s) |",
             "|---|---|---|---|---|---|",
             f"| {hangs} | {unclassified} | {len(mismatched)} | "
             f"{', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))} | "
             f"{sum(r['unaccounted'] or 0 for r in rows)} | "
             f"{walls[len(walls) // 2]:.2f} / {walls[-1]:.2f} |"]
    for faults, reported, billed in mismatched:
        lines.append(f"- mismatch: {faults}: reported {reported}, billed {billed}")
    print("\n".join(lines), flush=True)
    return lines


def write(path: Path, block: list[str]) -> None:
    text = path.read_text()
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    path.write_text(head + MARK_START + "\n" + "\n".join(block) + "\n" + MARK_END + tail)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with SimulatorServer() as sim:
        await orchestrator(PerReplicateFaults(sim.base_url, {})).run(
            "warm-up", "faulty", {"k": 2, "early_stop": False})  # server start-up, once
        table = await matrix(sim)
        summary = await random_runs(sim, args.runs, args.seed)
    block = [f"Generated by `make faults` (scripts/fault_matrix.py) on Python "
             f"{sys.version.split()[0]}; wall times depend on the machine.", "", *table, "",
             *summary]
    if args.write:
        write(args.write, block)


if __name__ == "__main__":
    asyncio.run(main())
