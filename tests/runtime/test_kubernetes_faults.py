"""The Kubernetes launcher when the API fails: refused deletes, forbidden lists, no watch, bugs.

Flows run through ``python flow.py run`` against the fake API server and test kubelet
(tests/fakekube.py, tests/fakekube_kubelet.py; the ``cluster`` fixture of
test_kubernetes_launcher.py), whose fault hook (``FakeKube.fail``) answers chosen requests
with an error Status, as a cluster with missing RBAC, a failing API server or a proxy
without streams would. Runs are bounded by a timeout: a hang fails the test.
"""

from __future__ import annotations

import re
import time

import pytest

from flowrun import FLOWS, USER, run_flow

pytest.importorskip("kubernetes", reason="needs the kubernetes extra")
pytest.importorskip("kubernetes_validate", reason="needs the dev extra (kubernetes-validate)")

from . import test_kubernetes_launcher as launcher_tests  # noqa: E402

cluster = launcher_tests.cluster  # the fake API server and kubelet, as a fixture
client_run = launcher_tests.client_run

WATCH = r"/jobs\?.*watch=true"
SIBLING = "kube_sibling_flow.py"


def run_sibling(cluster, root: str, tmp_path, *args: str, timeout: float = 120):
    return run_flow(SIBLING, "run", *args, root=root, env=cluster.env, cwd=tmp_path, timeout=timeout)


def test_a_refused_delete_is_tried_again_and_the_attempt_reported_once(cluster, s3_bucket, tmp_path):
    """The sibling fails, so the scheduler kills the sleeper: the first delete of its Job is refused
    (HTTP 500); the next sweep deletes it. The attempt is reported after that, once."""
    refused = cluster.server.fail("DELETE", r"/jobs/", 500, times=1)
    r = run_sibling(cluster, f"s3://{s3_bucket}/refused", tmp_path, "--fail_sibling", "true")
    assert r.returncode == 1, r.output
    assert "RuntimeError: the sibling fails" in r.output
    assert "KeyError" not in r.output  # the scheduler heard of the sleeper once
    assert refused.hits == 1
    assert cluster.jobs_of("sleeper") == []  # deleted before the run ended: nothing left running
    deleted = [path for method, path in cluster.server.calls if method == "DELETE" and "/jobs/" in path]
    assert len(deleted) == 2 and deleted[0] == deleted[1]  # the sleeper's: refused, then accepted
    assert "may still be running" not in r.output


def test_a_delete_refused_for_good_names_the_job_left_running(cluster, s3_bucket, tmp_path):
    """Every delete refused: after API_PATIENCE s the attempt is reported anyway, and the run's end
    names the Job still running and the command that stops it."""
    from headwater.runtime.launchers.kubernetes import API_PATIENCE

    cluster.server.fail("DELETE", r"/jobs/", 500, message="etcdserver: request timed out")
    began = time.monotonic()
    r = run_sibling(cluster, f"s3://{s3_bucket}/orphan", tmp_path, "--fail_sibling", "true",
                    timeout=API_PATIENCE + 90)
    assert r.returncode == 1, r.output
    assert time.monotonic() - began >= API_PATIENCE  # it kept trying that long before giving up
    [job] = cluster.jobs_of("sleeper")
    name = job["metadata"]["name"]
    run_id = job["metadata"]["annotations"]["headwater.dev/run"]
    assert re.search(rf"Kubernetes Job\(s\) {name} \(namespace default\) may still be running: headwater could "
                     rf"not delete them \(Kubernetes refused deleting Job '{name}': HTTP 500 Internal Server Error: "
                     r"etcdserver: request timed out\.\)", r.output), r.output
    assert f"Stop them with: python {FLOWS / SIBLING} kubernetes kill --run-id {run_id}" in r.output


@pytest.mark.parametrize("forbid_pods", [False, True], ids=["no-watch", "no-watch-no-pods"])
def test_without_a_watch_the_sweep_alone_drives_the_run(cluster, s3_bucket, tmp_path, monkeypatch, forbid_pods):
    """No watch (HTTP 503 on every watch request): the sweep learns each Job's end by listing. Even
    with listing pods forbidden, the Jobs list still reports the finished Job."""
    no_watch = cluster.server.fail("GET", WATCH, 503)
    if forbid_pods:
        cluster.server.fail("GET", r"/namespaces/default/pods\?", 403, message='pods is forbidden: User "ci"')
    root = f"s3://{s3_bucket}/nowatch-{forbid_pods}"
    r = run_sibling(cluster, root, tmp_path, "--nap", "1", timeout=90)
    assert r.returncode == 0, r.output
    assert no_watch.hits >= 1
    run = client_run(monkeypatch, root, "KubeSiblingFlow", tmp_path)
    assert run.successful and run["join"].task.data.slept == 1.0
    assert "sleeping" in run["sleeper"].task.stdout


def test_a_jobs_list_forbidden_for_good_fails_the_run_naming_the_403(cluster, s3_bucket, tmp_path):
    """Listing (and watching) the run's Jobs is forbidden: the sleeper's end can never be seen, so
    after API_PATIENCE s its attempt fails with the API's answer and its Job is deleted; no hang."""
    from headwater.runtime.launchers.kubernetes import API_PATIENCE

    forbidden = cluster.server.fail("GET", r"/namespaces/default/jobs\?", 403,
                                    message='jobs.batch is forbidden: User "ci" cannot list resource "jobs"')
    r = run_sibling(cluster, f"s3://{s3_bucket}/forbidden", tmp_path, timeout=API_PATIENCE + 90)
    assert r.returncode == 1, r.output
    assert forbidden.hits >= 2
    assert re.search(r"headwater stopped waiting for Kubernetes Job \S+: the API failed every look at the run's "
                     r"Jobs for \d+ s\. Kubernetes refused listing Jobs in namespace 'default': HTTP 403 Forbidden: "
                     r'jobs\.batch is forbidden: User "ci" cannot list resource "jobs"\. Hint: Check the kubeconfig',
                     r.output), r.output
    assert cluster.jobs_of("sleeper") == []
    assert "Traceback" not in r.output


def test_an_internal_error_in_the_sweep_keeps_its_traceback_and_fails_the_attempt(
        tmp_path, s3_bucket, monkeypatch, capfd):
    """A bug (not the API's answer) in the sweep is not waited out: its traceback goes to stderr and
    the waiting attempt fails saying so, its Job deleted. In-process: a bug cannot be injected into
    a ``python flow.py run``."""
    from kubernetes import client, config

    from fakekube import FakeKube
    from headwater.compute.kubernetes.api import JobApi
    from headwater.flow.spec import FlowSpec
    from headwater.flow.step import step
    from headwater.runtime.launchers import TaskContext
    from headwater.runtime.launchers.kubernetes import KubernetesLauncher
    from headwater.runtime.taskspec import TaskSpec

    class BuggyFlow(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    def list_jobs_with_a_bug(namespace: str, selector: str):
        raise TypeError("a bug in the sweep")

    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_USER", USER)
    root = f"s3://{s3_bucket}/bug"
    with FakeKube() as server:
        server.fail("GET", WATCH, 503)  # the sweep polls every POLL_SECONDS
        api_client = config.new_client_from_config(str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        api = JobApi(client.BatchV1Api(api_client), client.CoreV1Api(api_client),
                     api_client.sanitize_for_serialization)
        api.list_jobs = list_jobs_with_a_bug  # type: ignore[method-assign]
        launcher = KubernetesLauncher(TaskContext(BuggyFlow, BuggyFlow._graph, root, "buggy.py"), ["start"], api=api)
        launcher.use_code_package({"script": "buggy.py", "key": "k" * 64})
        spec = TaskSpec(flow_name="BuggyFlow", run_id="1", step_name="start", task_id="1", attempt=0,
                        input_paths=(), input_attempts=(), datastore_root=root, user=USER)
        try:
            launcher.launch(spec, "", "")
            assert len(server.objects("batch/v1", "jobs")) == 1
            deadline = time.monotonic() + 30
            finished = []
            while not finished and time.monotonic() < deadline:
                finished = launcher.poll(1.0)
        finally:
            launcher.shutdown()
        assert [f.task_key for f in finished] == [spec.key]
        assert finished[0].result is None and finished[0].returncode == 1
        assert re.search(r"headwater stopped waiting for Kubernetes Job \S+: its sweep of the run's Jobs failed with "
                         r"an internal error \(TypeError: a bug in the sweep\); the traceback is on stderr\.",
                         finished[0].message)
        assert server.objects("batch/v1", "jobs") == []  # its Job deleted
    err = capfd.readouterr().err
    assert "Internal error in the Kubernetes sweep of namespace 'default':" in err
    assert "Traceback (most recent call last)" in err and "in list_jobs_with_a_bug" in err
    assert err.count("TypeError: a bug in the sweep") == 1  # shown once, not once per sweep


def test_a_step_with_ray_and_kubernetes_is_refused_before_anything_runs(tmp_path):
    r = run_flow("kube_ray_conflict_flow.py", "run", root=tmp_path / ".headwater")
    assert r.returncode == 1, r.output
    assert "Conflicting launchers" in r.output
    assert "Step 'train' has both @ray_task and @kubernetes: a step runs in one place." in r.output
    assert "Hint: Keep one of @ray_task and @kubernetes on step 'train'." in r.output
    assert "Traceback" not in r.output and not (tmp_path / ".headwater" / "runs").exists()
