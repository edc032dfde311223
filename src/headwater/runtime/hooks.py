"""Decorator hooks in the task process (execution layer): which decorators of a
step override which Metaflow hook, and the user step decorators (wrappers)
around the step function, with Metaflow's semantics (pre_step outermost first,
replacement callables, skipping, exceptions caught or replaced in post_step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..exceptions import InvalidNextError
from ..flow.decorators import StepDecorator
from ..flow.graph import NodeKind

_HOOKS = ("task_pre_step", "task_decorate", "task_post_step", "task_exception", "task_finished",
          "hw_task_pre_step", "hw_task_finished")


@dataclass(frozen=True)
class StepHooks:
    """The step's decorators that override each task hook, in attachment order."""

    task_pre_step: tuple[StepDecorator, ...] = ()
    task_decorate: tuple[StepDecorator, ...] = ()
    task_post_step: tuple[StepDecorator, ...] = ()
    task_exception: tuple[StepDecorator, ...] = ()
    task_finished: tuple[StepDecorator, ...] = ()
    hw_task_pre_step: tuple[StepDecorator, ...] = ()
    hw_task_finished: tuple[StepDecorator, ...] = ()
    wrappers: tuple[Any, ...] = ()

    @property
    def any_finished(self) -> bool:
        return bool(self.task_finished or self.hw_task_finished)


_NONE = StepHooks()


@dataclass(frozen=True)
class StepPlan:
    """What the executor needs of a step's decorators, worked out once per flow class and step."""

    hooks: StepHooks
    catch: StepDecorator | None  # the step's @catch, if any
    timeout: float | None  # the step's @timeout in seconds, if any


_plans: dict[tuple[type, str], StepPlan] = {}  # filled in the zygote before forks, or once in a `step` process


def step_plan(flow_cls: type, step_name: str) -> StepPlan:
    """The step's hooks, ``@catch`` and ``@timeout``, computed on first use and kept.

    Raises what a decorator's validation raises (e.g. ``InvalidDecoratorAttribute``);
    nothing is kept then, so each task fails with that error.
    """
    plan = _plans.get((flow_cls, step_name))
    if plan is None:
        func = getattr(flow_cls, step_name)
        timeout = _named(func, "timeout")
        plan = _plans[(flow_cls, step_name)] = StepPlan(
            step_hooks(func), _named(func, "catch"), float(timeout.total_seconds) if timeout is not None else None)
    return plan


def _named(step_func: Any, name: str) -> Any:
    for d in getattr(step_func, "decorators", ()):
        if d.name == name:
            return d.validate()
    return None


def step_hooks(step_func: Any) -> StepHooks:
    """The hooks of a step function's decorators (only those a decorator overrides)."""
    decos = [d.validate() for d in getattr(step_func, "decorators", ())]
    wrappers = tuple(getattr(step_func, "wrappers", ()))
    if not decos and not wrappers:
        return _NONE
    for w in wrappers:
        w.external_init()
    found = {h: tuple(d for d in decos if getattr(type(d), h) is not getattr(StepDecorator, h)) for h in _HOOKS}
    return StepHooks(wrappers=wrappers, **found)


def run_wrapped(step_func: Any, flow: Any, node: Any, wrappers: tuple[Any, ...], inputs: Any) -> None:
    """Run ``step_func`` inside the user step decorators ``wrappers`` (innermost first, as attached).

    Raises what the step (or a wrapper) raised unless a wrapper swallowed it; when
    a wrapper skipped or replaced the step, or swallowed its exception, the
    step's transition is set here from the graph or the wrapper's arguments.
    """
    if not wrappers:
        step_func() if inputs is None else step_func(inputs)
        return
    name = node.name
    entered: list[Any] = []
    replacement = None
    next_args: Any = None
    for w in reversed(wrappers):  # the decorator written on top runs first
        replacement = w.pre_step(name, flow, inputs)
        entered.append(w)
        if w.skip_step:
            next_args = w.skip_step
            break
        if replacement:
            break
    error: BaseException | None = None
    raised = False
    if not next_args:
        try:
            if replacement:
                result = replacement(flow) if inputs is None else replacement(flow, inputs)
                next_args = result or None
            else:
                step_func() if inputs is None else step_func(inputs)
        except Exception as e:
            error, raised = e, True
    for w in reversed(entered):
        try:
            r = w.post_step(name, flow, error)
        except Exception as e:
            r = e
        if r is None:
            error = None
        elif isinstance(r, BaseException):
            error = r
        elif isinstance(r, tuple) and len(r) == 2:
            error, next_args = r
        elif isinstance(r, tuple) and len(r) == 3:
            raise r[2]
        else:
            raise TypeError(f"{w!r}.post_step returned {r!r}; expected None, an exception or (exception, next_args).")
    if error is not None:
        raise error
    if (next_args is not None and next_args is not False) or raised:
        _fake_next(flow, node, next_args)


def _fake_next(flow: Any, node: Any, next_args: Any) -> None:
    """Set the transition a skipped, replaced or rescued step did not set itself."""
    flow.__dict__["_hw_transition"] = None
    if not node.out_funcs:
        return
    if isinstance(next_args, dict) and next_args:
        args = dict(next_args)
        if node.kind is NodeKind.SWITCH:
            cases = {k: getattr(flow, s) for k, s in node.switch_cases}
            flow.next(cases, **args)
        else:
            flow.next(*(getattr(flow, s) for s in node.out_funcs), **args)
        return
    if node.kind is NodeKind.SWITCH:
        raise InvalidNextError(
            f"Step {node.name!r} is a switch and was skipped without saying where to go.",
            hint="Yield (or return) a dict of self.next arguments, e.g. {'condition': 'attr'}.")
    if node.foreach_param:
        flow.next(*(getattr(flow, s) for s in node.out_funcs), foreach=node.foreach_param)
    else:
        flow.next(*(getattr(flow, s) for s in node.out_funcs))


@dataclass(frozen=True)
class RuntimeHooks:
    """The run-process hooks of a flow's step decorators (decided once per run)."""

    runtime_init: tuple[StepDecorator, ...] = ()
    runtime_task_created: dict[str, tuple[StepDecorator, ...]] | None = None
    runtime_finished: tuple[StepDecorator, ...] = ()

    def init(self, flow_cls: type, graph: Any, run_id: str) -> None:
        from ..flow.decorators import flow_instance

        flow = flow_instance(flow_cls) if self.runtime_init else None
        for d in self.runtime_init:
            d.runtime_init(flow, graph, None, run_id)

    def finished(self, exception: BaseException | None) -> None:
        import sys

        for d in self.runtime_finished:
            try:
                d.runtime_finished(exception)
            except Exception as e:  # the run's outcome is decided: report and go on
                sys.stderr.write(f"@{d.name} failed in runtime_finished: {type(e).__name__}: {e}\n")


def runtime_hooks(flow_cls: type, graph: Any) -> RuntimeHooks:
    """Which step decorators of the flow override ``runtime_init``, ``runtime_task_created``
    and ``runtime_finished``."""
    def overrides(d: StepDecorator, hook: str) -> bool:
        return getattr(type(d), hook) is not getattr(StepDecorator, hook)

    by_step = {n: [d.validate() for d in getattr(getattr(flow_cls, n), "decorators", ())] for n in graph.sorted_nodes}
    every = [d for decos in by_step.values() for d in decos]
    created = {n: tuple(d for d in decos if overrides(d, "runtime_task_created")) for n, decos in by_step.items()}
    return RuntimeHooks(
        runtime_init=tuple(d for d in every if overrides(d, "runtime_init")),
        runtime_task_created={n: c for n, c in created.items() if c} or None,
        runtime_finished=tuple(d for d in every if overrides(d, "runtime_finished")),
    )
