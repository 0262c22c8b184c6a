"""OpenAI (and any OpenAI-compatible server) on the official ``openai`` SDK.

One retry layer: the client is built with ``max_retries=0``; Prefect task retries are the only
retries, so attempts never multiply. Every call goes through the endpoint's pybreaker breaker;
failures are classified into ProviderError categories that drive retry, breaker and fallback.
The API key is read once and never logged, stored in parameters, results or artifacts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from typing import Any
from urllib.parse import urlparse

from openai import AsyncOpenAI

from steer_llm_sdk.config import CircuitBreakerConfig
from steer_llm_sdk.errors import BudgetExceeded, CircuitOpenError, ProviderError
from steer_llm_sdk.headers import header_value_problem
from steer_llm_sdk.providers.ledger import CallLedger, current_ledger
from steer_llm_sdk.providers.models import Completion
from steer_llm_sdk.providers.pricing import cost_usd
from steer_llm_sdk.reliability.breakers import get_breaker_registry
from steer_llm_sdk.reliability.classification import classify_exception, is_local_error
from steer_llm_sdk.reliability.rate_limits import provider_slot
from steer_llm_sdk.reliability.retry import check_retry_after_budget
from steer_llm_sdk.reliability.run_context import current_breaker_config

logger = logging.getLogger("steer_llm_sdk.providers.openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    """Chat completions with seeds and structured output, guarded by a circuit breaker."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        name: str = "openai",
        timeout_s: float = 60.0,
        breaker_config: CircuitBreakerConfig | None = None,
    ) -> None:
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY")
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
        self.name = name
        self.timeout_s = timeout_s
        self.breaker_config = breaker_config
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def breaker_name(self) -> str:
        """Breakers are per endpoint: a local vLLM failing must not open OpenAI's breaker."""
        if self.base_url.rstrip("/") == DEFAULT_BASE_URL:
            return self.name
        return f"{self.name}@{urlparse(self.base_url).netloc}"

    @property
    def has_credentials(self) -> bool:
        return bool(self._api_key)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIProvider(name={self.name!r}, base_url={self.base_url!r})"

    def _client(self) -> AsyncOpenAI:
        """One client per event loop: httpx pools are bound to the loop that created them."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            if not self._api_key:
                raise ProviderError(
                    f"no API key for provider {self.name!r}: set OPENAI_API_KEY or pass "
                    "api_key=... (for a local OpenAI-compatible server any non-empty value "
                    "works)", category="authentication", provider=self.name)
            client = AsyncOpenAI(api_key=self._api_key, base_url=self.base_url,
                                 max_retries=0, timeout=self.timeout_s)
            self._clients[loop] = client
        return client

    async def complete(
        self,
        messages: list[dict[str, Any]],
        model: str,
        *,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
        trace_id: str | None = None,
        request_id: str | None = None,
        replicate_id: str | None = None,
        deadline: float | None = None,
        breaker_config: CircuitBreakerConfig | None = None,
        timeout_s: float | None = None,
    ) -> Completion:
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        if temperature is not None:
            kwargs["temperature"] = temperature
        if seed is not None:
            kwargs["seed"] = seed
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if response_format is not None:
            kwargs["response_format"] = response_format
        names = {"X-Request-ID": ("request_id", request_id), "X-Trace-ID": ("trace_id", trace_id),
                 "X-Replicate-ID": ("replicate_id", replicate_id)}
        headers = {header: value for header, (_, value) in names.items() if value}
        for header, (field_name, value) in names.items():
            problem = header_value_problem(value) if value else None
            if problem:  # before the breaker: the request never leaves, the provider is fine
                raise ProviderError(
                    f"{field_name} {problem}; it is sent as the {header} header. Use printable "
                    "characters only (e.g. a uuid4 hex)", category="invalid_request",
                    provider=self.breaker_name, is_retryable=False)
        timeout = timeout_s or self.timeout_s
        if deadline is not None:
            timeout = max(min(timeout, deadline - time.monotonic()), 0.001)
        breaker_cfg = (breaker_config or self.breaker_config or current_breaker_config()
                       or CircuitBreakerConfig())
        client = self._client()
        started = time.perf_counter()
        ledger = current_ledger()
        try:
            # Shared rate/concurrency limits first (they only wait, bounded by the deadline;
            # BudgetExceeded propagates unclassified), then the endpoint's breaker.
            async with provider_slot(self.breaker_name, model, deadline):
                response = await get_breaker_registry().call(
                    self.breaker_name, breaker_cfg, client.chat.completions.create,
                    # a caller meeting a half-open breaker waits for the trial at most this long
                    wait_until=time.monotonic() + timeout,
                    extra_headers=headers, timeout=timeout, **kwargs,
                )
        except BudgetExceeded:
            raise
        except BaseException as exc:
            _account_failure(ledger, exc)
            if not isinstance(exc, Exception):
                raise
            error = classify_exception(exc, provider=self.breaker_name)
            # INFO: the retry layer decides whether this attempt's failure matters; a replicate
            # that finally fails gets one console line from its task run (console.py)
            logger.info("%s call failed: %s trace_id=%s request_id=%s replicate=%s",
                           self.breaker_name, error.category, trace_id, request_id,
                           replicate_id)
            check_retry_after_budget(error, deadline)
            raise error from exc
        completion = self._to_completion(response, model, started, trace_id, request_id)
        if ledger is not None:
            ledger.record(completion.usage, completion.cost_usd)
        if completion.finish_reason == "content_filter":  # billed, and now accounted for
            raise ProviderError(
                f"{self.breaker_name} withheld the answer (finish_reason=content_filter); "
                "rephrase the prompt", category="content_filter", provider=self.breaker_name)
        return completion

    def _to_completion(self, response: Any, model: str, started: float,
                       trace_id: str | None, request_id: str | None) -> Completion:
        choice = response.choices[0] if response.choices else None
        finish = choice.finish_reason if choice else None
        usage = response.usage
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        logger.debug("%s %s ok in %.0f ms trace_id=%s request_id=%s", self.breaker_name, model,
                     (time.perf_counter() - started) * 1000, trace_id, request_id)
        return Completion(
            content=(choice.message.content or "") if choice else "",
            model=response.model or model,
            finish_reason=finish,
            usage={"prompt_tokens": prompt, "completion_tokens": completion,
                   "total_tokens": usage.total_tokens if usage else prompt + completion},
            cost_usd=cost_usd(model, prompt, completion),
            response_id=getattr(response, "id", None),
        )


def _account_failure(ledger: CallLedger | None, exc: BaseException) -> None:
    """A call that reached the provider but brought back no usage: an HTTP error answer is
    known to cost nothing; anything else (timeout, dropped connection, malformed body,
    cancellation in flight) may have been billed, so it is counted as unaccounted."""
    if ledger is None or isinstance(exc, CircuitOpenError) or is_local_error(exc):
        return
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        ledger.record({}, 0.0)
    else:
        ledger.record_unaccounted()
