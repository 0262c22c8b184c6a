"""classify_exception against real openai / httpx exception objects."""

from __future__ import annotations

import email.utils
import json
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest

from steer_llm_sdk.errors import CircuitOpenError, ErrorCategory, ProviderError
from steer_llm_sdk.reliability.classification import (
    classify_exception,
    is_client_error,
    parse_retry_after,
)

URL = "http://x/v1/chat/completions"


def _request() -> httpx.Request:
    return httpx.Request("POST", URL)


def _response(status: int, headers: dict[str, str] | None = None,
              body: object | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, request=_request(),
                          json=body if body is not None else {"error": {"message": "x"}})


def _status_error(cls: type[openai.APIStatusError], status: int, *,
                  headers: dict[str, str] | None = None, body: object | None = None,
                  message: str = "provider said no") -> openai.APIStatusError:
    return cls(message, response=_response(status, headers, body), body=body)


def test_rate_limit_with_retry_after_seconds() -> None:
    exc = _status_error(openai.RateLimitError, 429, headers={"Retry-After": "2.5"})
    err = classify_exception(exc, "openai")
    assert err.category == ErrorCategory.RATE_LIMIT
    assert err.is_retryable and err.status_code == 429 and err.retry_after == 2.5
    assert err.provider == "openai" and err.__cause__ is exc
    assert "openai" in str(err) and "429" in str(err) and "quota" in str(err)


def test_rate_limit_with_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    header = email.utils.format_datetime(when, usegmt=True)
    err = classify_exception(_status_error(openai.RateLimitError, 429,
                                           headers={"Retry-After": header}))
    assert err.retry_after is not None and 27 <= err.retry_after <= 30.5


def test_retry_after_ms_is_preferred() -> None:
    exc = _status_error(openai.RateLimitError, 429,
                        headers={"retry-after-ms": "250", "retry-after": "9"})
    assert classify_exception(exc).retry_after == pytest.approx(0.25)


def test_server_errors_and_503_retry_after() -> None:
    err = classify_exception(_status_error(openai.InternalServerError, 500))
    assert err.category == ErrorCategory.SERVER_ERROR and err.is_retryable
    assert err.retry_after is None
    err = classify_exception(_status_error(openai.InternalServerError, 503,
                                           headers={"Retry-After": "4"}))
    assert err.category == ErrorCategory.SERVER_ERROR and err.retry_after == 4.0
    generic = _status_error(openai.APIStatusError, 502)
    assert classify_exception(generic).category == ErrorCategory.SERVER_ERROR


def test_parse_retry_after_edge_cases() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-4") == 0.0
    past = email.utils.format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0


@pytest.mark.parametrize(
    "exc",
    [
        openai.APITimeoutError(request=_request()),
        TimeoutError(),
        httpx.ReadTimeout("slow", request=_request()),
        _status_error(openai.APIStatusError, 408),
    ],
)
def test_timeouts(exc: BaseException) -> None:
    err = classify_exception(exc)
    assert err.category == ErrorCategory.TIMEOUT and err.is_retryable


@pytest.mark.parametrize(
    "exc",
    [
        openai.APIConnectionError(request=_request()),
        httpx.ConnectError("refused", request=_request()),
        ConnectionResetError("reset"),
    ],
)
def test_network(exc: BaseException) -> None:
    err = classify_exception(exc)
    assert err.category == ErrorCategory.NETWORK and err.is_retryable


@pytest.mark.parametrize(
    ("cls", "status", "category"),
    [
        (openai.AuthenticationError, 401, ErrorCategory.AUTHENTICATION),
        (openai.PermissionDeniedError, 403, ErrorCategory.PERMISSION_DENIED),
        (openai.BadRequestError, 400, ErrorCategory.INVALID_REQUEST),
        (openai.NotFoundError, 404, ErrorCategory.NOT_FOUND),
        (openai.UnprocessableEntityError, 422, ErrorCategory.INVALID_REQUEST),
        (openai.ConflictError, 409, ErrorCategory.CONFLICT),
    ],
)
def test_client_errors(cls: type[openai.APIStatusError], status: int,
                       category: ErrorCategory) -> None:
    exc = _status_error(cls, status)
    err = classify_exception(exc, "openai")
    assert err.category == category and not err.is_retryable and err.status_code == status
    assert is_client_error(exc) and is_client_error(err)


def test_content_filter_from_body() -> None:
    body = {"message": "The response was filtered", "code": "content_filter", "type": None}
    err = classify_exception(_status_error(openai.BadRequestError, 400, body=body))
    assert err.category == ErrorCategory.CONTENT_FILTER and not err.is_retryable
    policy = {"message": "Your request was rejected by our content policy."}
    err = classify_exception(_status_error(openai.BadRequestError, 400, body=policy,
                                           message=policy["message"]))
    assert err.category == ErrorCategory.CONTENT_FILTER


def test_malformed_responses_are_server_errors() -> None:
    validation = openai.APIResponseValidationError(_response(200), body={"bad": 1})
    err = classify_exception(validation)
    assert err.category == ErrorCategory.SERVER_ERROR and err.is_retryable
    try:
        json.loads("{not json")
    except json.JSONDecodeError as decode_error:
        assert classify_exception(decode_error).category == ErrorCategory.SERVER_ERROR


def test_provider_error_passes_through_and_unknown_is_not_retryable() -> None:
    original = CircuitOpenError("openai", 3.0)
    assert classify_exception(original) is original
    mine = ProviderError("x", category="rate_limit", retry_after=1.0)
    assert classify_exception(mine, "other") is mine
    err = classify_exception(ValueError("bug"), "openai")
    assert err.category == ErrorCategory.UNKNOWN and not err.is_retryable


def test_is_client_error_excludes_transient_statuses() -> None:
    assert not is_client_error(_status_error(openai.RateLimitError, 429))
    assert not is_client_error(_status_error(openai.InternalServerError, 500))
    assert not is_client_error(_status_error(openai.APIStatusError, 408))
    assert not is_client_error(openai.APIConnectionError(request=_request()))
    assert not is_client_error(RuntimeError("x"))
