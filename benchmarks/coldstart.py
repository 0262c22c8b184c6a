"""Cold start: one K=3 orchestration in a fresh Python process, timed from outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._env import REPO_ROOT, TreeRssSampler, child_env
from benchmarks.coldstart_child import MARKER


@dataclass
class ColdStart:
    label: str
    wall_s: float
    returncode: int
    traceback_found: bool
    self_peak_rss_mb: float
    tree_peak_rss_mb: float
    phases: dict[str, float] = field(default_factory=dict)
    output_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.traceback_found

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.ok:
            data.pop("output_tail")
        return data


def run_cold_start(label: str, home: Path, extra_env: dict[str, str] | None = None,
                   k: int = 3, timeout_s: float = 180.0) -> ColdStart:
    """Spawn ``python -m benchmarks.coldstart_child`` and time it until the process exits."""
    env = child_env(home, extra_env)
    cmd = [sys.executable, "-m", "benchmarks.coldstart_child", str(k)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    with TreeRssSampler(proc.pid) as sampler:
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    wall = time.perf_counter() - started
    text = output.decode(errors="replace")
    phases: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(MARKER):
            phases = json.loads(line[len(MARKER):])
    self_peak_kb = float(phases.pop("self_peak_rss_kb", 0.0))
    return ColdStart(
        label=label, wall_s=round(wall, 3), returncode=proc.returncode,
        traceback_found="Traceback" in text,
        self_peak_rss_mb=round(self_peak_kb / 1024, 1),
        tree_peak_rss_mb=round(sampler.peak_kb / 1024, 1),
        phases={k: round(v, 3) for k, v in phases.items()},
        output_tail=text[-3000:],
    )


def fresh_home(root: Path, name: str) -> Path:
    path = root / name
    os.makedirs(path, exist_ok=True)
    return path
