"""The Kubernetes launcher, end to end against a fake API server (tests/fakekube.py) and a test
kubelet (tests/fakekube_kubelet.py), since no Kubernetes cluster can run here.

Flows run through ``python flow.py run`` on the session's moto S3 server, with ``KUBECONFIG``
pointing the official client at the fake server; the kubelet runs each Job's container
command as written as a local process (credentials come from a Secret on the server, as on a
cluster). Results are read back through the client. The kubelet shortens
``activeDeadlineSeconds`` (``DEADLINE_SCALE``) so that a 60 s ``@timeout`` (Kubernetes' minimum)
passes in 3 s.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from envdirs import built_envs
from flowrun import FLOWS, USER, run_flow

pytest.importorskip("kubernetes", reason="needs the kubernetes extra")
kv = pytest.importorskip("kubernetes_validate", reason="needs the dev extra (kubernetes-validate)")

from fakekube import FakeKube  # noqa: E402
from fakekube_kubelet import BARE, DEFAULT_IMAGE, Kubelet  # noqa: E402

DEADLINE_SCALE = 0.05
SECRET = "s3-creds"
LABEL = "headwater.dev/"


@dataclass
class Cluster:
    server: FakeKube
    kubelet: Kubelet
    env: dict[str, str]  # what a run needs: the kubeconfig, the secret, the image, the S3 endpoint

    def jobs(self) -> list[dict]:
        return self.server.objects("batch/v1", "jobs")

    def jobs_of(self, step: str) -> list[dict]:
        return sorted((j for j in self.jobs() if j["metadata"]["annotations"][LABEL + "step"] == step),
                      key=lambda j: int(j["metadata"]["annotations"][LABEL + "attempt"]))


@pytest.fixture
def cluster(tmp_path: Path, s3_env) -> Cluster:
    with FakeKube() as server:
        server.set_validator("batch/v1", "jobs", lambda o: kv.validate(o, kv.latest_version(), strict=True))
        kubelet = Kubelet(server, tmp_path / "pods", images={"bare:1": BARE}, strict_images=True,
                          deadline_scale=DEADLINE_SCALE)
        creds = {k: v for k, v in s3_env.env().items() if k.startswith("AWS_")}
        server.create("v1", "secrets", "default", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in creds.items()}})
        config = server.write_kubeconfig(tmp_path / "kubeconfig")
        env = {**s3_env.env(), "KUBECONFIG": str(config), "HEADWATER_KUBERNETES_SECRETS": SECRET,
               "HEADWATER_KUBERNETES_CONTAINER_IMAGE": DEFAULT_IMAGE, "HEADWATER_HOME": str(tmp_path / "home")}
        try:
            yield Cluster(server, kubelet, env)
        finally:
            kubelet.stop()


def run_on(cluster: Cluster, flow: str, root: str, tmp_path: Path, *args: str, launcher: str = "fork"):
    return run_flow(flow, "run", *args, root=root, launcher=launcher, env=cluster.env, cwd=tmp_path, timeout=240)


def client_run(monkeypatch: pytest.MonkeyPatch, root: str | Path, flow: str, tmp_path: Path):
    import headwater

    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(root))
    monkeypatch.setenv("HEADWATER_USER", USER)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "reader-home"))
    headwater.namespace(None)
    return headwater.Flow(flow).latest_run


def by_step(run) -> dict:
    """Every artifact value of every task by (step, name): task ids may differ, values must not."""
    out: dict = {}
    for step in run:
        for task in step:
            for a in task:
                if a.id != "name":
                    out.setdefault((step.id, a.id), []).append(repr(a.data))
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.parametrize("how", ["with", "launcher"])
def test_every_step_on_kubernetes_gives_the_local_results(cluster, s3_bucket, tmp_path, monkeypatch, how):
    """--with kubernetes or HEADWATER_LAUNCHER=kubernetes: every task (a foreach of 3 included) is a
    Job; the artifacts equal a local run's, and what the steps print is on the console and in
    Task.stdout."""
    root = f"s3://{s3_bucket}/k8s"
    if how == "with":
        r = run_on(cluster, "kube_foreach_flow.py", root, tmp_path, "--with", "kubernetes:cpu=1,memory=512")
    else:
        r = run_on(cluster, "kube_foreach_flow.py", root, tmp_path, launcher="kubernetes")
    assert r.returncode == 0, r.output
    assert "square of 3 is 9" in r.output and "starting the foreach" in r.output
    steps = {j["metadata"]["annotations"][LABEL + "step"] for j in cluster.jobs()}
    assert steps == {"start", "square", "join", "end"} and len(cluster.jobs()) == 6
    assert all(j["spec"]["backoffLimit"] == 0 for j in cluster.jobs())
    (tmp_path / "local").mkdir()
    local = run_flow("kube_foreach_flow.py", "run", root=tmp_path / "local" / ".headwater")
    assert local.returncode == 0, local.output
    want = by_step(client_run(monkeypatch, tmp_path / "local" / ".headwater", "KubeForeachFlow", tmp_path))
    got_run = client_run(monkeypatch, root, "KubeForeachFlow", tmp_path)
    assert got_run.successful
    assert by_step(got_run) == want
    assert got_run["end"].task.data.summary == "total=14"
    stdouts = sorted(t.stdout for t in got_run["square"])
    assert [s.strip() for s in stdouts] == ["square of 1 is 1", "square of 2 is 4", "square of 3 is 9"]
    assert "starting the foreach" in got_run["start"].task.stdout


def test_only_the_kubernetes_step_becomes_a_job(cluster, s3_bucket, tmp_path, monkeypatch):
    root = f"s3://{s3_bucket}/mixed"
    r = run_on(cluster, "kube_mixed_flow.py", root, tmp_path)
    assert r.returncode == 0, r.output
    jobs = cluster.jobs()
    assert [j["metadata"]["annotations"][LABEL + "step"] for j in jobs] == ["train"]
    requests = jobs[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert (requests["cpu"], requests["memory"]) == ("2", "1024M")
    run = client_run(monkeypatch, root, "KubeMixedFlow", tmp_path)
    assert run.successful and run["end"].task.data.z == 43
    pod = run["train"].task.data.pod
    assert pod and pod.startswith(jobs[0]["metadata"]["name"])  # the pod of that Job ran it
    assert run["start"].task.data.pod is None and run["end"].task.data.end_pod is None  # these ran here
    assert f"trained on {pod}" in run["train"].task.stdout and f"trained on {pod}" in r.output


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Offline wheels of tinylib 1.0.0 and 2.0.0 (the pods build environments from them)."""
    pytest.importorskip("uv", reason="environment steps need uv (pip install 'headwater[envs]')")
    from tinywheels import write_wheel

    links = tmp_path_factory.mktemp("links")
    write_wheel(links, "tinylib", "1.0.0")
    write_wheel(links, "tinylib", "2.0.0")
    return links


def test_environment_steps_build_their_environment_in_the_pod(cluster, s3_bucket, tmp_path, monkeypatch, wheels):
    """PypiFlow with --with kubernetes: the Jobs of start and two carry their stored lock's key
    (``--environment-lock``) and the head's package sources; each pod's bootstrap builds the
    environment in the pod's own HEADWATER_HOME and runs the step in it, so each step sees its own
    tinylib, end (no environment, the image's interpreter) sees neither, and each task records its
    environment."""
    root = f"s3://{s3_bucket}/envs"
    env = {**cluster.env, "HEADWATER_PYPI_NO_INDEX": "1", "HEADWATER_PYPI_FIND_LINKS": str(wheels),
           "UV_HTTP_RETRIES": "0"}
    r = run_flow("pypi_flow.py", "--environment=pypi", "run", "--with", "kubernetes", root=root, env=env,
                 cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.output
    run = client_run(monkeypatch, root, "PypiFlow", tmp_path)
    assert run.successful
    assert [run[s].task["tinylib"].data for s in ("start", "two", "end")] == ["1.0.0", "2.0.0", None]
    assert run["start"].task["sees_pytest"].data is False and run["end"].task["sees_pytest"].data is True
    assert "environment" not in run["end"].task.metadata_dict
    for step in ("start", "two"):
        (job,) = cluster.jobs_of(step)
        container = job["spec"]["template"]["spec"]["containers"][0]
        command = container["command"]
        lock_key = command[command.index("--environment-lock") + 1]
        pod_env = {e["name"]: e.get("value") for e in container["env"]}
        assert pod_env["HEADWATER_PYPI_FIND_LINKS"] == str(wheels) and pod_env["HEADWATER_PYPI_NO_INDEX"] == "1"
        described = json.loads(run[step].task.metadata_dict["environment"])
        assert described["packages"] == {"tinylib": run[step].task["tinylib"].data}
        (pod,) = [p for p in cluster.server.objects("v1", "pods")
                  if p["metadata"]["labels"]["job-name"] == job["metadata"]["name"]]
        built = tmp_path / "pods" / pod["metadata"]["name"] / "home" / ".headwater" / "envs" / described["lock_digest"]
        assert (built / "headwater-env.json").is_file()  # built in the pod's own HEADWATER_HOME
        log = cluster.server.logs[("default", pod["metadata"]["name"])]
        assert f"Built the pypi environment {described['lock_digest'][:12]}" in log
        assert lock_key != described["lock_digest"]  # the object's content key travels, not the digest
    (end_job,) = cluster.jobs_of("end")
    assert "--environment-lock" not in end_job["spec"]["template"]["spec"]["containers"][0]["command"]
    head_envs = Path(cluster.env["HEADWATER_HOME"]) / "envs"  # resolved here, built only in the pods
    assert built_envs(head_envs) == []


def test_a_conda_step_builds_its_environment_in_the_pod(cluster, s3_bucket, tmp_path, monkeypatch):
    """CondaFlow with --with kubernetes against a conda channel the test builds: the channel setting
    travels to the pods, whose bootstraps install the locked packages with rattler."""
    pytest.importorskip("rattler")
    pytest.importorskip("conda_package_handling")
    from environments.condachannel import build_channel

    channel = build_channel(tmp_path / "conda")
    root = f"s3://{s3_bucket}/conda"
    env = {**cluster.env, "HEADWATER_CONDA_CHANNELS": channel.as_uri()}
    r = run_flow("conda_flow.py", "--environment=conda", "run", "--with", "kubernetes", root=root, env=env,
                 cwd=tmp_path, timeout=240)
    assert r.returncode == 0, r.output
    run = client_run(monkeypatch, root, "CondaFlow", tmp_path)
    assert [run[s].task["tinylib"].data for s in ("start", "two", "end")] == ["1.0", "2.0", None]
    two = json.loads(run["two"].task.metadata_dict["environment"])
    assert two["kind"] == "conda" and two["packages"]["tinylib"] == "2.0"
    (job,) = cluster.jobs_of("two")
    pod_env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert pod_env["HEADWATER_CONDA_CHANNELS"] == channel.as_uri()


def test_retry_catch_and_timeout_on_kubernetes(cluster, s3_bucket, tmp_path, monkeypatch):
    """@retry: one Job per attempt. @catch: of an exception, of a dead process and of a Job past its
    activeDeadlineSeconds (@timeout), each retried first where @retry says so."""
    root = f"s3://{s3_bucket}/faults"
    r = run_on(cluster, "kube_faults_flow.py", root, tmp_path, "--with", "kubernetes")
    assert r.returncode == 0, r.output
    flaky = cluster.jobs_of("flaky")
    assert [j["metadata"]["annotations"][LABEL + "attempt"] for j in flaky] == ["0", "1"]
    assert len({j["metadata"]["name"] for j in flaky}) == 2
    assert len(cluster.jobs_of("crashed")) == 2  # the attempt that died, then @catch's
    slow = cluster.jobs_of("slow")
    assert len(slow) == 3  # two timed out (@retry(times=1)), then @catch's
    assert all(j["spec"]["activeDeadlineSeconds"] == 60 for j in slow)
    assert "DeadlineExceeded" in r.output and "was OOMKilled" not in r.output
    run = client_run(monkeypatch, root, "KubeFaultsFlow", tmp_path)
    assert run.successful
    data = run["end"].task.data
    assert data.caught == ("builtins.ValueError", "always fails")
    assert data.crash_type.endswith("FailureHandledByCatch")
    assert data.late_type.endswith("FailureHandledByCatch")
    task = run["flaky"].task
    assert task.data.recovered_on == 1
    assert "flaky attempt 1" in task.stdout


def test_kill_from_another_process_stops_the_task(cluster, s3_bucket, tmp_path):
    root = f"s3://{s3_bucket}/kill"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update({"HEADWATER_DATASTORE_ROOT": root, "HEADWATER_USER": USER, **cluster.env})
    flow = str(FLOWS / "sleepy_flow.py")
    proc = subprocess.Popen([sys.executable, flow, "run", "--with", "kubernetes"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        nap = []
        while time.monotonic() < deadline and not nap:
            nap = [j for j in cluster.jobs_of("nap") if (j.get("status") or {}).get("active")]
            time.sleep(0.2)
        assert nap, "the nap step's Job never became active"
        name = nap[0]["metadata"]["name"]
        while time.monotonic() < deadline and not any(
                (p.get("status") or {}).get("phase") == "Running" and p["metadata"]["name"].startswith(name)
                for p in cluster.server.objects("v1", "pods")):
            time.sleep(0.2)
        run_id = nap[0]["metadata"]["annotations"][LABEL + "run"]
        killer = subprocess.run([sys.executable, flow, "kubernetes", "kill", "--run-id", run_id], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert killer.returncode == 0, killer.stdout + killer.stderr
        assert f"Killing Kubernetes Job {nap[0]['metadata']['name']}" in killer.stderr
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, out
    assert "was deleted before its task finished" in out
    assert cluster.jobs_of("nap") == [] and cluster.jobs_of("end") == []


def test_a_failed_bootstrap_shows_the_pod_log(cluster, s3_bucket, tmp_path, monkeypatch):
    """An image without headwater: the Job fails before headwater runs; its pod's log is the
    attempt's stderr, on the console and through the client."""
    root = f"s3://{s3_bucket}/bare"
    r = run_on(cluster, "linear_flow.py", root, tmp_path, "--with", "kubernetes:image=bare:1")
    assert r.returncode != 0
    assert "No module named 'headwater'" in r.output
    assert "exited with code 1 (Error) before the task committed" in r.output and "Traceback" not in r.output
    run = client_run(monkeypatch, root, "LinearFlow", tmp_path)
    assert not run.successful
    assert "No module named 'headwater'" in run["start"].task.stderr


def test_an_image_that_cannot_be_pulled_fails_the_attempt(cluster, s3_bucket, tmp_path):
    root = f"s3://{s3_bucket}/pull"
    r = run_on(cluster, "linear_flow.py", root, tmp_path, "--with", "kubernetes:image=nowhere/missing:9")
    assert r.returncode != 0
    assert "could not start its container: ImagePullBackOff" in r.output
    assert cluster.jobs_of("start") == []  # deleted: nothing is left waiting on the cluster


def test_a_local_datastore_is_refused_before_anything_runs(tmp_path):
    r = run_flow("kube_mixed_flow.py", "run", root=tmp_path / ".headwater",
                 env={"KUBECONFIG": str(tmp_path / "none")})
    assert r.returncode != 0
    assert "Step(s) 'train' run on Kubernetes, but the datastore" in r.output
    assert "Hint: Use an S3 datastore" in r.output and "Traceback" not in r.output
    assert not (tmp_path / ".headwater" / "runs").exists()


def test_no_kubeconfig_is_refused_before_anything_runs(s3_env, s3_bucket, tmp_path):
    root = f"s3://{s3_bucket}/nocluster"
    r = run_flow("kube_mixed_flow.py", "run", root=root, cwd=tmp_path,
                 env={**s3_env.env(), "KUBECONFIG": str(tmp_path / "missing-kubeconfig")})
    assert r.returncode != 0
    assert "No Kubernetes cluster is configured here" in r.output and "Traceback" not in r.output
    assert "runs/" not in " ".join(o["Key"] for o in s3_env.boto3().list_objects_v2(Bucket=s3_bucket)
                                    .get("Contents", []))


# ---- how a Job that ended without a result is explained (pure) ------------------------------------

def _spec():
    from headwater.runtime.taskspec import TaskSpec

    return TaskSpec(flow_name="F", run_id="1", step_name="train", task_id="3", attempt=0, input_paths=(),
                    input_attempts=(), datastore_root="s3://b/p", user=USER)


def _pod(state: dict) -> dict:
    return {"metadata": {"name": "job-abcde"}, "status": {"containerStatuses": [{"name": "task", "state": state}]}}


def _failed(reason: str) -> dict:
    return {"metadata": {"name": "job"}, "spec": {"activeDeadlineSeconds": 120},
            "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": reason,
                                                    "message": "m"}]}}


@pytest.mark.parametrize("job, pods, expected", [
    (None, [], r"The Kubernetes Job job was deleted before its task finished"),
    (_failed("DeadlineExceeded"), [], r"Step train timed out after 0 hours, 2 minutes, 0 seconds: Kubernetes "
                                      r"stopped its Job job, which passed its activeDeadlineSeconds \(120 s"),
    (_failed("BackoffLimitExceeded"), [_pod({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})],
     r"pod job-abcde \(Kubernetes Job job\) was OOMKilled: it used more memory than its limit"),
    (_failed("BackoffLimitExceeded"), [_pod({"waiting": {"reason": "ImagePullBackOff", "message": "no such"}})],
     r"could not start its container: ImagePullBackOff: no such"),
    (_failed("BackoffLimitExceeded"), [_pod({"terminated": {"exitCode": 2, "reason": "Error"}})],
     r"exited with code 2 \(Error\) before the task committed"),
    (_failed("BackoffLimitExceeded"), [], r"failed before its task committed: BackoffLimitExceeded: m"),
])
def test_failure_messages_say_why(job, pods, expected):
    import re

    from headwater.runtime.launchers.kubernetes import failure_message

    assert re.search(expected, failure_message("job", job, pods, _spec(), 120))
