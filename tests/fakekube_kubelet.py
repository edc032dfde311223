"""A test double of the Job controller and the kubelet, as a controller of tests/fakekube.py.

It is a double because no Kubernetes cluster can run where the tests run, and the
Kubernetes launcher must be seen to drive real task processes through the API
(create a Job, watch it, read its pod's log, delete it). For each Job created it
does what the Job controller and a kubelet would, for the subset headwater's Jobs use:

- creates the Job's Pod (``ownerReferences`` to the Job, the ``batch.kubernetes.io/job-name``
  label, the template's labels), so deleting the Job with propagation deletes it;
- runs the pod's container as a local process exactly as written: ``command`` + ``args``,
  ``env`` (``valueFrom.fieldRef`` given the pod's values, ``envFrom`` secrets read from the
  server's Secrets), ``workingDir`` (under a directory of its own per pod). Only ``python``
  is replaced by this interpreter, and the image is a dict of environment variables (the
  default one stands for an image with headwater installed: ``PYTHONPATH`` is src/);
- writes the process's output (stdout and stderr together) to the pod's log as it runs;
- sets the Job's status as the Job controller does: ``active`` and ``startTime``, then a
  ``Complete`` or ``Failed`` condition (``BackoffLimitExceeded``, or ``DeadlineExceeded`` when
  ``activeDeadlineSeconds`` passes: the process is killed), ``completionTime``, and the pod's
  phase and container state;
- kills the process when the Job or its pod is deleted;
- leaves a pod whose image is not in ``images`` waiting in ``ImagePullBackOff``.

``deadline_scale`` shortens ``activeDeadlineSeconds`` (Kubernetes refuses a step ``@timeout``
under 60 s, so tests would wait a minute per timeout): the deadline is enforced at
``activeDeadlineSeconds * deadline_scale`` seconds of the Job's life.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fakekube import JOB_NAME_LABEL, ApiError, Event, FakeKube

SRC = Path(__file__).resolve().parents[1] / "src"
#: The image tests run: headwater importable, nothing else of this machine's environment.
DEFAULT_IMAGE = "headwater-test"
NODE_NAME = "fake-node"


@dataclass(frozen=True)
class Image:
    """What an image gives its container: the interpreter ``python`` means, and environment variables."""

    python: str = sys.executable
    env: dict[str, str] = field(default_factory=lambda: {"PYTHONPATH": str(SRC)})  # headwater "installed"


#: An image with Python and no headwater (this machine's system interpreter).
BARE = Image(python="/usr/bin/python3", env={})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Kubelet:
    """Runs the Jobs of ``server`` as local processes under ``work_dir`` (see the module docstring).

    ``images`` adds images by name to ``DEFAULT_IMAGE``; a Job naming another image runs as
    ``DEFAULT_IMAGE`` unless ``strict_images`` (then that image never pulls).
    """

    def __init__(self, server: FakeKube, work_dir: Path, *, images: dict[str, Image] | None = None,
                 strict_images: bool = False, deadline_scale: float = 1.0) -> None:
        self.server = server
        self.work_dir = work_dir
        self.images = {DEFAULT_IMAGE: Image(), **(images or {})}
        self.strict_images = strict_images
        self.deadline_scale = deadline_scale
        self._procs: dict[tuple[str, str], subprocess.Popen] = {}  # (namespace, job) -> process
        self._gone: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        server.add_controller(self)

    def __call__(self, server: FakeKube, event: Event) -> None:
        meta = event.object["metadata"]
        if (event.api, event.plural) == ("batch/v1", "jobs"):
            key = (meta["namespace"], meta["name"])
            if event.type == "ADDED":
                threading.Thread(target=self._run, args=(event.object,), daemon=True).start()
            elif event.type == "DELETED":
                self._kill(key)
        elif (event.api, event.plural, event.type) == ("v1", "pods", "DELETED"):
            job = (meta.get("labels") or {}).get(JOB_NAME_LABEL)
            if job:
                self._kill((meta["namespace"], job))

    def stop(self) -> None:
        """Kill every process still running (end of a test)."""
        for key in list(self._procs):
            self._kill(key)

    # -- one Job -------------------------------------------------------------------------------
    def _kill(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._gone.add(key)
            proc = self._procs.pop(key, None)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _update(self, api: str, plural: str, ns: str, name: str, change: Any) -> bool:
        try:
            self.server.update(api, plural, ns, name, change)
            return True
        except ApiError:  # deleted meanwhile
            return False

    def _run(self, job: dict[str, Any]) -> None:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        template = job["spec"]["template"]
        pod_name = f"{name}-{secrets.token_hex(3)[:5]}"
        labels = {**(template.get("metadata") or {}).get("labels", {}), JOB_NAME_LABEL: name, "job-name": name}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "labels": labels,
                            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                                 "uid": job["metadata"]["uid"], "controller": True}]},
               "spec": {**template["spec"], "nodeName": NODE_NAME}, "status": {"phase": "Pending"}}
        self.server.create("v1", "pods", ns, pod, validate=False)
        self.server.logs[(ns, pod_name)] = ""
        started = time.monotonic()
        if not self._update("batch/v1", "jobs", ns, name,
                            lambda o: o.setdefault("status", {}).update(active=1, startTime=_now())):
            return
        container = template["spec"]["containers"][0]
        image = self.images.get(container["image"], None if self.strict_images else self.images[DEFAULT_IMAGE])
        if image is None:
            self._set_pod(ns, pod_name, "Pending", {"waiting": {
                "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{container["image"]}"'}})
            return  # as on a cluster: it waits until deleted or past its deadline
        with self._lock:
            if (ns, name) in self._gone:
                return
            proc = self._start(container, pod, ns, image)
            self._procs[(ns, name)] = proc
        self._set_pod(ns, pod_name, "Running", {"running": {"startedAt": _now()}})
        reader = threading.Thread(target=self._pump_log, args=(proc, ns, pod_name), daemon=True)
        reader.start()
        limit = job["spec"].get("activeDeadlineSeconds")
        deadline = started + limit * self.deadline_scale if limit else None
        while proc.poll() is None and (deadline is None or time.monotonic() < deadline):
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        timed_out = proc.poll() is None
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(5)
        with self._lock:
            self._procs.pop((ns, name), None)
            if (ns, name) in self._gone:
                return
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode  # killed by a signal: 128+n
        self._finish(ns, name, pod_name, code, timed_out)

    def _start(self, container: dict[str, Any], pod: dict[str, Any], ns: str,
               image: Image) -> subprocess.Popen:
        root = self.work_dir / pod["metadata"]["name"]
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root / "home"),
               "TMPDIR": str(root / "tmp"), **image.env}
        for ref in container.get("envFrom") or ():
            secret = self.server.get("v1", "secrets", ns, ref["secretRef"]["name"]) or {}
            env.update({k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()})
            env.update(secret.get("stringData") or {})
        fields = {"metadata.name": pod["metadata"]["name"], "metadata.namespace": ns, "spec.nodeName": NODE_NAME}
        for e in container.get("env") or ():
            env[e["name"]] = e["value"] if "value" in e else fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
        command = [*container.get("command", ()), *container.get("args", ())]
        if command and command[0] == "python":
            command[0] = image.python  # the image's own python
        cwd = root / container.get("workingDir", "/").lstrip("/")
        for d in (cwd, root / "home", root / "tmp"):
            d.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)

    def _pump_log(self, proc: subprocess.Popen, ns: str, pod_name: str) -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in iter(proc.stdout.readline, b""):
                self.server.logs[(ns, pod_name)] = self.server.logs.get((ns, pod_name), "") + line.decode(
                    "utf-8", "replace")

    def _set_pod(self, ns: str, pod_name: str, phase: str, state: dict[str, Any]) -> None:
        status = {"phase": phase, "containerStatuses": [{"name": "task", "state": state, "ready": phase == "Running",
                                                         "restartCount": 0, "image": "", "imageID": ""}]}
        self._update("v1", "pods", ns, pod_name, lambda o: o.__setitem__("status", status))

    def _finish(self, ns: str, name: str, pod_name: str, code: int, timed_out: bool) -> None:
        now = _now()
        if timed_out:
            cond = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline"}
            state = {"terminated": {"exitCode": 137, "reason": "Error", "finishedAt": now}}
        elif code == 0:
            cond = {"type": "Complete", "status": "True"}
            state = {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now}}
        else:
            cond = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit"}
            state = {"terminated": {"exitCode": code, "reason": "Error", "finishedAt": now}}
        self._set_pod(ns, pod_name, "Succeeded" if code == 0 and not timed_out else "Failed", state)

        def done(job: dict[str, Any]) -> None:
            status = job.setdefault("status", {})
            status.pop("active", None)
            status["succeeded" if cond["type"] == "Complete" else "failed"] = 1
            status["conditions"] = [{**cond, "lastProbeTime": now, "lastTransitionTime": now}]
            if cond["type"] == "Complete":
                status["completionTime"] = now
        self._update("batch/v1", "jobs", ns, name, done)
