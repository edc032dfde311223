"""JobApi's calls to the Kubernetes API: create, wait, logs, delete, list.

Exercised against a hand-written API double (tests/k8s_double.py)
because no Kubernetes API server can run here; what the double stands for is
in its docstring. ``job_phase`` reads Job statuses shaped as the API returns them.
"""

from __future__ import annotations

import pytest

pytest.importorskip("kubernetes_validate", reason="needs the dev extra (kubernetes-validate)")

from k8s_double import FakeCluster  # noqa: E402

from headwater.compute.kubernetes.api import JobApi, JobPhase, KubernetesApiError, job_phase, run_selector  # noqa: E402
from headwater.compute.kubernetes.commands import StepInvocation  # noqa: E402
from headwater.compute.kubernetes.job import step_job  # noqa: E402
from headwater.config import load_settings  # noqa: E402
from headwater.flow.kubernetes import KubernetesDecorator, kubernetes_options  # noqa: E402


def make_job(step: str = "train", task: str = "1", attempt: int = 0, run: str = "42") -> dict:
    settings = load_settings({"HEADWATER_DATASTORE_ROOT": "s3://b/p", "HEADWATER_USER": "tester",
                              "HEADWATER_HOME": "/nonexistent", "HEADWATER_KUBERNETES_NAMESPACE": "ml"})
    inv = StepInvocation(step, run, task, (f"{run}/start/1",), retry_count=attempt)
    return step_job(settings, kubernetes_options(step, [KubernetesDecorator()]), inv, flow_name="TrainFlow",
                    flow_file="train_flow.py", package_key="k" * 64)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def api(cluster: FakeCluster) -> JobApi:
    return JobApi(cluster.batch, cluster.core, sleep=lambda s: None)


def test_create_is_idempotent_per_attempt(api: JobApi, cluster: FakeCluster):
    job = make_job()
    created = api.create(job)
    again = api.create(job)
    assert created["metadata"]["name"] == again["metadata"]["name"] == job["metadata"]["name"]
    assert len(cluster.jobs) == 1 and cluster.calls == ["create", "create", "read"]
    api.create(make_job(attempt=1))
    assert len(cluster.jobs) == 2


def test_create_sends_a_strictly_valid_job(api: JobApi):
    job = make_job()
    job["spec"]["backofLimit"] = 0
    with pytest.raises(Exception, match="'backofLimit' was unexpected"):
        api.create(job)


def test_wait_follows_the_job_to_its_end_and_reads_logs(api: JobApi, cluster: FakeCluster):
    job = api.create(make_job())
    name, ns = job["metadata"]["name"], "ml"
    polls = iter([lambda: cluster.start(ns, name),
                  lambda: cluster.finish(ns, name, condition="Complete", log="hello from train\n")])
    api.sleep = lambda s: next(polls)()
    assert api.wait(name, ns, poll=0.01) is JobPhase.SUCCEEDED
    assert list(api.logs(name, ns)) == ["hello from train\n"]


@pytest.mark.parametrize(("status", "phase"), [
    ({}, JobPhase.PENDING),
    ({"active": 1}, JobPhase.RUNNING),
    ({"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}, JobPhase.SUCCEEDED),
    ({"conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}, JobPhase.SUCCEEDED),
    ({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}, JobPhase.FAILED),
    ({"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]}, JobPhase.TIMED_OUT),
    ({"conditions": [{"type": "Failed", "status": "False"}], "active": 1}, JobPhase.RUNNING),
    ({"failed": 1}, JobPhase.FAILED),
])
def test_job_phase(status, phase):
    assert job_phase({"status": status}) is phase


def test_delete_kills_the_job_and_its_pods(api: JobApi, cluster: FakeCluster):
    name = api.create(make_job())["metadata"]["name"]
    assert api.pods(name, "ml")
    assert api.delete(name, "ml") is True
    assert not cluster.jobs and not api.pods(name, "ml")
    assert api.delete(name, "ml") is False


def test_list_selects_a_flow_run_and_step(api: JobApi):
    for step, task, run in (("train", "1", "42"), ("train", "2", "42"), ("eval", "3", "42"), ("train", "1", "43")):
        api.create(make_job(step, task, run=run))
    assert len(api.list_jobs("ml", run_selector("TrainFlow"))) == 4
    assert len(api.list_jobs("ml", run_selector("TrainFlow", "42"))) == 3
    assert len(api.list_jobs("ml", run_selector("TrainFlow", "42", "train"))) == 2
    assert api.list_jobs("other", run_selector("TrainFlow")) == []


def test_api_refusal_is_reported_with_the_job_name(api: JobApi):
    with pytest.raises(KubernetesApiError, match=r"Kubernetes refused reading Job 'missing': HTTP 404 Not Found"):
        api.read("missing", "ml")


def test_from_config_without_a_cluster_says_so(tmp_path, monkeypatch):
    pytest.importorskip("kubernetes", reason="needs the kubernetes extra")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubernetesApiError, match="No Kubernetes cluster is configured here"):
        JobApi.from_config()


def test_kubernetes_list_without_a_cluster_is_a_clear_error(tmp_path):
    from flowrun import run_flow

    r = run_flow("linear_flow.py", "kubernetes", "list", root=tmp_path / ".headwater",
                 env={"KUBECONFIG": str(tmp_path / "missing-kubeconfig")})
    assert r.returncode != 0
    assert "No Kubernetes cluster is configured here" in r.output and "Traceback" not in r.output


def _cli_against(cluster: FakeCluster, monkeypatch):
    """The flow's CLI in-process, with JobApi.from_config answering from the double (no API server here)."""
    import importlib.util

    from click.testing import CliRunner

    from flowrun import FLOWS
    from headwater.cli.flow_cli import build_cli

    monkeypatch.setattr(JobApi, "from_config", classmethod(lambda cls: JobApi(cluster.batch, cluster.core)))
    monkeypatch.setenv("HEADWATER_KUBERNETES_NAMESPACE", "ml")
    monkeypatch.setenv("HEADWATER_USER", "tester")
    spec = importlib.util.spec_from_file_location("kubernetes_flow_cli", FLOWS / "kubernetes_flow.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cli = build_cli(mod.KubernetesFlow)
    return lambda *args: CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _flow_job(step: str, task: str, run: str, user: str) -> dict:
    job = make_job(step, task, run=run)
    job["metadata"]["labels"]["headwater.dev/flow"] = "KubernetesFlow"
    job["metadata"]["labels"]["headwater.dev/user"] = user
    job["metadata"]["annotations"]["headwater.dev/flow"] = "KubernetesFlow"
    return job


def test_kubernetes_list_and_kill_select_unfinished_jobs_of_my_runs(cluster: FakeCluster, monkeypatch):
    api = JobApi(cluster.batch, cluster.core)
    mine = api.create(_flow_job("square", "2", "42", "tester"))["metadata"]["name"]
    done = api.create(_flow_job("start", "1", "42", "tester"))["metadata"]["name"]
    theirs = api.create(_flow_job("square", "2", "77", "other"))["metadata"]["name"]
    cluster.start("ml", mine)
    cluster.finish("ml", done, condition="Complete")
    cli = _cli_against(cluster, monkeypatch)
    listed = cli("kubernetes", "list")
    assert listed.exit_code == 0, listed.output
    assert f"Job: *{mine}*" in listed.output and "Task: *42/square/2*" in listed.output
    assert done not in listed.output and theirs not in listed.output
    killed = cli("kubernetes", "kill", "--run-id", "42")
    assert f"Killing Kubernetes Job {mine}" in killed.output
    assert set(name for _, name in cluster.jobs) == {done, theirs}
    assert "No active Kubernetes pods found for run *42*." in cli("kubernetes", "kill", "--run-id", "42").output


# ---- what becomes a KubernetesApiError, and what keeps its traceback ----------------------------------

class _Failing:
    """A BatchV1Api whose every call raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            raise self.error
        return call


def test_a_refusal_names_the_status_and_the_servers_message():
    kubernetes = pytest.importorskip("kubernetes", reason="needs the kubernetes extra")
    refused = kubernetes.client.ApiException(status=403, reason="Forbidden")
    refused.body = '{"kind": "Status", "message": "jobs is forbidden: User \\"ci\\" cannot list jobs"}'
    api = JobApi(_Failing(refused), None)
    with pytest.raises(KubernetesApiError, match=r"Kubernetes refused listing Jobs in namespace 'ml': HTTP 403 "
                                                 r"Forbidden: jobs is forbidden: User \"ci\" cannot list jobs\.\n"):
        api.list_jobs("ml", "a=b")


@pytest.mark.parametrize("error", [ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out")])
def test_an_unreachable_server_is_a_kubernetes_error(error):
    with pytest.raises(KubernetesApiError, match=r"could not be reached when deleting Job 'j': \w+Error") as e:
        JobApi(_Failing(error), None).delete("j", "ml")
    assert "reachable" in e.value.hint


def test_a_dropped_connection_is_a_kubernetes_error():
    urllib3 = pytest.importorskip("urllib3")
    dropped = urllib3.exceptions.ProtocolError("Connection aborted.")
    with pytest.raises(KubernetesApiError, match=r"could not be reached when reading Job 'j': ProtocolError"):
        JobApi(_Failing(dropped), None).read("j", "ml")


@pytest.mark.parametrize("call", ["create", "read", "delete", "list_jobs"])
def test_a_bug_is_not_a_kubernetes_error_and_keeps_its_traceback(call):
    def broken(*args, **kwargs):
        raise TypeError("an internal mistake")

    batch = _Failing(TypeError("unused"))
    batch.__dict__.update(create_namespaced_job=broken, read_namespaced_job_status=broken,
                          delete_namespaced_job=broken, list_namespaced_job=broken)
    api = JobApi(batch, None)
    args = {"create": (make_job(),), "read": ("j", "ml"), "delete": ("j", "ml"), "list_jobs": ("ml", "a=b")}[call]
    with pytest.raises(TypeError, match="an internal mistake") as e:
        getattr(api, call)(*args)
    assert e.traceback[-1].name == "broken"  # raised where it happened, not re-raised from JobApi
