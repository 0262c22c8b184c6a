"""Request handling: routing, the fault pipeline and OpenAI-shaped bodies.

Kept separate from the socket code so the order in which faults apply is readable in one place:
latency/hang -> drop -> status -> fail=N -> malformed -> content (content_filter,
invalid_json_content). Latency comes first because on a real API slowness and failure compound.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from steer_llm_sdk.testing import content as gen
from steer_llm_sdk.testing.faults import FaultSpec, FaultSpecError, parse_header, split_model
from steer_llm_sdk.testing.http11 import HttpRequest
from steer_llm_sdk.testing.stats import SimulatorStats

SLEEP_SLICE_S = 0.05
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini", "sim-small")
MALFORMED_BODY = b'{"id": "chatcmpl-sim", "object": "chat.completion", "choices": [{"index": 0,'
ERROR_SHAPES: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (simulated)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (simulated)."),
    403: ("permission_denied", None, "You are not allowed to access this resource (simulated)."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist (simulated)."),
    408: ("timeout", None, "Request timed out (simulated)."),
    409: ("conflict", None, "Conflicting request (simulated)."),
    422: ("invalid_request_error", None, "Unprocessable request (simulated)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (simulated)."),
    500: ("server_error", None, "The server had an error processing your request (simulated)."),
    502: ("server_error", "bad_gateway", "Bad gateway (simulated)."),
    503: ("server_error", "service_unavailable", "The server is overloaded (simulated)."),
    504: ("server_error", "gateway_timeout", "Gateway timeout (simulated)."),
}


@dataclass
class Reply:
    """What the connection loop should do: send ``status``/``body`` or drop the socket."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    outcome: str = "ok"
    drop: bool = False


def error_reply(status: int, message: str | None = None, *, code: str | None = None,
                faults: FaultSpec | None = None) -> Reply:
    """An OpenAI-format error, so the openai client raises the status-specific exception."""
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    err_type, err_code, default_message = ERROR_SHAPES.get(
        status, (default_type, None, f"Simulated HTTP {status}.")
    )
    body = {"error": {"message": message or default_message, "type": err_type,
                      "param": None, "code": code or err_code}}
    headers: list[tuple[str, str]] = []
    if faults is not None and status in (429, 503):
        if faults.retry_after is not None:
            headers.append(("Retry-After", f"{faults.retry_after:g}"))
        elif faults.retry_after_date is not None:
            when = time.time() + faults.retry_after_date
            headers.append(("Retry-After", formatdate(when, usegmt=True)))
    return Reply(status, json.dumps(body).encode(), headers, outcome="error")


def ok_reply(payload: Any) -> Reply:
    return Reply(200, json.dumps(payload).encode())


class SimulatorApp:
    """Turns one parsed HTTP request into a :class:`Reply` (possibly after sleeping)."""

    def __init__(self, stats: SimulatorStats, default_latency_s: float = 0.0,
                 models: tuple[str, ...] = DEFAULT_MODELS) -> None:
        self.stats = stats
        self.default_latency_s = default_latency_s
        self.models = models
        self._fail_lock = threading.Lock()
        self._fail_counts: dict[tuple[Any, ...], int] = {}
        self.server_faults = FaultSpec()  # applied to every chat request (an outage)
        self.answer_variant = ""  # SimulatorServer.answer_variant

    def reset(self) -> None:
        with self._fail_lock:
            self._fail_counts.clear()

    async def handle(self, request: HttpRequest, handle: tuple[int, int],
                     client_gone: Callable[[], bool] = lambda: False) -> Reply:
        """Route ``request``; ``client_gone`` lets long sleeps end when the client hangs up."""
        try:
            header_faults = parse_header(request.headers.get("x-sim-fault"))
        except FaultSpecError as exc:
            return error_reply(400, str(exc), code="invalid_sim_fault")
        route = (request.method, request.path.rstrip("/"))
        if route == ("POST", "/v1/chat/completions"):
            return await self._chat(request, handle, header_faults, client_gone)
        if request.method == "GET" and route[1] in ("/v1/models", "/health"):
            self.stats.annotate(handle, faults=header_faults.canonical())
            key = (route[1], header_faults.canonical(), request.headers.get("x-sim-key"))
            reply = await self._apply_faults(header_faults, key, client_gone)
            if reply is not None:
                return reply
            if route[1] == "/health":
                return ok_reply({"status": "ok"})
            return ok_reply({"object": "list", "data": [self._model_obj(m) for m in self.models]})
        if request.method == "GET" and route[1].startswith("/v1/models/"):
            return ok_reply(self._model_obj(route[1].removeprefix("/v1/models/")))
        return error_reply(404, f"Invalid URL ({request.method} {request.path})",
                           code="unknown_url")

    @staticmethod
    def _model_obj(model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "simulator"}

    async def _apply_faults(self, faults: FaultSpec, key: tuple[Any, ...],
                            client_gone: Callable[[], bool]) -> Reply | None:
        """Sleep, then return the failing reply the faults call for (``None`` = proceed)."""
        delay = self.default_latency_s + faults.latency + faults.hang
        if delay > 0 and not await self._sleep(delay, client_gone):
            return Reply(0, outcome="client_gone", drop=True)
        if faults.drop:
            return Reply(0, outcome="dropped", drop=True)
        if faults.status is not None:
            return error_reply(faults.status, faults=faults)
        if faults.fail_count:
            with self._fail_lock:
                seen = self._fail_counts.get(key, 0) + 1
                self._fail_counts[key] = seen
            if seen <= faults.fail_count:
                return error_reply(faults.fail_status, faults=faults)
        if faults.malformed:
            return Reply(200, MALFORMED_BODY, outcome="malformed")
        return None

    @staticmethod
    async def _sleep(delay: float, client_gone: Callable[[], bool]) -> bool:
        """Sleep ``delay`` s in slices; False if the client disconnected (e.g. timed out)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(left, SLEEP_SLICE_S))
            if client_gone():
                return False
        return True

    async def _chat(self, request: HttpRequest, handle: tuple[int, int],
                    header_faults: FaultSpec, client_gone: Callable[[], bool]) -> Reply:
        try:
            body = json.loads(request.body or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError):
            return error_reply(400, "We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return error_reply(400, "The request body must be a JSON object.")
        model_name, messages = body.get("model"), body.get("messages")
        if not isinstance(model_name, str) or not model_name:
            return error_reply(400, "you must provide a model parameter")
        if not isinstance(messages, list) or not messages:
            return error_reply(400, "Missing required parameter: 'messages'.")
        if body.get("stream"):
            return error_reply(400, "stream=true is not supported by the simulator.",
                               code="unsupported_parameter")
        seed = body.get("seed")
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        try:
            model, model_faults = split_model(model_name)
            faults = model_faults.merged(header_faults).merged(self.server_faults)
        except FaultSpecError as exc:
            return error_reply(400, str(exc), code="invalid_sim_fault")
        self.stats.annotate(handle, model=model, seed=seed, faults=faults.canonical())
        key = (model, faults.canonical(), seed, request.headers.get("x-sim-key"))
        reply = await self._apply_faults(faults, key, client_gone)
        if reply is not None:
            return reply
        response_format = body.get("response_format")
        finish_reason = "stop"
        try:
            text = gen.generate_content(model, messages, seed, response_format,
                                        self.answer_variant)
        except gen.ResponseFormatError as exc:
            return error_reply(400, str(exc), code="invalid_response_format")
        if faults.content_filter:
            text, finish_reason = "", "content_filter"
        elif faults.invalid_json_content:
            text = gen.INVALID_JSON_CONTENT
        usage_in = gen.prompt_tokens(messages)
        usage_out = gen.completion_tokens(text) if text else 0
        self.stats.annotate(handle, usage_tokens=usage_in + usage_out)
        return ok_reply({
            "id": f"chatcmpl-sim{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_simulator",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }],
            "usage": {"prompt_tokens": usage_in, "completion_tokens": usage_out,
                      "total_tokens": usage_in + usage_out},
        })
