"""Typed orchestration events, delivered in order to the caller's ``on_event`` callback.

Events are plain pydantic models so a host can forward them to a websocket or a log as JSON.
The engine applies ``OrchestrationConfig.redactor_cb`` to every payload before delivery.

Callbacks are contained: they never escape ``run()`` nor break the run.

* ``redactor_cb`` raises, or returns something other than a dict with str keys: the payload is
  replaced by ``{"redacted": "[redaction failed]"}`` (the unredacted data is never delivered)
  and one warning is logged per run.
* ``on_event`` raises (sync or async): that event is dropped for the callback (it stays in the
  run's history) and one warning is logged per run; ``callback_failures`` counts them.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

EventType = Literal[
    "orchestration_started",
    "plan_decided",
    "tool_started",
    "replicate_started",
    "replicate_done",
    "replicate_failed",
    "partial_summary",
    "early_stop",
    "bundle_ready",
    "fallback",
    "orchestration_completed",
    "error",
    "timeout",
    "cancelled",
]

# Events that only stream while OrchestrationConfig.streaming is on.
STREAMING_ONLY: frozenset[str] = frozenset(
    {"replicate_started", "replicate_done", "replicate_failed", "partial_summary"}
)


class OrchestrationEvent(BaseModel):
    type: EventType
    tool_name: str | None = None
    trace_id: str
    request_id: str
    replicate_id: str | None = None
    timestamp: float = Field(default_factory=time.time)
    data: dict[str, Any] = Field(default_factory=dict)


EventCallback = Callable[[OrchestrationEvent], None | Awaitable[None]]
REDACTION_FAILED = "[redaction failed]"
_fallback_logger = logging.getLogger("steer_llm_sdk.events")


class EventEmitter:
    """Delivers events to one callback, redacting payloads and never letting a broken
    callback break the orchestration (its errors are logged, not raised)."""

    def __init__(
        self,
        callback: EventCallback | None,
        *,
        trace_id: str,
        request_id: str,
        redactor: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        streaming: bool = True,
        logger: Any = None,
    ) -> None:
        self._callback = callback
        self.trace_id = trace_id
        self.request_id = request_id
        self._redactor = redactor
        self._streaming = streaming
        self._logger = logger or _fallback_logger
        self.history: list[OrchestrationEvent] = []
        self.redaction_failures = 0
        self.callback_failures = 0

    @property
    def redactor(self) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """``redactor_cb``: also applied to the question shown in the evidence artifacts."""
        return self._redactor

    async def emit(
        self,
        type_: EventType,
        *,
        tool_name: str | None = None,
        replicate_id: str | None = None,
        **data: Any,
    ) -> None:
        if type_ in STREAMING_ONLY and not self._streaming:
            return
        if self._redactor is not None:
            data = self._redact(type_, data)
        event = OrchestrationEvent(
            type=type_, tool_name=tool_name, trace_id=self.trace_id,
            request_id=self.request_id, replicate_id=replicate_id, data=data,
        )
        self.history.append(event)
        if self._callback is None:
            return
        try:
            result = self._callback(event)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # a user's callback must not fail the run
            self.callback_failures += 1
            if self.callback_failures == 1:
                self._logger.warning(
                    "on_event callback failed for %s: %r; the event was dropped (further "
                    "failures in this run are counted, not logged)", type_, exc)

    def _redact(self, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        """The redactor's dict, or a placeholder: never the unredacted payload."""
        try:
            redacted = self._redactor(dict(data))  # type: ignore[misc]
            problem = None if isinstance(redacted, dict) and all(
                isinstance(k, str) for k in redacted) else \
                f"returned {type(redacted).__name__}, not a dict with str keys"
        except Exception as exc:
            redacted, problem = None, f"raised {exc!r}"
        if problem is None:
            return dict(redacted)  # type: ignore[arg-type]
        self.redaction_failures += 1
        if self.redaction_failures == 1:
            self._logger.warning(
                "redactor_cb %s for a %s event; payloads it cannot redact are replaced by "
                "%r (further failures in this run are counted, not logged)",
                problem, type_, REDACTION_FAILED)
        return {"redacted": REDACTION_FAILED}
