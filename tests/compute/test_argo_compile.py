"""`argo-workflows create --only-json`: the compiled WorkflowTemplate / CronWorkflow of real flow
files, validated against a strict JSON schema derived from hera's models of Argo's API (unknown
fields rejected), and checked for the DAG structure, task commands and decorator mappings.

No Argo server runs here: these tests prove the objects are well-formed and shaped as
intended, not that a controller runs them (see docs/argo.md)."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from flowrun import run_flow

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("hera.workflows.models")
from argo_schema import build_validators, validate  # noqa: E402  (needs jsonschema and hera)

HERE = Path(__file__).parent
ALL_FLOW = HERE / "flows" / "argo_all_flow.py"
SNAPSHOT = HERE / "snapshots" / "argo_branch_flow.json"
ROOT = "s3://hw-bucket/argo"


@pytest.fixture(scope="module")
def validators() -> dict[str, Any]:
    return build_validators()


@pytest.fixture(scope="module", autouse=True)
def _bucket(s3_server) -> None:
    """`create` stores the code package in the datastore (as Metaflow does): ROOT's bucket exists."""
    global _S3_ENV
    client = s3_server.boto3()
    if "hw-bucket" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="hw-bucket")
    _S3_ENV = s3_server.env()


_S3_ENV: dict[str, str] = {}


def create(flow: str | Path, tmp_path: Path, *args: str, top: tuple[str, ...] = ()) -> dict[str, Any]:
    r = run_flow(flow, *top, "--datastore-root", ROOT, "argo-workflows", "create", "--only-json",
                 "--image", "python:3.12", *args, root=tmp_path / ".headwater", env=_S3_ENV)
    assert r.returncode == 0, r.output
    return json.loads(r.stdout)


def template(wt: dict[str, Any], name: str) -> dict[str, Any]:
    (t,) = [t for t in wt["spec"]["templates"] if t["name"] == name]
    return t


def dag(wt: dict[str, Any], name: str = "main") -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in template(wt, name)["dag"]["tasks"]}


def args_of(task: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in task.get("arguments", {}).get("parameters", [])}


def test_linear_flow_is_a_chain_after_init(tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create("linear_flow.py", tmp_path)
    validate(wt, validators)
    assert wt["kind"] == "WorkflowTemplate" and wt["metadata"]["name"] == "linearflow"
    tasks = dag(wt)
    assert list(tasks) == ["init-params", "start", "middle", "end"]
    assert tasks["start"]["dependencies"] == ["init-params"]
    assert tasks["middle"]["dependencies"] == ["start"]
    assert tasks["end"]["dependencies"] == ["middle"]
    assert args_of(tasks["start"]) == {"task-id": "1", "input-paths": "argo-{{workflow.name}}/_parameters/0"}
    assert args_of(tasks["end"])["input-paths"] == "argo-{{workflow.name}}/middle/1"
    # The task command is the shared contract's, behind the code-package bootstrap.
    c = template(wt, "step-middle")["container"]
    argv = c["command"] + c["args"]
    assert argv[:3] == ["python", "-m", "headwater.runtime.bootstrap"]
    sep = argv.index("--")
    assert argv[sep + 1:] == [
        "--datastore=s3", "--datastore-root", ROOT, "step", "middle",
        "--run-id", "argo-{{workflow.name}}", "--task-id", "{{inputs.parameters.task-id}}",
        "--input-paths", "{{inputs.parameters.input-paths}}", "--retry-count", "0",  # no retryStrategy:
        "--max-user-code-retries", "0",  # Argo defines {{retries}} only where there is one
        "--clone-run-id", "{{workflow.parameters.origin-run-id}}"]  # empty unless the workflow resumes a run
    assert re.fullmatch(r"[0-9a-f]{64}", argv[argv.index("--package-key") + 1])
    assert c["image"] == "python:3.12"
    assert {"name": "HEADWATER_DATASTORE_ROOT", "value": ROOT} in c["env"]


def test_environment_steps_carry_their_stored_lock(tmp_path: Path, validators: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`create` resolves @pypi steps (offline here) and stores each lock in the datastore; the step's
    template names it with --environment-lock, before the `--`, and gets the package sources."""
    pytest.importorskip("uv", reason="environment steps need uv (pip install 'headwater[envs]')")
    from tinywheels import write_wheel

    write_wheel(tmp_path / "links", "tinylib", "1.0.0")
    write_wheel(tmp_path / "links", "tinylib", "2.0.0")
    sources = {"HEADWATER_PYPI_NO_INDEX": "1", "HEADWATER_PYPI_FIND_LINKS": str(tmp_path / "links")}
    r = run_flow("pypi_flow.py", "--environment=pypi", "--datastore-root", ROOT, "argo-workflows", "create",
                 "--only-json", "--image", "python:3.12", root=tmp_path / ".headwater",
                 env={**_S3_ENV, **sources, "HEADWATER_HOME": str(tmp_path / "home"), "UV_HTTP_RETRIES": "0"})
    assert r.returncode == 0, r.output
    wt = json.loads(r.stdout)
    validate(wt, validators)
    keys = {}
    for step in ("start", "two"):
        c = template(wt, f"step-{step}")["container"]
        argv = c["command"] + c["args"]
        at = argv.index("--environment-lock")
        assert at < argv.index("--") and re.fullmatch(r"[0-9a-f]{64}", argv[at + 1])
        keys[step] = argv[at + 1]
        assert {"name": "HEADWATER_PYPI_FIND_LINKS", "value": sources["HEADWATER_PYPI_FIND_LINKS"]} in c["env"]
    assert keys["start"] != keys["two"]
    assert "--environment-lock" not in template(wt, "step-end")["container"]["args"]
    for name, value in _S3_ENV.items():  # the test reads the datastore as the pods do
        monkeypatch.setenv(name, value)
    from headwater.environments.remote import load_lock
    from headwater.store import Datastore

    lock = load_lock(Datastore(ROOT).content, keys["two"])
    assert [(p.name, p.version) for p in lock.packages] == [("tinylib", "2.0.0")]


def test_a_typo_in_a_field_fails_the_strict_schema(tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create("linear_flow.py", tmp_path)
    bad = copy.deepcopy(wt)
    step = template(bad, "step-start")
    step["contaner"] = step.pop("container")
    with pytest.raises(jsonschema.ValidationError, match="'contaner' was unexpected"):
        validate(bad, validators)
    bad = copy.deepcopy(wt)
    dag(bad)["middle"]["dependencies"] = "start"
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'array'"):
        validate(bad, validators)


def test_branch_join_waits_for_both_branches(tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create("branch_flow.py", tmp_path)
    validate(wt, validators)
    tasks = dag(wt)
    assert tasks["a"]["dependencies"] == tasks["b"]["dependencies"] == ["start"]
    assert tasks["join"]["dependencies"] == ["a", "b"]
    assert args_of(tasks["join"])["input-paths"] == "argo-{{workflow.name}}/a/1,argo-{{workflow.name}}/b/1"


def test_branch_flow_matches_the_docs_snapshot(tmp_path: Path) -> None:
    wt = create("branch_flow.py", tmp_path)
    text = json.dumps(wt, indent=2, sort_keys=True)
    text = re.sub(r'"[0-9a-f]{64}"', '"<package key>"', text)
    text = re.sub(r'"http://127\.0\.0\.1:\d+"', '"<S3 endpoint>"', text)  # the test server's port
    if os.environ.get("HEADWATER_UPDATE_SNAPSHOTS"):  # after a deliberate change of the output
        SNAPSHOT.write_text(text + "\n")
    assert text + "\n" == SNAPSHOT.read_text()


def test_nested_foreach_is_a_nested_dag_per_split(tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create("nested_foreach_flow.py", tmp_path)
    validate(wt, validators)
    top = dag(wt)
    assert list(top) == ["init-params", "start", "body", "join", "end"]
    assert top["body"]["template"] == "dag-start"
    assert top["body"]["withParam"] == "{{tasks.start.outputs.parameters.splits}}"
    assert args_of(top["body"]) == {"split-path": "-{{item}}", "input-paths": "argo-{{workflow.name}}/start/1",
                                    "split-index": "{{item}}"}
    assert top["join"]["dependencies"] == ["body"]
    assert "tasks['start'].outputs.parameters['num-splits']" in args_of(top["join"])["input-paths"]
    assert "/inner_join/' + '1' + '-' + string(#)" in args_of(top["join"])["input-paths"]
    outer = dag(wt, "dag-start")
    assert list(outer) == ["body", "inner-body", "inner-join"]
    assert args_of(outer["body"])["task-id"] == "1{{inputs.parameters.split-path}}"
    assert outer["inner-body"]["template"] == "dag-body"
    assert outer["inner-body"]["withParam"] == "{{tasks.body.outputs.parameters.splits}}"
    assert args_of(outer["inner-body"])["split-path"] == "{{inputs.parameters.split-path}}-{{item}}"
    assert outer["inner-join"]["dependencies"] == ["inner-body"]
    assert list(dag(wt, "dag-body")) == ["inner-body"]
    # Split steps write their splits; only the first step of a body takes --split-index.
    body = template(wt, "step-body")
    assert {p["name"] for p in body["outputs"]["parameters"]} == {"splits", "num-splits"}
    assert "--split-index" in body["container"]["args"] and "--output-dir" in body["container"]["args"]
    assert "--split-index" not in template(wt, "step-inner-join")["container"]["args"]
    # @retry(times=1): Metaflow's default minutes_between_retries=2 applies on schedulers.
    assert body["retryStrategy"] == {"limit": "1", "retryPolicy": "Always", "backoff": {"duration": "2m"}}


def test_switch_cases_are_conditional_tasks(tmp_path: Path, validators: dict[str, Any]) -> None:
    doc = create(ALL_FLOW, tmp_path)
    wt = doc["items"][0]
    validate(wt, validators)
    tasks = dag(wt)
    assert tasks["high"]["when"] == "'{{tasks.route.outputs.parameters.next-step}}' == 'high'"
    assert tasks["low"]["when"] == "'{{tasks.route.outputs.parameters.next-step}}' == 'low'"
    assert tasks["merge"]["depends"] == "high.Succeeded || low.Succeeded"
    assert args_of(tasks["merge"])["input-paths"] == \
        "argo-{{workflow.name}}/{{tasks.route.outputs.parameters.next-step}}/1"
    route = template(wt, "step-route")
    assert route["outputs"]["parameters"] == [{"name": "next-step", "valueFrom": {"path": "/tmp/hw-out/next_step"}}]


def test_retry_timeout_and_resources_map_to_the_templates(tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create(ALL_FLOW, tmp_path)["items"][0]
    left = template(wt, "step-left")
    assert left["retryStrategy"] == {"limit": "2", "retryPolicy": "Always", "backoff": {"duration": "3m"}}
    assert left["container"]["args"][left["container"]["args"].index("--max-user-code-retries") + 1] == "2"
    right = template(wt, "step-right")
    assert right["activeDeadlineSeconds"] == 120
    assert right["container"]["resources"] == {"requests": {"cpu": "2", "memory": "1500M"},
                                               "limits": {"nvidia.com/gpu": "1"}}
    assert "retryStrategy" not in right and "resources" not in template(wt, "step-left")["container"]


def test_parameters_are_workflow_arguments_passed_to_init(tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create(ALL_FLOW, tmp_path, "--tag", "nightly", "--max-workers", "7", "--workflow-timeout", "600")["items"][0]
    validate(wt, validators)
    assert wt["spec"]["arguments"]["parameters"] == [
        {"name": "alpha", "value": "3", "description": "a number"}, {"name": "mode", "value": "high"},
        {"name": "origin-run-id", "value": "",
         "description": "The run to resume (set by `argo-workflows resume`); empty: a new run."}]
    init = template(wt, "init")["container"]["args"]
    sep = init.index("--")
    assert init[sep + 1:] == [
        "--datastore=s3", "--datastore-root", ROOT, "init", "--run-id", "argo-{{workflow.name}}",
        "--task-id", "0", "--tag", "nightly", "--clone-run-id", "{{workflow.parameters.origin-run-id}}",
        "--alpha", "{{workflow.parameters.alpha}}",
        "--mode", "{{workflow.parameters.mode}}"]
    assert wt["spec"]["parallelism"] == 7 and wt["spec"]["activeDeadlineSeconds"] == 600
    assert "--tag" in template(wt, "step-end")["container"]["args"]


def test_schedule_makes_a_cron_workflow(tmp_path: Path, validators: dict[str, Any]) -> None:
    doc = create(ALL_FLOW, tmp_path)
    assert doc["kind"] == "List"
    wt, cron = doc["items"]
    validate(cron, validators)
    assert cron["kind"] == "CronWorkflow"
    assert cron["spec"] == {"schedules": ["30 2 * * *"], "timezone": "Europe/Paris",
                            "workflowSpec": {"workflowTemplateRef": {"name": wt["metadata"]["name"]}}}
    bad = copy.deepcopy(cron)
    bad["spec"]["schedule"] = bad["spec"].pop("schedules")[0]  # the field Argo 4 removed
    with pytest.raises(jsonschema.ValidationError, match="'schedule' was unexpected"):
        validate(bad, validators)


def test_project_names_the_workflow_as_metaflow_does(tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create("project_flow.py", tmp_path)
    validate(wt, validators)
    assert wt["metadata"]["name"] == "demoproj.user.tester.projectflow"
    prod = create("project_flow.py", tmp_path, top=("--production",))
    assert prod["metadata"]["name"] == "demoproj.prod.projectflow"
    # Every task sees the branch the deployment was made for (its runs go to that @project branch).
    commands = lambda t: [c["container"]["args"] for c in t["spec"]["templates"] if "container" in c]  # noqa: E731
    assert commands(prod) and all("--production" in args for args in commands(prod))
    assert not any("--production" in args or "--branch" in args for args in commands(wt))
    feature = create("project_flow.py", tmp_path, top=("--branch", "feat"))
    assert all(args[args.index("--branch") + 1] == "feat" for args in commands(feature))
    r = run_flow("project_flow.py", "--datastore-root", ROOT, "argo-workflows", "--name", "x", "create",
                 "--only-json", root=tmp_path / ".headwater", env=_S3_ENV)
    assert r.returncode == 1 and "--name cannot be used with a @project flow" in r.stderr


def test_long_project_names_are_shortened_with_a_hash() -> None:
    from headwater.compute.argo.naming import workflow_name

    name = workflow_name("AVeryLongFlowNameIndeedForArgo", project="a_long_project_name",
                         branch="test.some_feature_branch")
    assert len(name) <= 45 and re.fullmatch(r"[a-z0-9.-]+-[a-z0-9]{5}", name)
    assert name == workflow_name("AVeryLongFlowNameIndeedForArgo", project="a_long_project_name",
                                 branch="test.some_feature_branch")


def test_what_cannot_be_compiled_says_why(tmp_path: Path) -> None:
    r = run_flow("switch_flow.py", "--datastore-root", ROOT, "argo-workflows", "create", "--only-json",
                 root=tmp_path / ".headwater", env=_S3_ENV)
    assert r.returncode == 1 and "recursive switch" in r.stderr, r.output
    r = run_flow("linear_flow.py", "argo-workflows", "create", "--only-json", root=tmp_path / ".headwater")
    assert r.returncode == 1 and "needs an S3 datastore" in r.stderr, r.output
    no_cluster = {**_S3_ENV, "KUBECONFIG": str(tmp_path / "no-kubeconfig")}
    for command in ("create", "trigger"):  # the commands that talk to a cluster (tests/compute/test_argo_server.py)
        r = run_flow("linear_flow.py", "--datastore-root", ROOT, "argo-workflows", command,
                     root=tmp_path / ".headwater", env=no_cluster)
        assert r.returncode == 1 and "No Kubernetes cluster is configured here" in r.stderr, r.output


def test_the_resume_workflow_is_a_valid_workflow_of_the_template(validators: dict[str, Any]) -> None:
    from headwater.compute.argo.submit import workflow_from_template

    wf = workflow_from_template("demoproj.prod.projectflow", "team", {"origin-run-id": "argo-x-1"})
    validate(wf, validators)
    assert wf["metadata"] == {"generateName": "demoproj.prod.projectflow-", "namespace": "team"}
    assert wf["spec"] == {"workflowTemplateRef": {"name": "demoproj.prod.projectflow"},
                          "arguments": {"parameters": [{"name": "origin-run-id", "value": "argo-x-1"}]}}
    bad = copy.deepcopy(wf)
    bad["spec"]["workflowTemplateRef"]["nmae"] = bad["spec"]["workflowTemplateRef"].pop("name")
    with pytest.raises(jsonschema.ValidationError, match="'nmae' was unexpected"):
        validate(bad, validators)


def test_a_parameter_named_like_the_resume_parameter_is_refused(tmp_path: Path) -> None:
    flow = tmp_path / "clash_flow.py"
    flow.write_text("from headwater import FlowSpec, Parameter, step\n\n\n"
                    "class ClashFlow(FlowSpec):\n"
                    "    origin = Parameter('origin-run-id', default='x')\n\n"
                    "    @step\n    def start(self):\n        self.next(self.end)\n\n"
                    "    @step\n    def end(self):\n        pass\n\n\n"
                    "if __name__ == '__main__':\n    ClashFlow()\n")
    r = run_flow(flow, "--datastore-root", ROOT, "argo-workflows", "create", "--only-json",
                 root=tmp_path / ".headwater", env=_S3_ENV)
    assert r.returncode == 1, r.output
    assert "Parameter 'origin-run-id' clashes with the workflow parameter 'origin-run-id'" in r.stderr




def test_the_compiler_imports_neither_the_cli_nor_the_runtime() -> None:
    import ast

    import headwater.compute.argo as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("cli", "runtime")), f"{path.name} imports {node.module}"
                assert not node.module.startswith(("headwater.cli", "headwater.runtime")), path.name


def test_parameters_of_every_type(tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create("params_flow.py", tmp_path)
    validate(wt, validators)
    args = {p["name"]: p["value"] for p in wt["spec"]["arguments"]["parameters"]}
    assert args == {"who": "world", "count": "2", "ratio": "0.5", "loud": "false", "config": '{"a": 1}',
                    "seed": "", "fruits": "apple,pear", "notes": "", "origin-run-id": ""}
    init = template(wt, "init")["container"]["args"]
    passed = {init[i][2:] for i in range(init.index("--task-id") + 2, len(init), 2)}
    # A computed (seed) or absent (notes) default is left to init.
    assert passed == {"clone-run-id", "who", "count", "ratio", "loud", "config", "fruits"}
    assert init[init.index("--loud") + 1] == "{{workflow.parameters.loud}}"


@pytest.mark.parametrize("given, cron", [
    ({}, "0 0 * * *"), ({"hourly": True}, "0 * * * *"), ({"weekly": True, "hourly": True}, "0 0 * * 0"),
    ({"cron": "0 12 * * ? *"}, "0 12 * * ?"), ({"daily": False}, None),
])
def test_schedule_attributes_give_a_cron(given: dict[str, Any], cron: str | None) -> None:
    from headwater.flow.schedule import ScheduleDecorator

    assert ScheduleDecorator(given).schedule == cron


def test_a_bad_cron_is_refused() -> None:
    from headwater.flow.decorators import InvalidDecoratorAttribute
    from headwater.flow.schedule import ScheduleDecorator

    with pytest.raises(InvalidDecoratorAttribute, match="cron must be a cron expression of five fields"):
        ScheduleDecorator({"cron": "every day"}).schedule


def test_a_scheduled_flow_still_checks_and_shows_locally(tmp_path: Path) -> None:
    r = run_flow(ALL_FLOW, "check", root=tmp_path / ".headwater")
    assert r.returncode == 0 and "The graph looks good" in r.stderr, r.output


@pytest.mark.parametrize("flow", ["switch_in_branch_flow.py", "foreach_chain_flow.py", "dict_foreach_flow.py",
                                  "catch_flow.py", "decorated_flow.py"])
def test_more_flow_shapes_compile_to_valid_templates(flow: str, tmp_path: Path, validators: dict[str, Any]) -> None:
    wt = create(flow, tmp_path)
    validate(wt, validators)
    names = {t["name"] for t in wt["spec"]["templates"]}
    for t in wt["spec"]["templates"]:  # every task runs a template that exists
        for task in t.get("dag", {}).get("tasks", []):
            assert task["template"] in names, task
