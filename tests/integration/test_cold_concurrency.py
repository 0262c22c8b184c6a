"""Item 1 of issue 10: any number of first runs in a fresh process succeed, whether they share
one event loop (asyncio.gather), come from run_sync in many threads, or from several loops.

A fresh process is the point (the first runs on a loop race to create its shared Prefect API
client), so the scenarios run in a subprocess against the session simulator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "cold_concurrency.py"
ROOT = Path(__file__).parents[2]


@pytest.mark.timeout(300)  # 37 first runs and a server start, on a shared 2-core machine
def test_concurrent_first_runs_in_a_fresh_process_all_succeed(llm_simulator):
    llm_simulator.reset()
    proc = subprocess.run([sys.executable, str(SCRIPT), llm_simulator.base_url],
                          capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])["outcomes"]
    sizes = {"gather3": 3, "gather20": 20, "run_sync_8_threads": 8, "3_loops_x2": 6}
    for scenario, size in sizes.items():
        assert report[scenario] == ["succeeded"] * size, (scenario, report[scenario])
    # every run sent exactly its k=2 replicates: none were sent by runs that then crashed
    chat = llm_simulator.requests_for(path="/v1/chat/completions")
    assert len(chat) == 2 * sum(sizes.values())
