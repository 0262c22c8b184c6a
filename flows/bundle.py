"""How a bundle's replicates are scheduled inside the flow run: bounded parallelism, early stop,
budgets, and failed replicates turned into invalid replicates instead of a failed bundle.

Request, options and replicates go to the task runs inside ``quote``: Prefect otherwise walks
every task parameter twice per task run looking for futures (to resolve them and to record
lineage), which for K replicates of a large answer was most of the engine's CPU per task run;
none of these can hold a future."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from prefect.utilities.annotations import quote
from steer_llm_sdk.tasks.durable import durable_task_options
from steer_llm_sdk.tasks.eager import replicate_options
from steer_llm_sdk.tasks.replicate import run_replicate
from steer_llm_sdk.tasks.runtime import RunSession
from steer_llm_sdk.tasks.statistics import compute_statistics

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.errors import BudgetExceeded, OrchestratorError
from steer_llm_sdk.reliability.classification import classify_exception
from steer_tools.bundle import BundleOptions, BundleTool
from steer_tools.evidence import EvidenceBundle, Replicate, ReplicateQuality
from steer_tools.statistics import replicate_distance
from steer_tools.statistics.summary import list_modes


@dataclass
class BundleRun:
    bundle: EvidenceBundle
    failures: dict[str, dict[str, Any]]
    skipped_for_budget: list[str]


def error_info(exc: BaseException) -> dict[str, Any]:
    """Every failure gets a category: provider errors carry theirs, anything else (Prefect's
    TaskRunTimeoutError -> timeout, a tool's own exception -> unknown) is classified here."""
    if isinstance(exc, OrchestratorError):
        return exc.to_dict()
    classified = classify_exception(exc)
    return {"type": type(exc).__name__, "message": str(exc) or repr(exc), "code": "error",
            "is_retryable": classified.is_retryable, "category": classified.category}


def _failed_replicate(rid: str, seed: int, exc: BaseException, elapsed_ms: float) -> Replicate:
    info = error_info(exc)
    return Replicate(
        id=rid, data=None, seed=seed, elapsed_ms=round(elapsed_ms, 3),
        quality=ReplicateQuality(valid=False, errors=[f"{info['type']}: {info['message']}"]),
    )


def _enforce_replicate_budget(rep: Replicate, options: BundleOptions) -> Replicate:
    limits = options.per_replicate_budget or {}
    problems = []
    if "tokens" in limits and rep.usage.total_tokens > limits["tokens"]:
        problems.append(
            f"used {rep.usage.total_tokens} tokens > per-replicate {limits['tokens']:g}"
        )
    if "cost_usd" in limits and rep.cost_usd > limits["cost_usd"]:
        problems.append(f"cost ${rep.cost_usd:.6f} > per-replicate ${limits['cost_usd']:g}")
    if not problems:
        return rep
    quality = rep.quality.model_copy(
        update={"valid": False, "errors": [*rep.quality.errors, *problems]}
    )
    return rep.model_copy(update={"quality": quality})


class BundleScheduler:
    """Runs one bundle tool's replicates for one flow run."""

    def __init__(self, session: RunSession, session_id: str, tool: BundleTool,
                 request: dict[str, Any], options: dict[str, Any], cfg: OrchestrationConfig):
        self.session = session
        self.session_id = session_id
        self.tool = tool
        self.request = request
        self.raw_options = replicate_options(options, cfg)
        self.options = tool.parse_options(options)
        self.semaphore = asyncio.Semaphore(self.options.parallelism(cfg.max_parallel))
        self.cfg = cfg
        limits = session.budget.limits  # shared with the run: tightened in place
        limits.update(self.options.budget_limits(limits))
        self.seeds = self.options.resolved_seeds()
        # early stop compares replicates exactly as the bundle's matrix will (lists as sets)
        self.list_modes = list_modes(self.options.list_mode, tool.replicate_schema(self.options))
        self.results: dict[str, Replicate] = {}
        self.failures: dict[str, dict[str, Any]] = {}
        self.skipped: list[str] = []
        self._done = 0
        self._partial_sent = False
        self._distances: dict[tuple[str, str], float] = {}
        self.task = run_replicate.with_options(**session.task_options(cfg),
                                               **durable_task_options(session))
        session.scheduler = self  # a time/budget stop hands back what finished (flows/partial)

    async def _one(self, index: int) -> None:
        rid, seed = f"r{index + 1}", self.seeds[index]
        emitter, name = self.session.emitter, self.tool.name
        async with self.semaphore:
            spent = self.session.budget.first_exceeded(inclusive=True)
            if spent is not None:
                self.skipped.append(rid)
                return
            started = time.perf_counter()
            state = await self.task(self.session_id, name, quote(self.request), seed, rid,
                                    quote(self.raw_options), return_state=True)
        elapsed = (time.perf_counter() - started) * 1000
        if state.is_completed():
            if state.name == "Cached":  # finished in an earlier attempt of this run key
                self.session.resumed.append(rid)
            rep = _enforce_replicate_budget(await state.result(), self.options)
            self.session.budget.add(rep.usage, rep.cost_usd)
            await emitter.emit("replicate_done", tool_name=name, replicate_id=rid,
                               valid=rep.quality.valid, elapsed_ms=rep.elapsed_ms,
                               tokens=rep.usage.total_tokens, cost_usd=rep.cost_usd)
        else:
            exc = await state.result(raise_on_failure=False)
            exc = exc if isinstance(exc, BaseException) else RuntimeError(state.message)
            rep = _failed_replicate(rid, seed, exc, elapsed)
            self.failures[rid] = error_info(exc)
            await emitter.emit("replicate_failed", tool_name=name, replicate_id=rid,
                               error=self.failures[rid])
        self.results[rid] = rep
        self._done += 1
        if self._done == 2 and self.options.k > 2 and not self._partial_sent:
            self._partial_sent = True
            await self._emit_partial()

    def _distance(self, a: Replicate, b: Replicate) -> float:
        """partial_summary and the early-stop check compare the same first pair; once is
        enough (a few ms per pair at 1,000 fields)."""
        key = tuple(sorted((a.id, b.id)))
        if key not in self._distances:
            self._distances[key] = replicate_distance(a.data, b.data, self.list_modes)
        return self._distances[key]

    async def _emit_partial(self) -> None:
        reps = [r for r in self.results.values() if r.quality.valid]
        distance = self._distance(reps[0], reps[1]) if len(reps) >= 2 else None
        await self.session.emitter.emit(
            "partial_summary", tool_name=self.tool.name, completed=self._done,
            valid=len(reps), distance=distance,
        )

    def _early_stop_reason(self) -> str | None:
        first = [self.results.get("r1"), self.results.get("r2")]
        if any(r is None or not r.quality.valid for r in first):
            return None
        distance = self._distance(first[0], first[1])
        if distance <= self.options.epsilon:
            return (f"first 2 replicates agree: distance {distance:.4f} <= epsilon "
                    f"{self.options.epsilon}; skipped {self.options.k - 2} replicates")
        return None

    async def run(self) -> BundleRun:
        """All replicates, then statistics; BundleOptions.timeout_ms bounds the replicates."""
        limit_ms = self.options.timeout_ms
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit_ms / 1000 if limit_ms else None):
                reason = await self._run_replicates()
        except TimeoutError as exc:
            actual = round((time.perf_counter() - started) * 1000, 3)
            raise BudgetExceeded(
                "time", float(limit_ms or 0), actual,
                f"bundle {self.tool.name!r} exceeded BundleOptions.timeout_ms={limit_ms} (ran "
                f"{actual:.0f} ms); raise timeout_ms or lower k") from exc
        k = self.options.k
        replicates = [self.results[f"r{i + 1}"] for i in range(k) if f"r{i + 1}" in self.results]
        bundle = await compute_statistics(
            self.session_id, self.tool.name, quote(replicates), quote(self.raw_options),
            (time.perf_counter() - started) * 1000, reason is not None, reason,
        )
        return BundleRun(bundle=bundle, failures=self.failures, skipped_for_budget=self.skipped)

    async def _run_replicates(self) -> str | None:
        """Returns the early-stop reason, or None when all k replicates ran."""
        k = self.options.k
        reason: str | None = None
        if self.options.stops_early:
            await asyncio.gather(self._one(0), self._one(1))
            reason = self._early_stop_reason()
            if reason is not None:
                await self.session.emitter.emit("early_stop", tool_name=self.tool.name,
                                                reason=reason)
            else:
                await asyncio.gather(*(self._one(i) for i in range(2, k)))
        else:
            await asyncio.gather(*(self._one(i) for i in range(k)))
        return reason
