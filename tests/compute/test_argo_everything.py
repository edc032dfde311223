"""The must-show flow (tests/flows/argo_everything_flow.py: a branch, a nested foreach, a switch,
@retry, @catch, @timeout, @resources, @schedule and @trigger) compiles with `create --only-json`,
every object it prints passes its strict schema (tests/argo_schema.py), and the WorkflowTemplate
runs through the test interpreter against the S3 server to the artifacts a local `run` gives:
the retried step has two attempts, the caught exception is stored, a task sees the event
that started the run as `current.trigger`, and the end-event task POSTs
`headwater.ArgoEverythingFlow.end` to the configured webhook (a local HTTP server here)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from argo_interpreter import NodePhase
from argo_harness import by_step, compile_objects, interpret
from flowrun import run_flow
from s3server import S3Server

pytest.importorskip("jsonschema")
pytest.importorskip("hera.events.models")
from argo_schema import build_validators, validate  # noqa: E402  (needs jsonschema and hera)

FLOW = "argo_everything_flow.py"
CLS = "ArgoEverythingFlow"
EVENTS = {"HEADWATER_ARGO_EVENTS_EVENT": "headwater-event", "HEADWATER_ARGO_EVENTS_EVENT_SOURCE": "webhook",
          "HEADWATER_ARGO_EVENTS_SERVICE_ACCOUNT": "operate-workflow-sa"}


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server standing in for the Argo Events webhook EventSource: its URL, and the
    JSON bodies POSTed to it."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/headwater", received
    finally:
        server.shutdown()
        server.server_close()


def test_the_everything_flow_compiles_validates_and_runs_like_a_local_run(
        s3_bucket: str, s3_env: S3Server, tmp_path: Path, use_root, monkeypatch, webhook) -> None:
    url, received = webhook
    root = f"s3://{s3_bucket}/argo"
    objects = compile_objects(FLOW, root, s3_env, tmp_path, env={**EVENTS, "HEADWATER_ARGO_EVENTS_WEBHOOK_URL": url})
    validators = build_validators()
    assert [o["kind"] for o in objects] == ["WorkflowTemplate", "CronWorkflow", "Sensor"]
    for obj in objects:
        validate(obj, validators)
    wt, cron, sensor = objects
    assert cron["spec"]["schedules"] == ["15 4 * * *"]
    assert sensor["spec"]["dependencies"][0]["filters"]["exprs"][0]["expr"] == "name == 'data.ready'"
    templates = {t["name"]: t for t in wt["spec"]["templates"]}
    assert templates["step-flaky"]["retryStrategy"]["limit"] == "1"
    assert templates["step-risky"]["retryStrategy"]["limit"] == "1"
    assert templates["step-sized"]["activeDeadlineSeconds"] == 120
    assert templates["step-sized"]["container"]["resources"] == {"requests": {"cpu": "1", "memory": "500M"}}

    # What the Sensor sets when data.ready arrives: alpha from the payload, and the whole payload.
    (dependency,) = sensor["spec"]["dependencies"]
    payload = {"name": "data.ready", "id": "evt-1", "timestamp": 1700000000, "alpha": 5}
    run = interpret(wt, s3_env, tmp_path, "wf1", {"alpha": "5", dependency["name"]: json.dumps(payload)})
    assert run.phase is NodePhase.SUCCEEDED, [(n, v.phase, v.message) for n, v in run.nodes.items()]
    # Argo retried the failing attempts: two attempt nodes under each retried task.
    assert [c.retries for c in run.node("wf1.flaky").children] == [0, 1]
    assert [c.phase for c in run.node("wf1.risky").children] == [NodePhase.FAILED, NodePhase.SUCCEEDED]
    assert run.ran[-1].startswith("wf1.publish-end-event")

    local = run_flow(FLOW, "run", "--alpha", "5", "--run-id-file", str(tmp_path / "local.id"),
                     root=tmp_path / ".headwater")
    assert local.returncode == 0, local.output
    import headwater

    use_root(tmp_path / ".headwater")
    want = by_step(headwater.Run(f"{CLS}/{(tmp_path / 'local.id').read_text()}"))
    # Only the deployed run was started by an event: current.trigger is set there alone.
    assert want[("start", "trigger_event")] == ["None"]
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", root)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "reader-home"))
    headwater.default_namespace()
    got = headwater.Run(f"{CLS}/argo-wf1")
    assert got.successful
    assert got["start"].task["trigger_event"].data == ("data.ready", "evt-1")
    assert {k: v for k, v in by_step(got).items() if k[1] != "trigger_event"} == \
        {k: v for k, v in want.items() if k[1] != "trigger_event"}
    assert got["end"].task["all_pairs"].data == ["1x", "1y", "2x", "2y"] and got["route"].task["size"].data == "big"
    assert got["sized"].task["scaled"].data == 50  # the workflow argument reached init

    # @retry: the first attempt failed, the second succeeded.
    flaky = got["flaky"].task
    assert flaky.current_attempt == 1 and flaky["recovered_on"].data == 1
    assert not headwater.Task(flaky.pathspec, attempt=0).successful
    # @catch on the last attempt: the task finished with the exception stored (and, as in Metaflow
    # and a local run, does not count as successful).
    risky = got["risky"].task
    assert risky.finished and not risky.successful and risky.current_attempt == 1
    assert not headwater.Task(risky.pathspec, attempt=0).finished  # the first attempt failed: not caught
    assert risky["failure"].data.type == "builtins.ValueError"
    assert "always fails (attempt 1)" in str(risky["failure"].data)
    assert got["end"].task["failure_type"].data == "builtins.ValueError"

    # The end-event task published the event @trigger_on_finish flows listen for.
    (event,) = received
    assert event["name"] == "headwater.ArgoEverythingFlow.end"
    payload = event["payload"]
    assert payload["run_id"] == "argo-wf1" and payload["pathspec"] == "ArgoEverythingFlow/argo-wf1/end/1"
    assert payload["auto-generated-by-headwater"] == "True" and payload["flow_name"] == CLS
