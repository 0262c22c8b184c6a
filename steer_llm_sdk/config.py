"""Configuration models: what a run may spend, how it retries, when breakers open.

All models are pydantic v2 and JSON-serialisable (``redactor_cb`` excepted, which is excluded
from dumps), so a config can travel as a Prefect flow parameter and be re-run from the UI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from steer_llm_sdk.errors import RETRYABLE_CATEGORIES, ErrorCategory
from steer_llm_sdk.input_models import InputModel, check_config_field
from steer_llm_sdk.validation import BUDGET_KEYS

__all__ = ["BUDGET_KEYS"]  # re-exported: the keys a budget accepts

_RETRY_FLAGS = {
    "retry_on_timeout": ErrorCategory.TIMEOUT,
    "retry_on_rate_limit": ErrorCategory.RATE_LIMIT,
    "retry_on_server_error": ErrorCategory.SERVER_ERROR,
    "retry_on_network_error": ErrorCategory.NETWORK,
}


class RetryPolicy(InputModel):
    """Retry shape for provider calls; mapped onto Prefect task retries by the engine."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    max_attempts: int = Field(3, ge=1, le=20, description="Total attempts, first one included.")
    initial_delay: float = Field(0.5, ge=0, description="Seconds before the first retry.")
    backoff_factor: float = Field(2.0, ge=1.0, description="Delay multiplier per retry.")
    max_delay: float = Field(30.0, ge=0, description="Cap on any single delay, seconds.")
    jitter: float = Field(0.5, ge=0, le=1, description="Prefect retry_jitter_factor.",
                          validation_alias=AliasChoices("jitter", "jitter_factor"))
    respect_retry_after: bool = True
    retry_on: set[ErrorCategory] = Field(default_factory=lambda: set(RETRYABLE_CATEGORIES))
    max_total_delay: float | None = Field(
        None, gt=0, description="Cap on the sum of retry delays; no retry that would exceed it."
    )

    @model_validator(mode="before")
    @classmethod
    def _retry_on_flags(cls, data: Any) -> Any:
        """0.3.2 switched categories with booleans (retry_on_timeout=False, ...); they edit
        ``retry_on``, which stays the one source of truth."""
        if not isinstance(data, dict) or not any(key in data for key in _RETRY_FLAGS):
            return data
        data = dict(data)
        chosen = set(data.get("retry_on", RETRYABLE_CATEGORIES))
        for flag, category in _RETRY_FLAGS.items():
            if flag in data:
                (chosen.add if data.pop(flag) else chosen.discard)(category)
        data["retry_on"] = chosen
        return data

    def should_retry_category(self, category: ErrorCategory | str) -> bool:
        return ErrorCategory(category) in self.retry_on

    @property
    def jitter_factor(self) -> float:
        return self.jitter

    @property
    def retry_on_timeout(self) -> bool:
        return ErrorCategory.TIMEOUT in self.retry_on

    @property
    def retry_on_rate_limit(self) -> bool:
        return ErrorCategory.RATE_LIMIT in self.retry_on

    @property
    def retry_on_server_error(self) -> bool:
        return ErrorCategory.SERVER_ERROR in self.retry_on

    @property
    def retry_on_network_error(self) -> bool:
        return ErrorCategory.NETWORK in self.retry_on

    def delays(self) -> list[float]:
        """The base delay before each retry (without jitter), capped at ``max_delay``."""
        return [
            min(self.initial_delay * self.backoff_factor**i, self.max_delay)
            for i in range(self.max_attempts - 1)
        ]


BreakerCallback = Callable[[Any], Any]


class CircuitBreakerConfig(InputModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    failure_threshold: int = Field(
        5, ge=1, description="Sustained failures (last attempts of a retry policy; concurrent "
        "failures count once) within the last window_size calls that open it, when they are "
        "at least half of those calls. See docs/reliability.md.")
    reset_timeout_s: float = Field(30.0, gt=0, description="Seconds open before half-open.",
                                   validation_alias=AliasChoices("reset_timeout_s", "timeout"))
    success_threshold: int = Field(1, ge=1, description="Successes in half-open to close.")
    window_size: int | None = Field(
        None, ge=1, description="Recent calls the failure rate is computed over; default "
        "2 x failure_threshold (never less than failure_threshold).")
    enabled: bool = True
    half_open_requests: int = Field(1, ge=1, description="Trial calls admitted when half-open.")
    on_open: BreakerCallback | None = Field(
        None, exclude=True, description="Called with the breaker when it opens (sync or async)."
    )
    on_close: BreakerCallback | None = Field(
        None, exclude=True, description="Called with the breaker when it closes (sync or async)."
    )

    @property
    def timeout(self) -> float:
        """0.3.2's name for ``reset_timeout_s``."""
        return self.reset_timeout_s


class ReliabilityConfig(InputModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    retry: RetryPolicy = Field(default_factory=RetryPolicy,
                               validation_alias=AliasChoices("retry", "retry_policy"))
    default_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    breakers: dict[str, CircuitBreakerConfig] = Field(
        default_factory=dict, description="Per-provider overrides keyed by provider name; "
        "a 'default' entry (0.3.2) applies to providers without one.",
        validation_alias=AliasChoices("breakers", "circuit_breaker_configs"),
    )
    max_fallback_attempts: int = Field(2, ge=0)
    enable_fallback: bool = Field(
        True, description="False: never fall back (0.3.2 field; as OrchestrationConfig's)."
    )
    max_total_attempts: int = Field(5, ge=1)
    idempotency_ttl_s: float = Field(24 * 3600, gt=0)
    idempotency_lease_s: float = Field(
        30.0, gt=0, description="In-flight claim lifetime without a heartbeat: a crashed "
        "owner's key can be claimed again after at most this long (docs/durability.md).")
    idempotency_heartbeat_s: float | None = Field(
        None, ge=0, description="How often a live owner renews its claim; default a third of "
        "the lease; 0 disables renewal (the lease must then outlast every run).")
    idempotency_wait_s: float = Field(
        300.0, ge=0, description="Longest wait for another worker's run of the same key; "
        "OrchestrationConfig.timeout_ms lowers it per run.")
    breaker_url: str | None = Field(
        None, description="redis:// URL sharing breaker state with every process and host "
        "(like STEER_BREAKER_URL); None keeps the process's current choice (in-process "
        "unless STEER_BREAKER_URL is set). Process-wide: applies to breakers created later.")

    def breaker_for(self, provider: str) -> CircuitBreakerConfig:
        return self.breakers.get(provider) or self.breakers.get("default", self.default_breaker)

    @property
    def retry_policy(self) -> RetryPolicy:
        """0.3.2's name for ``retry``."""
        return self.retry


class OrchestrationConfig(InputModel):
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

    @field_validator("budget", "quality_requirements", "trace_id", "request_id",
                     "idempotency_key", "metadata", "fallback_tools", mode="before")
    @classmethod
    def _check_inputs(cls, value: Any, info: ValidationInfo) -> Any:
        """Rules and messages live in steer_llm_sdk/validation.py (docs/security.md)."""
        return check_config_field(info.field_name or "", value)

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
