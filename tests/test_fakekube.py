"""The fake Kubernetes API server (tests/fakekube.py) answers the official client as a cluster would,
for the calls headwater makes: these tests pin that, so tests built on it are not built on sand."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate as kv
import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

from fakekube import JOB_NAME_LABEL, FakeKube, selector_matches  # noqa: E402


def _job(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "task", "image": "python:3.12"}]}}}}


@pytest.fixture
def kube(tmp_path: Path):
    with FakeKube() as server:
        server.set_validator("batch/v1", "jobs", lambda o: kv.validate(o, kv.latest_version(), strict=True))
        api = config.new_client_from_config(str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        yield server, api


def test_create_get_list_conflict_and_strict_validation(kube) -> None:
    server, api = kube
    batch = client.BatchV1Api(api)
    made = batch.create_namespaced_job("ns1", _job("a", {"app": "x"}), field_validation="Strict")
    assert made.metadata.uid and made.metadata.namespace == "ns1"
    batch.create_namespaced_job("ns1", _job("b", {"app": "y"}))
    with pytest.raises(ApiException) as e:
        batch.create_namespaced_job("ns1", _job("a"))
    assert e.value.status == 409
    bad = _job("c")
    bad["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    # The client checks dicts itself, so send the typo as raw JSON: the server's strict check answers 422.
    req = urllib.request.Request(f"{server.url}/apis/batch/v1/namespaces/ns1/jobs", data=json.dumps(bad).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as he:
        urllib.request.urlopen(req)
    assert he.value.code == 422 and "imagee" in he.value.read().decode()
    assert [j.metadata.name for j in batch.list_namespaced_job("ns1", label_selector="app=x").items] == ["a"]
    assert batch.read_namespaced_job_status("b", "ns1").metadata.labels == {"app": "y"}
    with pytest.raises(ApiException) as e:
        batch.read_namespaced_job_status("zz", "ns1")
    assert e.value.status == 404


def test_delete_takes_owned_pods_and_logs_are_served(kube) -> None:
    server, api = kube
    job = client.BatchV1Api(api).create_namespaced_job("ns1", _job("a"))
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "a-pod", "labels": {JOB_NAME_LABEL: "a"},
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "a",
                                             "uid": job.metadata.uid}]},
           "spec": {"containers": [{"name": "task", "image": "python:3.12"}]}}
    server.create("v1", "pods", "ns1", pod)
    server.logs[("ns1", "a-pod")] = "hello\nworld\n"
    core = client.CoreV1Api(api)
    assert core.read_namespaced_pod_log("a-pod", "ns1", container="task") == "hello\nworld\n"
    assert [p.metadata.name for p in core.list_namespaced_pod("ns1", label_selector=f"{JOB_NAME_LABEL}=a").items] \
        == ["a-pod"]
    client.BatchV1Api(api).delete_namespaced_job("a", "ns1", propagation_policy="Background")
    assert server.objects("v1", "pods") == [] and server.objects("batch/v1", "jobs") == []


def test_custom_objects_generate_name_and_patches(kube) -> None:
    server, api = kube
    co = client.CustomObjectsApi(api)
    wf = co.create_namespaced_custom_object("argoproj.io", "v1alpha1", "ns1", "workflows", {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "flow-"},
        "spec": {"suspend": False}})
    name = wf["metadata"]["name"]
    assert name.startswith("flow-") and len(name) == len("flow-") + 5
    co.patch_namespaced_custom_object("argoproj.io", "v1alpha1", "ns1", "workflows", name, {"spec": {"suspend": True}})
    assert server.get("argoproj.io/v1alpha1", "workflows", "ns1", name)["spec"]["suspend"] is True
    co.patch_namespaced_custom_object("argoproj.io", "v1alpha1", "ns1", "workflows", name,
                                      [{"op": "replace", "path": "/spec/suspend", "value": False}])
    assert co.get_namespaced_custom_object("argoproj.io", "v1alpha1", "ns1", "workflows", name)["spec"] \
        == {"suspend": False}
    co.delete_namespaced_custom_object("argoproj.io", "v1alpha1", "ns1", "workflows", name)
    assert co.list_namespaced_custom_object("argoproj.io", "v1alpha1", "ns1", "workflows")["items"] == []


def test_controllers_see_changes_and_watch_streams_them(kube) -> None:
    server, api = kube
    seen: list[tuple[str, str]] = []
    server.add_controller(lambda s, ev: seen.append((ev.type, ev.object["metadata"]["name"])))
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job("ns1", _job("a", {"app": "x"}))
    events: list[tuple[str, str]] = []

    def watch_jobs() -> None:
        w = watch.Watch()
        for ev in w.stream(batch.list_namespaced_job, "ns1", label_selector="app=x", timeout_seconds=5):
            events.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=watch_jobs)
    t.start()
    while not events:
        t.join(0.05)
    server.update("batch/v1", "jobs", "ns1", "a", lambda o: o.setdefault("status", {}).update(active=1))
    batch.create_namespaced_job("ns1", _job("other", {"app": "y"}))  # not selected
    batch.delete_namespaced_job("a", "ns1")
    t.join(10)
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert seen == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "other"), ("DELETED", "a")]


@pytest.mark.parametrize("selector, expected", [
    ("a=1", True), ("a==1", True), ("a!=1", False), ("a", True), ("!a", False), ("a=1,b=2", False), ("", True)])
def test_selector_terms(selector: str, expected: bool) -> None:
    assert selector_matches({"a": "1"}, selector) is expected


def test_faults_answer_a_status_then_the_server_answers_again(kube) -> None:
    server, api = kube
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job("ns1", _job("a", {"app": "x"}))
    refused = server.fail("DELETE", r"/jobs/a\b", 500, times=1)
    forbidden = server.fail("get", r"/namespaces/ns1/pods", 403, message='pods is forbidden: User "ci"')
    with pytest.raises(ApiException) as e:
        batch.delete_namespaced_job("a", "ns1", propagation_policy="Background")
    assert (e.value.status, e.value.reason) == (500, "Internal Server Error")
    assert json.loads(e.value.body)["reason"] == "InternalServerError"
    assert refused.hits == 1 and server.get("batch/v1", "jobs", "ns1", "a") is not None
    batch.delete_namespaced_job("a", "ns1", propagation_policy="Background")  # once only: now accepted
    assert server.get("batch/v1", "jobs", "ns1", "a") is None and refused.hits == 1
    core = client.CoreV1Api(api)
    for _ in range(2):  # for good
        with pytest.raises(ApiException) as e:
            core.list_namespaced_pod("ns1")
        assert e.value.status == 403 and json.loads(e.value.body)["message"] == 'pods is forbidden: User "ci"'
    assert forbidden.hits == 2
    assert core.list_namespaced_pod("ns2").items == []  # another path: not refused


def test_a_fault_can_refuse_the_watch_and_not_the_list(kube) -> None:
    server, api = kube
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job("ns1", _job("a"))
    server.fail("GET", r"/jobs\?.*watch=true", 503)
    with pytest.raises(ApiException) as e:
        next(iter(watch.Watch().stream(batch.list_namespaced_job, "ns1", timeout_seconds=1)))
    assert e.value.status == 503
    assert [j.metadata.name for j in batch.list_namespaced_job("ns1").items] == ["a"]
