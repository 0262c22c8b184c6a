"""``SimulatorServer``: the OpenAI-compatible simulator on a background thread.

The server owns a private event loop on its own thread so it works the same under sync tests,
async tests (whose loop must stay free for the client) and the CLI, and so a test that blocks
its own loop can never deadlock the "model". Start-up binds a socket and returns in a few ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from steer_llm_sdk.testing.app import DEFAULT_MODELS, Reply, SimulatorApp, error_reply
from steer_llm_sdk.testing.faults import FaultSpec, parse_header
from steer_llm_sdk.testing.http11 import HttpError, read_request, render_response
from steer_llm_sdk.testing.stats import RequestRecord, SimulatorStats


class SimulatorServer:
    """An OpenAI-compatible test double for the *model*, served over real HTTP.

    Use as ``with SimulatorServer() as sim:`` or ``async with SimulatorServer() as sim:`` and
    point a real client at ``sim.base_url``. Faults are requested per call through the model
    name (``"gpt-4o-mini+fail=2:503"``) or the ``X-Sim-Fault`` header; see
    :mod:`steer_llm_sdk.testing.faults`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, default_latency_s: float = 0.0,
                 models: Sequence[str] = DEFAULT_MODELS) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.stats = SimulatorStats()
        self._app = SimulatorApp(self.stats, default_latency_s, tuple(models))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._startup_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 5.0) -> SimulatorServer:
        """Bind and serve on a background thread; returns once the port is accepting."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="steer-llm-simulator", daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("simulator did not start in time")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, abort in-flight connections, and join the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = None
        self._port = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(
                self._on_connection, self.host, self._requested_port, backlog=1024,
            ))
            self._port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:  # re-raised on the caller's thread
            self._startup_error = exc
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> SimulatorServer:
        # Starting only binds a socket on another thread (a few ms), so blocking is fine and
        # avoids leaving an executor thread behind.
        return self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses & observability ---------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator is not running")
        return self._port

    @property
    def url(self) -> str:
        """Root URL without ``/v1`` (e.g. for ``/health``)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to an OpenAI client."""
        return f"{self.url}/v1"

    @property
    def answer_variant(self) -> str:
        """Empty by default; any other string makes every prompt get a different (equally
        deterministic) answer, as after a model update: what drift detection must notice."""
        return self._app.answer_variant

    @answer_variant.setter
    def answer_variant(self, value: str) -> None:
        self._app.answer_variant = str(value)

    def reset(self) -> None:
        """Clear request records and ``fail=N`` counters (call between tests)."""
        self.stats.reset()
        self._app.reset()

    def set_faults(self, spec: str | None) -> None:
        """Apply faults to every chat request from now on, in the header grammar
        (``"status=503"`` = the endpoint is down); ``None`` ends the outage."""
        self._app.server_faults = parse_header(spec) if spec else FaultSpec()

    def requests_for(self, **filters: Any) -> list[RequestRecord]:
        """Shortcut for :meth:`SimulatorStats.requests_for`, e.g. ``x_trace_id="t1"``."""
        return self.stats.requests_for(**filters)

    def __repr__(self) -> str:
        where = self.base_url if self._port else "stopped"
        return f"SimulatorServer({where})"

    # -- connections -----------------------------------------------------------------------
    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # Only _shutdown() cancels these tasks; ending normally keeps asyncio's stream
            # callback from logging the cancellation as an unhandled error.
            writer.transport.abort()
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await read_request(reader)
            except HttpError as exc:
                reply = error_reply(exc.status, exc.message)
                writer.write(render_response(reply.status, reply.body, keep_alive=False))
                await writer.drain()
                return
            if request is None:
                return
            handle = self.stats.begin(request.method, request.path, request.headers)
            reply: Reply | None = None
            try:
                reply = await self._app.handle(request, handle, reader.at_eof)
            except Exception as exc:  # a simulator bug must still answer, as a real 500 would
                reply = error_reply(500, f"simulator error: {type(exc).__name__}: {exc}")
                reply.outcome = "simulator_error"
            finally:
                if reply is None:
                    self.stats.finish(handle, None, "cancelled")
            if reply.drop:
                self.stats.finish(handle, None, reply.outcome)
                writer.transport.abort()
                return
            if reader.at_eof():  # the client gave up (e.g. timed out during a hang)
                self.stats.finish(handle, None, "client_gone")
                return
            keep_alive = request.keep_alive
            request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex}"
            headers = [*reply.headers, ("x-request-id", request_id)]
            # Log before writing: the client may act on the response before we run again.
            self.stats.finish(handle, reply.status, reply.outcome)
            writer.write(render_response(reply.status, reply.body, headers,
                                         keep_alive=keep_alive))
            await writer.drain()
            if not keep_alive:
                return

