# ruff: noqa: F821  (FlowSpec is provided by tests/flow/conftest.py:load_flow_module)
"""Broken flows, one (or a few) per lint rule; ``# L:<marker>`` marks the line a test expects."""
from headwater.flow.step import step


class ReservedCmd(FlowSpec):
    @step
    def start(self):
        self.next(self.cmd)

    @step
    def cmd(self):  # L:reserved-cmd
        self.next(self.end)

    @step
    def end(self):
        pass


class ReservedFlowSpecMember(FlowSpec):
    @step
    def start(self):
        self.next(self.foreach_stack)

    @step
    def foreach_stack(self):  # L:reserved-member
        self.next(self.end)

    @step
    def end(self):
        pass


class BadNameUpper(FlowSpec):
    @step
    def start(self):
        self.next(self.Train)

    @step
    def Train(self):  # L:bad-upper
        self.next(self.end)

    @step
    def end(self):
        pass


class BadNameUnderscore(FlowSpec):
    @step
    def start(self):
        self.next(self._train)

    @step
    def _train(self):  # L:bad-underscore
        self.next(self.end)

    @step
    def end(self):
        pass


class NoStart(FlowSpec):  # L:no-start
    @step
    def begin(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class NoEnd(FlowSpec):  # L:no-end
    @step
    def start(self):
        self.next(self.finish)

    @step
    def finish(self):
        pass


class TwoStarts(FlowSpec):
    @step(start=True)
    def first(self):
        self.next(self.end)

    @step(start=True)
    def second(self):  # L:two-starts
        self.next(self.end)

    @step
    def end(self):
        pass


class StartConflict(FlowSpec):
    @step(start=True)
    def begin(self):  # L:start-conflict
        self.next(self.end)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class EndConflict(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        self.next(self.finish)

    @step(end=True)
    def finish(self):  # L:end-conflict
        pass


class StartHasIncoming(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):
        self.next(self.start, self.end)  # L:start-incoming

    @step
    def end(self):
        pass


class EndHasNext(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        self.next(self.start)  # L:end-next


class MissingNext(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):  # L:missing-next
        self.x = 1

    @step
    def end(self):
        pass


class NextNotLast(FlowSpec):
    @step
    def start(self):
        if self.x:
            self.next(self.end)  # L:next-not-last
        else:
            self.next(self.end)

    @step
    def end(self):
        pass


class NextTwice(FlowSpec):
    @step
    def start(self):
        self.next(self.end)  # L:next-twice
        self.next(self.end)

    @step
    def end(self):
        pass


class NumParallel(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=4)  # L:num-parallel

    @step
    def train(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class ForeachNotLiteral(FlowSpec):
    @step
    def start(self):
        name = "items"
        self.next(self.a, foreach=name)  # L:foreach-not-literal

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class TargetNotSelfAttr(FlowSpec):
    @step
    def start(self):
        self.next(end)  # L:not-self-attr

    @step
    def end(self):
        pass


class SwitchKeyNotLiteral(FlowSpec):
    @step
    def start(self):
        self.next({self.key: self.a, "b": self.end}, condition="c")  # L:switch-key

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class UnknownTarget(FlowSpec):
    @step
    def start(self):
        self.next(self.trian)  # L:unknown

    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class NotAStep(FlowSpec):
    @step
    def start(self):
        self.next(self.helper)  # L:not-a-step

    def helper(self):
        pass

    @step
    def end(self):
        pass


class Orphan(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def lonely(self):  # L:orphan
        self.next(self.end)

    @step
    def end(self):
        pass


class TooManyArgs(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self, x, y):  # L:too-many-args
        self.next(self.end)

    @step
    def end(self):
        pass


class JoinAndSplit(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):  # L:join-and-split
        self.next(self.c, self.d)

    @step
    def c(self):
        self.next(self.join2)

    @step
    def d(self):
        self.next(self.join2)

    @step
    def join2(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class EndTakesInputs(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self, inputs):  # L:end-inputs
        pass


class InputsWithoutSplit(FlowSpec):
    @step
    def start(self):
        self.next(self.gather)

    @step
    def gather(self, inputs):  # L:inputs-no-split
        self.next(self.end)

    @step
    def end(self):
        pass


class JoinMissesBranch(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b, self.c)

    @step
    def a(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def c(self):
        self.next(self.end)  # L:end-open-split

    @step
    def join(self, inputs):  # L:join-missing
        self.next(self.end)

    @step
    def end(self):
        pass


class JoinExtraInput(FlowSpec):
    @step
    def start(self):
        self.next(self.outer_a, self.outer_b)

    @step
    def outer_a(self):
        self.next(self.x, self.y)

    @step
    def x(self):
        self.next(self.join)

    @step
    def y(self):
        self.next(self.join)

    @step
    def outer_b(self):
        self.next(self.join)  # L:join-extra

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class MergeWithoutJoin(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.merge)

    @step
    def b(self):
        self.next(self.merge)

    @step
    def merge(self):  # L:merge-no-join
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class EmptyForeach(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.join, foreach="items")  # L:empty-foreach

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class ForeachWithoutJoin(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2]
        self.next(self.body, foreach="items")  # L:foreach-no-join

    @step
    def body(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class SwitchOneCase(FlowSpec):
    @step
    def start(self):
        self.next({"only": self.end}, condition="mode")  # L:switch-one-case

    @step
    def end(self):
        pass


class SwitchNoCondition(FlowSpec):
    @step
    def start(self):
        self.next({"a": self.a, "b": self.end})  # L:switch-no-condition

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass


class SwitchIntoJoin(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next({"skip": self.join, "work": self.c}, condition="mode")  # L:switch-into-join

    @step
    def c(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class Cycle(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):
        self.next(self.b)

    @step
    def b(self):
        self.next({"again": self.a, "done": self.end}, condition="more")  # L:cycle-back

    @step
    def end(self):
        pass


class LinearSelfLoop(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):
        self.next(self.a)  # L:self-loop

    @step
    def end(self):
        pass


class Several(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):  # L:several-1
        pass

    @step
    def Bad(self):  # L:several-2
        self.next(self.end)

    @step
    def end(self):
        pass
