"""Blocking entry point for ``steer simulator`` and ``python -m steer_llm_sdk.testing``.

Lets people point an app or notebook at a local fake model without writing code: it prints the
base URL to use and runs until Ctrl-C or SIGTERM (so it also stops cleanly under a supervisor).
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from steer_llm_sdk.testing.server import SimulatorServer

DEFAULT_PORT = 8765


def run_simulator(host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                  default_latency_s: float = 0.0) -> None:
    """Serve until interrupted; prints ``base_url`` (use ``port=0`` for a free port)."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    try:
        with SimulatorServer(host, port, default_latency_s=default_latency_s) as sim:
            print(f"steer LLM simulator listening; base_url={sim.base_url}", flush=True)
            while not stop.wait(0.5):
                pass
            print("steer LLM simulator stopping", flush=True)
    except KeyboardInterrupt:  # signal handlers not installed (not on the main thread)
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m steer_llm_sdk.testing",
        description="OpenAI-compatible LLM simulator with fault injection (for tests).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--latency", type=float, default=0.0, help="default latency, seconds")
    args = parser.parse_args(argv)
    run_simulator(args.host, args.port, default_latency_s=args.latency)
