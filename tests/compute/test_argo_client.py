"""ArgoClient against the fake Kubernetes API server (tests/fakekube.py, a test double: no API server runs
here): apply creates then replaces, API errors name the object and the namespace, stop requests set the
fields Argo's controller acts on."""

from __future__ import annotations

from pathlib import Path

import pytest

from argo_schema import validate
from fakekube import FakeKube

pytest.importorskip("kubernetes")

from kubernetes.client import ApiException  # noqa: E402
from urllib3.exceptions import MaxRetryError  # noqa: E402

from headwater.compute.argo.client import ArgoClient, ArgoClientError, ArgoKind  # noqa: E402

API = "argoproj.io/v1alpha1"


def _template(name: str, **spec_extra) -> dict:
    return {"apiVersion": API, "kind": "WorkflowTemplate", "metadata": {"name": name},
            "spec": {"entrypoint": "main", "templates": [
                {"name": "main", "container": {"image": "python:3.12", "command": ["true"]}}], **spec_extra}}


@pytest.fixture
def argo(tmp_path: Path):
    with FakeKube() as kube:
        kube.set_validator(API, "workflowtemplates", validate)
        yield kube, ArgoClient.from_config("ns1", config_file=str(kube.write_kubeconfig(tmp_path / "kubeconfig")))


def test_apply_creates_then_replaces_keeping_the_resource_version(argo) -> None:
    kube, client = argo
    first = client.apply(_template("hello"))
    assert first["metadata"]["namespace"] == "ns1"
    second = client.apply(_template("hello", parallelism=3))
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert kube.get(API, "workflowtemplates", "ns1", "hello")["spec"]["parallelism"] == 3
    assert [t["metadata"]["name"] for t in client.list(ArgoKind.WORKFLOW_TEMPLATE)] == ["hello"]
    assert client.delete(ArgoKind.WORKFLOW_TEMPLATE, "hello") is True
    assert client.delete(ArgoKind.WORKFLOW_TEMPLATE, "hello") is False
    assert client.get(ArgoKind.WORKFLOW_TEMPLATE, "hello") is None


def test_api_errors_name_the_object_and_the_namespace(argo) -> None:
    _, client = argo
    with pytest.raises(ArgoClientError, match=r"creating WorkflowTemplate 'bad' in the namespace 'ns1'.*paralelism"
                                              r".*\(HTTP 422\)"):
        client.apply(_template("bad", paralelism=3))  # a typo: the strict schema refuses it
    with pytest.raises(ArgoClientError, match="Cannot apply Deployment 'x'"):
        client.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}})
    with pytest.raises(ArgoClientError, match="There is no Workflow 'nope' in the namespace 'ns1'"):
        client.terminate("nope")


def test_stop_requests_set_the_fields_the_controller_acts_on(argo) -> None:
    kube, client = argo
    name = client.submit({"apiVersion": API, "kind": "Workflow", "metadata": {"generateName": "hello-"},
                          "spec": {"workflowTemplateRef": {"name": "hello"}}})["metadata"]["name"]
    client.suspend(name)
    assert kube.get(API, "workflows", "ns1", name)["spec"]["suspend"] is True
    with pytest.raises(ArgoClientError, match="is already suspended"):
        client.suspend(name)
    client.unsuspend(name)
    with pytest.raises(ArgoClientError, match="is not suspended"):
        client.unsuspend(name)
    client.terminate(name)
    assert kube.get(API, "workflows", "ns1", name)["spec"]["shutdown"] == "Terminate"
    kube.update(API, "workflows", "ns1", name, lambda o: o.setdefault("status", {}).update(
        phase="Failed", finishedAt="2026-01-01T00:00:00Z"))
    with pytest.raises(ArgoClientError, match=r"Cannot suspend the Workflow '.*': it has already finished \(Failed\)"):
        client.suspend(name)


def test_no_cluster_configured(tmp_path: Path) -> None:
    with pytest.raises(ArgoClientError, match="No Kubernetes cluster is configured here") as e:
        ArgoClient.from_config("ns1", config_file=str(tmp_path / "missing"))
    assert "KUBECONFIG" in (e.value.hint or "")


class _Broken:
    """A CustomObjectsApi whose calls fail with ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            raise self.error
        return call


def test_a_bug_inside_the_client_keeps_its_traceback() -> None:
    client = ArgoClient(_Broken(TypeError("get() got an unexpected keyword argument 'x'")), "ns1")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        client.get(ArgoKind.WORKFLOW, "hello")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        client.apply(_template("hello"))


@pytest.mark.parametrize("error, message", [
    (ConnectionRefusedError(111, "Connection refused"), r"reading Workflow 'hello' in the namespace 'ns1': "
                                                        r"ConnectionRefusedError"),
    (MaxRetryError(None, "/apis", "too many retries"),
     r"reading Workflow 'hello' in the namespace 'ns1': MaxRetryError"),
    (ApiException(status=403, reason="Forbidden"),
     r"reading Workflow 'hello' in the namespace 'ns1': Forbidden \(HTTP 403\)"),
])
def test_api_and_network_errors_become_argo_client_errors(error: BaseException, message: str) -> None:
    with pytest.raises(ArgoClientError, match=message):
        ArgoClient(_Broken(error), "ns1").get(ArgoKind.WORKFLOW, "hello")


def test_each_object_is_applied_and_deleted_in_its_own_namespace(argo) -> None:
    kube, client = argo
    client.apply({**_template("hello"), "metadata": {"name": "hello", "namespace": "elsewhere"}})
    client.apply(_template("hello"))  # no namespace: the client's
    assert kube.get(API, "workflowtemplates", "elsewhere", "hello") is not None
    assert kube.get(API, "workflowtemplates", "ns1", "hello") is not None
    assert client.get(ArgoKind.WORKFLOW_TEMPLATE, "hello", "elsewhere")["metadata"]["namespace"] == "elsewhere"
    assert client.delete(ArgoKind.WORKFLOW_TEMPLATE, "hello", "elsewhere") is True
    assert kube.get(API, "workflowtemplates", "elsewhere", "hello") is None
    assert kube.get(API, "workflowtemplates", "ns1", "hello") is not None
