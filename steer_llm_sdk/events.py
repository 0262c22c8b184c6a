"""Typed orchestration events, delivered in order to the caller's ``on_event`` callback.

Events are plain pydantic models so a host can forward them to a websocket or a log as JSON.
The engine applies ``OrchestrationConfig.redactor_cb`` to every payload before delivery.
"""

from __future__ import annotations

import inspect
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
        self._logger = logger
        self.history: list[OrchestrationEvent] = []

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
            data = self._redactor(dict(data))
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
            if self._logger is not None:
                self._logger.warning("on_event callback failed for %s: %r", type_, exc)
