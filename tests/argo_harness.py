"""Compile a flow with `argo-workflows create --only-json` and run what it prints through the test
Argo interpreter against the session's S3 server (test helper for tests/compute/test_argo_*.py).

The container's `python` becomes this interpreter (the image would have its own)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from argo_interpreter import Interpreter, WorkflowRun
from flowrun import USER, run_flow
from s3server import S3Server

OUT_DIR = "/tmp/hw-out"  # where compiled split steps write their outputs (--output-dir)


def argo_env(server: S3Server, tmp_path: Path) -> dict[str, str]:
    """The environment of the flow commands run on this machine (`create`, `resume`)."""
    return {**server.env(), "HEADWATER_HOME": str(tmp_path / "home")}


def compile_objects(flow: str | Path, root: str, server: S3Server, tmp_path: Path,
                    env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The objects `create --only-json` prints (the WorkflowTemplate first), its code package
    stored in ``root``, each container's `python` made this interpreter."""
    r = run_flow(flow, "--datastore-root", root, "argo-workflows", "create", "--only-json",
                 root=tmp_path / ".unused", env={**argo_env(server, tmp_path), **(env or {})})
    assert r.returncode == 0, r.output
    doc = json.loads(r.stdout)
    objects = doc["items"] if doc["kind"] == "List" else [doc]
    wt = objects[0]
    from headwater.store import Datastore

    assert Datastore(root).content.has(package_key(wt))  # `create` stored the code package
    for t in wt["spec"]["templates"]:
        if "container" in t and t["container"]["command"][0] == "python":
            t["container"]["command"][0] = sys.executable
    return objects


def compile_and_store(flow: str, root: str, server: S3Server, tmp_path: Path) -> dict[str, Any]:
    """The WorkflowTemplate `create --only-json` prints for ``flow`` (its code package stored in ``root``)."""
    return compile_objects(flow, root, server, tmp_path)[0]


def package_key(wt: dict[str, Any]) -> str:
    for t in wt["spec"]["templates"]:
        args = t.get("container", {}).get("args", [])
        if "--package-key" in args:
            return args[args.index("--package-key") + 1]
    raise AssertionError("no --package-key in the compiled template")


def pod_interpreter(server: S3Server, tmp_path: Path, **env: str) -> Interpreter:
    """An interpreter whose pods see the S3 server, the test user and ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    base.update({**server.env(), "HEADWATER_USER": USER, "HEADWATER_HOME": str(tmp_path / "pod-home"), **env})
    pods = tmp_path / "pods"
    pods.mkdir(exist_ok=True)
    return Interpreter(base_env=base, work_dir=pods, path_prefix=OUT_DIR, cwd=tmp_path)


def interpret(wt: dict[str, Any], server: S3Server, tmp_path: Path, name: str,
              arguments: dict[str, str] | None = None) -> WorkflowRun:
    """Run ``wt`` with the interpreter, each container a local process against the S3 server."""
    return pod_interpreter(server, tmp_path).run(wt, arguments or {}, name=name)


def by_step(run: Any) -> dict[tuple[str, str], list[str]]:
    """Every artifact value of every task, by (step, artifact): task ids differ between a local
    run and an orchestrated one, the values must not."""
    out: dict[tuple[str, str], list[str]] = {}
    for step in run:
        for task in step:
            for a in task:
                if a.id != "name":
                    out.setdefault((step.id, a.id), []).append(repr(a.data))
    return {k: sorted(v) for k, v in out.items()}
