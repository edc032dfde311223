"""User step decorators, step/flow mutators and Metaflow-named StepDecorator hooks, run through the CLI.

The expected artifacts were checked against Metaflow 2.19.39 running the same flow
(tests/flows/user_decorators_flow.py with ``from metaflow import``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from flowrun import FLOWS, run_flow
from headwater import USER_SKIP_STEP, Flow, UserStepDecorator, namespace, step, user_step_decorator
from headwater.flow.user_decorators import UserDecoratorError


def _data(run, step_name: str) -> dict:
    task = run[step_name].task
    return {a.id: a.data for a in task.artifacts if not a.id.startswith("_")}


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("userdeco") / "store"
    r = run_flow("user_decorators_flow.py", "run", "--beta", "3", root=root)
    assert r.returncode == 0, r.output
    return root


@pytest.fixture
def run_of(use_root):
    def get(root: Path, flow: str):
        use_root(root)
        namespace(None)
        return Flow(flow).latest_run

    return get


def test_generator_decorator_runs_around_the_step(user_run, run_of):
    run = run_of(user_run, "UserDecoFlow")
    start = _data(run, "start")
    assert start["log"] == ["timing-pre:start"] and start["timed"] == "start"


def test_yielding_a_dict_skips_the_step_and_takes_its_transition(user_run, run_of):
    skipped = _data(run_of(user_run, "UserDecoFlow"), "skipped")
    assert "never" not in skipped
    assert skipped["skip_attrs"] == {"k": 2}


def test_yielding_a_callable_replaces_the_step(user_run, run_of):
    swapped = _data(run_of(user_run, "UserDecoFlow"), "swapped")
    assert swapped["replaced"] is True and "original_ran" not in swapped


def test_wrappers_nest_outermost_first_and_can_swallow_an_exception(user_run, run_of):
    rescued = _data(run_of(user_run, "UserDecoFlow"), "rescued")
    assert rescued["order"] == ["outer-pre", "counter-pre", "counter-post", "outer-post"]
    assert rescued["swallowed"] == "boom" and rescued["counted"] == 5
    assert rescued["before"] == 1  # artifacts set before the exception are kept


def test_skip_with_next_arguments_changes_the_foreach(user_run, run_of):
    run = run_of(user_run, "UserDecoFlow")
    assert _data(run, "join")["collected"] == ["a", "b", "c"]
    assert len(list(run["body"])) == 3


def test_flow_mutator_adds_a_parameter_and_a_decorator(user_run, run_of):
    end = _data(run_of(user_run, "UserDecoFlow"), "end")
    assert end["beta"] == 3  # added in pre_mutate, so --beta is an option of run
    assert end["timed"] == "end"  # @timing added to end in mutate


def _load_flow_module(monkeypatch: pytest.MonkeyPatch, name: str):
    monkeypatch.syspath_prepend(str(FLOWS))
    spec = importlib.util.spec_from_file_location(f"_hw_test_{name}", FLOWS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_mutator_sees_specs_and_adds_retry(monkeypatch):
    from headwater.flow.decorators import step_policy
    from headwater.flow.mutators import MutableFlow, MutableStep, prepare_flow

    flow_cls = _load_flow_module(monkeypatch, "user_decorators_flow").UserDecoFlow
    prepare_flow(flow_cls, ())
    rescued = flow_cls.rescued
    assert step_policy(rescued).retries == 2
    ms = MutableStep(MutableFlow(flow_cls, pre_mutate=False, inserted_by="test"), rescued,
                     pre_mutate=False, inserted_by="test")
    names = [s[0] for s in ms.decorator_specs]
    assert names == ["retry", "Counter", "Outer", "swallow", "AddRetry"]
    assert ("Counter", "user_decos.Counter", [], {"n": 5}) in list(ms.decorator_specs)
    assert ms.has_decorator("user_decos.swallow") and not ms.has_decorator("timing")
    assert ms.remove_decorator("Counter") is True
    assert not ms.has_decorator("Counter")
    with pytest.raises(UserDecoratorError, match="tries to add a parameter in mutate"):
        MutableFlow(flow_cls, pre_mutate=False, inserted_by="@test").add_parameter("gamma", 1)


def test_user_decorators_attach_with_dash_dash_with(tmp_path, run_of):
    root = tmp_path / "store"
    r = run_flow("hooks_flow.py", "--with", "Counter:n=3", "--with", "hooklog:handle=true", "run", root=root)
    assert r.returncode == 0, r.output
    run = run_of(root, "HooksFlow")
    assert _data(run, "end")["counted"] == 3


def test_metaflow_hooks_are_called_in_order_with_metaflow_arguments(tmp_path, run_of):
    root = tmp_path / "store"
    r = run_flow("hooks_flow.py", "--with", "hooklog:handle=true", "run", root=root)
    assert r.returncode == 0, r.output
    out = r.output
    assert out.index("HOOKLOG runtime_init HooksFlow") < out.index("HOOKLOG created 1")
    assert "HOOKLOG exception KeyError in fails" in out
    assert "HOOKLOG finished fails ok=True" in out
    assert "HOOKLOG runtime_finished None" in out
    run = run_of(root, "HooksFlow")
    assert _data(run, "start")["hooks"] == ["pre:start:1:0:0", "decorated", "post"]
    fails = _data(run, "fails")
    assert fails["partial"] == 1 and fails["hooks"] == ["pre:fails:2:0:0", "decorated"]  # no post after a failure


def test_an_unhandled_exception_fails_the_task_after_task_exception(tmp_path):
    r = run_flow("hooks_flow.py", "--with", "hooklog", "run", root=tmp_path / "store")
    assert r.returncode == 1
    assert "HOOKLOG exception KeyError in fails" in r.output
    assert "HOOKLOG finished fails ok=False" in r.output
    assert "HOOKLOG runtime_finished None" in r.output


def test_mutators_run_again_in_a_fresh_interpreter(tmp_path, run_of):
    root = tmp_path / "store"
    r = run_flow("user_decorators_flow.py", "run", root=root, launcher="subprocess")
    assert r.returncode == 0, r.output
    run = run_of(root, "UserDecoFlow")
    assert _data(run, "end")["timed"] == "end"
    assert _data(run, "rescued")["order"] == ["outer-pre", "counter-pre", "counter-post", "outer-post"]


def test_user_step_decorator_needs_a_generator_with_three_or_four_arguments():
    with pytest.raises(UserDecoratorError, match="can only decorate a generator function"):
        user_step_decorator(lambda step_name, flow, inputs: None)

    def two(step_name, flow):
        yield

    with pytest.raises(UserDecoratorError, match="takes 2 arguments"):
        user_step_decorator(two)


def test_arguments_need_init_and_attributes_need_a_fourth_parameter():
    class NoInit(UserStepDecorator):
        pass

    def f(self):
        pass

    deco = NoInit(x=1)
    deco(step(f))
    with pytest.raises(UserDecoratorError, match="used with arguments but does not implement init"):
        deco.external_init()

    @user_step_decorator
    def three(step_name, flow, inputs):
        yield

    with pytest.raises(UserDecoratorError, match="takes no attributes parameter"):
        three(k=1).external_init()
    assert USER_SKIP_STEP == {}


def test_a_user_decorator_must_sit_above_step():
    @user_step_decorator
    def nothing(step_name, flow, inputs):
        yield

    with pytest.raises(UserDecoratorError, match="must be placed above @step"):
        nothing()(lambda self: None)


def test_unknown_with_name_lists_what_exists(tmp_path):
    r = run_flow("hooks_flow.py", "--with", "no_such_deco", "run", root=tmp_path / "store")
    assert r.returncode == 1
    assert "there is no step decorator called 'no_such_deco'" in r.output
    assert "The following decorators are supported: " in r.output and "Traceback" not in r.output


@pytest.fixture(autouse=True)
def _forget_test_modules():
    yield
    for name in [m for m in sys.modules if m.startswith("_hw_test_") or m == "user_decos"]:
        del sys.modules[name]
