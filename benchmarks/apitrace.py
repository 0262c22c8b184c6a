"""Records every Prefect API request this process makes (method, path, status, duration).

Prefect's client is built on ``httpx`` while the openai SDK uses its own ``httpx2`` fork, so
wrapping ``httpx.AsyncClient.send`` sees exactly the engine's API traffic.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApiCall:
    started: float
    duration_s: float
    method: str
    path: str
    status: int | str
    request_bytes: int = 0


class ApiTracer:
    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        import httpx

        original = httpx.AsyncClient.send
        tracer = self

        async def send(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            status: int | str = "error"
            try:
                response = await original(client, request, *args, **kwargs)
                status = response.status_code
                return response
            except Exception as exc:
                status = type(exc).__name__
                raise
            finally:
                with tracer._lock:
                    tracer.calls.append(ApiCall(started, time.perf_counter() - started,
                                                request.method, request.url.path, status,
                                                _content_length(request)))

        httpx.AsyncClient.send = send  # type: ignore[method-assign]
        self._installed = True

    def take(self) -> list[ApiCall]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls


def _content_length(request: Any) -> int:
    try:
        return len(request.content)
    except Exception:  # a streaming body: not read here
        return 0


def route(path: str) -> str:
    """/api/flow_runs/<uuid>/set_state -> /api/flow_runs/{id}/set_state"""
    parts = [p for p in path.split("/") if p]
    return "/" + "/".join("{id}" if len(p) == 36 and p.count("-") == 4 else p for p in parts)


def summarize_calls(calls: list[ApiCall], since: float) -> dict[str, Any]:
    counts = Counter(f"{c.method} {route(c.path)}" for c in calls)
    retried = [c for c in calls if c.status in (429, 502, 503)]
    return {
        "requests": len(calls),
        "by_route": dict(counts.most_common()),
        "retryable_error_count": len(retried),
        "retryable_errors": [f"+{c.started - since:.3f}s {c.method} {route(c.path)} {c.status}"
                             for c in retried[:8]],
        "time_in_api_s": round(sum(c.duration_s for c in calls), 4),
    }


def format_timeline(calls: list[ApiCall], since: float) -> list[str]:
    return [f"  +{c.started - since:7.3f}s {c.duration_s * 1000:7.1f} ms  {c.method:5} "
            f"{route(c.path)} -> {c.status}  ({c.request_bytes} B sent)" for c in calls]


TRACER = ApiTracer()
