"""A fake Argo Workflows controller for the fake Kubernetes API server (a test double).

It is a double because no Argo controller (nor a Kubernetes cluster for it) can run
where these tests run. Registered on a ``tests/fakekube.FakeKube`` server, it plays
the part of Argo's workflow controller for the Workflows headwater submits:

- On a Workflow's creation it resolves ``spec.workflowTemplateRef`` from the server
  (a missing template makes the Workflow ``Error``, as Argo does), merges the
  Workflow's ``spec.arguments`` over the template's, and runs it in a thread with
  the test interpreter (``tests/argo_interpreter.py``): every container command is
  a local process (``python`` is this interpreter) against the test S3 server.
- It keeps ``status`` current: ``phase`` (Pending, Running, then Succeeded, Failed
  or Error), ``startedAt``, ``finishedAt``, ``message`` and ``nodes`` (Argo's shape,
  keyed by node name).
- ``spec.shutdown: Terminate`` kills the running pod and starts no other; the
  Workflow ends Failed with Argo's message. ``spec.suspend: true`` starts no new pod
  until it is false again (the phase stays Running, as in Argo). Deleting the
  Workflow stops it the same way.

What it does not do: CronWorkflows and Sensors are stored but never fire; pods run
one at a time (see docs/argo-testing.md for what the interpreter implements).
"""

from __future__ import annotations

import copy
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from argo_interpreter import Interpreter, InterpreterError, NodePhase, NodeType
from fakekube import Event, FakeKube

API = "argoproj.io/v1alpha1"
WORKFLOWS = "workflows"
TEMPLATES = "workflowtemplates"
TERMINATED = "Stopped with strategy 'Terminate'"
_POLL_S = 0.05


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeArgo:
    """The controller; ``FakeArgo(kube, base_env=..., work_dir=...)`` registers itself on ``kube``.

    Parameters
    ----------
    kube : FakeKube
        The fake API server whose Workflows it runs.
    base_env : Mapping[str, str]
        The environment of every pod process (S3 endpoint, user, home...).
    work_dir : Path
        Where pods get their working directories.
    path_prefix : str
        The container path the compiled templates write outputs under.
    """

    def __init__(self, kube: FakeKube, *, base_env: Mapping[str, str], work_dir: Path,
                 path_prefix: str = "/tmp/hw-out") -> None:
        self.kube = kube
        self.base_env = dict(base_env)
        self.work_dir = Path(work_dir)
        self.path_prefix = path_prefix
        self._runs: dict[tuple[str, str], tuple[threading.Thread, Interpreter]] = {}
        self._lock = threading.Lock()
        kube.add_controller(self)

    # -- the controller hook ------------------------------------------------------------------------
    def __call__(self, kube: FakeKube, event: Event) -> None:
        if event.api != API or event.plural != WORKFLOWS:
            return
        meta = event.object["metadata"]
        key = (meta["namespace"], meta["name"])
        if event.type == "ADDED":
            self._start(key)
        elif event.type == "DELETED" or (event.object.get("spec") or {}).get("shutdown") == "Terminate":
            with self._lock:
                run = self._runs.get(key)
            if run is not None:
                run[1].stop(TERMINATED)

    def wait(self, name: str, namespace: str = "default", timeout: float = 120) -> dict[str, Any]:
        """Wait for the Workflow's run to end; the Workflow as the server has it then."""
        with self._lock:
            thread = self._runs[(namespace, name)][0]
        thread.join(timeout)
        assert not thread.is_alive(), f"Workflow {name} still running after {timeout} s"
        return self.kube.get(API, WORKFLOWS, namespace, name) or {}

    def close(self) -> None:
        """Stop every run still going and wait for their threads."""
        with self._lock:
            runs = list(self._runs.values())
        for _, interp in runs:
            interp.stop(TERMINATED)
        for thread, _ in runs:
            thread.join(30)

    # -- running one Workflow -----------------------------------------------------------------------
    def _start(self, key: tuple[str, str]) -> None:
        namespace, name = key
        work = self.work_dir / f"{namespace}-{name}"
        work.mkdir(parents=True, exist_ok=True)
        interp = Interpreter(base_env=self.base_env, work_dir=work, path_prefix=self.path_prefix, cwd=work,
                             gate=lambda: self._gate(key, interp))
        thread = threading.Thread(target=self._run, args=(key, interp), name=f"fakeargo-{name}", daemon=True)
        with self._lock:
            self._runs[key] = (thread, interp)
        self._set_status(key, phase="Pending")
        thread.start()

    def _run(self, key: tuple[str, str], interp: Interpreter) -> None:
        namespace, name = key
        wf = self.kube.get(API, WORKFLOWS, namespace, name)
        if wf is None:
            return
        ref = (wf["spec"].get("workflowTemplateRef") or {}).get("name")
        template = self.kube.get(API, TEMPLATES, namespace, ref) if ref else None
        if template is None:
            self._set_status(key, phase="Error", finishedAt=_now(),
                             message=f'workflowtemplates.argoproj.io "{ref}" not found')
            return
        runnable = {"apiVersion": API, "kind": "Workflow", "metadata": {"name": name},
                    "spec": _local_python(copy.deepcopy(template["spec"]))}
        arguments = {p["name"]: p["value"] for p in (wf["spec"].get("arguments") or {}).get("parameters", [])}
        self._set_status(key, phase="Running", startedAt=_now())
        try:
            result = interp.run(runnable, arguments, name=name)
        except InterpreterError as e:
            self._set_status(key, phase="Error", finishedAt=_now(), message=str(e), nodes=_nodes(interp, True))
            return
        phase = {NodePhase.SUCCEEDED: "Succeeded", NodePhase.ERROR: "Error"}.get(result.phase, "Failed")
        stopped = interp._stopped
        self._set_status(key, phase=phase, finishedAt=_now(), nodes=_nodes(interp, True),
                         message=stopped or (result.root.message if phase != "Succeeded" else ""))

    def _gate(self, key: tuple[str, str], interp: Interpreter) -> None:
        """Before each pod: publish the nodes so far, then hold while the Workflow is suspended."""
        self._set_status(key, nodes=_nodes(interp, False))
        while True:
            wf = self.kube.get(API, WORKFLOWS, *key)
            spec = (wf or {}).get("spec") or {}
            if wf is None or spec.get("shutdown") or not spec.get("suspend"):
                return
            time.sleep(_POLL_S)

    def _set_status(self, key: tuple[str, str], **fields: Any) -> None:
        def change(obj: dict[str, Any]) -> None:
            obj.setdefault("status", {}).update(fields)
        try:
            self.kube.update(API, WORKFLOWS, *key, change)
        except Exception:  # deleted meanwhile
            pass


def _local_python(spec: dict[str, Any]) -> dict[str, Any]:
    """The containers' ``python`` is this interpreter (the image would have its own)."""
    for t in spec.get("templates", []):
        command = (t.get("container") or {}).get("command")
        if command and command[0] == "python":
            command[0] = sys.executable
    return spec


def _nodes(interp: Interpreter, done: bool) -> dict[str, Any]:
    """The interpreter's nodes in the shape of Argo's ``status.nodes`` (a group still going is Running)."""
    out: dict[str, Any] = {}
    for name, node in list(interp.nodes.items()):
        phase = node.phase.value
        if not done and node.type in (NodeType.DAG, NodeType.TASK_GROUP, NodeType.RETRY) \
                and node.phase is NodePhase.SUCCEEDED:
            phase = "Running"
        out[name] = {"id": name, "name": name, "displayName": node.display_name, "type": node.type.value,
                     "templateName": node.template, "phase": phase, "message": node.message,
                     "children": [c.name for c in node.children]}
        if node.type is NodeType.POD and node.phase is not NodePhase.SUCCEEDED and node.stderr:
            out[name]["stderr"] = node.stderr[-2000:]  # not Argo's: what a test needs to see why a pod failed
    return out
