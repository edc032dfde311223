"""Flow-level decorators: attachment, validation, and the top-level options they add."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flowrun import run_flow
from headwater import FlowSpec, HeadwaterException, step
from headwater.flow.decorators import InvalidDecoratorAttribute
from headwater.flow.flow_decorators import FlowDecorator, flow_decorators, make_flow_decorator


class _Marker(FlowDecorator):
    name = "marker"
    defaults = {"label": None}


marker = make_flow_decorator(_Marker)


def _flow() -> type:
    class F(FlowSpec):
        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass

    return F


def test_bare_and_called_attach_to_the_class_only():
    base = marker(_flow())
    assert [d.name for d in flow_decorators(base)] == ["marker"]

    class Sub(base):  # a subclass does not inherit its base's flow decorators
        pass

    assert flow_decorators(Sub) == []
    called = marker(label="x")(_flow())
    assert flow_decorators(called)[0].validate().attributes == {"label": "x"}


def test_twice_and_on_a_non_flow_are_errors():
    with pytest.raises(HeadwaterException, match="has @marker twice"):
        marker(marker(_flow()))
    with pytest.raises(HeadwaterException, match="put it on a FlowSpec subclass"):
        marker(label="x")(object)


def test_unknown_attribute_names_the_decorator():
    deco = flow_decorators(marker(lbl=1)(_flow()))[0]
    with pytest.raises(InvalidDecoratorAttribute, match=r"@marker has no attribute 'lbl'"):
        deco.validate()


def test_options_become_top_level_and_reach_flow_init(tmp_path: Path):
    flow = tmp_path / "opt_flow.py"
    flow.write_text(textwrap.dedent('''
        from headwater import FlowSpec, step
        from headwater.flow.flow_decorators import FlowDecorator, make_flow_decorator

        class Greeter(FlowDecorator):
            name = "greeter"
            options = {"greeting": {"default": "hi", "help": "What to say."}}

            def flow_init(self, flow, graph, environment, flow_datastore, metadata, logger, echo, options):
                print("GREETING=" + options["greeting"])

        @make_flow_decorator(Greeter)
        class OptFlow(FlowSpec):
            @step
            def start(self):
                self.next(self.end)

            @step
            def end(self):
                pass

        if __name__ == "__main__":
            OptFlow()
    '''))
    r = run_flow(flow, "--greeting", "hello", "run", root=tmp_path / "store")
    assert r.returncode == 0, r.output
    assert "GREETING=hello" in r.stdout
    r = run_flow(flow, "--help", root=tmp_path / "store")
    assert "--greeting" in r.stdout and "What to say." in r.stdout
