"""`argo-workflows create|trigger|status|terminate|suspend|unsuspend|delete|list-workflow-templates`
against a fake cluster: the fake Kubernetes API server (tests/fakekube.py, spoken to by the official
client through a kubeconfig, Argo objects checked against the strict schema from Argo's models) with
a fake Argo controller (tests/fakeargo.py) that runs each Workflow with the test interpreter, its
container commands as local processes against the session's S3 server.

Both are test doubles: no Kubernetes API server or Argo controller can run here. What they prove
and what only a real cluster can is in docs/argo-testing.md."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from argo_schema import validate
from argocluster import ArgoCluster, argo_cluster
from fakeargo import API
from flowrun import FlowRun, run_flow

pytest.importorskip("kubernetes")

HERE = Path(__file__).parent / "flows"
FLOW = HERE / "argo_server_flow.py"
SCHEDULED = HERE / "argo_scheduled_flow.py"
TRIGGERED = re.compile(r"Workflow \*argoserverflow\* triggered on Argo Workflows \(run-id \*(argo-argoserverflow-\w+)\*\)\.")


@pytest.fixture(scope="module")
def cluster(s3_server, tmp_path_factory):
    with argo_cluster(tmp_path_factory.mktemp("argo"), s3_server) as c:
        yield c


def argo(cluster: ArgoCluster, flow: Path, *args: str, env: dict[str, str] | None = None,
         top: tuple[str, ...] = ()) -> FlowRun:
    return run_flow(flow, *top, "argo-workflows", *args, root=Path("/unused"),
                    env=cluster.env(**(env or {})), cwd=flow.parent)


def ok(r: FlowRun) -> FlowRun:
    assert r.returncode == 0, r.output
    return r


@pytest.fixture(scope="module")
def deployed(cluster: ArgoCluster) -> FlowRun:
    return ok(argo(cluster, FLOW, "create", "--image", "python:3.12"))


def _trigger(cluster: ArgoCluster, *args: str) -> str:
    r = ok(argo(cluster, FLOW, "trigger", *args))
    m = TRIGGERED.search(r.stderr)
    assert m, r.output
    return m.group(1)


def _status(cluster: ArgoCluster, run_id: str) -> str:
    r = ok(argo(cluster, FLOW, "status", run_id))
    assert f"Fetching status for run *{run_id}* for ArgoServerFlow ..." in r.stderr
    return r.stdout.strip()


def test_create_deploys_a_strictly_valid_template_with_a_production_token(cluster: ArgoCluster,
                                                                          deployed: FlowRun, s3_env) -> None:
    (template,) = cluster.objects("workflowtemplates")
    validate(template)  # the server's validator checked it too, on create
    assert template["metadata"]["name"] == "argoserverflow"
    notes = template["metadata"]["annotations"]
    assert notes["headwater/owner"] == "tester" and notes["headwater/flow_name"] == "ArgoServerFlow"
    token = notes["headwater/production_token"]
    assert token.startswith("argoserverflow-")
    err = deployed.stderr
    for line in ("Deploying *ArgoServerFlow* to Argo Workflows...",
                 "It seems this is the first time you are deploying *argoserverflow* to Argo Workflows.",
                 "A new production token generated.",
                 f"    production:{token}",
                 f'    namespace("production:{token}")',
                 f"    argo-workflows create --authorize {token}",
                 "Workflow *argoserverflow* for flow *ArgoServerFlow* deployed to Argo Workflows successfully.",
                 "What will trigger execution of the workflow:",
                 "    No triggers defined. You need to launch this workflow manually."):
        assert line in err.splitlines(), (line, err)
    assert cluster.names("cronworkflows") == []
    # Remembered in the deploying user's own home (as Metaflow does), and nowhere shared.
    assert json.loads((cluster.home / "tokens" / "argoserverflow.json").read_text()) == {"production_token": token}


def test_trigger_runs_the_flow_with_the_parameter(cluster: ArgoCluster, deployed: FlowRun, tmp_path: Path,
                                                  s3_env) -> None:
    id_file = tmp_path / "run-id"
    run_id = _trigger(cluster, "--alpha", "2.5", "--run-id-file", str(id_file))
    assert id_file.read_text() == run_id
    wf = cluster.argo.wait(run_id[len("argo-"):])
    assert wf["status"]["phase"] == "Succeeded", json.dumps(wf["status"], indent=1)
    assert wf["status"]["startedAt"] and wf["status"]["finishedAt"]
    assert wf["spec"]["workflowTemplateRef"] == {"name": "argoserverflow"}
    validate(wf)
    pods = {n["displayName"]: n["phase"] for n in wf["status"]["nodes"].values() if n["type"] == "Pod"}
    assert pods == {"init-params": "Succeeded", "start": "Succeeded", "end": "Succeeded"}
    assert _status(cluster, run_id) == "Succeeded"
    from headwater.client.core import open_run

    run = open_run(f"ArgoServerFlow/{run_id}", cluster.root)
    assert run.successful
    assert run.data.doubled == 5.0 and run.data.greeting == "hello world"
    # A production deployment's runs are in its production namespace, not the deployer's (as in Metaflow).
    (template,) = cluster.objects("workflowtemplates")
    token = template["metadata"]["annotations"]["headwater/production_token"]
    assert f"production:{token}" in run.system_tags and "user:tester" not in run.system_tags
    assert {t.data.seen_namespace for t in run["start"]} == {f"production:{token}"}


def test_terminate_stops_a_running_run(cluster: ArgoCluster, deployed: FlowRun, tmp_path: Path) -> None:
    latch = tmp_path / "latch"
    cluster.argo.base_env["HW_TEST_LATCH"] = str(latch)  # start waits for the latch, which never comes
    try:
        run_id = _trigger(cluster)
        _wait_for(lambda: (tmp_path / "latch.started").exists())
    finally:
        del cluster.argo.base_env["HW_TEST_LATCH"]
    assert _status(cluster, run_id) == "Running"
    r = ok(argo(cluster, FLOW, "terminate", run_id))
    assert f"Terminating run *{run_id}* for ArgoServerFlow ..." in r.stderr and "Run terminated." in r.stderr
    wf = cluster.argo.wait(run_id[len("argo-"):])
    assert wf["spec"]["shutdown"] == "Terminate"
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == "Stopped with strategy 'Terminate'"
    assert not any(n["displayName"] == "end" for n in wf["status"]["nodes"].values())
    assert _status(cluster, run_id) == "Failed"
    again = argo(cluster, FLOW, "terminate", run_id)
    assert again.returncode == 1 and "it has already finished (Failed)" in again.stderr


def test_resume_waits_for_the_origin_run_to_end(cluster: ArgoCluster, deployed: FlowRun, tmp_path: Path) -> None:
    latch = tmp_path / "latch"
    cluster.argo.base_env["HW_TEST_LATCH"] = str(latch)  # start waits for the latch
    try:
        run_id = _trigger(cluster)
        _wait_for(lambda: (tmp_path / "latch.started").exists())
    finally:
        del cluster.argo.base_env["HW_TEST_LATCH"]
    before = len(cluster.objects("workflows"))
    refused = argo(cluster, FLOW, "resume", run_id)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"The run *{run_id}* is still running on Argo Workflows" in refused.stderr
    assert f"terminate it first: `argo-workflows terminate {run_id}`" in refused.stderr
    ok(argo(cluster, FLOW, "suspend", run_id))
    refused = argo(cluster, FLOW, "resume", run_id)
    assert refused.returncode == 1 and f"The run *{run_id}* is still suspended" in refused.stderr
    assert len(cluster.objects("workflows")) == before  # nothing submitted
    ok(argo(cluster, FLOW, "terminate", run_id))
    assert cluster.argo.wait(run_id[len("argo-"):])["status"]["phase"] == "Failed"
    r = ok(argo(cluster, FLOW, "resume", run_id))
    resumed = re.search(r"resumed on Argo Workflows \(run-id \*(argo-[\w-]+)\*\)", r.stderr).group(1)
    assert cluster.argo.wait(resumed[len("argo-"):])["status"]["phase"] == "Succeeded"


def test_a_run_the_cron_workflow_started_can_be_terminated(cluster: ArgoCluster, deployed: FlowRun,
                                                           tmp_path: Path) -> None:
    """A Workflow created by the CronWorkflow (or a Sensor) carries no headwater annotations of its
    own: whose it is comes from the template it references."""
    latch = tmp_path / "latch"
    cluster.argo.base_env["HW_TEST_LATCH"] = str(latch)
    try:
        wf = cluster.kube.create(API, "workflows", "default", {
            "apiVersion": API, "kind": "Workflow",
            "metadata": {"generateName": "argoserverflow-", "labels": {"workflows.argoproj.io/cron-workflow":
                                                                      "argoserverflow"}},
            "spec": {"workflowTemplateRef": {"name": "argoserverflow"}}})
        _wait_for(lambda: (tmp_path / "latch.started").exists())
    finally:
        del cluster.argo.base_env["HW_TEST_LATCH"]
    run_id = "argo-" + wf["metadata"]["name"]
    r = ok(argo(cluster, FLOW, "terminate", run_id))
    assert "Run terminated." in r.stderr
    assert cluster.argo.wait(wf["metadata"]["name"])["status"]["phase"] == "Failed"


def test_suspend_holds_the_next_step_until_unsuspended(cluster: ArgoCluster, deployed: FlowRun,
                                                       tmp_path: Path) -> None:
    latch = tmp_path / "latch"
    cluster.argo.base_env["HW_TEST_LATCH"] = str(latch)
    try:
        run_id = _trigger(cluster, "--who", "argo")
        _wait_for(lambda: (tmp_path / "latch.started").exists())
    finally:
        del cluster.argo.base_env["HW_TEST_LATCH"]
    name = run_id[len("argo-"):]
    r = ok(argo(cluster, FLOW, "suspend", run_id))
    assert f"Suspended execution of *{run_id}*" in r.stderr
    latch.touch()  # start ends; end must not start while suspended

    def start_done() -> bool:
        nodes = cluster.kube.get("argoproj.io/v1alpha1", "workflows", "default", name)["status"].get("nodes", {})
        return any(n["displayName"] == "start" and n["phase"] == "Succeeded" for n in nodes.values())

    _wait_for(start_done)  # published by the controller just before it would start the next pod
    wf = cluster.kube.get("argoproj.io/v1alpha1", "workflows", "default", name)
    assert wf["status"]["phase"] == "Running" and wf["spec"]["suspend"] is True
    assert not any(n["displayName"] == "end" for n in wf["status"]["nodes"].values())
    again = argo(cluster, FLOW, "suspend", run_id)
    assert again.returncode == 1 and "is already suspended" in again.stderr
    r = ok(argo(cluster, FLOW, "unsuspend", run_id))
    assert f"Unsuspended execution of *{run_id}*" in r.stderr
    assert cluster.argo.wait(name)["status"]["phase"] == "Succeeded"


def test_another_user_needs_the_production_token(cluster: ArgoCluster, deployed: FlowRun, tmp_path: Path) -> None:
    token = cluster.objects("workflowtemplates")[0]["metadata"]["annotations"]["headwater/production_token"]
    # Same datastore, same cluster: only the home differs, and mallory's holds no token.
    other = {"HEADWATER_USER": "mallory", "HEADWATER_HOME": str(tmp_path / "mallory-home")}
    refused = argo(cluster, FLOW, "create", env=other)
    assert refused.returncode == 1
    assert "Incorrect production token" in refused.stderr
    assert "There is an existing version of *argoserverflow* on Argo Workflows which was deployed by the user " \
           "*tester*." in refused.stderr
    assert "argo-workflows create --authorize MY_TOKEN" in refused.stderr and "Traceback" not in refused.stderr
    run_id = _trigger(cluster)  # tester's run: mallory may not stop it either
    stop = argo(cluster, FLOW, "terminate", run_id, env=other)
    assert stop.returncode == 1 and "argo-workflows terminate RUN_ID --authorize MY_TOKEN" in stop.stderr
    cluster.argo.wait(run_id[len("argo-"):])
    deletion = argo(cluster, FLOW, "delete", env=other)
    assert deletion.returncode == 1 and "Incorrect production token" in deletion.stderr
    assert cluster.names("workflowtemplates") == ["argoserverflow"]

    r = ok(argo(cluster, FLOW, "create", "--authorize", f"production:{token}", env=other))
    assert "A new production token generated." not in r.stderr  # the deployment keeps its token
    notes = cluster.objects("workflowtemplates")[0]["metadata"]["annotations"]
    assert notes["headwater/production_token"] == token and notes["headwater/owner"] == "mallory"
    saved = json.loads((tmp_path / "mallory-home" / "tokens" / "argoserverflow.json").read_text())
    assert saved == {"production_token": token}
    ok(argo(cluster, FLOW, "create", env=other))  # remembered: no --authorize needed again
    ok(argo(cluster, FLOW, "create"))  # tester remembers the token too (their own home)
    assert cluster.objects("workflowtemplates")[0]["metadata"]["annotations"]["headwater/owner"] == "tester"


def test_list_and_delete_a_scheduled_deployment(cluster: ArgoCluster, deployed: FlowRun) -> None:
    r = ok(argo(cluster, SCHEDULED, "create"))
    assert "    This workflow triggers automatically via the CronWorkflow *argoscheduledflow*." in r.stderr
    (cron,) = cluster.objects("cronworkflows")
    validate(cron)
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"] == {"name": "argoscheduledflow"}
    assert ok(argo(cluster, SCHEDULED, "list-workflow-templates")).stdout.split() == ["argoscheduledflow"]
    assert sorted(ok(argo(cluster, SCHEDULED, "list-workflow-templates", "--all")).stdout.split()) == [
        "argoscheduledflow", "argoserverflow"]
    r = ok(argo(cluster, SCHEDULED, "delete"))
    assert "Deleting workflow *argoscheduledflow*..." in r.stderr
    assert "Deleting cronworkflow *argoscheduledflow*..." in r.stderr
    assert "In-flight executions will not be affected." in r.stderr
    assert cluster.names("workflowtemplates") == ["argoserverflow"] and cluster.names("cronworkflows") == []
    again = argo(cluster, SCHEDULED, "delete")
    assert again.returncode == 1 and "The workflow *argoscheduledflow* doesn't exist on Argo Workflows" in again.stderr


@pytest.mark.parametrize("args, env, message", [
    (("status", "argo-nosuchrun"), {}, "No execution found for ArgoServerFlow/argo-nosuchrun in Argo Workflows."),
    (("status", "1234"), {}, "Run IDs for flows executed through Argo Workflows begin with 'argo-'"),
    (("terminate", "argo-nosuchrun"), {}, "Could not find workflow *nosuchrun* on Argo Workflows"),
    (("--name", "neverdeployed", "trigger"), {},
     "The workflow *neverdeployed* doesn't exist on Argo Workflows in namespace *default*."),
    (("list-workflow-templates",), {"KUBECONFIG": "/nonexistent/kubeconfig"},
     "No Kubernetes cluster is configured here"),
])
def test_errors_say_what_is_wrong(cluster: ArgoCluster, args: tuple[str, ...], env: dict[str, str],
                                  message: str) -> None:
    r = argo(cluster, FLOW, *args, env=env)
    assert r.returncode == 1, r.output
    assert message in r.stderr and "Traceback" not in r.stderr


def test_trigger_checks_parameter_types_before_submitting(cluster: ArgoCluster, deployed: FlowRun) -> None:
    before = len(cluster.objects("workflows"))
    r = argo(cluster, FLOW, "trigger", "--alpha", "lots")
    assert r.returncode == 2 and "'lots' is not a valid float" in r.stderr
    assert len(cluster.objects("workflows")) == before


def _wait_for(cond, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def test_deployer_attribute_files(cluster: ArgoCluster, deployed: FlowRun, tmp_path: Path) -> None:
    attrs = tmp_path / "create.json"
    ok(argo(cluster, FLOW, "create", "--deployer-attribute-file", str(attrs)))
    got = json.loads(attrs.read_text())
    assert got["name"] == "argoserverflow" and got["flow_name"] == "ArgoServerFlow"
    attrs = tmp_path / "trigger.json"
    ok(argo(cluster, FLOW, "trigger", "--deployer-attribute-file", str(attrs)))
    got = json.loads(attrs.read_text())
    assert re.fullmatch(r"ArgoServerFlow/argo-argoserverflow-\w+", got["pathspec"])
    assert got["datastore_root"] == cluster.root
    cluster.argo.wait(got["pathspec"].split("/argo-")[1])
