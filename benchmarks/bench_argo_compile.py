"""Argo compile benchmark: how long `argo-workflows create --only-json` takes for a
100-step flow, and how big the WorkflowTemplate is, headwater beside Metaflow.

headwater: the pure compile (graph already built, best of --repeat, in this process) and
the whole command (a fresh interpreter). Metaflow (with --metaflow-python): its own
`argo-workflows create --only-json` for the same flow. Metaflow uploads the code package
to S3 even with --only-json, so the script starts the tests' moto S3 server on 127.0.0.1
and points Metaflow at it (METAFLOW_S3_ENDPOINT_URL); it also needs the `kubernetes`
package in Metaflow's venv. Sizes are of compact JSON (no indentation) of the template.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_argo_compile.py [--steps 100] \
        [--metaflow-python /path/to/mfvenv/bin/python] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

ROOT = "s3://bench-bucket/argo"


def flow_source(framework: str, steps: int) -> str:
    """A flow of ``steps`` steps: start, a chain, a foreach over one body step and its join, a chain, end."""
    lines = [f"from {framework} import FlowSpec, step, retry, resources", "", "", "class BigFlow(FlowSpec):"]
    chain = [f"s{i}" for i in range(steps - 5)]  # + start, fan, body, join, end
    half = len(chain) // 2
    order = ["start"] + chain[:half] + ["fan", "body", "join"] + chain[half:] + ["end"]
    for i, name in enumerate(order):
        nxt = order[i + 1] if i + 1 < len(order) else None
        deco = "    @retry(times=2)\n    @resources(cpu=1, memory=1024)\n" if i % 10 == 1 else ""
        if name == "fan":
            body = "        self.items = list(range(3))\n        self.next(self.body, foreach='items')"
        elif name == "join":
            lines.append(f"{deco}    @step\n    def join(self, inputs):\n        self.next(self.{nxt})\n")
            continue
        elif nxt is None:
            body = "        pass"
        else:
            body = f"        self.next(self.{nxt})"
        lines.append(f"{deco}    @step\n    def {name}(self):\n{body}\n")
    lines += ["", "if __name__ == '__main__':", "    BigFlow()", ""]
    return "\n".join(lines)


def bench_headwater(work: Path, steps: int, repeat: int, s3_env: dict[str, str]) -> dict[str, float]:
    src = work / "hw" / "big_flow.py"
    src.parent.mkdir(parents=True)
    src.write_text(flow_source("headwater", steps))
    import headwater

    # The command runs in the flow's directory: give it this headwater by absolute path.
    env = {**os.environ, **s3_env, "HEADWATER_USER": "bench",
           "PYTHONPATH": str(Path(headwater.__file__).parents[1])}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(src), "--datastore-root", ROOT, "argo-workflows", "create",
                        "--only-json", "--image", "python:3.12"], capture_output=True, text=True, env=env,
                       cwd=src.parent, check=True)
    command_s = time.perf_counter() - t0
    doc = json.loads(p.stdout)

    # The pure compile, in this process, on the imported flow.
    import importlib.util

    spec = importlib.util.spec_from_file_location("big_flow", src)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    from headwater.compute.argo.compile import CompileOptions, compile_workflow_template
    from headwater.compute.argo.settings import flow_parameters_for_argo, step_settings

    flow = mod.BigFlow
    opts = CompileOptions(name="bigflow", image="python:3.12", datastore_root=ROOT, package_key="0" * 64,
                          flow_file="big_flow.py")
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        compile_workflow_template(flow._graph, step_settings(flow), flow_parameters_for_argo(flow), opts)
        best = min(best, time.perf_counter() - t)
    return {"steps": len(flow._graph), "compile_ms": best * 1000, "command_s": command_s,
            "template_bytes": len(json.dumps(doc, separators=(",", ":")))}


def bench_metaflow(work: Path, steps: int, python: str, server: Any) -> dict[str, float]:
    from s3server import ACCESS_KEY, REGION, SECRET_KEY

    src = work / "mf" / "big_flow.py"
    src.parent.mkdir(parents=True)
    src.write_text(flow_source("metaflow", steps))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "HEADWATER_"))}
    env.update({"METAFLOW_USER": "bench", "METAFLOW_DEFAULT_DATASTORE": "s3",
                "METAFLOW_DATASTORE_SYSROOT_S3": ROOT, "METAFLOW_S3_ENDPOINT_URL": server.url,
                "METAFLOW_KUBERNETES_CONTAINER_IMAGE": "python:3.12", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION, "PYTHONPATH": ""})
    t0 = time.perf_counter()
    p = subprocess.run([python, str(src), "--datastore=s3", "argo-workflows", "create", "--only-json"],
                       capture_output=True, text=True, env=env, cwd=src.parent, timeout=600)
    command_s = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"Metaflow failed:\n{p.stderr[-3000:]}")
    # Metaflow prints the banner lines before the JSON on stdout.
    text = p.stdout[p.stdout.index("{"):]
    doc = json.loads(text)
    return {"command_s": command_s, "template_bytes": len(json.dumps(doc, separators=(",", ":")))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--metaflow-python", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # `create` stores the code package (both frameworks do, even with --only-json): one local S3 server.
        from s3server import start_s3_server

        server = start_s3_server()
        try:
            server.boto3().create_bucket(Bucket="bench-bucket")
            out = {"headwater": bench_headwater(Path(tmp), a.steps, a.repeat, server.env())}
            if a.metaflow_python:
                out["metaflow"] = bench_metaflow(Path(tmp), a.steps, a.metaflow_python, server)
        finally:
            server.stop()
    hw = out["headwater"]
    print(f"{hw['steps']}-step flow: headwater compile {hw['compile_ms']:.1f} ms (pure), "
          f"`create --only-json` {hw['command_s']:.2f} s, template {hw['template_bytes']:,} bytes")
    if "metaflow" in out:
        mf = out["metaflow"]
        print(f"Metaflow `create --only-json` {mf['command_s']:.2f} s, template {mf['template_bytes']:,} bytes "
              f"({mf['template_bytes'] / hw['template_bytes']:.1f}x headwater's)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
