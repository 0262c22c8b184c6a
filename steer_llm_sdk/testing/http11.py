"""A deliberately small HTTP/1.1 server-side codec on top of asyncio streams.

We do not use uvicorn/starlette here because a test double for a flaky model API must be able
to misbehave *at the socket level*: close a connection without any response, send a body that
is not JSON under a JSON content type, or stall mid-request. Owning the byte stream makes those
faults real (the client's own transport code sees them) and also keeps start-up in the low
milliseconds. Supported: keep-alive, ``Content-Length`` and chunked request bodies.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

MAX_BODY_BYTES = 32 * 1024 * 1024


class HttpError(Exception):
    """The request bytes are not acceptable HTTP; answered with ``status`` and then closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """Read one request; ``None`` means the peer closed the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise HttpError(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, version = lines[0].split(" ")
    except ValueError:
        raise HttpError(400, f"malformed request line {lines[0]!r}") from None
    if not version.startswith("HTTP/1."):
        raise HttpError(505, f"unsupported protocol {version!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, f"malformed header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    request = HttpRequest(method.upper(), target, version, headers)
    request.body = await _read_body(reader, headers)
    return request


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    raw = headers.get("content-length")
    if raw is None:
        return b""
    try:
        length = int(raw)
    except ValueError:
        raise HttpError(400, f"bad Content-Length {raw!r}") from None
    if length < 0 or length > MAX_BODY_BYTES:
        raise HttpError(413, "request body too large")
    return await reader.readexactly(length) if length else b""


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise HttpError(400, "bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # skip trailers
                pass
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise HttpError(413, "request body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def render_response(
    status: int,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
    *,
    keep_alive: bool = True,
    content_type: str = "application/json",
) -> bytes:
    """Serialise a complete response with ``Content-Length`` (no chunked responses needed)."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Date: {formatdate(usegmt=True)}",
        "Server: steer-llm-simulator",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
