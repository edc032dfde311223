"""`@trigger` / `@trigger_on_finish` compiled to an Argo Events Sensor by `argo-workflows create
--only-json`, validated against a strict schema from hera's events models (tests/argo_schema.py),
and the errors a user can make with them.

No Argo Events controller runs here: these tests prove the Sensor is well-formed and wired to
the WorkflowTemplate as intended; that the controller fires it, and the Go templates that copy
payload fields into parameters, only a cluster can prove (docs/argo.md)."""

from __future__ import annotations

import copy
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowrun import run_flow

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("hera.events.models")
from argo_schema import build_validators, validate  # noqa: E402  (needs jsonschema and hera)

ROOT = "s3://hw-events/argo"
EVENTS = {"HEADWATER_ARGO_EVENTS_EVENT": "headwater-event", "HEADWATER_ARGO_EVENTS_EVENT_SOURCE": "argo-events-webhook",
          "HEADWATER_ARGO_EVENTS_SERVICE_ACCOUNT": "operate-workflow-sa",
          "HEADWATER_ARGO_EVENTS_EVENT_BUS": "jetstream"}


@pytest.fixture(scope="module")
def validators() -> dict[str, Any]:
    return build_validators()


@pytest.fixture(scope="module")
def s3(s3_server) -> dict[str, str]:
    """`create` stores the code package in the datastore: ROOT's bucket exists."""
    client = s3_server.boto3()
    if "hw-events" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="hw-events")
    return s3_server.env()


def create(flow: str | Path, tmp_path: Path, s3: dict[str, str], *args: str, env: dict[str, str] | None = None,
           top: tuple[str, ...] = ()) -> Any:
    r = run_flow(flow, *top, "--datastore-root", ROOT, "argo-workflows", "create", "--only-json",
                 "--image", "python:3.12", *args, root=tmp_path / ".headwater", env={**s3, **EVENTS, **(env or {})})
    assert r.returncode == 0, r.output
    return json.loads(r.stdout)


def create_fails(flow: str | Path, tmp_path: Path, s3: dict[str, str], env: dict[str, str] | None = None) -> str:
    r = run_flow(flow, "--datastore-root", ROOT, "argo-workflows", "create", "--only-json",
                 root=tmp_path / ".headwater", env={**s3, **(EVENTS if env is None else env)})
    assert r.returncode == 1, r.output
    return r.stderr


def by_kind(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    items = doc["items"] if doc["kind"] == "List" else [doc]
    return {o["kind"]: o for o in items}


def test_trigger_compiles_to_a_sensor_that_creates_a_workflow(tmp_path: Path, s3: dict[str, str],
                                                             validators: dict[str, Any]) -> None:
    objs = by_kind(create("trigger_flow.py", tmp_path, s3))
    assert list(objs) == ["WorkflowTemplate", "Sensor"]
    for obj in objs.values():
        validate(obj, validators)
    wt, sensor = objs["WorkflowTemplate"], objs["Sensor"]
    assert sensor["metadata"]["name"] == "triggerflow" and sensor["metadata"]["namespace"] == "default"
    spec = sensor["spec"]
    assert spec["eventBusName"] == "jetstream" and spec["template"]["serviceAccountName"] == "operate-workflow-sa"
    deps = {d["name"]: d for d in spec["dependencies"]}
    assert [d.split("_")[0] for d in deps] == ["dataready", "modelupdated"]
    ready = next(d for n, d in deps.items() if n.startswith("dataready"))
    assert ready["eventSourceName"] == "argo-events-webhook" and ready["eventName"] == "headwater-event"
    assert ready["filters"] == {"exprs": [{"expr": "name == 'data.ready'",
                                           "fields": [{"name": "name", "path": "body.payload.name"}]}]}
    (trig,) = spec["triggers"]
    assert trig["template"]["conditionsReset"] == [{"byTime": {"cron": "0 0 * * *", "timezone": "UTC"}}]
    k8s = trig["template"]["k8s"]
    workflow = k8s["source"]["resource"]
    assert workflow["kind"] == "Workflow" and workflow["spec"]["workflowTemplateRef"] == {"name": "triggerflow"}
    assert workflow["metadata"]["generateName"] == "triggerflow-"
    # Every parameter starts at its default; mapped ones are overwritten from the payload. Each
    # event's whole payload goes to a parameter of its own (null: that event did not start the run).
    modelupdated = next(n for n in deps if n.startswith("modelupdated"))
    assert workflow["spec"]["arguments"]["parameters"] == [
        {"name": "table", "value": "raw"}, {"name": "config", "value": '{"k": 1}'},
        {"name": "threshold", "value": "0.5"}, {"name": "untouched", "value": "7"},
        {"name": ready["name"], "value": "null"}, {"name": modelupdated, "value": "null"}]
    dests = {p["dest"]: p["src"] for p in k8s["parameters"]}
    assert set(dests) == {f"spec.arguments.parameters.#(name={n}).value"
                          for n in ("table", "config", "threshold", ready["name"], modelupdated)}
    assert dests[f"spec.arguments.parameters.#(name={ready['name']}).value"] == {
        "dependencyName": ready["name"], "dataKey": "body.payload", "value": "null"}
    # The template declares those parameters and hands them to every step as HEADWATER_ARGO_EVENT_PAYLOAD_*.
    declared = {p["name"]: p["value"] for p in wt["spec"]["arguments"]["parameters"]}
    assert declared[ready["name"]] == "null" and declared["table"] == "raw"
    for t in wt["spec"]["templates"]:
        if t["name"].startswith("step-"):
            env = {e["name"]: e["value"] for e in t["container"]["env"]}
            assert env[f"HEADWATER_ARGO_EVENT_PAYLOAD_event_{ready['name']}"] == \
                "{{workflow.parameters." + ready["name"] + "}}"
    table = dests["spec.arguments.parameters.#(name=table).value"]
    assert table["dependencyName"] == ready["name"] and table["value"] == "raw"
    assert table["dataTemplate"].startswith('{{ if hasKey $.Input.body.payload "table_name" }}')
    assert 'get $.Input.body.payload "Threshold"' in dests["spec.arguments.parameters.#(name=threshold).value"][
        "dataTemplate"]
    # The template says which Sensor belongs to it (what `delete` needs).
    ann = wt["metadata"]["annotations"]
    assert ann["headwater/sensor_name"] == "triggerflow"
    assert json.loads(ann["headwater/triggers"]) == [{"name": "data.ready", "type": "event"},
                                                     {"name": "model-updated", "type": "event"}]


def test_a_typo_in_a_sensor_fails_the_strict_schema(tmp_path: Path, s3: dict[str, str],
                                                    validators: dict[str, Any]) -> None:
    sensor = by_kind(create("trigger_flow.py", tmp_path, s3))["Sensor"]
    bad = copy.deepcopy(sensor)
    bad["spec"]["dependencies"][0]["eventSoureName"] = bad["spec"]["dependencies"][0].pop("eventSourceName")
    with pytest.raises(jsonschema.ValidationError, match="'eventSoureName' was unexpected"):
        validate(bad, validators)
    bad = copy.deepcopy(sensor)  # the Workflow the Sensor creates is checked against its own schema
    bad["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"]["spec"]["workflowTemplateRf"] = {}
    with pytest.raises(jsonschema.ValidationError, match="'workflowTemplateRf' was unexpected"):
        validate(bad, validators)
    bad = copy.deepcopy(sensor)
    bad["spec"]["replicas"] = "one"
    with pytest.raises(jsonschema.ValidationError, match="'one' is not of type 'integer'"):
        validate(bad, validators)


def test_trigger_on_finish_listens_for_the_upstream_end_events(tmp_path: Path, s3: dict[str, str],
                                                               validators: dict[str, Any]) -> None:
    objs = by_kind(create("trigger_on_finish_flow.py", tmp_path, s3, top=("--branch", "x")))
    sensor = objs["Sensor"]
    validate(sensor, validators)
    # Argo Events refuses dots in a Sensor's name.
    assert objs["WorkflowTemplate"]["metadata"]["name"] == "demoproj.test.x.scoreflow"
    assert sensor["metadata"]["name"] == "demoproj-test-x-scoreflow"
    exprs = {d["filters"]["exprs"][0]["expr"]: d["filters"]["exprs"][1:] for d in sensor["spec"]["dependencies"]}
    own = "name == 'headwater.demoproj.test.x.TrainFlow.end'"
    other = "name == 'headwater.otherproj.prod.FeatureFlow.end'"
    assert set(exprs) == {own, other}

    def expect(project: str, branch: str) -> list[dict[str, Any]]:
        return [{"expr": f"field == '{v}'", "fields": [{"name": "field", "path": f"body.payload.{k}"}]}
                for k, v in (("auto-generated-by-headwater", "True"), ("branch_name", branch),
                             ("project_name", project))]

    assert exprs[own] == expect("demoproj", "test.x")
    assert exprs[other] == expect("otherproj", "prod")
    # The flow has no parameters: the Sensor sets only the payload parameters, of type "run".
    k8s = sensor["spec"]["triggers"][0]["template"]["k8s"]
    assert [p["src"]["dataKey"] for p in k8s["parameters"]] == ["body.payload", "body.payload"]
    env = {e["name"] for e in next(t for t in objs["WorkflowTemplate"]["spec"]["templates"]
                                   if t["name"] == "step-start")["container"]["env"]}
    assert sum(n.startswith("HEADWATER_ARGO_EVENT_PAYLOAD_run_headwater") for n in env) == 2


def test_without_a_trigger_there_is_no_sensor(tmp_path: Path, s3: dict[str, str]) -> None:
    doc = create("linear_flow.py", tmp_path, s3)
    assert doc["kind"] == "WorkflowTemplate" and "headwater/triggers" not in doc["metadata"]["annotations"]


def test_the_end_event_task_runs_after_end_when_a_webhook_is_set(tmp_path: Path, s3: dict[str, str],
                                                                 validators: dict[str, Any]) -> None:
    url = "http://events.argo-events.svc:12000/headwater"
    wt = create("project_flow.py", tmp_path, s3, env={"HEADWATER_ARGO_EVENTS_WEBHOOK_URL": url})
    validate(wt, validators)
    tasks = {t["name"]: t for t in wt["spec"]["templates"][0]["dag"]["tasks"]}
    assert tasks["publish-end-event"]["dependencies"] == ["end"]
    (tmpl,) = [t for t in wt["spec"]["templates"] if t["name"] == "publish-end-event"]
    args = tmpl["container"]["args"]
    assert args[:6] == ["-m", "headwater.compute.argo.events", "--url", url, "--name",
                        "headwater.demo_proj.user.tester.ProjectFlow.end"]
    fields = dict(args[i + 1].split("=", 1) for i in range(6, len(args), 2))
    assert fields["pathspec"] == "ProjectFlow/argo-{{workflow.name}}/end/1"
    assert fields["branch_name"] == "user.tester" and fields["auto-generated-by-headwater"] == "True"
    off = create("project_flow.py", tmp_path, s3, "--no-auto-emit-argo-events",
                 env={"HEADWATER_ARGO_EVENTS_WEBHOOK_URL": url})
    assert "publish-end-event" not in {t["name"] for t in off["spec"]["templates"]}


FLOW_TEMPLATE = '''
from headwater import FlowSpec, Parameter, step, trigger, trigger_on_finish

{decorators}
class BadTriggerFlow(FlowSpec):
    alpha = Parameter("alpha", default=1)
    seed = Parameter("seed", default=None, type=int)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BadTriggerFlow()
'''


def flow_file(tmp_path: Path, decorators: str) -> Path:
    path = tmp_path / "bad_trigger_flow.py"
    path.write_text(textwrap.dedent(FLOW_TEMPLATE).format(decorators=decorators))
    return path


@pytest.mark.parametrize("decorators, message", [
    ("@trigger(event='a', events=['b'])", "@trigger has both event= and events="),
    ("@trigger()", "@trigger names no event"),
    ("@trigger(event=3)", "the event 3 is neither a name nor a dict"),
    ("@trigger(event='bad name!')", "the event name 'bad name!' has characters other than"),
    ("@trigger(event={'name': 'a', 'parameters': {'alpha': 7}})", "map 'alpha' to 7; both must be names"),
    ("@trigger(event={'name': 'a', 'parmeters': {}})", "unknown key\\(s\\) parmeters"),
    ("@trigger(events=['a', 'a'])", "names the event 'a' twice"),
    ("@trigger(events='a')", "events must be a list"),
    ("@trigger(event='a', options={'reset': 1})", "unknown option\\(s\\) 'reset'"),
    ("@trigger_on_finish(flow='a.b')", "is neither a flow name nor project.branch.FlowName"),
    ("@trigger_on_finish(flow={'name': 'Foo', 'project': 3})", "the project of flow 'Foo' is 3, not a name"),
    ("@trigger_on_finish(flow='A', flows=['B'])", "has both flow= and flows="),
])
def test_a_malformed_trigger_fails_when_the_flow_starts(decorators: str, message: str, tmp_path: Path) -> None:
    r = run_flow(flow_file(tmp_path, decorators), "run", root=tmp_path / ".headwater")
    assert r.returncode == 1, r.output
    assert "Bad trigger" in r.stderr and "Traceback" not in r.stderr  # the headline, no traceback
    assert re.search(message, r.stderr), r.stderr


@pytest.mark.parametrize("decorators, env, message", [
    ("@trigger(event={'name': 'a', 'parameters': {'beta': 'b'}})", None,
     "to the parameter 'beta', which flow 'BadTriggerFlow' does not have"),
    ("@trigger(events=[{'name': 'a', 'parameters': ['alpha']}, {'name': 'b', 'parameters': {'ALPHA': 'x'}}])",
     None, "maps the parameter 'ALPHA' twice"),
    ("@trigger(event={'name': 'a', 'parameters': ['seed']})", None, "'seed' has no static default"),
    ("@trigger(event='a')\n@trigger_on_finish(flow='Up')", None, "has both @trigger and @trigger_on_finish"),
    ("@trigger_on_finish(flow={'name': 'Up', 'project': 'p'})", None, "with a project but no branch"),
    ("@trigger(event='a')", {}, "HEADWATER_ARGO_EVENTS_EVENT \\(the Argo Events event"),
])
def test_a_trigger_that_cannot_be_deployed_fails_at_compile_time(decorators: str, env: dict[str, str] | None,
                                                                 message: str, tmp_path: Path,
                                                                 s3: dict[str, str]) -> None:
    err = create_fails(flow_file(tmp_path, decorators), tmp_path, s3, env)
    assert "Traceback" not in err and re.search(message, err), err


def test_one_event_without_a_mapping_sets_the_parameters_it_can(tmp_path: Path, s3: dict[str, str]) -> None:
    sensor = by_kind(create(flow_file(tmp_path, "@trigger(event='go')"), tmp_path, s3))["Sensor"]
    k8s = sensor["spec"]["triggers"][0]["template"]["k8s"]
    # Metaflow's rule (every parameter, by its own name), less those init cannot take (no static default).
    assert [p["dest"] for p in k8s["parameters"]] == ["spec.arguments.parameters.#(name=alpha).value",
                                                      "spec.arguments.parameters.#(name=go_d3cv).value"]


def test_a_trigger_is_ignored_by_a_local_run(tmp_path: Path) -> None:
    r = run_flow("trigger_flow.py", "run", root=tmp_path / ".headwater")
    assert r.returncode == 0, r.output


def test_publisher_posts_the_event_and_never_fails_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.compute.argo import events
    from headwater.compute.argo.events import event_body, main

    monkeypatch.setattr(events.time, "sleep", lambda s: None)  # no waiting between attempts

    body = event_body("headwater.F.end", {"run_id": "argo-x"}, now=0)
    assert body == {"name": "headwater.F.end", "payload": {"name": "headwater.F.end", "timestamp": 0,
                                                          "utc_date": "19700101", "generated-by-headwater": True,
                                                          "run_id": "argo-x"}}
    # Nothing listens on port 9 of this machine: reported, exit 0 (the run already succeeded).
    assert main(["--url", "http://127.0.0.1:9/", "--name", "n", "--field", "a=b"]) == 0


def test_events_settings_follow_metaflow_defaults() -> None:
    from headwater.compute.argo.settings import EventsSettings

    assert EventsSettings.from_env({}) == EventsSettings(event_bus="default")
    s = EventsSettings.from_env({"HEADWATER_ARGO_EVENTS_WEBHOOK_URL": "https://events.example.com/hw"})
    assert s.internal_webhook_url == "https://events.example.com/hw"  # pods use the same URL by default
    s = EventsSettings.from_env({"HEADWATER_ARGO_EVENTS_WEBHOOK_URL": "https://events.example.com/hw",
                                 "HEADWATER_ARGO_EVENTS_INTERNAL_WEBHOOK_URL": "http://svc.argo-events:12000/hw"})
    assert s.internal_webhook_url == "http://svc.argo-events:12000/hw"


def test_the_sensor_goes_to_the_configured_namespace() -> None:
    from headwater.compute.argo.compile import FlowParameter
    from headwater.compute.argo.sensors import SensorOptions, compile_sensor, trigger_annotations
    from headwater.compute.argo.settings import EventsSettings
    from headwater.flow.triggers import FlowTrigger, TriggerKind

    events = EventsSettings.from_env({**EVENTS, "HEADWATER_ARGO_EVENTS_SENSOR_NAMESPACE": "argo-events"})
    opts = SensorOptions(template_name="proj.prod.flow", namespace="flows", events=events)
    triggers = [FlowTrigger("a.b", TriggerKind.EVENT, {"x": "x"})]
    sensor = compile_sensor(triggers, [FlowParameter("X", "1")], opts)
    assert sensor["metadata"]["namespace"] == "argo-events" and sensor["metadata"]["name"] == "proj-prod-flow"
    resource = sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"]
    assert resource["metadata"]["namespace"] == "flows"  # the Workflow runs beside its template
    assert trigger_annotations(triggers, opts)["headwater/sensor_namespace"] == "argo-events"


def test_trigger_option_sets_current_trigger_in_a_local_run(tmp_path: Path, use_root) -> None:
    root = tmp_path / ".headwater"
    up = run_flow("linear_flow.py", "run", "--run-id-file", str(tmp_path / "up.id"), root=root)
    assert up.returncode == 0, up.output
    upstream = f"LinearFlow/{(tmp_path / 'up.id').read_text()}"
    r = run_flow("trigger_on_finish_flow.py", "--trigger", upstream, "run", "--run-id-file", str(tmp_path / "id"),
                 root=root)
    assert r.returncode == 0, r.output
    import headwater

    use_root(root)
    start = headwater.Run(f"ScoreFlow/{(tmp_path / 'id').read_text()}")["start"].task
    assert start["upstream"].data == upstream and start["events"].data == ["headwater.LinearFlow.end"]
    plain = run_flow("trigger_on_finish_flow.py", "run", "--run-id-file", str(tmp_path / "id2"), root=root)
    assert plain.returncode == 0, plain.output
    assert headwater.Run(f"ScoreFlow/{(tmp_path / 'id2').read_text()}")["start"].task["upstream"].data is None


@pytest.mark.parametrize("given, message", [
    ("LinearFlow", "--trigger 'LinearFlow' is not a run's pathspec"),
    ("LinearFlow/nope", "--trigger 'LinearFlow/nope': "),
])
def test_a_bad_trigger_option_is_refused(given: str, message: str, tmp_path: Path) -> None:
    r = run_flow("trigger_on_finish_flow.py", "--trigger", given, "run", root=tmp_path / ".headwater")
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.output


def test_current_trigger_from_event_payloads() -> None:
    from headwater.events import Trigger, trigger_from_environ

    env = {"HEADWATER_ARGO_EVENT_PAYLOAD_event_a_x1": json.dumps({"name": "a", "id": "1", "timestamp": 100}),
           "HEADWATER_ARGO_EVENT_PAYLOAD_event_b_x2": json.dumps({"name": "b", "id": "2", "timestamp": 200}),
           "HEADWATER_ARGO_EVENT_PAYLOAD_event_c_x3": "null", "OTHER": "x"}
    trig = trigger_from_environ(env)
    assert isinstance(trig, Trigger)
    assert [e.name for e in trig.events] == ["b", "a"] and trig.event.id == "2"  # latest first
    assert trig["a"].type == "event" and trig.runs is None and trig.run is None
    with pytest.raises(KeyError, match="'c'"):
        trig["c"]
    assert trigger_from_environ({"HEADWATER_ARGO_EVENT_PAYLOAD_event_c_x3": "null"}) is None
