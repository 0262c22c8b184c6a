"""The SDK's exception tree, drawn once so callers know what to catch.

    OrchestratorError                 base: everything the SDK raises on purpose
    ├── ToolExecutionError            a tool (or every replicate of a bundle) failed
    ├── BudgetExceeded                tokens / cost_usd / ms / time budget spent
    ├── ConflictError                 idempotency key reused with a different request
    ├── ToolResolutionError           a tool reference could not be imported or found
    ├── PlanningError                 the planner had no tool to choose
    ├── ProviderError                 a provider call failed (carries an ErrorCategory)
    │   ├── CircuitOpenError          the provider's breaker is open: failing fast
    │   └── RetryAfterTooLong         the server asked us to wait longer than we may
    └── FallbackExhausted             the primary tool and every fallback failed

Every error carries structured fields next to its message, so code can react without parsing
text, and every message says what was wrong and how to fix it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCategory(StrEnum):
    """Why a provider call failed; decides retry, breaker and fallback behaviour."""

    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    NETWORK = "network"
    AUTHENTICATION = "authentication"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_REQUEST = "invalid_request"
    VALIDATION = "invalid_request"  # 0.3.2's name for the same category (an enum alias)
    CONTENT_FILTER = "content_filter"
    CIRCUIT_OPEN = "circuit_open"
    UNKNOWN = "unknown"


RETRYABLE_CATEGORIES = frozenset(
    {ErrorCategory.RATE_LIMIT, ErrorCategory.SERVER_ERROR, ErrorCategory.TIMEOUT,
     ErrorCategory.NETWORK}
)


def category_for_status(status: int | None) -> ErrorCategory:
    """The category an HTTP status alone implies (no exception type, no body to read)."""
    if status is None:
        return ErrorCategory.UNKNOWN
    if status == 429:
        return ErrorCategory.RATE_LIMIT
    if status == 408:
        return ErrorCategory.TIMEOUT
    if status >= 500:
        return ErrorCategory.SERVER_ERROR
    by_status = {401: ErrorCategory.AUTHENTICATION, 403: ErrorCategory.PERMISSION_DENIED,
                 404: ErrorCategory.NOT_FOUND, 409: ErrorCategory.CONFLICT}
    if status in by_status:
        return by_status[status]
    if 400 <= status < 500:
        return ErrorCategory.INVALID_REQUEST
    return ErrorCategory.UNKNOWN


class OrchestratorError(Exception):
    """Base class; ``code`` is a stable machine-readable identifier."""

    code: str = "orchestrator_error"
    is_retryable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "message": str(self),
            "code": self.code,
            "is_retryable": self.is_retryable,
        }


class ToolExecutionError(OrchestratorError):
    code = "tool_execution_error"

    def __init__(self, message: str, *, tool_name: str | None = None,
                 is_retryable: bool = False, original_error: BaseException | None = None):
        super().__init__(message)
        self.tool_name = tool_name
        self.is_retryable = is_retryable
        self.original_error = original_error


class BudgetExceeded(OrchestratorError):
    """``budget_type`` is one of tokens, cost_usd, ms, time."""

    code = "budget_exceeded"

    def __init__(self, budget_type: str, limit: float, actual: float, message: str | None = None):
        self.budget_type = budget_type
        self.limit = limit
        self.actual = actual
        super().__init__(
            message
            or f"{budget_type} budget exceeded: used {actual:g}, limit {limit:g}. "
            f"Raise OrchestrationConfig.budget[{budget_type!r}] or lower k."
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "budget_type": self.budget_type,
                "limit": self.limit, "actual": self.actual}


class ConflictError(OrchestratorError):
    code = "idempotency_conflict"

    def __init__(self, key: str, message: str | None = None):
        self.key = key
        super().__init__(
            message
            or f"idempotency key {key!r} was already used with different request data. "
            "Use a new key for a new request, or resend the original request."
        )


class ToolResolutionError(OrchestratorError):
    code = "tool_resolution_error"

    def __init__(self, reference: str, reason: str):
        self.reference = reference
        self.reason = reason
        super().__init__(f"cannot resolve tool {reference!r}: {reason}")


class PlanningError(OrchestratorError, ValueError):
    """Also a ``ValueError``: 0.3.2 planners raised ValueError and callers catch that."""

    code = "planning_error"


class ProviderError(OrchestratorError):
    """A provider call failed; ``category`` decides retry, breaker and fallback behaviour.

    Without a category, ``status_code`` decides it (0.3.2 classified by status code), so
    ``ProviderError("...", status_code=503)`` is a retryable ``server_error``.
    """

    code = "provider_error"

    def __init__(self, message: str, *, category: str = "unknown", provider: str | None = None,
                 status_code: int | None = None, retry_after: float | None = None,
                 is_retryable: bool | None = None,
                 original_error: BaseException | None = None):
        super().__init__(message)
        if category == ErrorCategory.UNKNOWN:
            category = category_for_status(status_code).value
        self.category = category
        self.original_error = original_error
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        if is_retryable is not None:
            self.is_retryable = is_retryable
        else:
            self.is_retryable = category in RETRYABLE_CATEGORIES
        self.code = category

    @property
    def error_category(self) -> ErrorCategory:
        """0.3.2's name for ``category``, as an ``ErrorCategory``."""
        return ErrorCategory(self.category)

    @error_category.setter
    def error_category(self, value: ErrorCategory | str) -> None:
        self.category = ErrorCategory(value).value
        self.code = self.category

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "category": self.category, "provider": self.provider,
                "status_code": self.status_code, "retry_after": self.retry_after}


class CircuitOpenError(ProviderError):
    """``last_error`` is the provider's last real error (category, status_code, message): an
    open breaker is a consequence, the cause must stay visible."""

    def __init__(self, provider: str, reopens_in_s: float,
                 last_error: dict[str, Any] | None = None):
        self.reopens_in_s = reopens_in_s
        self.last_error = dict(last_error) if last_error else None
        cause = ""
        if self.last_error:
            status = self.last_error.get("status_code")
            cause = (f" Last provider error: {self.last_error.get('category')}"
                     f"{f' (HTTP {status})' if status else ''}: "
                     f"{self.last_error.get('message')}")
        super().__init__(
            f"circuit breaker for provider {provider!r} is open after repeated failures; "
            f"failing fast. It half-opens in {max(reopens_in_s, 0):.1f}s. Configure fallbacks "
            f"or wait.{cause}",
            category="circuit_open", provider=provider, is_retryable=False,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "reopens_in_s": round(self.reopens_in_s, 3),
                "last_error": self.last_error}


class RetryAfterTooLong(ProviderError):
    def __init__(self, provider: str | None, retry_after: float, remaining: float):
        super().__init__(
            f"provider {provider!r} asked to retry after {retry_after:.1f}s but only "
            f"{remaining:.1f}s of the time budget remain; failing fast. Raise timeout_ms or "
            "retry later.",
            category="rate_limit", provider=provider, retry_after=retry_after,
            is_retryable=False,
        )


class FallbackExhausted(OrchestratorError):
    code = "fallback_exhausted"

    def __init__(self, attempts: list[dict[str, Any]]):
        self.attempts = attempts
        chain = "; ".join(f"{a['tool']}: {a['error'].get('message')}" for a in attempts)
        super().__init__(f"every tool failed ({len(attempts)} attempts): {chain}")
