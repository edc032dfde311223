"""Preparing conda environments leaves no thread in the run process, whose zygote forks after it
(rattler runs a Tokio runtime; runtime.run.prepare_environments does the work in a forked child)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from flowrun import FLOWS

# Runs in a fresh interpreter: this test process has used rattler already (the channel fixture),
# and a fork of a process whose Tokio runtime is running is what the run process must avoid.
SCRIPT = """
import importlib.util, json, os, sys
from headwater.config import load_settings
from headwater.environments.kinds import ExecutionEnvironment
from headwater.runtime.run import RunRequest, prepare_environments

spec = importlib.util.spec_from_file_location("conda_flow", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
flow = module.CondaFlow
req = RunRequest(flow_cls=flow, graph=flow._graph, script=sys.argv[1], params={}, constants={},
                 environment=ExecutionEnvironment.CONDA)
before = len(os.listdir("/proc/self/task"))
prepared = prepare_environments(req, load_settings())
after = len(os.listdir("/proc/self/task"))
print(json.dumps({"before": before, "after": after, "two": prepared.steps["two"].packages,
                  "python": prepared.steps["start"].python}))
"""


def test_preparing_conda_environments_starts_no_thread_in_the_run_process(conda_channel: Path,
                                                                           tmp_path: Path) -> None:
    env = {**os.environ, "HEADWATER_HOME": str(tmp_path / "home"), "HEADWATER_CONDA_CHANNELS": conda_channel.as_uri()}
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(FLOWS / "conda_flow.py")], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["after"] == out["before"] == 1, out
    assert out["two"]["tinylib"] == "2.0"
    assert Path(out["python"]).exists()
