"""@kubernetes and the batch/v1 Job of a task, validated offline.

No Kubernetes API server can run here, so every generated object is checked
with kubernetes-validate in strict mode (unknown fields rejected) against the
newest Kubernetes schema it ships; ``test_validation_rejects_a_typo`` proves
that check can fail. The container command of a generated Job is then run as
written, as a local process against the session's S3 server.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowrun import FLOWS, run_flow
from headwater.compute.kubernetes.commands import StepInvocation
from headwater.compute.kubernetes.job import (
    LABEL_PREFIX, TTL_AFTER_FINISHED, WORKDIR, JobTask, init_job, job_name, step_job,
)
from headwater.compute.kubernetes.names import MAX_LABEL, dns_label, label_value
from headwater.config import load_settings
from headwater.flow.decorators import (
    EnvironmentDecorator, InvalidDecoratorAttribute, ResourcesDecorator, TimeoutDecorator, parse_decospec,
)
from headwater.flow.kubernetes import KubernetesDecorator, kubernetes_options, kubernetes_steps

kv = pytest.importorskip("kubernetes_validate", reason="needs the dev extra (kubernetes-validate)")
K8S_VERSION = kv.latest_version()
ROOT = "s3://bucket/prefix"
SRC = Path(__file__).resolve().parents[2] / "src"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def validate(obj: dict[str, Any]) -> None:
    kv.validate(obj, K8S_VERSION, strict=True)


def settings(**env: str):
    return load_settings({"HEADWATER_DATASTORE_ROOT": ROOT, "HEADWATER_USER": "tester",
                          "HEADWATER_HOME": "/nonexistent", **env})


def job(*decorators: Any, step: str = "train", attempt: int = 0, env: dict[str, str] | None = None,
        **inv: Any) -> dict[str, Any]:
    opts = kubernetes_options(step, decorators)
    invocation = StepInvocation(step=step, run_id=inv.pop("run_id", "1700000000123"), task_id="7",
                                input_paths=("1700000000123/start/1",), retry_count=attempt, **inv)
    return step_job(settings(**(env or {})), opts, invocation, flow_name="TrainFlow", flow_file="train_flow.py",
                    package_key="ab" * 32, user="tester")


def pod(j: dict[str, Any]) -> dict[str, Any]:
    return j["spec"]["template"]["spec"]


def container(j: dict[str, Any]) -> dict[str, Any]:
    return pod(j)["containers"][0]


def env_of(j: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(j)["env"] if "value" in e}


K = KubernetesDecorator
COMBINATIONS = {
    "defaults": [K()],
    "resources-merged": [K({"cpu": 2, "memory": 1024}), ResourcesDecorator({"cpu": 8, "memory": 512, "disk": 20480})],
    "fractional-cpu": [K({"cpu": 0.5})],
    "nvidia-gpu": [K({"gpu": 2})],
    "amd-gpu-from-resources": [K({"gpu_vendor": "AMD"}), ResourcesDecorator({"gpu": 1})],
    "gpu-zero": [K({"gpu": 0})],
    "guaranteed": [K({"qos": "guaranteed", "gpu": 1})],
    "best-effort": [K({"qos": "BestEffort"})],
    "tmpfs-and-shm": [K({"use_tmpfs": True, "shared_memory": 1024, "tmpfs_path": "/scratch"})],
    "tmpfs-size-only": [K({"tmpfs_size": 300, "tmpfs_tempdir": False})],
    "pvcs": [K({"persistent_volume_claims": {"data": "/mnt/data", "models": "/mnt/models"}})],
    "scheduling": [K({"node_selector": "kubernetes.io/arch=amd64,pool=batch", "compute_pool": "big",
                      "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml",
                                       "effect": "NoSchedule", "tolerationSeconds": 30}]})],
    "identity": [K({"image": "repo.example.com/ml:1.2", "image_pull_policy": "always",
                    "image_pull_secrets": ["regcred"], "service_account": "runner", "namespace": "ml",
                    "secrets": ["aws-creds", "db"]})],
    "metadata": [K({"labels": {"team": "ml", "example.com/cost-center": "r_and.d-1", "empty": ""},
                    "annotations": {"owner": "ml@example.com"}})],
    "port-and-security": [K({"port": 8080, "security_context": {"run_as_user": 1000, "run_as_non_root": True,
                                                               "allow_privilege_escalation": False}})],
    "extended-resources": [K({"extended_resources": {"example.com/fpga": "1"}})],
    "timeout-and-env": [K(), TimeoutDecorator({"minutes": 5}), EnvironmentDecorator({"vars": {"A": "1"}})],
}


@pytest.mark.parametrize("decorators", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_every_combination_builds_a_strictly_valid_job(decorators):
    j = job(*decorators, split_index=2, tags=("nightly", "team:ml"), namespace="user:tester", output_dir="/tmp/out")
    validate(j)
    assert j["spec"]["backoffLimit"] == 0
    assert pod(j)["restartPolicy"] == "Never"
    assert j["spec"]["ttlSecondsAfterFinished"] == TTL_AFTER_FINISHED
    assert DNS_LABEL.match(j["metadata"]["name"]) and len(j["metadata"]["name"]) <= MAX_LABEL
    for labels in (j["metadata"]["labels"], j["spec"]["template"]["metadata"]["labels"]):
        assert all(LABEL_VALUE.match(v) and len(v) <= MAX_LABEL for v in labels.values())


def test_validation_rejects_a_typo():
    j = job(K())
    j["spec"]["backofLimit"] = j["spec"].pop("backoffLimit")
    with pytest.raises(kv.ValidationError, match="'backofLimit' was unexpected"):
        validate(j)
    j = job(K())
    container(j)["resource"] = container(j).pop("resources")
    with pytest.raises(kv.ValidationError, match="'resource' was unexpected"):
        validate(j)


def test_init_job_is_valid_and_runs_init():
    opts = kubernetes_options("start", [K()])
    j = init_job(settings(), opts, flow_name="TrainFlow", flow_file="train_flow.py", package_key="k" * 64,
                 run_id="12", task_id="_parameters", tags=("t1",), parameters={"alpha": 3})
    validate(j)
    cmd = container(j)["command"]
    assert cmd[cmd.index("--") + 1:] == ["--datastore=s3", "--datastore-root", ROOT, "init", "--run-id", "12",
                                         "--task-id", "_parameters", "--tag", "t1", "--alpha", "3"]
    assert j["metadata"]["annotations"][LABEL_PREFIX + "step"] == "_parameters"


def test_command_follows_the_shared_contract():
    j = job(K(), attempt=2, split_index=4, tags=("a",), namespace="ns", output_dir="/out")
    assert container(j)["command"] == [
        "python", "-m", "headwater.runtime.bootstrap", "--datastore-root", ROOT, "--package-key", "ab" * 32,
        "--flow-file", "train_flow.py", "--",
        "--datastore=s3", "--datastore-root", ROOT, "step", "train", "--run-id", "1700000000123", "--task-id", "7",
        "--input-paths", "1700000000123/start/1", "--split-index", "4", "--retry-count", "2",
        "--max-user-code-retries", "0", "--tag", "a", "--namespace", "ns", "--output-dir", "/out"]
    assert container(j)["workingDir"] == WORKDIR
    assert env_of(j)["HEADWATER_DATASTORE_ROOT"] == ROOT
    assert env_of(j)["HEADWATER_USER"] == "tester"


def test_resources_merge_by_max_and_gpu_vendor_names_the_resource():
    j = job(K({"cpu": 2, "memory": 1024, "gpu_vendor": "amd"}),
            ResourcesDecorator({"cpu": 8, "memory": 512, "gpu": 2, "disk": 20480}))
    res = container(j)["resources"]
    assert res["requests"] == {"cpu": "8", "memory": "1024M", "ephemeral-storage": "20480M", "amd.com/gpu": "2"}
    assert res["limits"] == {"amd.com/gpu": "2"}
    assert container(job(K({"cpu": 0.25})))["resources"]["requests"]["cpu"] == "250m"
    guaranteed = container(job(K({"qos": "Guaranteed", "gpu": 1})))["resources"]
    assert guaranteed["limits"] == guaranteed["requests"]
    assert guaranteed["limits"]["nvidia.com/gpu"] == "1"


def test_volumes_tmpfs_and_shared_memory():
    j = job(K({"use_tmpfs": True, "memory": 2000, "shared_memory": 64,
               "persistent_volume_claims": {"data": "/mnt/data"}}))
    vols = {v["name"]: v for v in pod(j)["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container(j)["volumeMounts"]}
    assert vols["tmpfs"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1000Mi"}
    assert vols["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}
    assert vols["pvc-0"]["persistentVolumeClaim"] == {"claimName": "data"}
    assert mounts == {"tmpfs": "/metaflow_temp", "dshm": "/dev/shm", "pvc-0": "/mnt/data"}
    assert env_of(j)["TMPDIR"] == "/metaflow_temp"
    assert "volumes" not in pod(job(K()))


def test_scheduling_metadata_and_timeout():
    j = job(K({"node_selector": {"pool": "gpu"}, "compute_pool": "big", "labels": {"team": "ml"},
               "tolerations": [{"key": "gpu", "operator": "Exists"}]}), TimeoutDecorator({"minutes": 2, "seconds": 1}))
    assert pod(j)["nodeSelector"] == {"pool": "gpu", "outerbounds.co/compute-pool": "big"}
    assert pod(j)["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert j["spec"]["activeDeadlineSeconds"] == 121
    assert job(K())["spec"]["activeDeadlineSeconds"] == 5 * 24 * 3600
    labels = j["metadata"]["labels"]
    assert labels["team"] == "ml"
    assert {labels[LABEL_PREFIX + k] for k in ("flow", "run", "step", "task", "attempt")} == \
        {"TrainFlow", "1700000000123", "train", "7", "0"}


def test_configuration_fills_what_the_decorator_leaves_out():
    cfg = {"HEADWATER_KUBERNETES_NAMESPACE": "ml", "HEADWATER_KUBERNETES_SERVICE_ACCOUNT": "sa",
           "HEADWATER_KUBERNETES_CONTAINER_IMAGE": "img:1", "HEADWATER_KUBERNETES_SECRETS": "aws, db",
           "HEADWATER_S3_ENDPOINT_URL": "http://minio:9000"}
    j = job(K({"secrets": ["db", "extra"]}), env=cfg)
    validate(j)
    assert j["metadata"]["namespace"] == "ml"
    assert pod(j)["serviceAccountName"] == "sa"
    assert container(j)["image"] == "img:1"
    assert container(j)["envFrom"] == [{"secretRef": {"name": n}} for n in ("aws", "db", "extra")]
    assert env_of(j)["HEADWATER_S3_ENDPOINT_URL"] == "http://minio:9000"
    own = job(K({"namespace": "mine", "service_account": "me", "image": "own:2"}), env=cfg)
    assert (own["metadata"]["namespace"], pod(own)["serviceAccountName"], container(own)["image"]) == \
        ("mine", "me", "own:2")


def test_config_file_sets_kubernetes_defaults(tmp_path: Path):
    (tmp_path / "config.json").write_text('{"HEADWATER_KUBERNETES_NAMESPACE": "from-file", '
                                          '"HEADWATER_KUBERNETES_SECRETS": ["s1", "s2"]}')
    s = load_settings({"HEADWATER_HOME": str(tmp_path), "HEADWATER_USER": "u"})
    assert (s.kubernetes_namespace, s.kubernetes_secrets) == ("from-file", ("s1", "s2"))
    assert load_settings({"HEADWATER_HOME": str(tmp_path / "none")}).kubernetes_namespace == "default"


def test_names_are_deterministic_dns_labels_unique_per_attempt():
    long = JobTask("A" * 80 + "_Flow", "9" * 30, "step_" + "x" * 70, "123456", 0, ("python",))
    retried = JobTask(long.flow_name, long.run_id, long.step, long.task_id, 1, long.command)
    names = {job_name(long), job_name(retried)}
    assert len(names) == 2
    assert all(DNS_LABEL.match(n) and len(n) <= MAX_LABEL for n in names)
    assert job_name(long) == job_name(long)
    assert dns_label("Flow", "a") != dns_label("Flow", "a_") and DNS_LABEL.match(dns_label("__", "--"))
    assert label_value("ok_value.1") == "ok_value.1"
    odd = label_value("user:tester/" + "x" * 80)
    assert LABEL_VALUE.match(odd) and len(odd) <= MAX_LABEL


@pytest.mark.parametrize(("attrs", "message"), [
    ({"cpu": "lots"}, r"Step 'train': @kubernetes\(cpu='lots'\): cpu must be a number"),
    ({"memory": 0}, r"@kubernetes\(memory=0\): memory must be greater than 0"),
    ({"gpu": 1.5}, r"@kubernetes\(gpu=1.5\): gpu must be an integer"),
    ({"gpu_vendor": "intel"}, r"Step 'train': @kubernetes\(gpu_vendor='intel'\): this GPU vendor"),
    ({"qos": "premium"}, r"qos must be one of Guaranteed, Burstable, BestEffort"),
    ({"image_pull_policy": "Sometimes"}, r"image_pull_policy must be one of Always"),
    ({"tolerations": [{"key": "a", "operater": "Exists"}]}, r"unknown toleration key\(s\) operater"),
    ({"node_selector": "pool"}, r"expected key=value pairs"),
    ({"persistent_volume_claims": {"data": "mnt"}}, r"mount path of 'data' must be absolute"),
    ({"port": 70000}, r"port must be between 1 and 65535"),
    ({"security_context": {"root": True}}, r"unknown security_context key"),
    ({"secrets": [1]}, r"secrets must be a list of names"),
    ({"labels": {"team": "ml team"}}, r"team='ml team' is not a valid Kubernetes label"),
    ({"labels": {"-bad": "x"}}, r"-bad='x' is not a valid Kubernetes label"),
])
def test_bad_values_name_the_step_and_attribute(attrs, message):
    with pytest.raises(InvalidDecoratorAttribute, match=message):
        kubernetes_options("train", [K(attrs)])


def test_unknown_attribute_and_short_timeout_are_refused():
    with pytest.raises(InvalidDecoratorAttribute, match=r"@kubernetes has no attribute 'cpus'"):
        kubernetes_options("train", [K({"cpus": 2})])
    with pytest.raises(InvalidDecoratorAttribute, match=r"Step 'train': @timeout of 30 s is too short"):
        kubernetes_options("train", [K(), TimeoutDecorator({"seconds": 30})])


def test_with_decospec_builds_the_decorator():
    deco = parse_decospec('kubernetes:cpu=3,gpu_vendor="amd",node_selector="a=b"')
    opts = kubernetes_options("s", [deco])
    assert (opts.cpu, opts.gpu_vendor.value, opts.node_selector) == (3.0, "amd", {"a": "b"})


def _flow_class():
    spec = importlib.util.spec_from_file_location("kubernetes_flow_mod", FLOWS / "kubernetes_flow.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.KubernetesFlow


def test_flow_fixture_steps_build_valid_jobs():
    flow = _flow_class()
    found = kubernetes_steps(flow, flow._graph.sorted_nodes)
    assert set(found) == {"start", "square", "end"}
    sq = found["square"]
    assert (sq.cpu, sq.memory, sq.gpu, sq.run_time_limit, sq.env) == (2.0, 8192, 1, 600, {"GREETING": "hello"})
    for name, opts in found.items():
        inv = StepInvocation(name, "5", "1", ("5/start/1",))
        validate(step_job(settings(), opts, inv, flow_name="KubernetesFlow", flow_file="kubernetes_flow.py",
                          package_key="p" * 64))


@pytest.mark.parametrize("flow, args, steps", [
    ("kubernetes_flow.py", (), "'start', 'square', 'end'"),
    ("linear_flow.py", ("--with", "kubernetes:cpu=1,memory=512"), "'start', 'middle', 'end'"),
])
def test_kubernetes_steps_are_refused_a_local_datastore(tmp_path: Path, flow, args, steps):
    """@kubernetes steps run on the cluster (runtime.launchers.kubernetes), whose pods cannot see a
    local datastore: the run stops before it starts (docs/kubernetes.md)."""
    r = run_flow(flow, "run", *args, root=tmp_path / ".headwater")
    assert r.returncode != 0
    assert f"Step(s) {steps} run on Kubernetes, but the datastore" in r.output
    assert "Traceback" not in r.output and not (tmp_path / ".headwater" / "runs").exists()


def test_with_kubernetes_bad_value_fails_before_running(tmp_path: Path):
    r = run_flow("linear_flow.py", "run", "--with", "kubernetes:gpu_vendor=intel", root=tmp_path / ".headwater")
    assert r.returncode != 0
    assert "@kubernetes(gpu_vendor='intel'): this GPU vendor is not supported" in r.output
    assert "Step 'start'" in r.output and "Traceback" not in r.output


def run_container(j: dict[str, Any], tmp_path: Path, secrets: dict[str, dict[str, str]]) -> subprocess.CompletedProcess:
    """Run the Job's container as a local process, as the kubelet would: its command as written, its
    env (``envFrom`` secrets resolved from ``secrets``, downward-API fields given pod values), its
    workingDir and /tmp mapped under ``tmp_path``. ``python`` on PATH is this interpreter, and
    PYTHONPATH stands in for headwater being installed in the image."""
    c = container(j)
    (tmp_path / "tmp").mkdir(exist_ok=True)  # the container's own /tmp (the code package is extracted there)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "PYTHONPATH": str(SRC),
           "HEADWATER_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp")}
    for ref in c.get("envFrom", ()):
        env.update(secrets[ref["secretRef"]["name"]])
    for e in c["env"]:
        env[e["name"]] = e["value"] if "value" in e else f"fake-{e['valueFrom']['fieldRef']['fieldPath']}"
    shim = tmp_path / "bin" / "python"  # a script, not a symlink: a venv's python finds its site-packages
    if not shim.exists():                 # from where it is started
        shim.parent.mkdir(exist_ok=True)
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        shim.chmod(0o755)
    workdir = tmp_path / c["workingDir"].lstrip("/")
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(c["command"], env=env, cwd=workdir, capture_output=True, text=True, timeout=120)


def test_job_container_command_runs_as_written(tmp_path: Path, s3_server, s3_bucket: str, use_root):
    """Every Job of a linear flow (init, then each step) run as written against the S3 test server;
    the flow's artifacts then appear in the client."""
    from headwater.package.archive import build_package
    from headwater.package.stored import save_package
    from headwater.store import Datastore

    root = f"s3://{s3_bucket}/hw"
    info = save_package(Datastore(root).content, build_package(str(FLOWS / "linear_flow.py")))
    pod_settings = load_settings({"HEADWATER_DATASTORE_ROOT": root, "HEADWATER_USER": "tester",
                                  "HEADWATER_HOME": str(tmp_path / "home"), "HEADWATER_KUBERNETES_SECRETS": "aws",
                                  "HEADWATER_S3_ENDPOINT_URL": s3_server.url})
    secrets = {"aws": {k: v for k, v in s3_server.env().items() if k.startswith("AWS_")}}
    opts = kubernetes_options("start", [K()])
    common = {"flow_name": "LinearFlow", "flow_file": "linear_flow.py", "package_key": info["key"], "user": "tester"}
    run_id = "1700000000001"
    jobs = [init_job(pod_settings, opts, run_id=run_id, task_id="0", **common)]
    previous = f"{run_id}/_parameters/0"
    for name in ("start", "middle", "end"):  # task ids as headwater.plan gives them: 1 outside a foreach
        inv = StepInvocation(name, run_id, "1", (previous,))
        jobs.append(step_job(pod_settings, opts, inv, **common))
        previous = f"{run_id}/{name}/1"
    for j in jobs:
        validate(j)
        done = run_container(j, tmp_path, secrets)
        assert done.returncode == 0, done.stdout + done.stderr
    from headwater import Flow

    use_root(root)
    run = Flow("LinearFlow")[run_id]
    assert run.successful
    assert run["end"].task.data.z == 7
    assert "hello from start" in run["start"].task.stdout


def test_a_scheduler_task_spec_becomes_the_step_invocation():
    from headwater.compute.kubernetes.commands import invocation_for
    from headwater.runtime.taskspec import TaskSpec

    spec = TaskSpec(flow_name="TrainFlow", run_id="9", step_name="join", task_id="12", attempt=1,
                    input_paths=("a/3", "b/4"), input_attempts=(0, 0), datastore_root=ROOT, user="tester",
                    split_index=None, tags=("x",), max_user_code_retries=2, decospecs=("retry:times=2",))
    j = step_job(settings(), kubernetes_options("join", [K()]), invocation_for(spec),
                 flow_name="TrainFlow", flow_file="train_flow.py", package_key="k" * 64)
    validate(j)
    args = container(j)["command"]
    args = args[args.index("--") + 1:]
    assert args == ["--datastore=s3", "--datastore-root", ROOT, "--with", "retry:times=2", "step", "join",
                    "--run-id", "9", "--task-id", "12", "--input-paths", "9/a/3,9/b/4", "--retry-count", "1",
                    "--max-user-code-retries", "2", "--tag", "x"]
    assert j["metadata"]["labels"][LABEL_PREFIX + "attempt"] == "1"
    in_global = invocation_for(TaskSpec(**{**{f: getattr(spec, f) for f in spec.__slots__},
                                           "extra": (("namespace", ""),)}))
    assert in_global.namespace == ""  # run --namespace= (the global namespace) reaches the pod


def test_compute_layer_never_imports_cli_or_client():
    import ast

    for path in (SRC / "headwater" / "compute").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        bad = {n for n in names if n.lstrip(".").split(".")[0] in ("cli", "client")
               or n.startswith(("headwater.cli", "headwater.client"))}
        assert not bad, f"{path} imports {bad}"
