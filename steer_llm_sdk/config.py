"""Configuration models: what a run may spend, how it retries, when breakers open.

All models are pydantic v2 and JSON-serialisable (``redactor_cb`` excepted, which is excluded
from dumps), so a config can travel as a Prefect flow parameter and be re-run from the UI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from steer_llm_sdk.errors import RETRYABLE_CATEGORIES, ErrorCategory

BUDGET_KEYS = ("tokens", "cost_usd", "ms")


class RetryPolicy(BaseModel):
    """Retry shape for provider calls; mapped onto Prefect task retries by the engine."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(3, ge=1, le=20, description="Total attempts, first one included.")
    initial_delay: float = Field(0.5, ge=0, description="Seconds before the first retry.")
    backoff_factor: float = Field(2.0, ge=1.0, description="Delay multiplier per retry.")
    max_delay: float = Field(30.0, ge=0, description="Cap on any single delay, seconds.")
    jitter: float = Field(0.5, ge=0, le=1, description="Prefect retry_jitter_factor.")
    respect_retry_after: bool = True
    retry_on: set[ErrorCategory] = Field(default_factory=lambda: set(RETRYABLE_CATEGORIES))

    def delays(self) -> list[float]:
        """The base delay before each retry (without jitter), capped at ``max_delay``."""
        return [
            min(self.initial_delay * self.backoff_factor**i, self.max_delay)
            for i in range(self.max_attempts - 1)
        ]


class CircuitBreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failure_threshold: int = Field(
        5, ge=1, description="Sustained failures (last attempts of a retry policy; concurrent "
        "failures count once) within the last window_size calls that open it, when they are "
        "at least half of those calls. See docs/reliability.md.")
    reset_timeout_s: float = Field(30.0, gt=0, description="Seconds open before half-open.")
    success_threshold: int = Field(1, ge=1, description="Successes in half-open to close.")
    window_size: int | None = Field(
        None, ge=1, description="Recent calls the failure rate is computed over; default "
        "2 x failure_threshold (never less than failure_threshold).")
    enabled: bool = True


class ReliabilityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    default_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    breakers: dict[str, CircuitBreakerConfig] = Field(
        default_factory=dict, description="Per-provider overrides keyed by provider name."
    )
    max_fallback_attempts: int = Field(2, ge=0)
    max_total_attempts: int = Field(5, ge=1)
    idempotency_ttl_s: float = Field(24 * 3600, gt=0)

    def breaker_for(self, provider: str) -> CircuitBreakerConfig:
        return self.breakers.get(provider, self.default_breaker)


class OrchestrationConfig(BaseModel):
    """Per-run options (the 0.3.2 fields). Every field is used; see docs/overview.md."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    max_parallel: int = Field(10, ge=1, le=50, description="Replicates in flight at once.")
    budget: dict[str, float] | None = Field(
        None, description="Limits keyed tokens, cost_usd, ms; checked while running and at end."
    )
    deterministic: bool = Field(
        False, description="ReplicateContext.deterministic: LLM bundle tools use temperature 0."
    )
    streaming: bool = Field(
        True, description="Emit per-replicate events (replicate_*, partial_summary) to on_event."
    )
    retry_on_failure: bool = Field(True, description="Let Prefect retry failed replicates/tools.")
    max_retries: int | None = Field(
        None, ge=0, le=19, description="Retries per task; default from RetryPolicy.max_attempts."
    )
    timeout_ms: int | None = Field(None, gt=0, description="Whole run; BudgetExceeded('time').")
    per_agent_timeout_ms: int | None = Field(
        None, gt=0, description="Per tool call / replicate attempt (Prefect task timeout)."
    )
    trace_id: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    redactor_cb: Callable[[dict[str, Any]], dict[str, Any]] | None = Field(
        None, exclude=True, description="Applied to every event payload before on_event."
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Copied to output metadata; str values become tags."
    )
    quality_requirements: dict[str, float] = Field(
        default_factory=dict,
        description="min_confidence / min_valid_replicates: below them the status is 'partial'.",
    )
    enable_circuit_breaker: bool = True
    enable_fallback: bool = True
    eager_replicates: bool = Field(
        True,
        description="In-process runs of a named bundle tool send the first wave of replicates "
        "while Prefect creates the flow run; each is still adopted by its replicate task run.",
    )
    fallback_tools: list[str] = Field(
        default_factory=list, description="Tools to try, in order, when the named tool fails."
    )

    @field_validator("budget")
    @classmethod
    def _check_budget(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        for key, limit in value.items():
            if key not in BUDGET_KEYS:
                raise ValueError(
                    f"budget key {key!r} is not supported; use one of {', '.join(BUDGET_KEYS)}"
                )
            if not isinstance(limit, int | float) or isinstance(limit, bool) or limit <= 0:
                raise ValueError(f"budget[{key!r}] must be a positive number, got {limit!r}")
        return dict(value)

    @field_validator("trace_id", "request_id")
    @classmethod
    def _check_header_safe(cls, value: str | None, info: Any) -> str | None:
        from steer_llm_sdk.headers import header_value_problem

        problem = header_value_problem(value) if value else None
        if problem:
            raise ValueError(f"{info.field_name} {problem}; it is sent as an HTTP header, so use "
                             "printable characters only (e.g. a uuid4 hex)")
        return value

    @field_validator("quality_requirements")
    @classmethod
    def _check_quality(cls, value: dict[str, float]) -> dict[str, float]:
        allowed = {"min_confidence", "min_valid_replicates"}
        unknown = set(value) - allowed
        if unknown:
            raise ValueError(
                f"quality_requirements keys {sorted(unknown)} are not supported; "
                f"use {sorted(allowed)}"
            )
        return dict(value)

    @model_validator(mode="after")
    def _check_timeouts(self) -> OrchestrationConfig:
        if self.timeout_ms and self.per_agent_timeout_ms and (
            self.per_agent_timeout_ms > self.timeout_ms
        ):
            raise ValueError(
                "per_agent_timeout_ms must not exceed timeout_ms; lower per_agent_timeout_ms"
            )
        return self

    def to_parameters(self) -> dict[str, Any]:
        """JSON-safe dump for a Prefect flow parameter (drops the redactor callable)."""
        return self.model_dump(mode="json", exclude={"redactor_cb"})
