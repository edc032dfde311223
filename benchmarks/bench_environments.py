"""Per-step environments: time from `python flow.py run` to the first line a step with an
environment prints, with a cold and with a warm environment (issue 11's goal: warm < 1 s).

Cases (each a fresh store; "cold" also a fresh HEADWATER_HOME, so the environment is resolved
and built; "warm" runs again with the same home, so the locked environment is reused):
- pypi, offline: `@pypi(packages={"tinylib": "1.*"})` against wheels this script writes
  (tests/tinywheels.py), uv with --no-index; cold-cache runs also empty uv's cache.
- pypi, PyPI: `@pypi(packages={"requests": "2.32.3"})` from the real index (needs the network;
  skipped with --offline).
- conda: `@conda(packages={"tinylib": "1.*"})` against the local channel the tests build
  (tests/environments/condachannel.py).
- Metaflow 2.19.39 (with --metaflow-python): the same @pypi flow under
  `--environment=pypi`: Metaflow bootstraps micromamba and a Python from conda-forge, which
  cannot be reached from here; the script records what it said.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_environments.py [--repeat 3] [--offline] \
        [--metaflow-python /path/to/mfvenv/bin/python] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
MARK = "STEP-OUTPUT-READY"

FLOW = '''
from {fw} import FlowSpec, step, {deco}


class EnvBenchFlow(FlowSpec):
    @{deco}(packages={packages!r})
    @step
    def start(self):
        print("{mark}", flush=True)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    EnvBenchFlow()
'''


def time_to_mark(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> tuple[float, str]:
    """Seconds from starting ``cmd`` to the first output line holding MARK (and the output)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd)
    seen: float | None = None
    lines = []
    assert p.stdout is not None
    for line in p.stdout:
        lines.append(line)
        if seen is None and MARK in line:
            seen = time.perf_counter() - t0
    p.wait(timeout)
    out = "".join(lines)
    if seen is None or p.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({p.returncode}):\n{out[-3000:]}")
    return seen, out


def bench_case(name: str, work: Path, deco: str, packages: dict[str, str], extra_env: dict[str, str],
               repeat: int, clean_uv_cache: bool) -> dict[str, float]:
    src = work / name / "flow.py"
    src.parent.mkdir(parents=True)
    src.write_text(FLOW.format(fw="headwater", deco=deco, packages=packages, mark=MARK))
    import headwater

    base = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    base.update({"HEADWATER_USER": "bench", "PYTHONPATH": str(Path(headwater.__file__).parents[1]), **extra_env})
    env_kind = "conda" if deco == "conda" else "pypi"
    cold, warm = [], []
    for i in range(repeat):
        home = work / name / f"home{i}"
        env = {**base, "HEADWATER_HOME": str(home)}
        if clean_uv_cache:
            env["UV_CACHE_DIR"] = str(work / name / f"uv-cache{i}")
        for bucket in (cold, warm):
            root = work / name / f"store{i}-{len(bucket)}"
            env["HEADWATER_DATASTORE_ROOT"] = str(root)
            s, _ = time_to_mark([sys.executable, str(src), f"--environment={env_kind}", "run"], env, src.parent)
            bucket.append(s)
    return {"cold_s": statistics.median(cold), "warm_s": statistics.median(warm), "runs": repeat}


def bench_metaflow(work: Path, python: str) -> dict[str, str]:
    src = work / "mf" / "flow.py"
    src.parent.mkdir(parents=True)
    src.write_text(FLOW.format(fw="metaflow", deco="pypi", packages={"requests": "2.32.3"}, mark=MARK))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "HEADWATER_"))}
    env.update({"METAFLOW_USER": "bench", "PYTHONPATH": "", "METAFLOW_HOME": str(work / "mf" / "home")})
    t0 = time.perf_counter()
    p = subprocess.run([python, str(src), "--environment=pypi", "run"], capture_output=True, text=True, env=env,
                       cwd=src.parent, timeout=900)
    took = time.perf_counter() - t0
    out = p.stdout + p.stderr
    if p.returncode == 0 and MARK in out:
        return {"status": "ran", "total_s": f"{took:.2f}"}
    lines = out.strip().splitlines()
    first = next((i for i, line in enumerate(lines) if "rror" in line or "failed" in line), max(len(lines) - 12, 0))
    return {"status": f"failed after {took:.1f} s", "said": [line.strip() for line in lines[first:first + 3]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--offline", action="store_true", help="skip the case that needs PyPI")
    ap.add_argument("--metaflow-python", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        from tinywheels import write_wheel

        links = work / "links"
        links.mkdir()
        write_wheel(links, "tinylib", "1.0.0")
        offline = {"HEADWATER_PYPI_NO_INDEX": "1", "HEADWATER_PYPI_FIND_LINKS": str(links)}
        out["pypi_offline"] = bench_case("pypi-offline", work, "pypi", {"tinylib": "1.*"}, offline, a.repeat,
                                         clean_uv_cache=True)
        if not a.offline:
            out["pypi_requests"] = bench_case("pypi-requests", work, "pypi", {"requests": "2.32.3"}, {}, a.repeat,
                                              clean_uv_cache=True)
        from environments.condachannel import build_channel

        channel = build_channel(work / "channel")
        out["conda_local_channel"] = bench_case("conda", work, "conda", {"tinylib": "1.*"},
                                                {"HEADWATER_CONDA_CHANNELS": channel.as_uri()}, a.repeat,
                                                clean_uv_cache=False)
        if a.metaflow_python:
            out["metaflow_pypi_requests"] = bench_metaflow(work, a.metaflow_python)
        shutil.rmtree(work, ignore_errors=True)
    for name, r in out.items():
        if "cold_s" in r:  # type: ignore[operator]
            print(f"{name}: cold {r['cold_s']:.2f} s, warm {r['warm_s']:.2f} s (median of {r['runs']})")  # type: ignore[index]
        else:
            print(f"{name}: {r}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
