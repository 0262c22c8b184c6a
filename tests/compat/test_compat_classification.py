"""Classification as 0.3.2 callers see it: ProviderError by status code, the ErrorClassifier
API, the extra categories, message patterns, and Retry-After from plain-dict headers."""

from __future__ import annotations

import types

import httpx
import openai
import pytest

from steer_llm_sdk.config import RetryPolicy
from steer_llm_sdk.errors import ErrorCategory, ProviderError
from steer_llm_sdk.reliability import AdvancedRetryManager, classify_exception
from steer_llm_sdk.reliability.error_classifier import ErrorClassification, ErrorClassifier


def status_error(cls: type[openai.APIStatusError], status: int, **headers: str):
    request = httpx.Request("POST", "http://sim/v1/chat/completions")
    response = httpx.Response(status, headers=headers, request=request,
                              json={"error": {"message": "no"}})
    return cls("provider said no", response=response, body=None)


class HeaderDictError(Exception):
    """An SDK error whose response carries a plain dict of headers (not httpx.Headers)."""

    def __init__(self, status: int, headers: dict[str, str]):
        super().__init__("slow down")
        self.status_code = status
        self.response = types.SimpleNamespace(headers=headers, status_code=status)


@pytest.mark.parametrize(("status", "category", "retryable"), [
    (503, ErrorCategory.SERVER_ERROR, True), (504, ErrorCategory.SERVER_ERROR, True),
    (429, ErrorCategory.RATE_LIMIT, True), (400, ErrorCategory.VALIDATION, False),
    (401, ErrorCategory.AUTHENTICATION, False),
])
def test_provider_error_is_classified_by_status_code(status, category, retryable):
    error = ProviderError("Network error", provider="mock", status_code=status)
    assert (error.error_category, error.is_retryable) == (category, retryable)
    assert classify_exception(error) is error  # passes through with that category


def test_provider_error_0_3_2_attributes_are_settable():
    error = ProviderError("x", provider="mock", status_code=500)
    error.is_retryable = False
    error.error_category = ErrorCategory.RATE_LIMIT
    error.original_error = RuntimeError("root")
    assert error.category == "rate_limit" and error.to_dict()["category"] == "rate_limit"


@pytest.mark.parametrize(("cls", "status", "category", "retryable"), [
    (openai.AuthenticationError, 401, ErrorCategory.AUTHENTICATION, False),
    (openai.PermissionDeniedError, 403, ErrorCategory.PERMISSION_DENIED, False),
    (openai.NotFoundError, 404, ErrorCategory.NOT_FOUND, False),
    (openai.ConflictError, 409, ErrorCategory.CONFLICT, False),
    (openai.BadRequestError, 400, ErrorCategory.VALIDATION, False),
    (openai.RateLimitError, 429, ErrorCategory.RATE_LIMIT, True),
    (openai.InternalServerError, 500, ErrorCategory.SERVER_ERROR, True),
    (openai.InternalServerError, 502, ErrorCategory.SERVER_ERROR, True),
])
def test_error_classifier_by_status(cls, status, category, retryable):
    result = ErrorClassifier.classify_error(status_error(cls, status), "openai")
    assert isinstance(result, ErrorClassification)
    assert (result.category, result.is_retryable, result.status_code) == (category, retryable,
                                                                          status)
    assert result.user_message and result.provider == "openai"


def test_error_classifier_suggested_delay_from_retry_after():
    result = ErrorClassifier.classify_error(
        status_error(openai.RateLimitError, 429, **{"retry-after": "45"}), "openai")
    assert result.suggested_delay == 45.0
    attr = openai.RateLimitError("limited", response=httpx.Response(
        429, request=httpx.Request("POST", "http://sim")), body=None)
    attr.retry_after = 30  # 0.3.2 SDK errors carried it as an attribute
    assert ErrorClassifier.classify_error(attr, "anthropic").suggested_delay == 30.0


def test_transport_errors():
    timeout = ErrorClassifier.classify_error(httpx.ReadTimeout("slow"), "xai")
    network = ErrorClassifier.classify_error(httpx.ConnectError("refused"), "xai")
    assert (timeout.category, timeout.is_retryable) == (ErrorCategory.TIMEOUT, True)
    assert (network.category, network.is_retryable) == (ErrorCategory.NETWORK, True)


@pytest.mark.parametrize(("message", "category", "retryable"), [
    ("Rate limit exceeded for model", ErrorCategory.RATE_LIMIT, True),
    ("Too many requests, please retry", ErrorCategory.RATE_LIMIT, True),
    ("Invalid API key provided", ErrorCategory.AUTHENTICATION, False),
    ("Connection error: timeout", ErrorCategory.TIMEOUT, True),
    ("Server error: overloaded", ErrorCategory.SERVER_ERROR, True),
    ("Content filter triggered", ErrorCategory.CONTENT_FILTER, False),
    ("Some random error", ErrorCategory.UNKNOWN, False),
])
def test_untyped_errors_are_classified_by_message(message, category, retryable):
    result = ErrorClassifier.classify_error(Exception(message), "openai")
    assert (result.category, result.is_retryable) == (category, retryable)


def test_programming_errors_are_not_read_by_message():
    assert ErrorClassifier.classify_error(ValueError("timeout must be > 0")).category == (
        ErrorCategory.UNKNOWN)


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_retry_after_from_a_plain_dict_is_case_insensitive(name):
    assert classify_exception(HeaderDictError(429, {name: "60"})).retry_after == 60.0
    ms = classify_exception(HeaderDictError(503, {"Retry-After-Ms": "1500"}))
    assert ms.retry_after == 1.5


async def test_unknown_error_marked_retryable_is_retried():
    """docs/providers.md: an `unknown` error is retried only when it says is_retryable."""
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ProviderError("odd failure", is_retryable=True)  # category unknown
        return "ok"

    manager = AdvancedRetryManager(RetryPolicy(max_attempts=3, initial_delay=0, jitter=0))
    assert await manager.execute(flaky) == "ok" and len(calls) == 3

    async def plain():
        calls.append(1)
        raise ProviderError("odd failure")  # unknown, not marked: not retried

    calls.clear()
    with pytest.raises(ProviderError):
        await manager.execute(plain)
    assert len(calls) == 1
