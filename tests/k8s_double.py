"""A hand-written double of the Kubernetes API (BatchV1Api and CoreV1Api), for JobApi's tests.

It is a double, not a recording, because no Kubernetes API server can run where
these tests run. It keeps what the real server would for the calls headwater
makes: Jobs by namespace and name, 409 on a duplicate name, 404 on a missing
one, strict validation of what is created (as ``field_validation="Strict"``
asks of a server, here with kubernetes-validate), a pod per Job carrying the
controller's ``batch.kubernetes.io/job-name`` label, equality label selectors,
and deletion that takes the Job's pods with it. Tests drive a Job's status with
``finish`` (the part a kubelet and the Job controller would play). Every method
requires ``_request_timeout`` (the client's per-call timeout), so a call that
could hang on a dropped connection fails the tests.
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate as kv


class FakeApiException(Exception):
    """Shaped as kubernetes.client.ApiException: ``status`` and ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"({status}) {reason}")
        self.status, self.reason = status, reason


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


class FakeCluster:
    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[str, str] = {}
        self.calls: list[str] = []
        self.batch = _Batch(self)
        self.core = _Core(self)

    def finish(self, namespace: str, name: str, *, condition: str, reason: str | None = None,
               log: str = "") -> None:
        job = self.jobs[(namespace, name)]
        cond = {"type": condition, "status": "True", **({"reason": reason} if reason else {})}
        job["status"] = {"conditions": [cond], ("succeeded" if condition == "Complete" else "failed"): 1}
        self.logs[f"{name}-pod"] = log

    def start(self, namespace: str, name: str) -> None:
        self.jobs[(namespace, name)]["status"] = {"active": 1}


class _Batch:
    def __init__(self, cluster: FakeCluster) -> None:
        self.c = cluster

    def create_namespaced_job(self, namespace: str, body: dict[str, Any], field_validation: str | None = None, *,
                              _request_timeout: float):
        self.c.calls.append("create")
        if field_validation == "Strict":
            kv.validate(body, kv.latest_version(), strict=True)
        name = body["metadata"]["name"]
        if (namespace, name) in self.c.jobs:
            raise FakeApiException(409, "Conflict")
        job = copy.deepcopy(body)
        job["status"] = {}
        self.c.jobs[(namespace, name)] = job
        pod = {"metadata": {"name": f"{name}-pod", "namespace": namespace,
                            "labels": {**job["spec"]["template"]["metadata"].get("labels", {}),
                                       "batch.kubernetes.io/job-name": name}}}
        self.c.pods[(namespace, f"{name}-pod")] = pod
        return copy.deepcopy(job)

    def read_namespaced_job_status(self, name: str, namespace: str, *, _request_timeout: float):
        self.c.calls.append("read")
        if (namespace, name) not in self.c.jobs:
            raise FakeApiException(404, "Not Found")
        return copy.deepcopy(self.c.jobs[(namespace, name)])

    def delete_namespaced_job(self, name: str, namespace: str, propagation_policy: str | None = None, *,
                              _request_timeout: float):
        self.c.calls.append("delete")
        if self.c.jobs.pop((namespace, name), None) is None:
            raise FakeApiException(404, "Not Found")
        if propagation_policy in ("Background", "Foreground"):
            for key in [k for k, p in self.c.pods.items()
                        if p["metadata"]["labels"].get("batch.kubernetes.io/job-name") == name]:
                del self.c.pods[key]
        return {"status": "Success"}

    def list_namespaced_job(self, namespace: str, label_selector: str | None = None, *, _request_timeout: float):
        self.c.calls.append("list")
        return {"items": [copy.deepcopy(j) for (ns, _), j in self.c.jobs.items()
                          if ns == namespace and _matches(j["metadata"].get("labels", {}), label_selector)]}


class _Core:
    def __init__(self, cluster: FakeCluster) -> None:
        self.c = cluster

    def list_namespaced_pod(self, namespace: str, label_selector: str | None = None, *, _request_timeout: float):
        return {"items": [copy.deepcopy(p) for (ns, _), p in self.c.pods.items()
                          if ns == namespace and _matches(p["metadata"]["labels"], label_selector)]}

    def read_namespaced_pod_log(self, name: str, namespace: str, container: str | None = None, *,
                                _request_timeout: float):
        if (namespace, name) not in self.c.pods or container != "task":
            raise FakeApiException(404, "Not Found")
        return self.c.logs.get(name, "")
