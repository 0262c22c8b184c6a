"""0.3.2's classification API: ``ErrorClassifier.classify_error(error, provider)``.

A view over ``classify_exception`` (reliability/classification.py), so the answer a caller
reads here is exactly the one the engine's retries, breakers and fallbacks act on.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from steer_llm_sdk.errors import ErrorCategory
from steer_llm_sdk.reliability.classification import classify_exception, user_advice

__all__ = ["ErrorCategory", "ErrorClassification", "ErrorClassifier"]


class ErrorClassification(BaseModel):
    """How the engine treats an error: its category, whether it is retried, how long the
    server asked to wait (``suggested_delay``, seconds) and what a user should do."""

    model_config = ConfigDict(frozen=True)

    category: ErrorCategory
    is_retryable: bool
    suggested_delay: float | None = None
    user_message: str
    provider: str | None = None
    status_code: int | None = None


class ErrorClassifier:
    """Stateless; ``classify_error`` is a static method, as in 0.3.2."""

    @staticmethod
    def classify_error(error: BaseException, provider: str | None = None
                       ) -> ErrorClassification:
        classified = classify_exception(error, provider)
        category = ErrorCategory(classified.category)
        return ErrorClassification(
            category=category,
            is_retryable=bool(classified.is_retryable),
            suggested_delay=classified.retry_after,
            user_message=user_advice(category),
            provider=classified.provider or provider,
            status_code=classified.status_code,
        )
