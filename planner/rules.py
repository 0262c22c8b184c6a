"""Declarative planning rules: "when the request looks like this, use that tool".

Rules are data (pydantic) so they can be listed, logged and tested one by one; the only code
they carry is an optional ``custom`` matcher and an optional options transformer. Matching
never raises on odd input (a missing field or a string where a number was expected simply does
not match) because a malformed request should fall through to the next rule or the default,
not abort planning. Misconfigured rules, by contrast, fail when they are built.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from steer_llm_sdk.planner.models import PlanRequest

logger = logging.getLogger(__name__)

Operator = Literal["equals", "contains", "regex", "exists", "gt", "lt", "custom"]
OptionsTransform = Callable[[dict[str, Any], dict[str, Any], PlanRequest], dict[str, Any]]

_MISSING = object()


def resolve_path(data: Any, path: str) -> Any:
    """Follow a dotted path ("meta.type", "items.0.name"); return ``_MISSING`` if absent.

    An empty path means the whole request, which lets a ``custom`` matcher see everything.
    """
    if path == "":
        return data
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, Sequence) and not isinstance(current, str | bytes):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return _MISSING
        else:
            return _MISSING
    return current


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class RuleCondition(BaseModel):
    """One test on one field of the request.

    ``contains`` is a case-insensitive substring test on strings, a membership test on lists
    (string items compared case-insensitively) and a key test on dicts. ``exists`` is true when
    the path is present, even if its value is None. ``negate`` inverts the result for present
    paths only: a missing path never matches, except ``exists`` with ``negate`` ("is absent").
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str = Field(
        ..., description="Dotted path into the request; list indices allowed.",
        validation_alias=AliasChoices("field", "attribute_path"),
    )
    operator: Operator
    value: Any = None
    matcher: Callable[[Any], bool] | None = Field(
        None, description="Required for 'custom'; with another operator both must hold.",
        validation_alias=AliasChoices("matcher", "custom_matcher"),
    )
    negate: bool = False

    def __init__(self, *args: Any, **data: Any) -> None:
        """0.3.2 built conditions positionally: ``RuleCondition("type", "equals", "x")``."""
        names = ("field", "operator", "value", "matcher")
        if len(args) > len(names):
            raise TypeError(f"RuleCondition takes at most {len(names)} positional arguments")
        for name, arg in zip(names, args, strict=False):
            if name in data:
                raise TypeError(f"RuleCondition got {name!r} twice")
            data[name] = arg
        super().__init__(**data)

    @model_validator(mode="after")
    def _check_operator(self) -> RuleCondition:
        if self.operator == "custom" and self.matcher is None:
            raise ValueError("operator 'custom' needs matcher=callable(value) -> bool")
        if self.operator == "regex":
            if not isinstance(self.value, str):
                raise ValueError("operator 'regex' needs value=pattern string")
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.value!r}: {exc}") from exc
        if self.operator in ("gt", "lt") and not _is_number(self.value):
            raise ValueError(f"operator {self.operator!r} needs a numeric value, got "
                             f"{self.value!r}")
        return self

    def matches(self, request: Mapping[str, Any]) -> bool:
        actual = resolve_path(request, self.field)
        if actual is _MISSING:
            return self.operator == "exists" and self.negate
        matched = self._test(actual)
        if matched and self.operator != "custom" and self.matcher is not None:
            matched = self._call_matcher(actual)  # 0.3.2: exists + custom_matcher
        return matched != self.negate

    def _test(self, actual: Any) -> bool:
        op = self.operator
        if op == "exists":
            return True
        if op == "equals":
            return bool(actual == self.value)
        if op == "contains":
            return self._contains(actual)
        if op == "regex":
            return isinstance(actual, str) and re.search(self.value, actual) is not None
        if op in ("gt", "lt"):
            if not _is_number(actual):
                return False
            return actual > self.value if op == "gt" else actual < self.value
        return self._call_matcher(actual)

    def _call_matcher(self, actual: Any) -> bool:
        """A buggy matcher should not take planning down; log it and treat as no match."""
        if self.matcher is None:  # unreachable after validation; keeps type checkers honest
            return False
        try:
            return bool(self.matcher(actual))
        except Exception:
            logger.warning("custom matcher for field %r raised; treating as no match",
                           self.field, exc_info=True)
            return False

    def _contains(self, actual: Any) -> bool:
        needle = self.value
        if isinstance(actual, str):
            return isinstance(needle, str) and needle.lower() in actual.lower()
        if isinstance(actual, Mapping):
            return needle in actual
        if isinstance(actual, list | tuple | set | frozenset):
            if isinstance(needle, str):
                lowered = needle.lower()
                return any(isinstance(item, str) and item.lower() == lowered for item in actual)
            return needle in actual
        return False


class RuleAction(BaseModel):
    """What a matching rule chooses: a tool, its options, and fallbacks in order.

    ``transform(options, request, context)`` returns NEW options (e.g. a k lowered to fit the
    budget). It receives a deep copy of ``options``, so even a careless transformer cannot
    change the rule for the next request.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    tool: str = Field(validation_alias=AliasChoices("tool", "tool_name"))
    options: dict[str, Any] = Field(
        default_factory=dict, validation_alias=AliasChoices("options", "tool_options")
    )
    fallbacks: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("fallbacks", "fallback_tools")
    )
    transform: OptionsTransform | None = None

    # 0.3.2 attribute names, read-only views of the same fields
    @property
    def tool_name(self) -> str:
        return self.tool

    @property
    def tool_options(self) -> dict[str, Any]:
        return self.options

    @property
    def fallback_tools(self) -> list[str]:
        return self.fallbacks

    def build_options(self, request: dict[str, Any], context: PlanRequest) -> dict[str, Any]:
        options = copy.deepcopy(self.options)
        if self.transform is None:
            return options
        result = self.transform(options, request, context)
        if not isinstance(result, dict):
            raise TypeError(
                f"options transformer must return a dict, got {type(result).__name__}"
            )
        return result


class PlanningRule(BaseModel):
    """Conditions (all must match; none = always) plus the action to take.

    Higher ``priority`` is evaluated first; equal priorities keep insertion order. A rule
    without an action (0.3.2 allowed ``action=None``) never selects anything: the planner
    skips it and records that in the decision's metadata.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    conditions: list[RuleCondition] = Field(default_factory=list)
    action: RuleAction | None = None
    priority: int = 0
    description: str | None = ""

    def matches(self, request: Mapping[str, Any]) -> bool:
        return all(condition.matches(request) for condition in self.conditions)
