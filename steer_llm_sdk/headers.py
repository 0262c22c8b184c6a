"""Which strings may travel as HTTP header values (trace and request ids are sent as
``X-Trace-ID`` / ``X-Request-ID``).

A CR, LF or NUL in a header value makes the HTTP client raise before the request leaves the
process. Left unchecked, that error looked like a network failure: it was retried and counted
by the endpoint's circuit breaker, so one caller's bad id opened the breaker of a healthy
endpoint for everyone. Ids are therefore checked where they enter (OrchestrationConfig) and
again right before a provider call (ids can also arrive through tool options).
"""

from __future__ import annotations

__all__ = ["header_value_problem"]


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a header value, or None when it can (printable latin-1)."""
    for index, char in enumerate(value):
        code = ord(char)
        if code < 0x20 and char != "\t" or code == 0x7F:
            return f"contains the control character {char!r} at position {index}"
        if code > 0xFF:
            return f"contains the non-latin-1 character {char!r} at position {index}"
    return None
