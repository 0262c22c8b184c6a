"""A user's own tasks.py / flows/ / planner.py / deployments.py next to their script must not
replace our packages: they install as subpackages of steer_llm_sdk."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    from steer_llm_sdk.orchestration import BundleTool, Orchestrator, ToolRegistry
    import tasks, flows, planner, deployments  # the user's own modules still import

    assert tasks.MINE and flows.MINE and planner.MINE and deployments.MINE

    class Echo(BundleTool):
        name = "echo"
        async def run_replicate(self, request, seed, context):
            return {"answer": "yes"}

    registry = ToolRegistry()
    registry.register_tool(Echo())
    out = Orchestrator(registry).run_sync("q", "echo", {"k": 2})
    print("STATUS", out.status)
""")


def _user_project(tmp_path):
    (tmp_path / "tasks.py").write_text("MINE = True\n")
    (tmp_path / "planner.py").write_text("MINE = True\n")
    (tmp_path / "deployments.py").write_text("MINE = True\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("MINE = True\n")
    (tmp_path / "script.py").write_text(SCRIPT)


def test_a_prefect_project_layout_does_not_shadow_the_sdk(tmp_path):
    _user_project(tmp_path)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"),
           "STEER_HOME": str(tmp_path / "steer"),
           # a fresh embedded server (migrations) can take > Prefect's 20 s on a busy machine
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    proc = subprocess.run(
        [sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STATUS succeeded" in proc.stdout


def test_only_two_top_level_names_are_installed():
    import steer_llm_sdk.flows
    import steer_llm_sdk.planner
    import steer_llm_sdk.tasks

    for module in (steer_llm_sdk.flows, steer_llm_sdk.planner, steer_llm_sdk.tasks):
        assert module.__name__.startswith("steer_llm_sdk.")
    assert "tasks" not in sys.modules and "flows" not in sys.modules


def test_shadowed_steer_tools_is_named_with_the_fix(tmp_path):
    (tmp_path / "steer_tools.py").write_text("X = 1\n")
    proc = subprocess.run(
        [sys.executable, "-c", "import steer_llm_sdk.orchestration"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "needs its own top-level package 'steer_tools'" in proc.stderr
    assert "Rename your module" in proc.stderr
