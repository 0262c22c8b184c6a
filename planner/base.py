"""The planner interface and the availability rules every planner must share.

Availability lives here, not in each planner, so that "is this tool usable right now?" has one
answer across the SDK: a tool is out when its own breaker or its provider's breaker is open, or
when it already failed in this run (retrying a tool that just failed rarely helps; the fallback
chain exists for that).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from steer_llm_sdk.planner.models import PlanDecision, PlanRequest, ToolMetadata

from steer_llm_sdk.config import OrchestrationConfig
from steer_llm_sdk.errors import PlanningError

NO_TOOLS_MESSAGE = ("No tools available: no tools registered; register one with "
                    "SteerLLMClient().register_tool(...)")

# Replicates run in waves of max_parallel, so a bundle's wall time is per-replicate time times
# the number of waves, not times k. Read the default from the config so the two never drift.
DEFAULT_MAX_PARALLEL: int = OrchestrationConfig.model_fields["max_parallel"].default


class Planner(ABC):
    """Chooses a tool for a request. Subclasses implement ``plan``; helpers are shared."""

    @abstractmethod
    async def plan(
        self,
        request: dict[str, Any],
        available_tools: dict[str, ToolMetadata],
        context: PlanRequest | None = None,
    ) -> PlanDecision:
        """Return the decision, or raise ``PlanningError`` when no tool can be chosen."""

    # -- availability -------------------------------------------------------------------------

    @staticmethod
    def unavailable_reason(
        name: str, metadata: ToolMetadata | None, context: PlanRequest
    ) -> str | None:
        """Why ``name`` cannot be used now, or ``None`` when it can.

        ``half_open`` counts as available: the breaker is asking for a trial call, and refusing
        it would keep the breaker from ever closing again.
        """
        if metadata is None:
            return "not registered"
        states = context.circuit_breaker_states
        if states.get(name) == "open":
            return f"circuit breaker open for tool {name!r}"
        if metadata.provider is not None and states.get(metadata.provider) == "open":
            return f"circuit breaker open for provider {metadata.provider!r}"
        if name in context.previous_failures:
            return "already failed in this run"
        return None

    @classmethod
    def partition_tools(
        cls, available_tools: Mapping[str, ToolMetadata], context: PlanRequest
    ) -> tuple[list[str], dict[str, str]]:
        """Split registered tools into (usable, sorted by name) and {unusable: reason}.

        Raises ``PlanningError`` when nothing is registered or nothing is usable, naming every
        tool and why, because a bare "no tool" error gives the operator nothing to act on.
        """
        if not available_tools:
            raise PlanningError(NO_TOOLS_MESSAGE)
        usable: list[str] = []
        unusable: dict[str, str] = {}
        for name in sorted(available_tools):
            reason = cls.unavailable_reason(name, available_tools[name], context)
            if reason is None:
                usable.append(name)
            else:
                unusable[name] = reason
        if not usable:
            detail = "; ".join(f"{name!r} ({reason})" for name, reason in unusable.items())
            error = PlanningError(
                f"every registered tool is unavailable: {detail}. Wait for the circuit breaker "
                "to half-open, configure a fallback tool on another provider, or register "
                "another tool."
            )
            error.unavailable = dict(unusable)  # type: ignore[attr-defined]
            raise error
        return usable, unusable

    # -- estimates ----------------------------------------------------------------------------

    @staticmethod
    def estimate(
        metadata: ToolMetadata, options: Mapping[str, Any], context: PlanRequest
    ) -> tuple[float | None, float | None, dict[str, Any]]:
        """(cost_usd, duration_ms, notes) for running ``metadata`` with ``options``.

        For bundles the metadata figures are per replicate: cost scales with ``k``; duration
        scales with the number of waves, ceil(k / max_parallel), because replicates run in
        parallel. ``max_parallel`` is read from options, then user_preferences, then the
        OrchestrationConfig default. Without ``k`` the per-replicate figures are returned and a
        note says so rather than guessing a k.
        """
        cost = metadata.estimated_cost_usd
        duration = metadata.estimated_duration_ms
        notes: dict[str, Any] = {}
        if not metadata.is_bundle:
            return cost, duration, notes
        k = _positive_int(options.get("k"))
        if k is None:
            notes["estimate_basis"] = "per_replicate (no k in options)"
            return cost, duration, notes
        max_parallel = (
            _positive_int(options.get("max_parallel"))
            or _positive_int(context.user_preferences.get("max_parallel"))
            or DEFAULT_MAX_PARALLEL
        )
        notes["estimate_basis"] = f"k={k}, max_parallel={max_parallel}"
        if cost is not None:
            cost = cost * k
        if duration is not None:
            duration = duration * math.ceil(k / max_parallel)
        return cost, duration, notes


def _positive_int(value: Any) -> int | None:
    """``value`` as a positive int, or None; bools are not counts."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value
