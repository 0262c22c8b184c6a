"""Reliability building blocks, one concern per module: error classification, circuit
breakers (pybreaker), retry policy mapped onto Prefect, persistent idempotency.

The config models and ``ErrorCategory`` are re-exported here too, where 0.3.2 code imports
them from (``from steer_llm_sdk.reliability import RetryPolicy, ErrorCategory``).
"""

from steer_llm_sdk.config import CircuitBreakerConfig, RetryPolicy
from steer_llm_sdk.errors import ErrorCategory
from steer_llm_sdk.reliability.breakers import (
    BreakerRegistry,
    BreakerStateCounter,
    get_breaker_registry,
    guarded_call,
)
from steer_llm_sdk.reliability.classification import (
    classify_exception,
    is_client_error,
    parse_retry_after,
)
from steer_llm_sdk.reliability.error_classifier import ErrorClassification, ErrorClassifier
from steer_llm_sdk.reliability.idempotency import (
    IdempotencyStore,
    canonical_request_hash,
    make_idempotency_store,
    scoped_key,
)
from steer_llm_sdk.reliability.idempotency_sqlite import SQLiteIdempotencyStore
from steer_llm_sdk.reliability.retry import (
    AdvancedRetryManager,
    check_retry_after_budget,
    prefect_retry_options,
)
from steer_llm_sdk.reliability.retry_state import RetryMetrics, RetryState

__all__ = [
    "AdvancedRetryManager", "BreakerRegistry", "BreakerStateCounter", "CircuitBreakerConfig",
    "ErrorCategory", "ErrorClassification", "ErrorClassifier", "RetryMetrics", "RetryPolicy",
    "RetryState", "IdempotencyStore",
    "SQLiteIdempotencyStore", "canonical_request_hash", "check_retry_after_budget",
    "classify_exception", "get_breaker_registry", "guarded_call", "is_client_error",
    "make_idempotency_store", "parse_retry_after", "prefect_retry_options", "scoped_key",
]
