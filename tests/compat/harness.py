"""Run the same flow text under Metaflow and under headwater, and normalise what comes back.

A flow is written once, in ``tests/compat/flows/``, with ``from metaflow import ...``; the
headwater copy is the same text with the imports switched (the promise made to users).
Each engine runs in its own store under a session temp dir; ``probe.py`` reads a run back
through the engine's own client. ``normalize`` is the one place that lists the differences
the comparison forgives.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
FLOWS = HERE / "flows"
PROBE = HERE / "probe.py"
SURFACE = HERE / "surface.py"
USER = "tester"
METAFLOW_VERSION = "2.19.39"
PYTHON_ENV = "HEADWATER_COMPAT_METAFLOW_PYTHON"
_RUN_ID_FILES = itertools.count()


def switch_imports(text: str, engine: str) -> str:
    """The flow text with its ``metaflow`` imports pointed at ``engine``."""
    if engine == "metaflow":
        return text
    return re.sub(r"^(\s*)(from|import) metaflow\b", rf"\1\2 {engine}", text, flags=re.M)


@dataclass
class Result:
    """One CLI invocation under one engine."""

    engine: str
    returncode: int
    stdout: str
    stderr: str
    run_id: str | None = None


@dataclass
class Engine:
    """One engine: its Python, its environment and its own store under ``workdir``."""

    name: str
    python: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    def flow_file(self, flow: str) -> Path:
        """Copy ``flows/<flow>`` into the engine's workdir (imports switched) and return it."""
        dest = self.workdir / flow
        if not dest.exists():
            dest.write_text(switch_imports((FLOWS / flow).read_text(), self.name))
        return dest

    def cli(self, flow: str, *args: str, timeout: float = 180, env: dict[str, str] | None = None) -> Result:
        """``python <flow> <args>`` in the workdir; with ``--run-id-file`` the run id is read back."""
        path = self.flow_file(flow)
        args_l = list(args)
        id_file = None
        command = next((i for i, a in enumerate(args_l) if a in ("run", "resume")), None)
        if command is not None:
            id_file = self.workdir / f".run-id-{next(_RUN_ID_FILES)}"
            args_l[command + 1:command + 1] = ["--run-id-file", str(id_file)]
        p = self._exec([str(path), *args_l], timeout=timeout, env=env)
        run_id = None
        if id_file is not None and id_file.exists():
            run_id = id_file.read_text().strip() or None
        return Result(self.name, p.returncode, p.stdout, p.stderr, run_id)

    def script(self, script: Path, *args: str, timeout: float = 120) -> Any:
        """Run a helper script with the engine's Python; return its stdout parsed as JSON."""
        p = self._exec([str(script), self.name, *args], timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"{script.name} failed under {self.name}:\n{p.stderr[-3000:]}")
        return json.loads(p.stdout)

    def probe(self, flow_name: str, run_id: str | None = None) -> dict[str, Any]:
        """The probe's JSON for a run (the latest one when ``run_id`` is None)."""
        return self.script(PROBE, flow_name, *([run_id] if run_id else []))

    def _exec(self, argv: list[str], *, timeout: float, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
        full = {k: v for k, v in os.environ.items()
                if not k.startswith(("METAFLOW_", "HEADWATER_"))}
        full.update(self.env)
        full.update(env or {})
        return subprocess.run([self.python, *argv], capture_output=True, text=True, timeout=timeout,
                              env=full, cwd=str(self.workdir))


def metaflow_engine(python: str, workdir: Path) -> Engine:
    """Metaflow from ``python``, with its own config home and its local store under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    home = workdir / "mfhome"
    home.mkdir(exist_ok=True)
    return Engine("metaflow", python, workdir, {
        "METAFLOW_USER": USER, "METAFLOW_HOME": str(home), "USERNAME": USER,
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(workdir), "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": "", "METAFLOW_DEFAULT_METADATA": "local",
        # Metaflow starts @parallel's local workers with the `python` found on PATH.
        "PATH": os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "")]),
    })


def headwater_engine(workdir: Path) -> Engine:
    """headwater as the test process imports it (its Python, its PYTHONPATH), as tests/flowrun.py does."""
    workdir.mkdir(parents=True, exist_ok=True)
    return Engine("headwater", sys.executable, workdir, {
        "HEADWATER_USER": USER, "HEADWATER_DATASTORE_ROOT": str(workdir / ".headwater"),
        "HEADWATER_HOME": str(workdir / "hwhome"), "PYTHONUNBUFFERED": "1",
    })


def default_cache_dir() -> Path:
    """Where the scratch Metaflow virtualenv lives (``$XDG_CACHE_HOME`` honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "headwater" / f"compat-metaflow-{METAFLOW_VERSION}"


def find_or_make_metaflow_python(cache: Path) -> str:
    """A Python with ``metaflow==METAFLOW_VERSION``: ``$HEADWATER_COMPAT_METAFLOW_PYTHON``, else a
    virtualenv in ``cache`` (created on first use with pip from PyPI, reused after)."""
    given = os.environ.get(PYTHON_ENV)
    if given:
        return given
    python = cache / "bin" / "python"
    marker = cache / ".installed"
    if not marker.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(cache)], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"metaflow=={METAFLOW_VERSION}"], check=True, capture_output=True, timeout=600)
        marker.write_text(METAFLOW_VERSION)
    return str(python)


# --- the differences the comparison forgives ----------------------------------------------------

# Deliberate: headwater names itself where Metaflow does (docs/compat.md "Allowed differences").
_NAMES = [(re.compile(r"metaflow|headwater"), "engine"), (re.compile(r"Metaflow|Headwater"), "Engine"),
          (re.compile(r"METAFLOW|HEADWATER"), "ENGINE")]
# Version tags carry each engine's own version.
_VERSION_TAG = re.compile(r"^engine_version:.*$")
# Run ids are microseconds since the epoch in both, but differ between runs.
_RUN_ID = re.compile(r"\b1\d{15}\b")
# Console lines start with a local timestamp.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}")
# An engine's own exception classes live in different modules ("metaflow.plugins.timeout_decorator.
# TimeoutException" vs "headwater.exceptions.TimeoutException"): only the class name must match.
_ENGINE_CLASS = re.compile(r"^engine(\.\w+)*\.(\w+)$")


def normalize_text(text: str) -> str:
    """Engine names, run ids and timestamps replaced by placeholders."""
    for pat, repl in _NAMES:
        text = pat.sub(repl, text)
    text = _RUN_ID.sub("<run>", text)
    return _TIMESTAMP.sub("<ts>", text)


def normalize(doc: Any) -> Any:
    """``doc`` with every allowed difference replaced by a placeholder (recursively)."""
    if isinstance(doc, str):
        text = normalize_text(doc)
        return "engine_version:<v>" if _VERSION_TAG.match(text) else text
    if isinstance(doc, list):
        return [normalize(v) for v in doc]
    if isinstance(doc, dict):
        out = {normalize_text(k): normalize(v) for k, v in doc.items()}
        if isinstance(out.get("type"), str):
            out["type"] = _ENGINE_CLASS.sub(r"engine.\2", out["type"])
        return out
    return doc
