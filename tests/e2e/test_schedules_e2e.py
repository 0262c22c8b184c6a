"""`steer schedule create` + `steer serve --schedules-only` against the real server of the e2e
stack: a schedule of any tool (an import path here) is served and its run completes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
REPO = Path(__file__).resolve().parents[2]
STEER = [str(Path(sys.executable).with_name("steer"))]


def test_a_schedule_of_any_tool_is_served_and_runs(stack, simulator):
    name = f"sched-{uuid.uuid4().hex[:8]}"
    created = stack.steer("schedule", "create", name, "--tool",
                          "steer_tools.examples:feasibility_tool", "--request",
                          "Ship the beta in two weeks?", "--options", '{"k": 2}',
                          "--interval", "3600")
    assert created.returncode == 0, created.stderr + created.stdout
    assert f"created schedule {name} (every 3600 s; active; run by `steer serve`)" in \
        created.stdout
    listed = stack.steer("schedule", "ls")
    assert name in listed.stdout
    env = {**stack.env, "PREFECT_HOME": str(stack.root / "sched-serve-home"),
           "OPENAI_BASE_URL": simulator.base_url, "OPENAI_API_KEY": "sk-sched",
           "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = open(stack.root / "sched-serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([*STEER, "serve", "--schedules-only"], env=env,
                               stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                               start_new_session=True)
    try:
        time.sleep(3)  # the runner registers its deployment ids, then polls
        run = stack.create_run(name, {"tool_options": {"k": 2, "early_stop": False}})
        final = stack.wait_final(run["id"], timeout_s=180)
        assert final["state"]["type"] == "COMPLETED", final["state"]
        assert final["parameters"]["tool"] == "steer_tools.examples:feasibility_tool"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        log.close()
    # stopping `steer serve` pauses only its own deployments, never a user's schedule
    assert stack.deployment(name)["paused"] is False
    paused = stack.steer("schedule", "pause", name)
    assert paused.returncode == 0 and "paused schedule" in paused.stdout
    assert stack.deployment(name)["paused"] is True
    assert stack.steer("schedule", "delete", name).returncode == 0
