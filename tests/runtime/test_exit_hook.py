"""@exit_hook: which hooks run for which outcome, what they are given, and a failing hook."""

from __future__ import annotations

import pytest

from flowrun import run_flow
from headwater import FlowSpec, exit_hook, step
from headwater.flow.decorators import InvalidDecoratorAttribute
from headwater.flow.flow_decorators import flow_decorators


def test_success_hooks_run_and_a_failing_one_is_reported(tmp_path, use_root):
    from headwater import Flow

    root = tmp_path / ".headwater"
    r = run_flow("exit_hook_flow.py", "run", root=root)
    assert r.returncode == 0, r.output  # the broken hook does not fail the run
    use_root(root)
    run = Flow("ExitHookFlow").latest_run
    assert run.successful
    assert f"HOOK on_ok ExitHookFlow/{run.id} successful=True" in r.stdout
    assert "HOOK no_args" in r.stdout  # named by string, called without arguments
    assert "HOOK on_bad" not in r.stdout
    # Reported as Metaflow reports it: one line on stdout, the hook's traceback on stderr.
    assert "[exit_hook] Hook 'broken' failed with error: ValueError: hook exploded\n" in r.stdout
    assert 'raise ValueError("hook exploded")' in r.stderr and "[exit_hook]" not in r.stderr
    # A failing hook does not stop the ones after it, which run in the order given.
    assert r.stdout.index("HOOK on_ok") < r.stdout.index("HOOK no_args")


def test_error_hooks_run_when_the_run_fails(tmp_path, use_root):
    from headwater import Flow

    root = tmp_path / ".headwater"
    r = run_flow("exit_hook_flow.py", "run", root=root, env={"HW_FAIL": "1"})
    assert r.returncode == 1
    use_root(root)
    run = Flow("ExitHookFlow").latest_run
    assert f"HOOK on_bad ExitHookFlow/{run.id} successful=False" in r.stdout
    assert "HOOK on_ok" not in r.stdout and "[exit_hook]" not in r.stderr


def _flow() -> type:
    class F(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    return F


def test_hooks_are_checked():
    with pytest.raises(InvalidDecoratorAttribute, match="@exit_hook needs at least one hook"):
        flow_decorators(exit_hook(options={})(_flow()))[0].validate()
    with pytest.raises(InvalidDecoratorAttribute, match=r"contains 3, which is neither a function"):
        flow_decorators(exit_hook(on_error=[3])(_flow()))[0].validate()
    both = exit_hook(on_success=["a"])(exit_hook(on_error=["b"])(_flow()))
    assert [d.validate().hooks(True) for d in flow_decorators(both)] == [[], ["a"]]
