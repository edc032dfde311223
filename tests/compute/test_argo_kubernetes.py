"""`@kubernetes` in compiled Argo templates: the same pod pieces as the Kubernetes Job
(compute/kubernetes/pod.py), validated against the strict WorkflowTemplate schema
(tests/argo_schema.py). No cluster runs here: what a scheduler does with them is not proved."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowrun import run_flow

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("hera.workflows.models")
from argo_schema import build_validators, validate  # noqa: E402  (needs jsonschema and hera)

ROOT = "s3://hw-k8s/argo"


@pytest.fixture(scope="module")
def validators() -> dict[str, Any]:
    return build_validators()


@pytest.fixture(scope="module")
def s3(s3_server) -> dict[str, str]:
    client = s3_server.boto3()
    if "hw-k8s" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="hw-k8s")
    return s3_server.env()


def create(flow: str | Path, tmp_path: Path, s3: dict[str, str], env: dict[str, str] | None = None) -> Any:
    r = run_flow(flow, "--datastore-root", ROOT, "argo-workflows", "create", "--only-json", "--image", "python:3.12",
                 root=tmp_path / ".headwater", env={**s3, **(env or {})})
    assert r.returncode == 0, r.output
    return json.loads(r.stdout)


def template(wt: dict[str, Any], name: str) -> dict[str, Any]:
    (t,) = [t for t in wt["spec"]["templates"] if t["name"] == name]
    return t


def test_kubernetes_attributes_map_to_the_step_templates(tmp_path: Path, s3: dict[str, str],
                                                         validators: dict[str, Any]) -> None:
    wt = create("kubernetes_flow.py", tmp_path, s3, env={"HEADWATER_KUBERNETES_SECRETS": "s3-creds",
                                                          "HEADWATER_KUBERNETES_SERVICE_ACCOUNT": "flows"})
    validate(wt, validators)
    start = template(wt, "step-start")
    assert start["container"]["image"] == "python:3.11-slim"
    assert start["container"]["resources"] == {"requests": {"cpu": "2", "memory": "2048M",
                                                            "ephemeral-storage": "10240M"}}
    assert start["container"]["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert start["serviceAccountName"] == "flows"
    sq = template(wt, "step-square")
    c = sq["container"]
    assert c["image"] == "python:3.12"  # the deployment's image: the step names none
    # @resources merged by max into @kubernetes; the GPU's vendor names the resource.
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "8192M", "ephemeral-storage": "10240M",
                                           "amd.com/gpu": "1"}, "limits": {"amd.com/gpu": "1"}}
    assert c["volumeMounts"] == [{"name": "tmpfs", "mountPath": "/metaflow_temp"},
                                 {"name": "dshm", "mountPath": "/dev/shm"},
                                 {"name": "pvc-0", "mountPath": "/mnt/datasets"}]
    assert {v["name"] for v in sq["volumes"]} == {"tmpfs", "dshm", "pvc-0"}
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["GREETING"] == "hello" and env["TMPDIR"] == "/metaflow_temp" and env["HEADWATER_DATASTORE_ROOT"] == ROOT
    assert sq["nodeSelector"] == {"pool": "gpu", "zone": "a"}
    assert sq["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert sq["metadata"] == {"labels": {"team": "ml"}, "annotations": {"owner": "ml@example.com"}}
    assert sq["activeDeadlineSeconds"] == 600
    # The step command is unchanged by @kubernetes.
    assert c["args"] == template(create("kubernetes_flow.py", tmp_path, s3), "step-square")["container"]["args"]
    # A step without @kubernetes keeps the plain mapping, with the configured secrets and the workflow's
    # service account.
    join = template(wt, "step-join")
    assert "serviceAccountName" not in join and wt["spec"]["serviceAccountName"] == "flows"
    assert join["container"]["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]


FLOW = '''
from headwater import FlowSpec, kubernetes, step


class PodFlow(FlowSpec):
    @kubernetes({attrs})
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    PodFlow()
'''


def flow_file(tmp_path: Path, attrs: str) -> Path:
    path = tmp_path / "pod_flow.py"
    path.write_text(textwrap.dedent(FLOW).format(attrs=attrs))
    return path


def test_pull_secrets_ports_and_security_context(tmp_path: Path, s3: dict[str, str],
                                                 validators: dict[str, Any]) -> None:
    wt = create(flow_file(tmp_path, "image_pull_secrets=['regcred'], image_pull_policy='Always', port=8080, "
                                    "secrets=['db'], service_account='trainer', qos='Guaranteed', "
                                    "security_context={'run_as_non_root': True}, namespace='default'"),
                tmp_path, s3)
    validate(wt, validators)
    start = template(wt, "step-start")
    c = start["container"]
    assert json.loads(start["podSpecPatch"]) == {"imagePullSecrets": [{"name": "regcred"}]}
    assert c["imagePullPolicy"] == "Always" and c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert c["envFrom"] == [{"secretRef": {"name": "db"}}] and start["serviceAccountName"] == "trainer"
    assert c["securityContext"] == {"runAsNonRoot": True}
    assert c["resources"]["limits"] == c["resources"]["requests"]  # Guaranteed


def test_a_bad_pod_template_fails_the_strict_schema(tmp_path: Path, s3: dict[str, str],
                                                    validators: dict[str, Any]) -> None:
    wt = create("kubernetes_flow.py", tmp_path, s3)
    sq = template(wt, "step-square")
    sq["imagePullSecrets"] = [{"name": "regcred"}]  # pod-level only: a template has no such field
    with pytest.raises(jsonschema.ValidationError, match="'imagePullSecrets' was unexpected"):
        validate(wt, validators)


def test_another_namespace_for_one_step_is_refused(tmp_path: Path, s3: dict[str, str]) -> None:
    r = run_flow(flow_file(tmp_path, "namespace='ml'"), "--datastore-root", ROOT, "argo-workflows", "create",
                 "--only-json", root=tmp_path / ".headwater", env=s3)
    assert r.returncode == 1, r.output
    assert "Step 'start' asks for the Kubernetes namespace 'ml', but the workflow runs in 'default'" in r.stderr
    assert "Traceback" not in r.stderr


def test_with_kubernetes_puts_every_step_in_a_pod(tmp_path: Path, s3: dict[str, str],
                                                  validators: dict[str, Any]) -> None:
    r = run_flow("linear_flow.py", "--with", "kubernetes:memory=1000", "--datastore-root", ROOT, "argo-workflows",
                 "create", "--only-json", root=tmp_path / ".headwater", env=s3)
    assert r.returncode == 0, r.output
    wt = json.loads(r.stdout)
    validate(wt, validators)
    for step in ("start", "middle", "end"):
        assert template(wt, f"step-{step}")["container"]["resources"]["requests"]["memory"] == "1000M"


def test_the_interpreter_refuses_pod_pieces_it_cannot_emulate(tmp_path: Path, s3: dict[str, str]) -> None:
    from argo_interpreter import Interpreter, UnsupportedConstructError

    wt = create("kubernetes_flow.py", tmp_path, s3)
    with pytest.raises(UnsupportedConstructError, match=r"step-square.* uses \['volumes'\]"):
        Interpreter(base_env={}, work_dir=tmp_path).run(wt)


def test_every_pod_gets_the_configured_secrets_and_service_account(tmp_path: Path, s3: dict[str, str],
                                                                   validators: dict[str, Any]) -> None:
    """Not only @kubernetes steps: the parameters task and plain steps must reach the datastore too."""
    env = {"HEADWATER_KUBERNETES_SECRETS": "s3-creds,extra", "HEADWATER_KUBERNETES_SERVICE_ACCOUNT": "flows"}
    wt = create("branch_flow.py", tmp_path, s3, env=env)
    validate(wt, validators)
    containers = {t["name"]: t["container"] for t in wt["spec"]["templates"] if "container" in t}
    assert "init" in containers and len(containers) > 3
    for name, c in containers.items():
        assert c["envFrom"] == [{"secretRef": {"name": "s3-creds"}}, {"secretRef": {"name": "extra"}}], name
    assert wt["spec"]["serviceAccountName"] == "flows"
    plain = create("branch_flow.py", tmp_path, s3)
    assert "serviceAccountName" not in plain["spec"]
    assert not any("envFrom" in t.get("container", {}) for t in plain["spec"]["templates"])
