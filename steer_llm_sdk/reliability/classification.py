"""Turn whatever a provider SDK raised into one ``ProviderError`` with an ``ErrorCategory``.

Retry, circuit-breaker and fallback decisions all key off the category, so they must agree on
it: this module is the single place that looks at openai / httpx exception types, HTTP status
codes and ``Retry-After`` headers. Everything downstream only reads ``ProviderError`` fields.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any

import httpx
import openai

from steer_llm_sdk.errors import ErrorCategory, ProviderError, category_for_status

try:  # openai>=3 talks HTTP through httpx2; older versions use httpx itself.
    import httpx2 as _httpx2
except ImportError:  # pragma: no cover - depends on the installed openai
    _httpx2 = None

__all__ = ["classify_exception", "is_client_error", "is_local_error", "parse_retry_after",
           "reached_provider", "user_advice"]

# 4xx statuses that mean "the provider is fine, our request is not" - except 408/429, which
# say the provider is slow or busy. These never trip a breaker and are never retried.
_TRANSIENT_4XX = frozenset({408, 429})
_CLIENT_CATEGORIES = frozenset(
    {ErrorCategory.AUTHENTICATION, ErrorCategory.PERMISSION_DENIED, ErrorCategory.NOT_FOUND,
     ErrorCategory.CONFLICT, ErrorCategory.INVALID_REQUEST, ErrorCategory.CONTENT_FILTER}
)
_CONTENT_FILTER_MARKERS = (
    "content_filter", "content_policy", "content policy", "content management policy",
    "responsibleaipolicyviolation", "safety system",
)

_TIMEOUT_TYPES: tuple[type[BaseException], ...] = (
    openai.APITimeoutError, TimeoutError, httpx.TimeoutException,  # asyncio.TimeoutError too
)
_NETWORK_TYPES: tuple[type[BaseException], ...] = (
    openai.APIConnectionError, httpx.TransportError, ConnectionError,
)
_DECODE_TYPES: tuple[type[BaseException], ...] = (
    openai.APIResponseValidationError, json.JSONDecodeError, httpx.DecodingError,
)
# raised by the HTTP client before a byte left the process (an invalid header value, a bad
# URL): our request's fault, never the provider's (Envoy calls these local-origin errors)
_LOCAL_TYPES: tuple[type[BaseException], ...] = (
    httpx.LocalProtocolError, httpx.UnsupportedProtocol, httpx.InvalidURL, UnicodeEncodeError,
)
if _httpx2 is not None:
    _LOCAL_TYPES += (_httpx2.LocalProtocolError, _httpx2.UnsupportedProtocol,
                     _httpx2.InvalidURL)
    _TIMEOUT_TYPES += (_httpx2.TimeoutException,)
    _NETWORK_TYPES += (_httpx2.TransportError,)
    _DECODE_TYPES += (_httpx2.DecodingError,)

_ADVICE = {
    ErrorCategory.RATE_LIMIT: "slow down, wait for the retry window, or raise your quota",
    ErrorCategory.SERVER_ERROR: "the provider failed; retry later or configure a fallback",
    ErrorCategory.TIMEOUT: "the call timed out; retry, or raise per_agent_timeout_ms",
    ErrorCategory.NETWORK: "the provider was unreachable; check connectivity/base_url and retry",
    ErrorCategory.AUTHENTICATION: "check the API key and its permissions for this model",
    ErrorCategory.PERMISSION_DENIED: "the key may not use this model or resource; check access",
    ErrorCategory.NOT_FOUND: "check the model name and the base_url",
    ErrorCategory.CONFLICT: "the request conflicts with the resource's state; fix and resend",
    ErrorCategory.INVALID_REQUEST: "fix the request (model name, parameters, input size)",
    ErrorCategory.CONTENT_FILTER: "the provider's content policy rejected it; change the input",
    ErrorCategory.CIRCUIT_OPEN: "the provider's breaker is open; wait or configure a fallback",
    ErrorCategory.UNKNOWN: "unexpected error; see the chained exception",
}


def user_advice(category: ErrorCategory | str) -> str:
    """What a user should do about an error of ``category``, as one sentence."""
    advice = _ADVICE.get(ErrorCategory(category), _ADVICE[ErrorCategory.UNKNOWN])
    return advice[0].upper() + advice[1:] + "."


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds (float ok) or an HTTP date.

    Never negative (a date in the past means "now"); ``None`` when absent or unparseable so
    callers fall back to their own backoff instead of guessing.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_tz(text)
            if parsed is None:
                return None
            seconds = email.utils.mktime_tz(parsed) - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup: httpx headers are, a plain dict ``{"Retry-After": ...}`` is not."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, item in headers.items():
        if isinstance(key, str) and key.lower() == name:
            return item
    return None


def _retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Prefer the more precise ``retry-after-ms`` (OpenAI/Azure send it), then ``Retry-After``."""
    if not isinstance(headers, Mapping):
        return None
    ms = _header(headers, "retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    return parse_retry_after(_header(headers, "retry-after"))


def _retry_after_attribute(exc: BaseException) -> float | None:
    """Some SDK errors (and 0.3.2's) carry the server's wait as ``exc.retry_after``."""
    value = getattr(exc, "retry_after", None)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(0.0, float(value))


def _response_of(exc: BaseException) -> Any:
    return getattr(exc, "response", None)


def _status_of(exc: BaseException) -> int | None:
    """HTTP status of an openai/httpx status error or of a ``ProviderError``, if it has one."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(_response_of(exc), "status_code", None)
    return status if isinstance(status, int) else None


def _mentions_content_filter(exc: BaseException) -> bool:
    """Providers flag policy rejections inside a 400 body, not with a status of their own."""
    parts = [str(exc), str(getattr(exc, "code", "") or "")]
    body = getattr(exc, "body", None)
    if body is not None:
        try:
            parts.append(json.dumps(body, default=str))
        except (TypeError, ValueError):
            parts.append(str(body))
    text = " ".join(parts).lower()
    return any(marker in text for marker in _CONTENT_FILTER_MARKERS)


def is_local_error(exc: BaseException) -> bool:
    """True when the exception (or what it wraps) was raised before the request left the
    process: it says nothing about the provider, so breakers ignore it and retries skip it."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, _LOCAL_TYPES):
            return True
        current, seen = current.__cause__ or current.__context__, seen + 1
    return False


def reached_provider(exc: BaseException) -> bool:
    """True when the failure says something about the provider: it answered (any HTTP
    status, a malformed body) or talking to it failed (timeout, connection). False for errors
    raised in our own process before or instead of a request (local protocol errors, a
    TypeError from bad arguments, client-side validation): breakers ignore those."""
    if is_local_error(exc):
        return False
    if _status_of(exc) is not None:
        return True
    return isinstance(exc, _TIMEOUT_TYPES + _NETWORK_TYPES + _DECODE_TYPES)


def is_client_error(exc: BaseException) -> bool:
    """True when the request itself was wrong (400/401/403/404/409/422 and other non-transient
    4xx): the provider answered, so a breaker must not count it as the provider failing."""
    status = _status_of(exc)
    if status is not None:
        return 400 <= status < 500 and status not in _TRANSIENT_4XX
    if isinstance(exc, ProviderError):
        return exc.category in _CLIENT_CATEGORIES
    return is_local_error(exc)


# Last resort for exceptions that carry neither a known type nor a status (a tool's own
# ``Exception("rate limit exceeded")``): 0.3.2 classified them by message. Checked in order
# (a "connection error: timeout" is a timeout). Programming errors are never read this way:
# a ValueError("timeout must be > 0") says nothing about the provider.
_MESSAGE_PATTERNS: tuple[tuple[ErrorCategory, tuple[str, ...]], ...] = (
    (ErrorCategory.RATE_LIMIT, ("rate limit", "rate_limit", "too many requests")),
    (ErrorCategory.AUTHENTICATION, ("invalid api key", "incorrect api key", "unauthorized",
                                    "authentication")),
    (ErrorCategory.CONTENT_FILTER, ("content filter",) + _CONTENT_FILTER_MARKERS),
    (ErrorCategory.TIMEOUT, ("timed out", "timeout")),
    (ErrorCategory.SERVER_ERROR, ("server error", "overloaded", "service unavailable",
                                  "bad gateway", "internal error")),
    (ErrorCategory.NETWORK, ("connection refused", "connection reset", "connection error")),
)
_NOT_BY_MESSAGE = (ValueError, TypeError, KeyError, AttributeError, AssertionError,
                   NotImplementedError)


def _category_from_message(exc: BaseException) -> ErrorCategory:
    if isinstance(exc, _NOT_BY_MESSAGE):
        return ErrorCategory.UNKNOWN
    text = str(exc).lower()
    for category, markers in _MESSAGE_PATTERNS:
        if any(marker in text for marker in markers):
            return category
    return ErrorCategory.UNKNOWN


def _category_for(exc: BaseException, status: int | None) -> ErrorCategory:
    """Pick the category; order matters (APITimeoutError is an APIConnectionError, etc.)."""
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return ErrorCategory.CONTENT_FILTER
    if is_local_error(exc):
        return ErrorCategory.INVALID_REQUEST  # checked before network: it wraps the same types
    if isinstance(exc, openai.LengthFinishReasonError):
        return ErrorCategory.INVALID_REQUEST
    if isinstance(exc, _DECODE_TYPES):
        return ErrorCategory.SERVER_ERROR  # a malformed response is the server's fault
    if isinstance(exc, _TIMEOUT_TYPES):
        return ErrorCategory.TIMEOUT
    if isinstance(exc, _NETWORK_TYPES):
        return ErrorCategory.NETWORK
    if status is None:
        return _category_from_message(exc)
    category = category_for_status(status)
    if category is ErrorCategory.INVALID_REQUEST and _mentions_content_filter(exc):
        return ErrorCategory.CONTENT_FILTER
    return category


def classify_exception(exc: BaseException, provider: str | None = None) -> ProviderError:
    """Map any exception from a provider call onto a ``ProviderError``.

    A ``ProviderError`` passes through unchanged (it was classified where it was raised). The
    original exception is set as ``__cause__`` so tracebacks still show what really happened.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError) and type(exc).__name__ == "TaskRunTimeoutError":
        # Prefect's per-attempt timeout (per_agent_timeout_ms): a timeout like any other
        error = ProviderError(
            f"{provider or 'replicate'} attempt exceeded its time limit ({exc}). "
            f"{_ADVICE[ErrorCategory.TIMEOUT].capitalize()}.",
            category=ErrorCategory.TIMEOUT.value, provider=provider)
        error.__cause__ = exc
        return error
    status = _status_of(exc)  # openai/anthropic/httpx status errors all expose one
    category = _category_for(exc, status)

    retry_after = None
    if category in (ErrorCategory.RATE_LIMIT, ErrorCategory.SERVER_ERROR) and (
        status in (429, 503)
    ):
        retry_after = _retry_after_from_headers(getattr(_response_of(exc), "headers", None))
    if retry_after is None and category is ErrorCategory.RATE_LIMIT:
        retry_after = _retry_after_attribute(exc)

    name = provider or "provider"
    where = f"HTTP {status}" if status is not None else type(exc).__name__
    detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    wait = f" (Retry-After {retry_after:.1f}s)" if retry_after is not None else ""
    message = f"{name} call failed with {where}{wait}: {detail}. {_ADVICE[category].capitalize()}."

    error = ProviderError(
        message, category=category.value, provider=provider, status_code=status,
        retry_after=retry_after,
    )
    error.__cause__ = exc
    return error
