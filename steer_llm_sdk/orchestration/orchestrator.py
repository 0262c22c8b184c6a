"""Orchestrator facade: validates input, handles idempotency, starts one Prefect flow run and
turns its final state into an OrchestrationOutput (or the error the caller should see)."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import hashlib
import threading
import time
import uuid
from typing import Any

from prefect import tags as prefect_tags

from steer_llm_sdk.api_tls import fast_http_api_clients
from steer_llm_sdk.config import OrchestrationConfig, ReliabilityConfig
from steer_llm_sdk.console import install_console_filter
from steer_llm_sdk.ephemeral import ephemeral_mode, start_ephemeral_server, use_local_steer_server
from steer_llm_sdk.errors import BudgetExceeded
from steer_llm_sdk.events import EventCallback
from steer_llm_sdk.flows.attempts import open_breaker_error
from steer_llm_sdk.flows.evidence import analysis_tag
from steer_llm_sdk.flows.labels import wanted_tags
from steer_llm_sdk.flows.orchestrate import in_process_flow
from steer_llm_sdk.flows.outputs import apply_ledger
from steer_llm_sdk.orchestration.deadline import bounded
from steer_llm_sdk.output import OrchestrationOutput, output_from_result
from steer_llm_sdk.reliability.idempotency import IdempotencyStore, make_idempotency_store
from steer_llm_sdk.reliability.run_claims import RunClaim, claim_run
from steer_llm_sdk.shared_api_client import shared_api_client
from steer_llm_sdk.tasks.durable import stored_replicates
from steer_llm_sdk.tasks.eager import discard_eager_calls, start_eager_replicates
from steer_llm_sdk.tasks.runtime import RunSession, pop_session, register_session
from steer_llm_sdk.validation import InputError, check_request
from steer_tools.base import Tool
from steer_tools.bundle import BundleTool
from steer_tools.inputs import (
    check_config,
    check_fallbacks,
    check_planned_options,
    check_tool_inputs,
    check_tool_options_shape,
)
from steer_tools.registry import ToolRegistry, get_global_registry
from steer_tools.resolve import resolve_tool

_CALLED_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "steer_run_called_at", default=None)


def run_coroutine_sync(coro: Any) -> Any:
    """Run a coroutine from sync code, also when the caller already has a running loop
    (e.g. Jupyter): then it runs to completion on a private thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop_running = False
    else:
        loop_running = True
    if not loop_running:  # outside the except block, so errors carry no chained RuntimeError
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="steer-run-sync")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _run_tags(tool_name: str | None, cfg: OrchestrationConfig) -> list[str]:
    tags = wanted_tags(tool_name or "planned", cfg.trace_id or "")
    if not tool_name:  # relabelled with the planner's choice by the flow (flows/labels.py)
        tags.remove("planned")
    if cfg.idempotency_key:
        digest = hashlib.sha256(cfg.idempotency_key.encode()).hexdigest()[:12]
        tags.append(f"idem:{digest}")
    tags += [f"{k}:{v}" for k, v in cfg.metadata.items() if isinstance(v, str) and len(v) < 60]
    return tags


class BaseOrchestrator:
    """What both orchestrators share: config handling, idempotency, the flow call."""

    requires_tool_name = True

    def __init__(
        self,
        registry: ToolRegistry | None = None,
        *,
        reliability_config: ReliabilityConfig | None = None,
        idempotency_store: IdempotencyStore | None = None,
        planner: Any = None,
    ) -> None:
        self.registry = registry if registry is not None else get_global_registry()
        self.reliability_config = reliability_config or ReliabilityConfig()
        if self.reliability_config.breaker_url:  # breakers are process-wide, so is their store
            from steer_llm_sdk.reliability.breaker_store import configure_breaker_store

            configure_breaker_store(self.reliability_config.breaker_url)
        self._idempotency_store = idempotency_store
        self.planner = planner

    @property
    def idempotency_store(self) -> IdempotencyStore:
        if self._idempotency_store is None:
            self._idempotency_store = make_idempotency_store(None)
        return self._idempotency_store

    async def run(
        self,
        request: dict[str, Any] | str,
        tool_name: str | None = None,
        tool_options: dict[str, Any] | None = None,
        options: OrchestrationConfig | None = None,
        on_event: EventCallback | None = None,
    ) -> OrchestrationOutput:
        if tool_name is None and self.requires_tool_name:
            raise ValueError(
                "tool_name is required for Orchestrator; available tools: "
                f"{', '.join(self.registry.list_tools()) or '(none)'}. Use "
                "ReliableOrchestrator to let a planner choose"
            )
        if options is not None and not isinstance(options, OrchestrationConfig):
            raise TypeError("options must be an OrchestrationConfig, got "
                            f"{type(options).__name__}; build one with OrchestrationConfig(...)")
        token = _CALLED_AT.set(time.monotonic())  # timeout_ms counts from here
        try:
            return await self._run(request, tool_name, tool_options, options, on_event)
        finally:
            _CALLED_AT.reset(token)

    async def _run(self, request: dict[str, Any] | str, tool_name: str | None,
                   tool_options: dict[str, Any] | None, options: OrchestrationConfig | None,
                   on_event: EventCallback | None) -> OrchestrationOutput:
        if on_event is not None and not callable(on_event):
            raise InputError("on_event", on_event, "None or a callable taking one "
                             "OrchestrationEvent (sync or async)")
        # Everything is checked here, before a flow run exists or a provider is called.
        payload = copy.deepcopy(check_request(request))
        tool_options = copy.deepcopy(check_tool_options_shape(tool_options))
        if options is not None:  # re-checked: fields assigned after construction skip pydantic
            check_config(options.model_dump())
        base = options or OrchestrationConfig()
        # ids travel as HTTP headers: check_config / check_tool_options_shape above already
        # held both sources to printable ASCII (validation.check_header_id)
        cfg = base.model_copy(update={  # BundleOptions may carry the caller's ids too
            "trace_id": base.trace_id or tool_options.get("trace_id") or uuid.uuid4().hex,
            "request_id": base.request_id or tool_options.get("request_id") or uuid.uuid4().hex,
            "metadata": dict(base.metadata),
        })
        tool = None
        if tool_name is not None:  # unknown tool or bad request: ValueError before any run
            tool = resolve_tool(tool_name, self.registry)
            check_tool_inputs(tool, payload, tool_options, cfg)
        else:
            check_planned_options(self.registry, tool_options)
        check_fallbacks(self.registry, cfg, tool_options)
        if not cfg.idempotency_key:
            return await self._execute(payload, tool_name, tool, tool_options, cfg, on_event)
        return await self._idempotent(payload, tool_name, tool, tool_options, cfg, on_event)

    def run_sync(self, *args: Any, **kwargs: Any) -> OrchestrationOutput:
        return run_coroutine_sync(self.run(*args, **kwargs))

    async def _idempotent(self, payload: dict[str, Any], tool_name: str | None, tool: Tool | None,
                          tool_options: dict[str, Any], cfg: OrchestrationConfig,
                          on_event: EventCallback | None) -> OrchestrationOutput:
        """The shared protocol of reliability/run_claims.py (the flow records its run on the
        claim and crashes the run of an owner it took over from: flows/orphans.py)."""
        assert cfg.idempotency_key
        claim, replay = await claim_run(self.idempotency_store, cfg, self.reliability_config,
                                        tool_name, payload, tool_options)
        if claim is None:
            assert replay is not None
            return replay
        try:
            out = await self._execute(payload, tool_name, tool, tool_options, cfg, on_event,
                                      claim=claim)
        except BaseException as exc:
            await claim.raised(exc)
            raise
        await claim.finish(out)
        return out

    async def _execute(self, payload: dict[str, Any], tool_name: str | None, tool: Tool | None,
                       tool_options: dict[str, Any], cfg: OrchestrationConfig,
                       on_event: EventCallback | None, claim: RunClaim | None = None,
                       ) -> OrchestrationOutput:
        session_id = uuid.uuid4().hex
        session = RunSession.create(cfg, registry=self.registry, on_event=on_event,
                                    reliability=self.reliability_config, planner=self.planner,
                                    started=self._called_at())
        if claim is not None:  # finished replicates persist under its key (tasks/durable.py)
            session.claim, session.run_key = claim, claim.key
        register_session(session_id, session)
        try:
            if tool is not None and cfg.eager_replicates:
                await _start_first_wave(session, payload, tool, tool_options, cfg)
            tags = _run_tags(tool_name, cfg)
            if tool is not None:  # the key drift compares by (flows/evidence.py)
                tags.append(analysis_tag(tool.name, payload))
            flow_call = asyncio.ensure_future(
                self._flow(session, session_id, payload, tool_name, tool_options, cfg, tags))
            state = await bounded(flow_call, session, cfg)
        except BudgetExceeded as stop:  # timeout_ms passed before the flow could stop itself
            state = stop
        finally:
            pop_session(session_id)
            await discard_eager_calls(session)
            await session.finish_deferred_writes()
        if isinstance(state, BudgetExceeded):
            partial = getattr(state, "partial_output", None)
            if isinstance(partial, OrchestrationOutput):
                apply_ledger(partial, session.ledger)  # cancelled calls have settled by now
            raise state
        output = await _output_from_state(state, session)
        apply_ledger(output, session.ledger)  # discarded eager calls have settled by now
        return output

    @staticmethod
    async def _flow(session: RunSession, session_id: str, payload: dict[str, Any],
                    tool_name: str | None, tool_options: dict[str, Any],
                    cfg: OrchestrationConfig, tags: list[str]) -> Any:
        """Server start-up (first run of a process) and the flow run; ``bounded`` times it."""
        if ephemeral_mode() and use_local_steer_server() is None:
            await start_ephemeral_server()  # off the loop: timeouts and cancellation still work
        install_console_filter()
        with prefect_tags(*tags), fast_http_api_clients():
            async with shared_api_client() as shared:
                # with one client per loop, artifacts may still be in flight when the
                # flow returns (they overlap the final state write); awaited below
                session.defer_api_writes = shared
                return await in_process_flow()(payload, tool_name, tool_options,
                                               cfg.to_parameters(), session_id,
                                               return_state=True)

    def _called_at(self) -> float | None:
        return _CALLED_AT.get()


async def _start_first_wave(session: RunSession, payload: dict[str, Any], tool: Tool,
                            tool_options: dict[str, Any], cfg: OrchestrationConfig) -> None:
    if isinstance(tool, BundleTool) and tool.eager_start and open_breaker_error(tool, cfg) is None:
        # a resumed run must not re-send replicates whose results are already stored
        stored = await stored_replicates(session, tool, payload, tool_options, cfg)
        start_eager_replicates(session, tool, payload, tool_options, cfg, skip=stored)


async def _output_from_state(state: Any, session: RunSession) -> OrchestrationOutput:
    if state.is_completed():
        return output_from_result(await state.result())
    data = await state.result(raise_on_failure=False)
    if isinstance(data, dict | str):
        return output_from_result(data)
    if isinstance(data, BudgetExceeded):
        partial = getattr(data, "partial_output", None)
        if isinstance(partial, OrchestrationOutput):
            apply_ledger(partial, session.ledger)
        raise data
    if isinstance(data, BaseException):
        raise data
    raise RuntimeError(f"orchestration flow ended {state.type.value}: {state.message}")


class Orchestrator(BaseOrchestrator):
    """Runs the named tool: one Prefect flow run, replicates as task runs."""
