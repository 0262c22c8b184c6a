"""Planning as its own Prefect task: the decision is logged and published as an artifact."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NONE
from prefect.utilities.annotations import quote
from steer_llm_sdk.planner import PlanDecision, PlanRequest, RuleBasedPlanner, ToolMetadata
from steer_llm_sdk.tasks.runtime import RunSession, get_session

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.reliability.breakers import get_breaker_registry


@task(name="plan", task_run_name="plan", cache_policy=NONE, persist_result=False)  # no suffix
async def _plan(session_id: str, request: dict[str, Any],
                context: PlanRequest) -> PlanDecision:
    session = get_session(session_id)
    if session is None:
        raise RuntimeError(f"run session {session_id!r} is gone")
    planner = session.planner or RuleBasedPlanner()
    tools = {name: ToolMetadata.model_validate({k: v for k, v in meta.items()
                                                if k in ToolMetadata.model_fields})
             for name, meta in session.registry.get_tool_metadata().items()}
    decision = await planner.plan(request, tools, context)
    logger = get_run_logger()
    logger.info("plan: %s (fallbacks %s) because %s", decision.selected_tool,
                decision.fallback_tools, decision.reasoning)
    await acreate_markdown_artifact(
        key="plan-decision",
        markdown=(f"### Plan\n\n- **tool**: `{decision.selected_tool}`\n"
                  f"- **fallbacks**: {', '.join(decision.fallback_tools) or 'none'}\n"
                  f"- **strategy**: {decision.execution_strategy}\n"
                  f"- **confidence**: {decision.confidence}\n"
                  f"- **reasoning**: {decision.reasoning}\n"),
        description="Planner decision",
    )
    return decision


async def plan_tool(session: RunSession, session_id: str, request: dict[str, Any],
                    cfg: OrchestrationConfig, caller_options: dict[str, Any]) -> PlanDecision:
    """The caller's k reaches the planner as ``user_preferences["k"]`` so budget-aware rules
    start from it; the planner's options then win (a budget rule may only lower k)."""
    preferences = dict(cfg.metadata.get("preferences", {}) or {})
    if "k" in caller_options:
        preferences.setdefault("k", caller_options["k"])
    context = PlanRequest(
        budget=cfg.budget,
        quality_requirements=cfg.quality_requirements,
        circuit_breaker_states=(
            get_breaker_registry().effective_states() if cfg.enable_circuit_breaker else {}
        ),
        user_preferences=preferences,
    )
    decision = await _plan(session_id, quote(request), quote(context))  # see flows/bundle.py
    await session.emitter.emit("plan_decided", tool_name=decision.selected_tool,
                               fallbacks=decision.fallback_tools, reasoning=decision.reasoning)
    return decision
