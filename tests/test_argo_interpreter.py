"""The test-side Argo interpreter runs hand-written WorkflowTemplates with Argo's documented semantics."""

from __future__ import annotations

import json
import re
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from argo_interpreter import (
    InterpreterError,
    Interpreter,
    NodePhase,
    UnsupportedConstructError,
    evaluate_depends,
    evaluate_when,
)

OUT = "/tmp/out"


def py(code: str, **extra: Any) -> dict[str, Any]:
    """A container that runs ``python -c code`` (arguments to the code come as argv[1:])."""
    return {"image": "python:3.11", "command": [sys.executable, "-c", code], **extra}


def writes(name: str, value_expr: str) -> dict[str, Any]:
    """A container writing ``value_expr`` (a Python expression over ``a`` = argv[1:]) to /tmp/out/<name>."""
    return py(f"import sys, json; a = sys.argv[1:]; open('{OUT}/{name}', 'w').write(str({value_expr}))")


def out_param(name: str) -> dict[str, Any]:
    return {"outputs": {"parameters": [{"name": name, "valueFrom": {"path": f"{OUT}/{name}"}}]}}


def log_step(log: Path, label: str) -> dict[str, Any]:
    """A container appending ``label`` (substituted by the interpreter) to a log file."""
    return py("import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')", args=[str(log), label])


def wft(templates: list[dict[str, Any]], entrypoint: str = "main",
        parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"entrypoint": entrypoint, "templates": templates}
    if parameters is not None:
        spec["arguments"] = {"parameters": parameters}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "hello"}, "spec": spec}


def dag(name: str, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": name, "dag": {"tasks": tasks}, **extra}


@pytest.fixture
def interp(tmp_path: Path) -> Interpreter:
    work = tmp_path / "work"
    work.mkdir()
    return Interpreter(base_env=dict(os.environ), work_dir=work, cwd=tmp_path)


def test_dependencies_run_in_order(interp: Interpreter, tmp_path: Path) -> None:
    log = tmp_path / "log"
    template = wft([
        dag("main", [
            {"name": "c", "template": "say", "dependencies": ["b"], "arguments": {"parameters": [{"name": "m", "value": "c"}]}},
            {"name": "b", "template": "say", "dependencies": ["a"], "arguments": {"parameters": [{"name": "m", "value": "b"}]}},
            {"name": "a", "template": "say", "arguments": {"parameters": [{"name": "m", "value": "a"}]}},
        ]),
        {"name": "say", "inputs": {"parameters": [{"name": "m"}]}, "container": log_step(log, "{{inputs.parameters.m}}")},
    ])
    run = interp.run(template)
    assert run.phase is NodePhase.SUCCEEDED
    assert log.read_text().split() == ["a", "b", "c"]
    assert run.ran == ["hello-run.a", "hello-run.b", "hello-run.c"]
    assert run.node("hello-run.b").inputs == {"m": "b"}


def test_diamond_passes_outputs_to_join(interp: Interpreter) -> None:
    template = wft([
        dag("main", [
            {"name": "start", "template": "emit", "arguments": {"parameters": [{"name": "v", "value": "1"}]}},
            {"name": "left", "template": "emit", "depends": "start",
             "arguments": {"parameters": [{"name": "v", "value": "{{tasks.start.outputs.parameters.x}}0"}]}},
            {"name": "right", "template": "emit", "depends": "start.Succeeded",
             "arguments": {"parameters": [{"name": "v", "value": "{{tasks.start.outputs.parameters.x}}00"}]}},
            {"name": "join", "template": "emit", "depends": "left && right",
             "arguments": {"parameters": [{"name": "v", "value":
                 "{{tasks.left.outputs.parameters.x}}+{{tasks.right.outputs.parameters.x}}"}]}},
        ]),
        {"name": "emit", "inputs": {"parameters": [{"name": "v"}]}, **out_param("x"),
         "container": {**writes("x", "eval(a[0])"), "args": ["{{inputs.parameters.v}}"]}},
    ])
    run = interp.run(template)
    assert run.phase is NodePhase.SUCCEEDED
    assert run.ran[0] == "hello-run.start" and run.ran[-1] == "hello-run.join"
    assert run.node("hello-run.join").outputs == {"x": "110"}


def test_with_param_fans_out_and_join_sees_list(interp: Interpreter) -> None:
    template = wft([
        dag("main", [
            {"name": "split", "template": "split"},
            {"name": "each", "template": "square", "dependencies": ["split"],
             "withParam": "{{tasks.split.outputs.parameters.items}}",
             "arguments": {"parameters": [{"name": "n", "value": "{{item.n}}"}, {"name": "tag", "value": "{{item.tag}}"}]}},
            {"name": "join", "template": "sum", "dependencies": ["each"],
             "arguments": {"parameters": [{"name": "all", "value": "{{tasks.each.outputs.parameters.sq}}"}]}},
        ]),
        {"name": "split", **out_param("items"),
         "container": writes("items", "json.dumps([{'n': i, 'tag': 't%d' % i} for i in (2, 3, 4)])")},
        {"name": "square", "inputs": {"parameters": [{"name": "n"}, {"name": "tag"}]}, **out_param("sq"),
         "container": {**writes("sq", "a[1] + ':' + str(int(a[0]) ** 2)"),
                       "args": ["{{inputs.parameters.n}}", "{{inputs.parameters.tag}}"]}},
        {"name": "sum", "inputs": {"parameters": [{"name": "all"}]}, **out_param("total"),
         "container": {**writes("total", "sorted(json.loads(a[0]))"), "args": ["{{inputs.parameters.all}}"]}},
    ])
    run = interp.run(template)
    assert run.phase is NodePhase.SUCCEEDED
    group = run.node("hello-run.each")
    assert [c.name for c in group.children] == ["hello-run.each(0:n:2,tag:t2)", "hello-run.each(1:n:3,tag:t3)",
                                                 "hello-run.each(2:n:4,tag:t4)"]
    assert json.loads(group.outputs["sq"]) == ["t2:4", "t3:9", "t4:16"]
    assert run.node("hello-run.join").outputs["total"] == "['t2:4', 't3:9', 't4:16']"


def test_empty_with_param_is_skipped_and_downstream_runs(interp: Interpreter) -> None:
    template = wft([
        dag("main", [
            {"name": "each", "template": "noop", "withParam": "{{workflow.parameters.items}}"},
            {"name": "after", "template": "noop", "dependencies": ["each"]},
        ]),
        {"name": "noop", "container": py("pass")},
    ], parameters=[{"name": "items", "value": "[]"}])
    run = interp.run(template)
    assert run.node("hello-run.each").phase is NodePhase.SKIPPED
    assert run.ran == ["hello-run.after"]


def test_nested_dag_with_param_inside_with_param(interp: Interpreter, tmp_path: Path) -> None:
    log = tmp_path / "log"
    template = wft([
        dag("main", [
            {"name": "outer", "template": "inner", "withItems": ["a", "b"],
             "arguments": {"parameters": [{"name": "letter", "value": "{{item}}"}]}},
            {"name": "collect", "template": "noop", "dependencies": ["outer"],
             "arguments": {"parameters": [{"name": "got", "value": "{{tasks.outer.outputs.parameters.joined}}"}]}},
        ]),
        dag("inner", [
            {"name": "numbers", "template": "numbers"},
            {"name": "leaf", "template": "leaf", "dependencies": ["numbers"],
             "withParam": "{{tasks.numbers.outputs.parameters.items}}",
             "arguments": {"parameters": [{"name": "label", "value": "{{inputs.parameters.letter}}{{item}}"}]}},
        ], inputs={"parameters": [{"name": "letter"}]},
            outputs={"parameters": [{"name": "joined",
                                     "valueFrom": {"parameter": "{{tasks.leaf.outputs.parameters.label}}"}}]}),
        {"name": "numbers", **out_param("items"), "container": writes("items", "json.dumps([1, 2])")},
        {"name": "leaf", "inputs": {"parameters": [{"name": "label"}]}, **out_param("label"),
         "container": {**log_step(log, "{{inputs.parameters.label}}"),
                       "command": [sys.executable, "-c",
                                   f"import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n'); "
                                   f"open('{OUT}/label', 'w').write(sys.argv[2] + '\\n')"]}},
        {"name": "noop", "inputs": {"parameters": [{"name": "got"}]}, "container": py("pass")},
    ])
    run = interp.run(template)
    assert run.phase is NodePhase.SUCCEEDED
    assert log.read_text().split() == ["a1", "a2", "b1", "b2"]
    assert run.node("hello-run.outer(1:b).leaf(0:1)").outputs == {"label": "b1"}
    assert json.loads(run.node("hello-run.collect").inputs["got"]) == [["a1", "a2"], ["b1", "b2"]]


@pytest.mark.parametrize("flag, phases", [
    ("yes", {"gated": "Succeeded", "on_success": "Succeeded", "plain": "Succeeded", "after_omitted": "Succeeded"}),
    ("no", {"gated": "Skipped", "on_success": "Omitted", "plain": "Succeeded", "after_omitted": "Omitted"}),
])
def test_when_skips_and_depends_omits(interp: Interpreter, flag: str, phases: dict[str, str]) -> None:
    template = wft([
        dag("main", [
            {"name": "gated", "template": "noop", "when": "'{{workflow.parameters.flag}}' == yes"},
            {"name": "on_success", "template": "noop", "depends": "gated.Succeeded"},
            {"name": "plain", "template": "noop", "dependencies": ["gated"]},
            {"name": "after_omitted", "template": "noop", "depends": "on_success"},
        ]),
        {"name": "noop", "container": py("pass")},
    ], parameters=[{"name": "flag", "value": "yes"}])
    run = interp.run(template, {"flag": flag})
    assert run.phase is NodePhase.SUCCEEDED
    assert {k.removeprefix("hello-run."): v for k, v in run.phases().items() if k != "hello-run"} == phases


def test_when_per_item_and_numeric_compare() -> None:
    assert evaluate_when("3 == 3.0", "t") and evaluate_when("a != b && true", "t")
    assert not evaluate_when("'x' == 'y' || false", "t")
    with pytest.raises(UnsupportedConstructError, match=r"when '1 < 2' uses an operator"):
        evaluate_when("1 < 2", "t")


def test_depends_expression_logic() -> None:
    phases = {"a": "Succeeded", "b": "Failed"}

    def result(task: str, suffix: str | None) -> bool:
        return phases[task] == (suffix or "Succeeded")

    assert evaluate_depends("a && b.Failed", result)
    assert not evaluate_depends("a && !(b.Failed || a.Skipped)", result)
    with pytest.raises(UnsupportedConstructError, match=r"result \.AnySucceeded is not implemented"):
        evaluate_depends("a.AnySucceeded", result)


def counter_container(counter: Path, fail_times: int) -> dict[str, Any]:
    code = ("import sys, pathlib; p = pathlib.Path(sys.argv[1]); n = int(p.read_text()) if p.exists() else 0; "
            f"p.write_text(str(n + 1)); open('{OUT}/retries', 'w').write(sys.argv[2]); "
            f"sys.exit(1 if n < {fail_times} else 0)")
    return py(code, args=[str(counter), "{{retries}}"])


@pytest.mark.parametrize("fail_times, limit, phase", [(2, 2, NodePhase.SUCCEEDED), (3, 2, NodePhase.FAILED)])
def test_retries(interp: Interpreter, tmp_path: Path, fail_times: int, limit: int, phase: NodePhase) -> None:
    counter = tmp_path / "counter"
    template = wft([
        dag("main", [{"name": "flaky", "template": "flaky"}, {"name": "after", "template": "noop",
                                                              "dependencies": ["flaky"]}]),
        {"name": "flaky", "retryStrategy": {"limit": "{{workflow.parameters.limit}}", "retryPolicy": "Always"},
         **out_param("retries"), "container": counter_container(counter, fail_times)},
        {"name": "noop", "container": py("pass")},
    ], parameters=[{"name": "limit"}])
    run = interp.run(template, {"limit": str(limit)})
    flaky = run.node("hello-run.flaky")
    assert run.phase is phase and flaky.phase is phase
    assert counter.read_text() == str(limit + 1)
    assert [c.retries for c in flaky.children] == list(range(limit + 1))
    assert [c.phase for c in flaky.children][:-1] == [NodePhase.FAILED] * limit
    if phase is NodePhase.SUCCEEDED:
        assert flaky.outputs == {"retries": str(limit)} and run.ran[-1] == "hello-run.after"
    else:
        assert "hello-run.after" not in run.nodes  # fail fast: nothing new is scheduled


def test_continue_on_failed_lets_downstream_run(interp: Interpreter) -> None:
    template = wft([
        dag("main", [{"name": "bad", "template": "bad", "continueOn": {"failed": True}},
                     {"name": "after", "template": "ok", "dependencies": ["bad"]},
                     {"name": "only_on_failure", "template": "ok", "depends": "bad.Failed"}]),
        {"name": "bad", "container": py("raise SystemExit(3)")},
        {"name": "ok", "container": py("pass")},
    ])
    run = interp.run(template)
    assert run.phase is NodePhase.SUCCEEDED
    assert run.node("hello-run.bad").exit_code == 3
    assert run.ran == ["hello-run.bad", "hello-run.after", "hello-run.only_on_failure"]


def test_active_deadline_kills_the_process(interp: Interpreter, tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    template = wft([
        dag("main", [{"name": "slow", "template": "slow"}]),
        {"name": "slow", "activeDeadlineSeconds": 1,
         "container": py("import sys, time; time.sleep(30); open(sys.argv[1], 'w').write('x')", args=[str(marker)])},
    ])
    run = interp.run(template)
    slow = run.node("hello-run.slow")
    assert run.phase is NodePhase.FAILED and slow.phase is NodePhase.FAILED
    assert "deadline" in slow.message and not marker.exists()


def test_substitution_everywhere(interp: Interpreter, tmp_path: Path) -> None:
    code = ("import os, sys, json; open('/tmp/out/env', 'w').write(json.dumps("
            "{'argv': sys.argv[1:], 'cwd': os.getcwd(), 'E': os.environ['E'], 'BASE': os.environ['BASE']}))")
    (tmp_path / "wd-hello-run").mkdir()
    template = wft([
        dag("main", [{"name": "t", "template": "probe",
                      "arguments": {"parameters": [{"name": "p", "value": "{{workflow.parameters.w}}-{{workflow.name}}"}]}}]),
        {"name": "probe", "inputs": {"parameters": [{"name": "p"}, {"name": "d", "default": "dflt"}]},
         "outputs": {"parameters": [{"name": "env", "valueFrom": {"path": "/tmp/out/env"}},
                                    {"name": "missing", "valueFrom": {"path": "/tmp/out/none", "default": "fallback"}}]},
         "container": {"image": "python:3.11", "command": [sys.executable, "-c", code],
                       "args": ["{{inputs.parameters.p}}", "{{inputs.parameters.d}}", "/tmp/out/x"],
                       "env": [{"name": "E", "value": "e-{{inputs.parameters.p}}"}],
                       "workingDir": f"{tmp_path}/wd-{{{{workflow.name}}}}"}},
    ], parameters=[{"name": "w", "value": "default"}])
    interp.base_env["BASE"] = "base"
    run = interp.run(template, {"w": "given"})
    t = run.node("hello-run.t")
    seen = json.loads(t.outputs["env"])
    assert seen["argv"][:2] == ["given-hello-run", "dflt"]
    assert seen["argv"][2].startswith(str(interp.work_dir)) and seen["argv"][2].endswith("/x")
    assert seen["cwd"] == str(tmp_path / "wd-hello-run")
    assert (seen["E"], seen["BASE"]) == ("e-given-hello-run", "base")
    assert t.outputs["missing"] == "fallback"


def test_undefined_variable_is_an_error(interp: Interpreter) -> None:
    template = wft([dag("main", [{"name": "t", "template": "noop", "when": "{{tasks.nope.outputs.parameters.x}} == 1"}]),
                    {"name": "noop", "container": py("pass")}])
    with pytest.raises(InterpreterError, match=r"refers to \{\{tasks\.nope\.outputs\.parameters\.x\}\}"):
        interp.run(template)


@pytest.mark.parametrize("path, value, named", [
    ("template", {"synchronization": {}}, "synchronization"),
    ("container", {"volumeMounts": []}, "volumeMounts"),
    ("task", {"onExit": "cleanup"}, "onExit"),
    ("spec", {"onExit": "cleanup"}, "onExit"),
    ("retry", {"retryPolicy": "OnError"}, "OnError"),
])
def test_unknown_construct_is_an_error(interp: Interpreter, path: str, value: dict[str, Any], named: str) -> None:
    task: dict[str, Any] = {"name": "t", "template": "leaf"}
    leaf: dict[str, Any] = {"name": "leaf", "container": py("pass"), "retryStrategy": {"limit": 1}}
    template = wft([dag("main", [task]), leaf])
    target = {"template": leaf, "container": leaf["container"], "task": task, "spec": template["spec"],
              "retry": leaf["retryStrategy"]}[path]
    target.update(value)
    with pytest.raises(UnsupportedConstructError, match=named):
        interp.run(template)


def test_unknown_construct_in_an_unreached_template_is_an_error(interp: Interpreter, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    template = wft([
        dag("main", [{"name": "t", "template": "touch"},
                     {"name": "never", "template": "script", "when": "1 == 2", "dependencies": ["t"]}]),
        {"name": "touch", "container": py("import sys; open(sys.argv[1], 'w')", args=[str(marker)])},
        {"name": "script", "script": {"image": "python", "source": "print(1)"}},
    ])
    with pytest.raises(UnsupportedConstructError, match=r"Template 'script' uses \['script'\]"):
        interp.run(template)
    assert not marker.exists()  # checked before anything ran


def test_unknown_workflow_argument_is_an_error(interp: Interpreter) -> None:
    template = wft([dag("main", []), ], parameters=[{"name": "a", "value": "1"}])
    with pytest.raises(InterpreterError, match=r"\['b'\] are not declared parameters"):
        interp.run(template, {"b": "2"})


def test_expression_tag_builds_a_foreach_join(interp: Interpreter) -> None:
    join_paths = ("{{=sprig.join(',', map(sprig.until(asInt(tasks['fan'].outputs.parameters['num-splits'])), "
                  "{'argo-' + workflow.name + '/body/t' + inputs.parameters['split-path'] + '-' + string(#)}))}}")
    template = wft([
        dag("main", [{"name": "inner", "template": "inner",
                      "arguments": {"parameters": [{"name": "split-path", "value": "-7"}]}}]),
        dag("inner", [
            {"name": "fan", "template": "fan"},
            {"name": "join", "template": "echo", "dependencies": ["fan"],
             "arguments": {"parameters": [{"name": "v", "value": join_paths}]}},
        ], inputs={"parameters": [{"name": "split-path"}]}),
        {"name": "fan", "outputs": {"parameters": [{"name": "num-splits", "valueFrom": {"path": f"{OUT}/n"}}]},
         "container": writes("n", "3")},
        {"name": "echo", "inputs": {"parameters": [{"name": "v"}]}, "container": py("pass")},
    ])
    run = interp.run(template)
    assert run.node("hello-run.inner.join").inputs["v"] == (
        "argo-hello-run/body/t-7-0,argo-hello-run/body/t-7-1,argo-hello-run/body/t-7-2")


def test_unsupported_expression_function_is_an_error(interp: Interpreter) -> None:
    template = wft([dag("main", [{"name": "t", "template": "echo", "arguments": {"parameters": [
        {"name": "v", "value": "{{=sprig.upper(workflow.name)}}"}]}}]),
        {"name": "echo", "inputs": {"parameters": [{"name": "v"}]}, "container": py("pass")}])
    with pytest.raises(UnsupportedConstructError, match=r"function 'sprig.upper' is not implemented"):
        interp.run(template)


def test_outputs_of_a_task_that_is_not_an_ancestor_are_undefined(interp: Interpreter) -> None:
    template = wft([
        dag("main", [
            {"name": "a", "template": "emit"},
            {"name": "b", "template": "echo", "arguments": {"parameters": [
                {"name": "v", "value": "{{tasks.a.outputs.parameters.x}}"}]}},  # runs after a, but no dependency
        ]),
        {"name": "emit", **out_param("x"), "container": writes("x", "1")},
        {"name": "echo", "inputs": {"parameters": [{"name": "v"}]}, "container": py("pass")},
    ])
    with pytest.raises(InterpreterError, match=r"Task 'b' argument 'v' refers to \{\{tasks\.a\.outputs"):
        interp.run(template)


def test_retries_variable_needs_a_retry_strategy(interp: Interpreter) -> None:
    # Argo puts {{retries}} in scope only for a template with a retryStrategy.
    template = wft([dag("main", [{"name": "t", "template": "leaf"}]),
                    {"name": "leaf", "container": py("pass", args=["{{retries}}"])}])
    with pytest.raises(InterpreterError, match=r"refers to \{\{retries\}\}"):
        interp.run(template)


def test_workflow_deadline_fails_the_run(interp: Interpreter, tmp_path: Path) -> None:
    template = wft([
        dag("main", [{"name": "slow", "template": "slow"},
                     {"name": "after", "template": "slow", "dependencies": ["slow"]}]),
        {"name": "slow", "container": py("import time; time.sleep(30)")},
    ])
    template["spec"]["activeDeadlineSeconds"] = 1
    run = interp.run(template)
    assert run.phase is NodePhase.FAILED
    assert "workflow's activeDeadlineSeconds" in run.node("hello-run.slow").message
    assert run.ran == ["hello-run.slow"]


def _submitted(arguments: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A Workflow that runs the WorkflowTemplate ``hello`` (what a submit or a resume creates)."""
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"generateName": "hello-", "namespace": "default"},
            "spec": {"workflowTemplateRef": {"name": "hello"}, "arguments": {"parameters": arguments}, **spec}}


def test_a_workflow_runs_the_template_it_references(interp: Interpreter, tmp_path: Path) -> None:
    log = tmp_path / "log"
    template = wft([
        dag("main", [{"name": "say", "template": "say"}]),
        {"name": "say", "container": log_step(log, "{{workflow.name}} {{workflow.parameters.a}} "
                                                    "{{workflow.parameters.b}}")},
    ], parameters=[{"name": "a", "value": "1"}, {"name": "b", "value": ""}])
    run = interp.run(_submitted([{"name": "b", "value": "given"}]), workflow_templates=[template])
    assert run.phase is NodePhase.SUCCEEDED
    name, a, b = log.read_text().split()
    # generateName plus five characters, as Argo names it; arguments override only what they name.
    assert re.fullmatch(r"hello-[a-z0-9]{5}", name) and run.name == name
    assert (a, b) == ("1", "given")
    assert interp.run(_submitted([]), workflow_templates=[template], name="wf9").name == "wf9"


def test_a_workflow_reference_must_resolve(interp: Interpreter) -> None:
    template = wft([dag("main", [{"name": "t", "template": "leaf"}]), {"name": "leaf", "container": py("pass")}],
                   parameters=[{"name": "a", "value": "1"}])
    with pytest.raises(InterpreterError, match=r"names 'hello', which is not among the WorkflowTemplates given"):
        interp.run(_submitted([]))
    with pytest.raises(InterpreterError, match=r"'zz' is not a parameter of WorkflowTemplate 'hello'"):
        interp.run(_submitted([{"name": "zz", "value": "1"}]), workflow_templates=[template])
    with pytest.raises(UnsupportedConstructError, match=r"uses \['entrypoint'\]"):
        interp.run(_submitted([], entrypoint="main"), workflow_templates=[template])

def _chain(log: Path, sleep_s: float = 0.0) -> dict[str, Any]:
    """a -> b -> c, each appending its name to ``log`` (then sleeping ``sleep_s``), b with a retry."""
    step = py("import sys, time; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n'); time.sleep(float(sys.argv[3]))",
              args=[str(log), "{{inputs.parameters.m}}", str(sleep_s)])
    return wft([
        dag("main", [{"name": n, "template": "say", **({"dependencies": [d]} if d else {}),
                      "arguments": {"parameters": [{"name": "m", "value": n}]}}
                     for n, d in (("a", None), ("b", "a"), ("c", "b"))]),
        {"name": "say", "inputs": {"parameters": [{"name": "m"}]}, "container": step,
         "retryStrategy": {"limit": "2"}},
    ])


def test_stop_kills_the_running_pod_and_starts_no_other(tmp_path: Path) -> None:
    import threading

    log = tmp_path / "log"
    work = tmp_path / "work"
    work.mkdir()
    interp = Interpreter(base_env=dict(os.environ), work_dir=work, cwd=tmp_path)
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(interp.run(_chain(log, sleep_s=30))))
    t.start()
    while not log.exists():  # a is running (it sleeps 30 s)
        t.join(0.02)
    interp.stop()
    t.join(20)
    assert not t.is_alive()
    (run,) = result
    assert run.phase is NodePhase.FAILED
    assert log.read_text().split() == ["a"]  # killed in a, no retry, b and c never started
    assert run.node("hello-run.a").phase is NodePhase.FAILED
    assert run.node("hello-run.a").message == "Stopped with strategy 'Terminate'"
    assert len(run.node("hello-run.a").children) == 1
    assert "hello-run.b" not in run.nodes


def test_gate_runs_before_every_pod_and_may_hold_it(tmp_path: Path) -> None:
    log = tmp_path / "log"
    work = tmp_path / "work"
    work.mkdir()
    seen: list[str] = []

    def gate() -> None:  # what the pods wrote before each one starts: the gate comes first
        seen.append(log.read_text().replace("\n", "") if log.exists() else "")

    run = Interpreter(base_env=dict(os.environ), work_dir=work, cwd=tmp_path, gate=gate).run(_chain(log))
    assert run.phase is NodePhase.SUCCEEDED
    assert seen == ["", "a", "ab"]
