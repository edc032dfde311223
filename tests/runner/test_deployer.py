"""The Deployer API (Metaflow's): create -> trigger -> TriggeredRun.run / .status -> the run's artifacts,
terminate, from_deployment, list_deployed_flows, delete; each command the flow's own CLI in a subprocess,
against the fake cluster of tests/argocluster.py (the fake Kubernetes API server and the fake Argo
controller, test doubles: no cluster can run here)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from argocluster import ArgoCluster, argo_cluster

from headwater import DeployedFlow, Deployer
from headwater.exceptions import RunnerValueError
from headwater.runner.deployer import DeployerError

pytest.importorskip("kubernetes")

FLOW = Path(__file__).parents[1] / "compute" / "flows" / "argo_server_flow.py"
FAST = {"check_interval": 0.1, "timeout": 120}


@pytest.fixture(scope="module")
def cluster(s3_server, tmp_path_factory):
    with argo_cluster(tmp_path_factory.mktemp("argo"), s3_server) as c:
        yield c


@pytest.fixture
def here(cluster: ArgoCluster, monkeypatch, s3_env) -> ArgoCluster:
    """This process pointed at the cluster and the datastore too (from_deployment, the client)."""
    for k, v in cluster.env().items():
        monkeypatch.setenv(k, v)
    return cluster


@pytest.fixture(scope="module")
def deployed(cluster: ArgoCluster) -> DeployedFlow:
    return Deployer(FLOW, show_output=False, env=cluster.env()).argo_workflows().create()


def test_create_returns_the_deployed_flow(here: ArgoCluster, deployed: DeployedFlow) -> None:
    assert deployed.name == "argoserverflow" and deployed.flow_name == "ArgoServerFlow"
    (template,) = here.objects("workflowtemplates")
    assert deployed.production_token == template["metadata"]["annotations"]["headwater/production_token"]
    assert deployed.production_token.startswith("argoserverflow-")
    assert deployed.workflow_template is None  # only create(only_json=True) keeps it


def test_trigger_then_run_status_and_artifacts(here: ArgoCluster, deployed: DeployedFlow) -> None:
    triggered = deployed.trigger(alpha=1.5)
    assert triggered.pathspec.startswith("ArgoServerFlow/argo-argoserverflow-")
    run = triggered.wait_for_run(**FAST)
    assert run.pathspec == triggered.pathspec
    triggered.wait_for_completion(**FAST)
    assert triggered.status == "Succeeded" and not triggered.is_running
    assert triggered.run.successful
    assert triggered.run.data.doubled == 3.0 and triggered.run.data.greeting == "hello world"


def test_terminate_a_triggered_run(here: ArgoCluster, deployed: DeployedFlow, tmp_path: Path) -> None:
    here.argo.base_env["HW_TEST_LATCH"] = str(tmp_path / "latch")  # start waits; the latch never comes
    try:
        triggered = deployed.trigger()
        triggered.wait_for_run(**FAST)
        assert triggered.status == "Running"
        assert triggered.terminate() is True
    finally:
        del here.argo.base_env["HW_TEST_LATCH"]
    triggered.wait_for_completion(**FAST)
    assert triggered.status == "Failed"
    assert triggered.terminate() is False  # already finished: the command says so and fails


def test_suspend_and_unsuspend_a_triggered_run(here: ArgoCluster, deployed: DeployedFlow, tmp_path: Path) -> None:
    latch = tmp_path / "latch"
    here.argo.base_env["HW_TEST_LATCH"] = str(latch)
    try:
        triggered = deployed.trigger()
        triggered.wait_for_run(**FAST)
        assert triggered.suspend() is True
        assert triggered.suspend() is False  # already suspended
        assert triggered.unsuspend() is True
    finally:
        del here.argo.base_env["HW_TEST_LATCH"]
    latch.touch()
    triggered.wait_for_completion(**FAST)
    assert triggered.status == "Succeeded"


def test_from_deployment_and_list_deployed_flows(here: ArgoCluster, deployed: DeployedFlow) -> None:
    found = DeployedFlow.from_deployment("argoserverflow")
    assert (found.name, found.flow_name) == ("argoserverflow", "ArgoServerFlow")
    assert found.production_token == deployed.production_token
    triggered = found.trigger(who="argo")  # through a stand-in flow file with the deployed parameters
    triggered.wait_for_completion(**FAST)
    assert triggered.status == "Succeeded"
    assert triggered.run.data.greeting == "hello argo" and triggered.run.data.doubled == 1.0
    again = DeployedFlow.get_triggered_run("argoserverflow", triggered.run_id)
    assert again.status == "Succeeded" and again.pathspec == triggered.pathspec
    assert [d.name for d in DeployedFlow.list_deployed_flows()] == ["argoserverflow"]
    assert [d.name for d in DeployedFlow.list_deployed_flows(flow_name="ArgoServerFlow")] == ["argoserverflow"]
    assert list(DeployedFlow.list_deployed_flows(flow_name="OtherFlow")) == []


def test_stand_in_flow_files_go_with_their_deployed_flows(here: ArgoCluster, deployed: DeployedFlow) -> None:
    found = DeployedFlow.from_deployment("argoserverflow")
    folder = Path(found.deployer.deployer.flow_file).parent
    listed = [Path(d.deployer.deployer.flow_file).parent for d in DeployedFlow.list_deployed_flows()]
    assert folder.is_dir() and listed and folder not in listed
    gc.collect()
    assert not any(p.exists() for p in listed)  # each one went with its DeployedFlow
    run = DeployedFlow.get_triggered_run("argoserverflow", "argo-nosuchrun")
    kept = Path(run.deployer.deployer.flow_file).parent
    del found, run
    gc.collect()
    assert not folder.exists() and not kept.exists()


def test_wrong_arguments_are_refused_before_anything_runs(here: ArgoCluster, deployed: DeployedFlow) -> None:
    before = len(here.objects("workflows"))
    with pytest.raises(RunnerValueError, match="Unknown argument 'alpah' for trigger"):
        deployed.trigger(alpah=1)
    with pytest.raises(RunnerValueError, match="Unknown argument 'max_worker' for create"):
        Deployer(FLOW, show_output=False, env=here.env()).argo_workflows().create(max_worker=3)
    with pytest.raises(RunnerValueError, match="no configuration profiles"):
        Deployer(FLOW, profile="prod")
    with pytest.raises(RunnerValueError, match="Unknown argument 'namee' for argo_workflows"):
        Deployer(FLOW).argo_workflows(namee="x")
    assert len(here.objects("workflows")) == before


def test_trigger_of_a_deployment_that_is_gone_fails(here: ArgoCluster) -> None:
    d = Deployer(FLOW, show_output=False, env=here.env()).argo_workflows(name="neverdeployed")
    with pytest.raises(DeployerError, match=r"(?s)`argo-workflows trigger` of argo_server_flow.py failed.*"
                                            r"The workflow \*neverdeployed\* doesn't exist"):
        DeployedFlow(d).trigger()


def test_delete_removes_the_deployment(here: ArgoCluster, deployed: DeployedFlow) -> None:
    other = Deployer(FLOW, show_output=False, env=here.env()).argo_workflows(name="to-delete").create(
        only_json=True)
    assert other.workflow_template["metadata"]["name"] == "to-delete"  # only printed, nothing deployed
    assert here.names("workflowtemplates") == ["argoserverflow"]
    gone = Deployer(FLOW, show_output=False, env=here.env()).argo_workflows(name="to-delete").create()
    assert here.names("workflowtemplates") == ["argoserverflow", "to-delete"]
    assert gone.delete() is True
    assert here.names("workflowtemplates") == ["argoserverflow"]
    assert gone.delete() is False
    with pytest.raises(DeployerError, match="No deployed flow found for 'to-delete'"):
        DeployedFlow.from_deployment("to-delete")
