"""A user's own tasks.py next to their script must not silently replace our package."""

import subprocess
import sys


def test_shadowing_module_is_named_with_the_fix(tmp_path):
    (tmp_path / "tasks.py").write_text("CELERY = True\n")
    proc = subprocess.run(
        [sys.executable, "-c", "import steer_llm_sdk.orchestration"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "needs its own top-level package 'tasks'" in proc.stderr
    assert str(tmp_path / "tasks.py") in proc.stderr
    assert "Rename your module" in proc.stderr


def test_clean_directory_imports_fine(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import steer_llm_sdk.orchestration as o; print(len(o.__all__))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
