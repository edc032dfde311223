"""Run real flow files through the CLI in an isolated store (test helper)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FLOWS = Path(__file__).parent / "flows"
USER = "tester"


@dataclass
class FlowRun:
    returncode: int
    stdout: str
    stderr: str
    root: Path

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_flow(flow: str | Path, *args: str, root: Path, launcher: str = "fork", timeout: float = 120,
             env: dict[str, str] | None = None, cwd: Path | None = None) -> FlowRun:
    """Run ``python <flow> <args>`` with its store under ``root``."""
    path = FLOWS / flow if isinstance(flow, str) else flow
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    full_env.update({"HEADWATER_DATASTORE_ROOT": str(root), "HEADWATER_USER": USER,
                     "HEADWATER_LAUNCHER": launcher, "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    p = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                       timeout=timeout, env=full_env, cwd=str(cwd or root.parent))
    return FlowRun(p.returncode, p.stdout, p.stderr, root)


