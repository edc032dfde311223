"""Fixtures of the differential suite: one Metaflow and one headwater engine per session.

Metaflow comes from ``$HEADWATER_COMPAT_METAFLOW_PYTHON`` (a Python that has
``metaflow==2.19.39``), else from a virtualenv created once under
``~/.cache/headwater/compat-metaflow-2.19.39`` (``$XDG_CACHE_HOME`` is honoured). Each flow
command runs once per engine per session; tests share the results through ``both``.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Callable

import pytest

from compat.harness import (METAFLOW_VERSION, PYTHON_ENV, Engine, Result, default_cache_dir,
                            find_or_make_metaflow_python, headwater_engine, metaflow_engine, normalize)


@pytest.fixture(scope="session")
def metaflow_python() -> str:
    try:
        python = find_or_make_metaflow_python(default_cache_dir())
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        if os.environ.get("HEADWATER_COMPAT_REQUIRED") == "1":  # make test (CI): a missing Metaflow is a failure
            pytest.fail(f"could not install metaflow=={METAFLOW_VERSION} into a scratch venv ({e})")
        pytest.skip(f"could not install metaflow=={METAFLOW_VERSION} into a scratch venv ({e}); "
                    f"set {PYTHON_ENV} to a Python that has it")
    p = subprocess.run([python, "-c", "import metaflow; print(metaflow.__version__)"],
                       capture_output=True, text=True, env={**os.environ, "METAFLOW_USER": "tester"})
    if p.returncode != 0 or p.stdout.strip() != METAFLOW_VERSION:
        pytest.fail(f"{python} should have metaflow=={METAFLOW_VERSION}, has: {p.stdout.strip() or p.stderr[-500:]}")
    return python


@pytest.fixture(scope="session")
def engines(metaflow_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Engine]:
    base = tmp_path_factory.mktemp("compat")
    return {"metaflow": metaflow_engine(metaflow_python, base / "mf"),
            "headwater": headwater_engine(base / "hw")}


class Pair:
    """One command run under both engines, with the probe of the run it made (if any)."""

    def __init__(self, engines: dict[str, Engine], flow: str, args: tuple[str, ...],
                 env: tuple[tuple[str, str], ...] = ()) -> None:
        self.engines = engines
        self.flow = flow
        self.results: dict[str, Result] = {
            n: e.cli(flow, *args, env={k.replace("ENGINE_", n.upper() + "_"): v for k, v in env})
            for n, e in engines.items()}
        self._probes: dict[str, Any] = {}

    @property
    def mf(self) -> Result:
        return self.results["metaflow"]

    @property
    def hw(self) -> Result:
        return self.results["headwater"]

    def probe(self, flow_name: str) -> dict[str, Any]:
        """Normalised probe documents of this command's run, per engine."""
        if not self._probes:
            for name, eng in self.engines.items():
                run_id = self.results[name].run_id
                assert run_id, f"{name} wrote no run id: {self.results[name].stderr[-2000:]}"
                self._probes[name] = sort_tasks(normalize(eng.probe(flow_name, run_id)))
        return self._probes


def sort_tasks(doc: dict[str, Any]) -> dict[str, Any]:
    """Tasks of each step in a canonical order (after normalisation, so engine names don't count)."""
    for tasks in doc["run"]["steps"].values():
        tasks.sort(key=lambda d: json.dumps(d, sort_keys=True))
    return doc


@pytest.fixture(scope="session")
def both(engines: dict[str, Engine]) -> Callable[..., Pair]:
    """``both(flow, *args, env={...})``: the command run once per engine per session (cached).
    ``ENGINE_`` at the start of an env var name becomes ``METAFLOW_`` / ``HEADWATER_``."""
    cache: dict[tuple[Any, ...], Pair] = {}

    def get(flow: str, *args: str, env: dict[str, str] | None = None) -> Pair:
        env_items = tuple(sorted((env or {}).items()))
        key = (flow, args, env_items)
        if key not in cache:
            cache[key] = Pair(engines, flow, args, env_items)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def each(engines: dict[str, Engine]) -> Callable[..., dict[str, Result]]:
    """``each(flow, *args, run=pair)``: one command per engine, ``RID`` in args replaced by that
    engine's run id from ``pair`` (not cached: for commands that change or only read state)."""

    def go(flow: str, *args: str, run: Pair | None = None) -> dict[str, Result]:
        out = {}
        for name, eng in engines.items():
            rid = run.results[name].run_id if run is not None else None
            out[name] = eng.cli(flow, *[a.replace("RID", rid) if rid else a for a in args])
        return out

    return go


@pytest.fixture(scope="session")
def headwater_names(engines: dict[str, Engine]) -> set[str]:
    """What ``headwater`` exports, to skip cases of features not merged into this checkout yet."""
    eng = engines["headwater"]
    p = subprocess.run([eng.python, "-c", "import headwater, json; print(json.dumps(dir(headwater)))"],
                       capture_output=True, text=True, env={**os.environ, **eng.env})
    assert p.returncode == 0, p.stderr[-2000:]
    return set(json.loads(p.stdout))
