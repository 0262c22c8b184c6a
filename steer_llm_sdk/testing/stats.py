"""Thread-safe request log of the simulator, read by tests on another thread.

Tests assert on what reached the "model" (how many attempts a retry policy made, that a trace id
was propagated, that a breaker stopped traffic), so each HTTP request becomes a
:class:`RequestRecord` at the moment it is received and is completed when the answer is sent.
Only non-secret headers are kept; for ``Authorization`` we store *whether* it was present, never
its value, so a log dumped in a failing test cannot leak a key.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

HEADERS_OF_INTEREST = (
    "x-request-id",
    "x-trace-id",
    "traceparent",
    "x-sim-key",
    "x-sim-fault",
    "idempotency-key",
    "x-stainless-retry-count",
)


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request as the simulator saw it (an immutable snapshot)."""

    received_at: float
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict, compare=False)
    authorization_present: bool = False
    model: str | None = None
    seed: int | None = None
    faults: str = ""
    status: int | None = None
    outcome: str = "pending"  # ok | error | malformed | dropped | client_gone | cancelled
    duration_s: float | None = None
    usage_tokens: int | None = None  # total_tokens of the usage the answer reported (billed)

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    @property
    def trace_id(self) -> str | None:
        return self.headers.get("x-trace-id")

    @property
    def sim_key(self) -> str | None:
        return self.headers.get("x-sim-key")


class SimulatorStats:
    """Request records plus counters; every public method is safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._by_model: Counter[str] = Counter()
        self._generation = 0

    # -- written by the server -------------------------------------------------------------
    def begin(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, int]:
        """Log a received request; returns a handle for :meth:`annotate`/:meth:`finish`."""
        record = RequestRecord(
            received_at=time.time(),
            method=method,
            path=path,
            headers={k: headers[k] for k in HEADERS_OF_INTEREST if k in headers},
            authorization_present=bool(headers.get("authorization", "").strip()),
        )
        with self._lock:
            self._records.append(record)
            return self._generation, len(self._records) - 1

    def annotate(self, handle: tuple[int, int], **changes: Any) -> None:
        """Attach what is known after parsing the body (model, seed, faults)."""
        with self._lock:
            if handle[0] != self._generation:
                return  # reset() happened while the request was in flight
            record = self._records[handle[1]]
            if changes.get("model") and record.model is None:
                self._by_model[changes["model"]] += 1
            self._records[handle[1]] = replace(record, **changes)

    def finish(self, handle: tuple[int, int], status: int | None, outcome: str) -> None:
        with self._lock:
            if handle[0] != self._generation:
                return
            record = self._records[handle[1]]
            duration = time.time() - record.received_at
            self._records[handle[1]] = replace(
                record, status=status, outcome=outcome, duration_s=duration
            )

    # -- read by tests ---------------------------------------------------------------------
    @property
    def total_requests(self) -> int:
        with self._lock:
            return len(self._records)

    @property
    def requests_by_model(self) -> dict[str, int]:
        """Chat-completion requests per *base* model name (faults stripped)."""
        with self._lock:
            return dict(self._by_model)

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def requests_for(
        self,
        *,
        model: str | None = None,
        seed: int | None = None,
        status: int | None = None,
        path: str | None = None,
        outcome: str | None = None,
        headers: dict[str, str] | None = None,
        **header_values: str,
    ) -> list[RequestRecord]:
        """Records matching every given filter.

        Header filters come either as ``headers={"X-Trace-ID": "t1"}`` or as keyword
        arguments with underscores for dashes (``x_trace_id="t1"``); names are case-insensitive.
        """
        wanted = {k.lower(): v for k, v in (headers or {}).items()}
        wanted.update({k.lower().replace("_", "-"): v for k, v in header_values.items()})
        unknown = set(wanted) - set(HEADERS_OF_INTEREST)
        if unknown:
            raise ValueError(f"headers not recorded: {sorted(unknown)}; see HEADERS_OF_INTEREST")
        fields_ = {"model": model, "seed": seed, "status": status, "path": path,
                   "outcome": outcome}
        return [
            r for r in self.records
            if all(v is None or getattr(r, k) == v for k, v in fields_.items())
            and all(r.headers.get(k) == v for k, v in wanted.items())
        ]

    def billed_tokens(self, **filters: Any) -> int:
        """Sum of ``usage.total_tokens`` over the answers sent (what a provider would bill),
        for the records matching ``filters`` (see :meth:`requests_for`)."""
        return sum(r.usage_tokens or 0 for r in self.requests_for(**filters)
                   if r.outcome == "ok")

    def reset(self) -> None:
        """Forget all records; in-flight requests finishing later are not logged."""
        with self._lock:
            self._records.clear()
            self._by_model.clear()
            self._generation += 1

    def __repr__(self) -> str:
        return (f"SimulatorStats(total_requests={self.total_requests}, "
                f"by_model={self.requests_by_model})")
