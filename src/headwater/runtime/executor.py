"""``execute(TaskSpec) -> TaskResult``: run one attempt of one step and commit it.

The single execution contract: the fork pool, the ``step`` CLI command and any
remote launcher all call this. It loads inputs lazily, runs the step, persists
the artifacts and writes the attempt record (the commit point). It knows
nothing of where it runs.
"""

from __future__ import annotations

import pickle
import reprlib
import time
import traceback
from dataclasses import dataclass
from typing import Any

from .. import run_namespace
from ..exceptions import (ArtifactError, FailureHandledByCatch, HeadwaterException, InvalidNextError, TaskCrashed,
                          TimeoutException, qualified_type)
from ..flow.current import current
from ..flow.flow_decorators import flow_current_fields
from ..flow.graph import NodeKind
from ..flow.parallel import PARALLEL_VAR
from ..flow.parameters import Parameter
from ..flow.spec import FlowSpec, Inputs, nth_item
from ..store import Datastore
from ..store.codec import forget_loaded_blobs, track_loaded_blobs
from ..store.itemtable import load_item, save_item_table
from . import deadline
from .hooks import StepHooks, run_wrapped, step_plan
from .owner import check_owner
from .taskspec import ForeachFrame, TaskResult, TaskSpec, stack_record

# Values of these types cannot change in place, so a loaded-and-untouched one
# keeps its reference instead of being re-serialized and re-hashed.
_IMMUTABLE = (int, float, bool, str, bytes, type(None), complex, frozenset)

_graph_info_cache: dict[int, dict] = {}  # per flow graph; filled in the zygote before forks


def graph_info(graph: Any) -> dict:
    info = _graph_info_cache.get(id(graph))
    if info is None:
        info = _graph_info_cache[id(graph)] = graph.to_info()
    return info


def _short_repr(value: Any, limit: int = 30) -> str:
    """An item as Metaflow shows it in ``foreach-stack``: a str, int, float or bool
    as ``str()``, anything else as a ``reprlib`` repr; at most ``limit`` characters."""
    if isinstance(value, (str, int, float, bool)):
        return str(value)[:limit]
    try:
        r = reprlib.repr(value)
    except Exception:  # a broken __repr__ must not fail the task
        r = f"<{type(value).__name__}>"
    return r[:limit]


_param_names: dict[type, list[str]] = {}
_flow_fields: dict[type, dict[str, Any]] = {}


def flow_fields(flow_cls: type) -> dict[str, Any]:
    """``current`` fields from flow decorators (e.g. @project's), once per flow class per process."""
    fields = _flow_fields.get(flow_cls)
    if fields is None:  # in the zygote before forks, or once in a `step` process
        fields = _flow_fields[flow_cls] = flow_current_fields(flow_cls)
    return fields


def parameter_names(flow_cls: type) -> list[str]:
    names = _param_names.get(flow_cls)
    if names is None:  # once per flow class (in the zygote, before forks)
        names = _param_names[flow_cls] = [n for n in dir(flow_cls) if isinstance(getattr(flow_cls, n, None), Parameter)]
    return names


def _new_flow(flow_cls: type, refs: dict[str, dict], content: Any, step_name: str) -> FlowSpec:
    flow = flow_cls.__new__(flow_cls)
    flow._hw_reset()
    d = flow.__dict__
    d["_hw_refs"] = dict(refs)
    d["_hw_loader"] = content.load
    d["_hw_viewer"] = content.view
    d["_hw_step_name"] = step_name
    return flow


def _input_flow(flow_cls: type, parent: dict[str, Any], content: Any) -> FlowSpec:
    """One of a join's inputs: the parent's artifacts, and its place in any foreach."""
    flow = _new_flow(flow_cls, parent["artifacts"], content, parent["step"])
    flow.__dict__["_hw_foreach_stack"] = tuple(ForeachFrame(**f) for f in parent.get("foreach_stack") or ())
    return flow


def _resolve_transition(flow: FlowSpec, node: Any, spec: TaskSpec) -> tuple[tuple[str, ...], str | None, Any]:
    """Check the step's ``self.next`` against the graph; returns (next steps, foreach var, case)."""
    t = flow.__dict__.get("_hw_transition")
    kind = node.kind
    if kind is NodeKind.END:
        if t is not None:
            raise InvalidNextError(f"The end step {spec.step_name!r} must not call self.next().")
        return (), None, None
    if t is None:
        raise InvalidNextError(
            f"Step {spec.step_name!r} finished without calling self.next().",
            hint="End the step with self.next(...), as its last statement.",
        )
    form, targets, arg = t
    if kind is NodeKind.SWITCH:
        if form != "switch":
            raise InvalidNextError(f"Step {spec.step_name!r} must transition with a switch (condition=...).")
        value = getattr(flow, node.condition)
        taken = node.switch_case(value)
        if taken is not None:
            return (taken[1],), None, str(taken[0])
        cases = ", ".join(repr(k) for k in node.switch_case_values)
        raise InvalidNextError(
            f"Step {spec.step_name!r}: switch condition {node.condition!r} has value {value!r}, "
            f"which matches none of the cases ({cases}).",
            hint="Set the condition attribute to one of the case keys, or add a case for this value.",
        )
    expected = tuple(node.out_funcs)
    if (tuple(targets) != expected or (kind is NodeKind.FOREACH) != (form == "foreach")
            or (kind is NodeKind.PARALLEL) != (form == "parallel")):
        raise InvalidNextError(
            f"Step {spec.step_name!r} called self.next() with a transition its graph does not have "
            f"(expected {', '.join(expected)}).",
            hint="self.next() must be the step's last statement and its targets fixed in source.",
        )
    if form == "foreach":
        return expected, arg, None
    return expected, None, None


@dataclass
class TaskHookContext:
    """What step decorators' internal task hooks see (see StepDecorator.hw_task_pre_step)."""

    flow: Any
    spec: TaskSpec
    graph: Any
    datastore: Datastore
    record: dict[str, Any] | None = None
    ok: bool = False


def _task_finished(hooks: StepHooks, ctx: TaskHookContext) -> None:
    import sys

    spec = ctx.spec
    for d in hooks.hw_task_finished:
        try:
            d.hw_task_finished(ctx)
        except Exception as e:  # the attempt is committed: a hook must not change its outcome
            sys.stderr.write(f"@{d.name} failed after the task finished: {type(e).__name__}: {e}\n")
    for d in hooks.task_finished:
        try:
            d.task_finished(spec.step_name, ctx.flow, ctx.graph, ctx.ok, spec.attempt, spec.max_user_code_retries)
        except Exception as e:
            sys.stderr.write(f"@{d.name} failed after the task finished: {type(e).__name__}: {e}\n")


def execute(spec: TaskSpec, flow_cls: type, graph: Any, ds: Datastore) -> TaskResult:
    """Run one attempt of one task and commit its attempt record."""
    started = time.time()
    forget_loaded_blobs()  # a process that runs several tasks must not keep their mappings
    track_loaded_blobs()  # re-saving an untouched inherited array skips re-hashing it
    records, content = ds.records, ds.content.for_run(spec.flow_name, spec.run_id)  # blobs pinned as the run's
    node = graph[spec.step_name]
    rec: dict[str, Any] = {
        "version": 1, "flow": spec.flow_name, "run_id": spec.run_id, "step": spec.step_name,
        "task_id": spec.task_id, "attempt": spec.attempt, "status": "failed",
        "started_at": started, "finished_at": None, "input_paths": list(spec.input_paths),
        "split_index": spec.split_index,
        "foreach_stack": stack_record(spec.foreach_stack),
        "transition": None, "artifacts": {}, "exception": None,
        "metadata": {"user": spec.user, **({"origin_run_id": spec.origin_run_id} if spec.origin_run_id else {}),
                     **dict(spec.extra)},
    }
    if spec.foreach_stack:  # Metaflow's foreach-execution-path: "<body step>:<index>" per level
        rec["metadata"]["foreach-execution-path"] = ",".join(
            f"{_body_step(graph, f.step)}:{f.index}" for f in spec.foreach_stack)
    gpus = dict(spec.env).get("CUDA_VISIBLE_DEVICES")
    if gpus is not None:
        rec["metadata"]["gpus"] = gpus
    hooks: StepHooks | None = None
    hook_ctx: Any = None
    next_steps: tuple[str, ...] = ()
    foreach_var = None
    num_splits = None
    foreach_values: tuple[str, ...] = ()
    case = None
    user_error = False
    timed_out = False
    flow: FlowSpec | None = None
    try:
        parents = [
            records.read_attempt(spec.flow_name, spec.run_id, *path.split("/"), att)
            for path, att in zip(spec.input_paths, spec.input_attempts)
        ]
        is_join = node.kind is NodeKind.JOIN
        if is_join:
            inputs = Inputs([_input_flow(flow_cls, p, content) for p in parents])
            shared = set(parameter_names(flow_cls)) | _constant_names(parents[0]["artifacts"], flow_cls)
            refs = {k: v for k, v in parents[0]["artifacts"].items() if k in shared}
        else:
            refs = parents[0]["artifacts"] if parents else {}
        flow = _new_flow(flow_cls, refs, content, spec.step_name)
        flow.__dict__["_hw_is_join"] = is_join
        flow.__dict__["_hw_foreach_stack"] = spec.foreach_stack
        if spec.foreach_stack and parents:
            item_refs = _item_refs(parents[0], spec)
            flow.__dict__["_hw_item_refs"] = item_refs
            flow.__dict__["_hw_item_loader"] = lambda ref: load_item(ds.content, ref, ref["index"])
            if any(r is not None for r in item_refs):
                rec["foreach_item_refs"] = item_refs
        if spec.split_index is not None and spec.foreach_stack:
            frame = spec.foreach_stack[-1]
            if frame.var == PARALLEL_VAR:  # a gang member: its input is its node index
                flow.__dict__["_hw_input"] = spec.split_index
            else:
                flow.__dict__["_hw_input"] = _foreach_input(ds, parents[0], frame.var, spec.split_index)

        current._set(
            flow_name=spec.flow_name, run_id=spec.run_id, step_name=spec.step_name,
            task_id=spec.task_id, retry_count=spec.attempt, origin_run_id=spec.origin_run_id,
            namespace=spec.identity or f"user:{spec.user}", username=spec.user, tags=list(spec.tags),
            parameter_names=parameter_names(flow_cls), graph=graph_info(graph),
            _datastore_root=spec.datastore_root, **flow_fields(flow_cls),
        )
        run_namespace.choose(_run_namespace(spec))  # what the client sees inside the step
        func = getattr(flow, spec.step_name)
        plan = step_plan(flow_cls, spec.step_name)
        catch, hooks = plan.catch, plan.hooks
        hook_ctx = TaskHookContext(flow, spec, graph, ds)
        retry, max_retries = spec.attempt, spec.max_user_code_retries
        for d in hooks.task_pre_step:
            d.task_pre_step(spec.step_name, ds, None, spec.run_id, spec.task_id, flow, graph, retry, max_retries,
                            None, inputs if is_join else None)
        for d in hooks.hw_task_pre_step:
            d.hw_task_pre_step(hook_ctx)
        timer: deadline.StepTimer | None = None
        try:
            if spec.fallback is not None:
                raise _fallback_exception(spec.fallback, spec.attempt)
            for d in hooks.task_decorate:
                func = d.task_decorate(func, flow, graph, retry, max_retries, None)
            if plan.timeout:
                # The scheduler's deadline counts from launch; without one (a `step` run by hand
                # or by an orchestrator) the step gets its whole @timeout from now.
                at = spec.deadline if spec.deadline is not None else deadline.task_deadline(plan.timeout)
                timer = deadline.StepTimer(spec.step_name, plan.timeout, at)
                timer.run(run_wrapped, func, flow, node, hooks.wrappers, inputs if is_join else None)
            else:
                run_wrapped(func, flow, node, hooks.wrappers, inputs if is_join else None)
            for d in hooks.task_post_step:
                d.task_post_step(spec.step_name, flow, graph, retry, max_retries)
            if catch is not None and catch.attributes["var"] and catch.attributes["var"] not in flow.__dict__:
                flow.__dict__[catch.attributes["var"]] = None
            next_steps, foreach_var, case = _resolve_transition(flow, node, spec)
        except Exception as e:
            handled = False
            for d in hooks.task_exception:  # every decorator hears of it, as in Metaflow
                handled = bool(d.task_exception(e, spec.step_name, flow, graph, retry, max_retries)) or handled
            last_attempt = spec.fallback is not None or spec.attempt >= spec.max_user_code_retries
            timed_out = timer is not None and isinstance(e, TimeoutException)
            if handled:
                next_steps, foreach_var, case = _handled_transition(flow, node, spec, e)
            elif catch is None or not last_attempt:
                raise
            else:
                next_steps = _handle_caught(flow, node, catch, e, rec)
                foreach_var = case = None
        finally:
            current._clear()
            run_namespace.choose(())  # a process that runs several tasks starts each afresh
        if foreach_var is not None:
            num_splits, foreach_values = _foreach_info(flow, foreach_var, spec)
        elif node.kind is NodeKind.PARALLEL and flow.__dict__.get("_hw_transition") is not None:
            num_splits = flow.__dict__["_hw_transition"][2]
            foreach_values = tuple(str(i) for i in range(num_splits))
        rec["artifacts"] = _persist(flow, content, spec.step_name)
        if foreach_var is not None:
            _save_foreach_items(flow, foreach_var, content, rec)
        rec["status"] = "ok"
        rec["transition"] = {"next": list(next_steps), "foreach": foreach_var,
                             "num_splits": num_splits, "switch_case": case}
    except BaseException as e:  # the task must commit a record whatever the step raised
        if isinstance(e, KeyboardInterrupt):
            raise
        user_error = isinstance(e, HeadwaterException)
        # What the step set before it failed stays visible on the failed attempt
        # (users debug from it, as in Metaflow); a value that cannot be stored is skipped.
        rec["artifacts"] = _persist_partial(flow, content) if flow is not None else {}
        rec["exception"] = {
            "type": qualified_type(type(e)),
            "message": e.render() if user_error else str(e),
            "traceback": "" if user_error else _user_traceback(e),
        }
        _print_failure(rec["exception"], user_error)
    rec["finished_at"] = time.time()
    try:
        # Nothing commits after its run died: see "Killed runs" in docs/store.md for the one
        # window left (the run dying between this check and the record's rename).
        check_owner(spec.run_owner, spec.pathspec, spec.attempt)
        records.write_attempt(rec)
    finally:
        if timed_out:  # the timed-out step's processes go, whether or not the attempt commits
            deadline.kill_descendants(dedicated=spec.dedicated_process)
    ok = rec["status"] == "ok"
    if hooks is not None and hooks.any_finished:
        hook_ctx.record, hook_ctx.ok = rec, ok
        _task_finished(hooks, hook_ctx)
    return TaskResult(
        task_key=spec.key, attempt=spec.attempt, ok=ok, started_at=started,
        finished_at=rec["finished_at"], next_steps=tuple(next_steps), foreach_var=foreach_var,
        num_splits=num_splits, foreach_values=foreach_values, switch_case=case,
        exception=rec["exception"], user_error=user_error,
    )


def _handled_transition(flow: FlowSpec, node: Any, spec: TaskSpec,
                        exc: Exception) -> tuple[tuple[str, ...], str | None, Any]:
    """A decorator's task_exception handled the step's exception: take the transition the step
    set, else its static one."""
    if flow.__dict__.get("_hw_transition") is not None:
        return _resolve_transition(flow, node, spec)
    if node.kind in (NodeKind.FOREACH, NodeKind.SWITCH):
        raise InvalidNextError(
            f"Step {spec.step_name!r} raised {type(exc).__name__} and a decorator's task_exception handled it, "
            "but a foreach or switch step cannot continue without calling self.next().",
            hint="Handle the exception inside the step, or let it fail.") from exc
    return (tuple(node.out_funcs) if node.kind is not NodeKind.END else ()), None, None


def _run_namespace(spec: TaskSpec) -> tuple[str | None, ...]:
    """``run --namespace``: the client namespace inside the step ("" is the global one), if the run chose one."""
    ns = dict(spec.extra).get("namespace")
    return () if ns is None else (ns or None,)


def _body_step(graph: Any, split: str) -> str:
    out = graph[split].out_funcs if split in graph else ()
    return out[0] if out else split


def _fallback_exception(fallback: dict[str, str], attempt: int) -> Exception:
    """What @catch records in the fallback attempt after ``attempt`` attempts crashed or timed out.

    A timeout is the step's own ``TimeoutException`` (Metaflow raises it inside the step); a
    crash is Metaflow's ``FailureHandledByCatch``, caused by a ``TaskCrashed`` that names how
    the process died (kept in the stacktrace).
    """
    message = fallback.get("message", "the task process died")
    if fallback.get("type", "").rsplit(".", 1)[-1] == TimeoutException.__name__:
        return TimeoutException(message)
    exc = FailureHandledByCatch(attempt)
    exc.__cause__ = TaskCrashed(message)
    return exc


def _handle_caught(flow: FlowSpec, node: Any, catch: Any, exc: Exception, rec: dict[str, Any]) -> tuple[str, ...]:
    """@catch on the final attempt: keep the exception, follow the static transition."""
    import sys

    from ..exceptions import HeadwaterExceptionWrapper

    wrapper = HeadwaterExceptionWrapper(exc, stacktrace=_user_traceback(exc))
    if catch.attributes["print_exception"]:  # Metaflow's format: a head line, then the traceback quoted
        quoted = "".join(f">  {line}\n" for line in wrapper.stacktrace.splitlines())
        sys.stderr.write(f"@catch caught an exception from <flow {type(flow).__name__} step {node.name}>\n{quoted}")
        sys.stderr.flush()
    var = catch.attributes["var"]
    if var:
        flow.__dict__[var] = wrapper
    # The attempt finished (the flow goes on) but did not succeed: Metaflow's
    # task.finished is True and task.successful False for it.
    rec["caught"] = {"type": wrapper.type, "message": wrapper.message}
    flow.__dict__["_hw_transition"] = None
    return tuple(node.out_funcs) if node.kind is not NodeKind.END else ()


def _constant_names(artifacts: dict, flow_cls: type) -> set[str]:
    names = {"name"}
    for n in artifacts:
        if n in vars(flow_cls) or any(n in vars(c) for c in flow_cls.__mro__ if c is not object):
            names.add(n)
    return names


def _foreach_input(ds: Datastore, parent: dict[str, Any], var: str, i: int) -> Any:
    """A foreach child's item: read alone from the split's item table, else taken from the whole list
    (a small list inline in the record, or a split that stored no table)."""
    table = parent.get("foreach_items")
    if table is not None and table.get("var") == var:
        return load_item(ds.content, table, i)
    return nth_item(ds.content.load(parent["artifacts"][var]), i)


def _item_refs(parent: dict[str, Any], spec: TaskSpec) -> list[dict[str, Any] | None]:
    """Where each foreach level's item of this task lies: ``{"key", "index"}`` in an item table,
    or None (taken from the foreach attribute). A split's child adds its own level; a step inside
    the foreach keeps its parent's; a join drops the level it closes. Recorded as
    ``foreach_item_refs``, so the steps after a foreach child read their item alone too."""
    depth = len(spec.foreach_stack)
    refs = list(parent.get("foreach_item_refs") or ())
    if spec.split_index is not None:
        refs = refs[: depth - 1]
        refs += [None] * (depth - 1 - len(refs))
        table = parent.get("foreach_items")
        frame = spec.foreach_stack[-1]
        refs.append({"key": table["key"], "index": spec.split_index}
                    if table is not None and table.get("var") == frame.var else None)
        return refs
    refs = refs[:depth]
    return refs + [None] * (depth - len(refs))


def _save_foreach_items(flow: FlowSpec, var: str, content: Any, rec: dict[str, Any]) -> None:
    """A split whose foreach list is a blob also stores an item table (store.itemtable), so each
    child reads its own item only: small items are copied into it, large buffers are referred to
    where the list's blob holds them. A list inline in the record, or one whose items are large in
    band, gets none (its children take their item from the list)."""
    ref = rec["artifacts"].get(var, {"inline": ""})
    if "inline" in ref:
        return
    table = save_item_table(content, getattr(flow, var), list_key=ref["key"])  # pinned as the run's
    if table is not None:
        rec["foreach_items"] = {"var": var, **table}


def _foreach_info(flow: FlowSpec, var: str, spec: TaskSpec) -> tuple[int, tuple[str, ...]]:
    try:
        items = getattr(flow, var)
    except AttributeError:
        raise InvalidNextError(
            f"Step {spec.step_name!r}: the foreach attribute {var!r} was not set.",
            hint=f"Set self.{var} to a list (or any iterable) before self.next(..., foreach={var!r}).",
        ) from None
    try:
        n = len(items)
    except TypeError:
        try:
            items = list(items)
        except TypeError:
            raise InvalidNextError(
                f"Step {spec.step_name!r}: the foreach attribute {var!r} is a {type(items).__name__}, "
                "which is not iterable.", hint="Foreach over a list, tuple, range or other iterable.") from None
        flow.__dict__[var] = items
        n = len(items)
    if n == 0:
        raise InvalidNextError(
            f"Step {spec.step_name!r}: foreach over {var!r} has no items.",
            hint="A foreach needs at least one item; guard it with a switch if the list may be empty.",
        )
    values: tuple[str, ...] = ()
    if n <= 10_000:
        values = tuple(_short_repr(v) for v in (items if isinstance(items, (list, tuple, range)) else list(items)))
    return n, values


def _persist(flow: FlowSpec, content: Any, step_name: str) -> dict[str, dict]:
    d = flow.__dict__
    out = dict(d["_hw_refs"])
    loaded = d["_hw_loaded"]
    for name, value in d.items():
        if name.startswith("_hw_"):
            continue
        if name in loaded and loaded[name] is value and isinstance(value, _IMMUTABLE):
            continue  # untouched inherited value: keep the reference
        try:
            out[name] = content.save(value, what=f"artifact {name!r} of step {step_name!r}")
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            raise ArtifactError(
                f"Step {step_name!r} set artifact {name!r} to a {type(value).__name__}, which cannot be pickled ({e}).",
                hint=f"Store something picklable in self.{name}, or use a local variable for it.",
            ) from None
    return out


def _persist_partial(flow: FlowSpec, content: Any) -> dict[str, dict]:
    """The artifacts of a failed attempt: every value that can be stored, the rest skipped."""
    d = flow.__dict__
    out = dict(d.get("_hw_refs") or {})
    loaded = d.get("_hw_loaded") or {}
    for name, value in list(d.items()):
        if name.startswith("_hw_") or (name in loaded and loaded[name] is value and isinstance(value, _IMMUTABLE)):
            continue
        try:
            out[name] = content.save(value)
        except Exception:  # the attempt already failed; an unstorable value must not hide why
            continue
    return out


def _user_traceback(e: BaseException) -> str:
    tb = traceback.TracebackException.from_exception(e)
    # Drop headwater's own frames above the user's step for a readable trace.
    frames = [f for f in tb.stack if "/headwater/" not in f.filename.replace("\\", "/")]
    if frames:
        tb.stack = traceback.StackSummary.from_list(frames)
    return "".join(tb.format())


def _print_failure(exc: dict[str, str], user_error: bool) -> None:
    import sys

    text = exc["message"] if user_error else (exc["traceback"] or f"{exc['type']}: {exc['message']}")
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()
