"""Where the `argo-workflows` commands put things, on the fake cluster (tests/argocluster.py: the fake
API server, which refuses an object sent to another namespace than its own as a real one does, and the
fake Argo controller; test doubles, no cluster runs here):

- the namespace and image configured only in the config file ($HEADWATER_HOME/config.json) are the
  ones every command uses: create, trigger, resume;
- a Sensor goes to HEADWATER_ARGO_EVENTS_SENSOR_NAMESPACE, and a new version or `delete` removes it
  from there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from argocluster import ArgoCluster, argo_cluster
from flowrun import FLOWS, FlowRun, run_flow

pytest.importorskip("kubernetes")

SERVER_FLOW = Path(__file__).parent / "flows" / "argo_server_flow.py"
TRIGGER_FLOW = FLOWS / "trigger_flow.py"
EVENTS = {"HEADWATER_ARGO_EVENTS_EVENT": "headwater-event", "HEADWATER_ARGO_EVENTS_EVENT_SOURCE": "argo-events-webhook",
          "HEADWATER_ARGO_EVENTS_SERVICE_ACCOUNT": "operate-workflow-sa"}


@pytest.fixture(scope="module")
def cluster(s3_server, tmp_path_factory):
    with argo_cluster(tmp_path_factory.mktemp("argo"), s3_server) as c:
        yield c


def argo(cluster: ArgoCluster, flow: Path, *args: str, **env: str) -> FlowRun:
    r = run_flow(flow, "argo-workflows", *args, root=Path("/unused"), env=cluster.env(**env), cwd=flow.parent)
    assert r.returncode == 0, r.output
    return r


def in_namespace(cluster: ArgoCluster, plural: str, namespace: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in cluster.kube.objects("argoproj.io/v1alpha1", plural, namespace))


def test_the_config_file_namespace_and_image_are_used_by_every_command(cluster: ArgoCluster, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"HEADWATER_KUBERNETES_NAMESPACE": "team-ns",
                                                  "HEADWATER_KUBERNETES_CONTAINER_IMAGE": "registry.local/py:1"}))
    env = {"HEADWATER_HOME": str(home)}
    printed = json.loads(argo(cluster, SERVER_FLOW, "create", "--only-json", **env).stdout)
    assert printed["metadata"]["namespace"] == "team-ns"
    images = {t["container"]["image"] for t in printed["spec"]["templates"] if "container" in t}
    assert images == {"registry.local/py:1"}

    argo(cluster, SERVER_FLOW, "create", **env)
    assert in_namespace(cluster, "workflowtemplates", "team-ns") == ["argoserverflow"]
    assert in_namespace(cluster, "workflowtemplates", "default") == []
    r = argo(cluster, SERVER_FLOW, "trigger", **env)
    run_id = re.search(r"\(run-id \*(argo-[\w-]+)\*\)", r.stderr).group(1)
    wf = cluster.argo.wait(run_id[len("argo-"):], namespace="team-ns")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")

    workflow = json.loads(argo(cluster, SERVER_FLOW, "resume", run_id, "--only-json", **env).stdout)
    assert workflow["metadata"]["namespace"] == "team-ns"
    r = argo(cluster, SERVER_FLOW, "resume", run_id, **env)
    resumed = re.search(r"\(run-id \*(argo-[\w-]+)\*\)", r.stderr).group(1)
    assert cluster.argo.wait(resumed[len("argo-"):], namespace="team-ns")["status"]["phase"] == "Succeeded"
    argo(cluster, SERVER_FLOW, "delete", **env)
    assert in_namespace(cluster, "workflowtemplates", "team-ns") == []


def test_the_sensor_lives_and_is_deleted_in_its_own_namespace(cluster: ArgoCluster) -> None:
    events = {**EVENTS, "HEADWATER_ARGO_EVENTS_SENSOR_NAMESPACE": "argo-events"}
    argo(cluster, TRIGGER_FLOW, "create", **events)
    assert in_namespace(cluster, "sensors", "argo-events") == ["triggerflow"]
    assert in_namespace(cluster, "sensors", "default") == []
    (template,) = [t for t in cluster.objects("workflowtemplates") if t["metadata"]["name"] == "triggerflow"]
    assert template["metadata"]["namespace"] == "default"
    assert template["metadata"]["annotations"]["headwater/sensor_namespace"] == "argo-events"

    argo(cluster, TRIGGER_FLOW, "create", **EVENTS)  # the Sensor moves to the workflows' namespace
    assert in_namespace(cluster, "sensors", "argo-events") == []
    assert in_namespace(cluster, "sensors", "default") == ["triggerflow"]

    argo(cluster, TRIGGER_FLOW, "create", **events)  # and back
    r = argo(cluster, TRIGGER_FLOW, "delete")  # no events settings needed: the template says where it is
    assert "Deleting sensor *triggerflow*..." in r.stderr
    assert in_namespace(cluster, "sensors", "argo-events") == [] and in_namespace(cluster, "sensors", "default") == []
    assert "triggerflow" not in cluster.names("workflowtemplates")
