"""``@trigger`` and ``@trigger_on_finish``: start a deployed flow on events (authoring layer).

Only orchestrators read them (``argo-workflows create`` makes an Argo Events Sensor); a local
``run`` ignores them, as in Metaflow. ``@trigger`` names events (and how their payload fields
set the flow's parameters); ``@trigger_on_finish`` names upstream flows whose successful runs
start this one: their ``end`` step publishes the event ``headwater.<flow>.end`` (with
``@project``, ``headwater.<project>.<branch>.<flow>.end``).

The attributes are checked when the flow's command line starts (``run``, ``check``,
``argo-workflows create``); what needs the flow's parameters or ``@project`` branch is checked
when it is compiled (``flow_triggers``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..events import PAYLOAD_ENV_PREFIX, Trigger, TriggerKind, trigger_from_environ
from ..exceptions import HeadwaterException
from .flow_decorators import FlowDecorator, flow_decorators, make_flow_decorator
from .parameters import deployed_parameter_name

#: The prefix of every event headwater publishes itself (``headwater.<flow>.end``).
EVENT_PREFIX = "headwater"
#: The payload field that marks an event as published by headwater (a @trigger_on_finish filter).
AUTO_GENERATED_FIELD = "auto-generated-by-headwater"
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PAYLOAD_FIELD = re.compile(r"^[A-Za-z0-9_]+$")
_FLOW_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class TriggerError(HeadwaterException):
    """A ``@trigger`` or ``@trigger_on_finish`` that cannot be deployed as written."""

    headline = "Bad trigger"


@dataclass(frozen=True)
class EventSpec:
    """One event of ``@trigger``: its name and ``flow parameter -> payload field`` mapping."""

    name: str
    parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class UpstreamFlow:
    """One flow of ``@trigger_on_finish``, with the ``@project`` and branch it was named with."""

    flow: str
    project: str | None = None
    branch: str | None = None


@dataclass(frozen=True)
class FlowTrigger:
    """A resolved trigger, as an orchestrator deploys it.

    ``parameters`` maps lower-cased flow parameter names to payload fields; ``filters`` are
    payload fields that must hold the given values (``@trigger_on_finish``'s project and branch).
    """

    name: str
    kind: TriggerKind
    parameters: dict[str, str] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)
    flow: str | None = None
    auto_mapped: bool = False  # one event without a mapping: every parameter of the same name

    @property
    def sanitized_name(self) -> str:
        """A name Argo Events accepts for the event's dependency (no dots), unique per event name."""
        digest = base64.b32encode(hashlib.sha1(self.name.encode()).digest()).decode()[:4].lower()
        return "{}_{}".format(re.sub(r"[.\-@+]", "", self.name), digest)

    @property
    def payload_env(self) -> str:
        """The environment variable that carries this event's payload into a deployed run's tasks."""
        return f"{PAYLOAD_ENV_PREFIX}{self.kind.value}_{self.sanitized_name}"


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _parameters(value: Any, event: str) -> tuple[tuple[str, str], ...]:
    """A ``parameters`` mapping: a dict, or a list of names and ``(parameter, field)`` pairs."""
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, fld in value.items():
            if not _is_str(key) or not _is_str(fld):
                raise TriggerError(f"@trigger: the parameters of event {event!r} map {key!r} to {fld!r}; "
                                   "both must be names.",
                                   hint="Write parameters={'flow_param': 'payload_field'}.")
            pairs.append((key, fld))
    elif isinstance(value, (list, tuple)):
        for item in value:
            if _is_str(item):
                pairs.append((item, item))
            elif isinstance(item, (tuple, list)) and len(item) == 2 and all(_is_str(v) for v in item):
                pairs.append((item[0], item[1]))
            else:
                raise TriggerError(f"@trigger: the parameters of event {event!r} contain {item!r}.",
                                   hint="Give parameter names, or (flow_param, payload_field) pairs: "
                                        "parameters=['alpha', ('beta', 'payload_beta')].")
    else:
        raise TriggerError(f"@trigger: the parameters of event {event!r} are {value!r}.",
                           hint="Give a dict {'flow_param': 'payload_field'} or a list of names and pairs.")
    for param, fld in pairs:
        if not _PAYLOAD_FIELD.match(fld):
            raise TriggerError(f"@trigger: the payload field {fld!r} of event {event!r} (for parameter "
                               f"{param!r}) has characters other than letters, digits and '_'.",
                               hint="Rename the payload field.")
    return tuple(pairs)


def _event(value: Any) -> EventSpec:
    if _is_str(value):
        name, params = value, ()
    elif isinstance(value, dict):
        if "name" not in value:
            raise TriggerError(f"@trigger: the event {value!r} has no 'name'.",
                               hint="Write event={'name': 'my.event', 'parameters': {...}}.")
        unknown = sorted(set(value) - {"name", "parameters"})
        if unknown:
            raise TriggerError(f"@trigger: the event {value.get('name')!r} has unknown key(s) {', '.join(unknown)}.",
                               hint="An event is a name, or a dict with 'name' and 'parameters'.")
        name = value["name"]
        if not _is_str(name):
            raise TriggerError(f"@trigger: the event name {name!r} is not a string.",
                               hint="Write event={'name': 'my.event', ...}.")
        params = _parameters(value.get("parameters") or {}, name)
    elif callable(value):
        raise TriggerError(f"@trigger: the event {value!r} is a function; events computed at deploy time are "
                           "not supported yet.", hint="Give the event's name as a string.")
    else:
        raise TriggerError(f"@trigger: the event {value!r} is neither a name nor a dict.",
                           hint="Write @trigger(event='my.event') or @trigger(event={'name': 'my.event', "
                                "'parameters': {'alpha': 'beta'}}).")
    if not _EVENT_NAME.match(name):
        raise TriggerError(f"@trigger: the event name {name!r} has characters other than letters, digits, "
                           "'_', '-' and '.'.", hint="Rename the event.")
    return EventSpec(name, params)


def _check_options(deco: FlowDecorator) -> None:
    opts = deco.attributes["options"]
    if not isinstance(opts, dict):
        raise TriggerError(f"@{deco.name}(options={opts!r}): options must be a dict.",
                           hint="e.g. options={'reset_at': {'cron': '0 0 * * *', 'timezone': 'UTC'}}.")
    unknown = sorted(set(opts) - {"reset_at"})
    if unknown:
        raise TriggerError(f"@{deco.name}: unknown option(s) {', '.join(map(repr, unknown))}.",
                           hint="The supported option is 'reset_at': {'cron': ..., 'timezone': ...}.")
    reset = opts.get("reset_at")
    if reset is not None and (not isinstance(reset, dict) or set(reset) - {"cron", "timezone"}
                              or not _is_str(reset.get("cron"))):
        raise TriggerError(f"@{deco.name}: options['reset_at'] is {reset!r}.",
                           hint="Write options={'reset_at': {'cron': '0 0 * * *', 'timezone': 'UTC'}}.")


class TriggerDecorator(FlowDecorator):
    """Start the deployed flow when events arrive.

    Parameters
    ----------
    event : str or dict, optional
        One event: its name, or ``{"name": ..., "parameters": ...}`` where ``parameters``
        maps flow parameters to payload fields (``{"alpha": "payload_alpha"}``), or is a list
        of names (same name in the payload) and ``(parameter, field)`` pairs.
    events : list, optional
        Several events (each as ``event``); the flow starts once all of them arrived.
    options : dict, optional
        ``{"reset_at": {"cron": ..., "timezone": ...}}``: forget events seen so far on a schedule.

    Examples
    --------
    >>> @trigger(event={"name": "data.ready", "parameters": {"table": "table_name"}})  # doctest: +SKIP
    ... class LoadFlow(FlowSpec):
    ...     table = Parameter("table", default="raw")
    """

    name = "trigger"
    defaults: dict[str, Any] = {"event": None, "events": [], "options": {}}
    events: tuple[EventSpec, ...] = ()

    def init(self) -> None:
        a = self.attributes
        if a["event"] and a["events"]:
            raise TriggerError("@trigger has both event= and events=.",
                               hint="Give one event with event=..., or several with events=[...].")
        if a["event"]:
            found = [_event(a["event"])]
        elif isinstance(a["events"], (list, tuple)) and a["events"]:
            found = [_event(e) for e in a["events"]]
        elif a["events"]:
            raise TriggerError(f"@trigger(events={a['events']!r}): events must be a list.",
                               hint="Write @trigger(events=['a.ready', 'b.ready']).")
        else:
            raise TriggerError("@trigger names no event.", hint="Write @trigger(event='my.event').")
        names = [e.name for e in found]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TriggerError(f"@trigger names the event {dup[0]!r} twice.", hint="Name each event once.")
        _check_options(self)
        self.events = tuple(found)

    def current_fields(self) -> dict[str, Any]:
        """``current.trigger`` in a deployed run the events started."""
        return _current_trigger(None)


def _upstream(value: Any) -> UpstreamFlow:
    if _is_str(value):
        return _fq_name(value)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"name", "project", "project_branch"})
        if "name" not in value or unknown:
            raise TriggerError(f"@trigger_on_finish: the flow {value!r} needs 'name' (and optionally 'project' and "
                               "'project_branch'), nothing else.",
                               hint="Write flow={'name': 'FooFlow', 'project': 'p', 'project_branch': 'prod'}.")
        name = value["name"]
        if not _is_str(name) or "." in name:
            raise TriggerError(f"@trigger_on_finish: the flow name {name!r} is not a flow's name.",
                               hint="Give the flow class's name; the project and branch go in their own keys.")
        for key in ("project", "project_branch"):
            if key in value and not _is_str(value[key]):
                raise TriggerError(f"@trigger_on_finish: the {key} of flow {name!r} is {value[key]!r}, not a name.",
                                   hint=f"Give {key} as a string.")
        up = _fq_name(name)
        return UpstreamFlow(up.flow, value.get("project"), value.get("project_branch"))
    if callable(value):
        raise TriggerError(f"@trigger_on_finish: the flow {value!r} is a function; flows computed at deploy time "
                           "are not supported yet.", hint="Give the flow's name as a string.")
    raise TriggerError(f"@trigger_on_finish: the flow {value!r} is neither a name nor a dict.",
                       hint="Write @trigger_on_finish(flow='FooFlow') or flow={'name': 'FooFlow', ...}.")


def _fq_name(text: str) -> UpstreamFlow:
    """``FooFlow`` or ``project.branch.FooFlow`` (the branch may hold dots: ``test.x``)."""
    dots = text.count(".")
    if dots == 0:
        up = UpstreamFlow(text)
    elif dots >= 2:
        project, tail = text.split(".", 1)
        branch, flow = tail.rsplit(".", 1)
        up = UpstreamFlow(flow, project, branch)
    else:
        raise TriggerError(f"@trigger_on_finish: the flow {text!r} is neither a flow name nor "
                           "project.branch.FlowName.", hint="Write 'FooFlow' or 'my_project.prod.FooFlow'.")
    if not _FLOW_NAME.match(up.flow):
        raise TriggerError(f"@trigger_on_finish: the flow name {up.flow!r} has characters other than letters, "
                           "digits and '_'.", hint="Give the upstream flow class's name.")
    return up


class TriggerOnFinishDecorator(FlowDecorator):
    """Start the deployed flow when runs of other deployed flows finish successfully.

    Respects ``@project``: an upstream named by its class name is looked for in this flow's
    project and branch; name it ``project.branch.FlowName`` (or give ``project`` and
    ``project_branch`` in a dict) to follow another branch.

    Parameters
    ----------
    flow : str or dict, optional
        One upstream flow: ``"FooFlow"``, ``"my_project.prod.FooFlow"`` or
        ``{"name": "FooFlow", "project": ..., "project_branch": ...}``.
    flows : list, optional
        Several upstream flows (each as ``flow``); this flow starts once all of them finished.
    options : dict, optional
        ``{"reset_at": {"cron": ..., "timezone": ...}}``, as for ``@trigger``.

    Examples
    --------
    >>> @trigger_on_finish(flow="TrainFlow")  # doctest: +SKIP
    ... class ScoreFlow(FlowSpec):
    ...     ...
    """

    name = "trigger_on_finish"
    options = {"trigger": dict(multiple=True, default=None, metavar="FLOW/RUN_ID",
                               help="Run as if this finished run of an upstream flow had triggered it (sets "
                                    "current.trigger; repeatable). For testing @trigger_on_finish locally.")}
    defaults: dict[str, Any] = {"flow": None, "flows": [], "options": {}}
    upstreams: tuple[UpstreamFlow, ...] = ()
    _local: Trigger | None = None  # from --trigger

    def init(self) -> None:
        a = self.attributes
        if a["flow"] and a["flows"]:
            raise TriggerError("@trigger_on_finish has both flow= and flows=.",
                               hint="Give one flow with flow=..., or several with flows=[...].")
        if a["flow"]:
            found = [_upstream(a["flow"])]
        elif isinstance(a["flows"], (list, tuple)) and a["flows"]:
            found = [_upstream(f) for f in a["flows"]]
        elif a["flows"]:
            raise TriggerError(f"@trigger_on_finish(flows={a['flows']!r}): flows must be a list.",
                               hint="Write @trigger_on_finish(flows=['FooFlow', 'BarFlow']).")
        else:
            raise TriggerError("@trigger_on_finish names no flow.", hint="Write @trigger_on_finish(flow='FooFlow').")
        _check_options(self)
        self.upstreams = tuple(found)

    def hw_flow_init(self, flow_cls: type, graph: Any, options: dict[str, Any]) -> None:
        """``--trigger FLOW/RUN_ID``: the given finished runs stand for the upstream runs."""
        given = [p for p in options.get("trigger") or () if p]
        if not given:
            return
        from ..client import Run
        from ..exceptions import HeadwaterNotFound

        runs = []
        for pathspec in given:
            if len(pathspec.split("/")) != 2:
                raise TriggerError(f"--trigger {pathspec!r} is not a run's pathspec.", hint="Give FlowName/run_id.")
            try:
                run = Run(pathspec, _namespace_check=False)
            except HeadwaterNotFound as e:
                raise TriggerError(f"--trigger {pathspec!r}: {e.message}", hint=e.hint) from None
            if not run.successful:
                raise TriggerError(f"--trigger {pathspec!r} names a run that has not finished successfully.",
                                   hint="Give a successful run of the upstream flow.")
            runs.append(run)
        self._local = Trigger.from_runs(runs)

    def current_fields(self) -> dict[str, Any]:
        """``current.trigger`` in a run upstream runs started (deployed), or given with ``--trigger``."""
        return _current_trigger(self._local)


def _current_trigger(local: Trigger | None) -> dict[str, Any]:
    # A deployed run's tasks get the payloads of the events that started it in their environment.
    trigger = local or trigger_from_environ(os.environ)
    return {"trigger": trigger} if trigger is not None else {}


def end_event_name(flow: str, project_flow_name: str | None = None) -> str:
    """The event a flow's successful run publishes when its end step finishes."""
    return f"{EVENT_PREFIX}.{project_flow_name or flow}.end"


def _trigger_decorators(flow_cls: type) -> tuple[TriggerDecorator | None, TriggerOnFinishDecorator | None]:
    decos = flow_decorators(flow_cls)
    on_event = next((d for d in decos if isinstance(d, TriggerDecorator)), None)
    on_finish = next((d for d in decos if isinstance(d, TriggerOnFinishDecorator)), None)
    return on_event, on_finish


def flow_triggers(flow_cls: type, *, parameters: Iterable[str], project: str | None = None,
                  branch: str | None = None) -> list[FlowTrigger]:
    """The flow's triggers, resolved for deployment (empty when it has none).

    Parameters
    ----------
    flow_cls : type
        The flow class.
    parameters : iterable of str
        The flow's parameter names (not Configs); payload mappings must name these.
    project, branch : str, optional
        The flow's ``@project`` and resolved branch, the default for ``@trigger_on_finish``.

    Raises
    ------
    TriggerError
        Both decorators on one flow, a mapping to a parameter the flow does not have or to one
        parameter twice, or an upstream flow with a project but no branch (or the reverse).
    """
    on_event, on_finish = _trigger_decorators(flow_cls)
    if on_event and on_finish:
        raise TriggerError(f"Flow {flow_cls.__name__!r} has both @trigger and @trigger_on_finish.",
                           hint="Use one of them (Argo Workflows does not combine them yet).")
    known = {deployed_parameter_name(p): p for p in parameters}
    out: list[FlowTrigger] = []
    if on_event is not None:
        on_event.validate()
        seen: set[str] = set()
        for ev in on_event.events:
            mapping: dict[str, str] = {}
            for param, fld in ev.parameters:
                low = deployed_parameter_name(param)
                if low not in known:
                    have = ", ".join(sorted(known.values())) or "none"
                    raise TriggerError(f"@trigger maps the payload field {fld!r} of event {ev.name!r} to the "
                                       f"parameter {param!r}, which flow {flow_cls.__name__!r} does not have.",
                                       hint=f"The flow's parameters: {have}.")
                if low in seen:
                    raise TriggerError(f"@trigger maps the parameter {param!r} twice.",
                                       hint="Set each parameter from one payload field of one event.")
                seen.add(low)
                mapping[low] = fld
            out.append(FlowTrigger(ev.name, TriggerKind.EVENT, mapping))
        # Metaflow's rule: one event without a mapping sets every parameter of the same name.
        if len(out) == 1 and not out[0].parameters:
            out[0] = FlowTrigger(out[0].name, TriggerKind.EVENT, {p: p for p in sorted(known)}, auto_mapped=True)
    if on_finish is not None:
        on_finish.validate()
        for up in on_finish.upstreams:
            proj = up.project or project
            br = up.branch or branch
            if bool(proj) != bool(br):
                raise TriggerError(f"@trigger_on_finish names flow {up.flow!r} with a project but no branch, or a "
                                   "branch but no project.",
                                   hint="Give both 'project' and 'project_branch', or put @project on this flow.")
            filters = {AUTO_GENERATED_FIELD: "True"}
            if proj and br:
                filters.update(project_name=proj, branch_name=br)
            name = end_event_name(up.flow, f"{proj}.{br}.{up.flow}" if proj else None)
            out.append(FlowTrigger(name, TriggerKind.RUN, {}, filters, up.flow))
    return out


def trigger_options(flow_cls: type) -> dict[str, Any]:
    """The ``options`` of the flow's ``@trigger`` or ``@trigger_on_finish`` (empty without one)."""
    on_event, on_finish = _trigger_decorators(flow_cls)
    deco = on_event or on_finish
    return dict(deco.validate().attributes["options"]) if deco is not None else {}


trigger = make_flow_decorator(TriggerDecorator)
trigger_on_finish = make_flow_decorator(TriggerOnFinishDecorator)

__all__ = ["FlowTrigger", "TriggerDecorator", "TriggerError", "TriggerKind", "TriggerOnFinishDecorator",
           "end_event_name", "flow_triggers", "trigger", "trigger_on_finish", "trigger_options"]
