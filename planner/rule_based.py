"""A deterministic planner driven by ordered rules.

Why rules and not a model: planning runs before every analysis, must be explainable in the UI
and must give the same answer for the same inputs so runs can be replayed. Rules are evaluated
by priority (higher first, ties in insertion order); the first matching rule with a usable tool
wins. When nothing matches, a default is chosen deterministically so behaviour never depends on
dict ordering or randomness.

Confidence is 1.0 when a rule chose the tool (someone decided this request goes there, even if
via one of the rule's own fallbacks) and 0.5 for a default choice (nobody decided; the tool is
merely usable).
"""

from __future__ import annotations

from typing import Any

from steer_llm_sdk.planner.base import Planner
from steer_llm_sdk.planner.models import PlanDecision, PlanRequest, ToolMetadata
from steer_llm_sdk.planner.rules import PlanningRule

from steer_llm_sdk.errors import PlanningError

RULE_CONFIDENCE = 1.0
DEFAULT_CONFIDENCE = 0.5


class RuleBasedPlanner(Planner):
    """Pick a tool with the first matching rule; fall back to ``default_tool`` or alphabetical."""

    def __init__(
        self, rules: list[PlanningRule] | None = None, default_tool: str | None = None
    ) -> None:
        self._rules: list[PlanningRule] = []
        self.default_tool = default_tool
        for rule in rules or []:
            self.add_rule(rule)

    @property
    def rules(self) -> list[PlanningRule]:
        """Rules in evaluation order (a copy; use add_rule/remove_rule to change them)."""
        # sorted() is stable, so equal priorities keep the order they were added in.
        return sorted(self._rules, key=lambda rule: -rule.priority)

    def add_rule(self, rule: PlanningRule) -> None:
        """Add a rule; names must be unique so ``remove_rule`` is unambiguous."""
        if any(existing.name == rule.name for existing in self._rules):
            raise ValueError(
                f"a rule named {rule.name!r} already exists; remove_rule({rule.name!r}) first "
                "or choose another name"
            )
        self._rules.append(rule)

    def remove_rule(self, name: str) -> bool:
        """Remove the rule called ``name``; return False if there was none."""
        for index, rule in enumerate(self._rules):
            if rule.name == name:
                del self._rules[index]
                return True
        return False

    async def plan(
        self,
        request: dict[str, Any],
        available_tools: dict[str, ToolMetadata],
        context: PlanRequest | None = None,
    ) -> PlanDecision:
        context = context if context is not None else PlanRequest()
        usable, unusable = self.partition_tools(available_tools, context)
        skipped: list[dict[str, Any]] = []
        for rule in self.rules:
            if not rule.matches(request):
                continue
            if rule.action is None:
                skipped.append({"rule": rule.name, "unavailable": {}, "reason": "no action"})
                continue
            decision = self._plan_from_rule(
                rule, request, available_tools, context, usable, unusable, skipped
            )
            if decision is not None:
                return decision
        return self._plan_default(available_tools, context, usable, unusable, skipped)

    # -- rule path ----------------------------------------------------------------------------

    def _plan_from_rule(
        self,
        rule: PlanningRule,
        request: dict[str, Any],
        tools: dict[str, ToolMetadata],
        context: PlanRequest,
        usable: list[str],
        unusable: dict[str, str],
        skipped: list[dict[str, Any]],
    ) -> PlanDecision | None:
        """Decision for a matching rule, or None (recorded in ``skipped``) if none of its
        tools is usable, so the next matching rule gets a chance."""
        action = rule.action
        assert action is not None  # rules without one are skipped by plan()
        candidates = list(dict.fromkeys([action.tool, *action.fallbacks]))
        passed_over: dict[str, str] = {}
        selected_index: int | None = None
        for index, name in enumerate(candidates):
            if name in usable:
                selected_index = index
                break
            passed_over[name] = unusable.get(name, "not registered")
        if selected_index is None:
            skipped.append({"rule": rule.name, "unavailable": passed_over})
            return None

        selected = candidates[selected_index]
        fallbacks = [name for name in candidates[selected_index + 1:] if name in usable]
        try:
            options = {**tools[selected].default_options, **action.build_options(request, context)}
        except Exception as exc:
            raise PlanningError(
                f"rule {rule.name!r}: options transformer failed: {exc}. Fix the transform "
                "callable or remove the rule."
            ) from exc

        notes = [_skipped_text(entry) for entry in skipped]
        if passed_over:
            why = ", ".join(f"{name} ({reason})" for name, reason in passed_over.items())
            notes.append(f"rule {rule.name!r} matched but {why}; fell back to {selected}")
        else:
            notes.append(f"rule {rule.name!r} matched; selected {selected}")
        if rule.description:
            notes[-1] += f" ({rule.description})"
        metadata: dict[str, Any] = {
            "rule": rule.name,
            "matched_rule": rule.name,
            "selection_method": "rule",
            "requested_tool": action.tool,
            "fell_back": bool(passed_over),
        }
        return self._decision(
            selected, options, fallbacks, tools[selected], context, RULE_CONFIDENCE,
            notes, metadata, unusable, skipped,
        )

    # -- default path -------------------------------------------------------------------------

    def _plan_default(
        self,
        tools: dict[str, ToolMetadata],
        context: PlanRequest,
        usable: list[str],
        unusable: dict[str, str],
        skipped: list[dict[str, Any]],
    ) -> PlanDecision:
        """``default_tool`` if usable, else the alphabetically first usable tool.

        No fallbacks are offered: tools nobody chose for this request may expect different
        inputs, so chaining them blindly could produce a confident wrong answer.
        """
        notes = [_skipped_text(entry) for entry in skipped]
        if self.default_tool is not None and self.default_tool in usable:
            selected, how = self.default_tool, "configured default_tool"
        else:
            selected, how = usable[0], "first available tool by name"
            if self.default_tool is not None:
                reason = unusable.get(self.default_tool, "not registered")
                notes.append(f"default_tool {self.default_tool} is unavailable ({reason})")
        unavailable = any("reason" not in entry for entry in skipped)
        lead = "no matching rule had an available tool" if unavailable else "no rule matched"
        notes.append(f"{lead}; chose {selected} by default ({how})")
        metadata: dict[str, Any] = {"rule": None, "default_choice": how,
                                    "selection_method": "default"}
        return self._decision(
            selected, dict(tools[selected].default_options), [], tools[selected], context,
            DEFAULT_CONFIDENCE, notes, metadata, unusable, skipped,
        )

    # -- shared -------------------------------------------------------------------------------

    def _decision(
        self,
        selected: str,
        options: dict[str, Any],
        fallbacks: list[str],
        tool: ToolMetadata,
        context: PlanRequest,
        confidence: float,
        notes: list[str],
        metadata: dict[str, Any],
        unusable: dict[str, str],
        skipped: list[dict[str, Any]],
    ) -> PlanDecision:
        cost, duration, estimate_notes = self.estimate(tool, options, context)
        metadata = {
            "planner": "rule_based",
            **metadata,
            **estimate_notes,
            "unavailable_tools": dict(unusable),
            "skipped_rules": skipped,
        }
        limit = (context.budget or {}).get("cost_usd")
        if cost is not None and limit is not None and cost > limit:
            warning = f"estimated cost ${cost:g} exceeds budget cost_usd ${limit:g}"
            metadata["budget_warning"] = warning
            notes.append(warning)
        return PlanDecision(
            selected_tool=selected,
            tool_options=options,
            fallback_tools=fallbacks,
            execution_strategy="bundle" if tool.is_bundle else "single",
            estimated_cost=cost,
            estimated_duration_ms=duration,
            confidence=confidence,
            reasoning="; ".join(notes),
            metadata=metadata,
        )


def _skipped_text(entry: dict[str, Any]) -> str:
    if "reason" in entry:
        return f"rule {entry['rule']!r} skipped: {entry['reason']}"
    why = ", ".join(f"{name} ({reason})" for name, reason in entry["unavailable"].items())
    return f"rule {entry['rule']!r} matched but skipped: {why}"
