"""The Argo Events Sensor that starts a deployed flow on its ``@trigger`` / ``@trigger_on_finish``
events, as a plain dict (internal, pure).

As Metaflow does it: one Sensor per deployed flow, listening on the configured EventSource's
event (every headwater event travels under that one Argo Events event; headwater's event name is
the payload's ``name`` field), with one dependency per trigger filtered on that name (and, for
``@trigger_on_finish``, on the upstream's ``@project`` and branch). When all dependencies are
met it creates a Workflow from the deployed WorkflowTemplate (``workflowTemplateRef``), setting
the flow's parameters from payload fields, and each event's whole payload (for
``current.trigger``). See docs/argo.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ...flow.triggers import FlowTrigger
from .compile import API_VERSION, ArgoCompileError, FlowParameter
from .naming import (SENSOR_NAME_ANNOTATION, SENSOR_NAMESPACE_ANNOTATION, TRIGGERED_BY_ANNOTATION,
                     TRIGGERS_ANNOTATION, WORKFLOW_TEMPLATE_ANNOTATION, parameter_name)
from .payloads import NO_PAYLOAD
from .settings import EVENTS_PREFIX, EventsSettings

#: The Sensor pod's requests and limits (it only forwards events).
SENSOR_RESOURCES = {"cpu": "100m", "memory": "250Mi"}
#: Missing payload field: Argo Events falls back to the parameter's ``value`` when the template fails.
_USE_DEFAULT = '{{ (fail "use-default-instead") }}'


@dataclass(frozen=True)
class SensorOptions:
    """What ``argo-workflows create`` decides for the Sensor beyond the triggers."""

    template_name: str
    namespace: str  # the workflows' namespace
    events: EventsSettings
    labels: dict[str, str] = field(default_factory=dict)
    reset_at: dict[str, str] | None = None  # @trigger(options={"reset_at": {"cron", "timezone"}})


def sensor_name(template_name: str) -> str:
    """The Sensor's name: the template's, without dots (Argo Events refuses them; Metaflow's rule)."""
    return template_name.replace(".", "-")


def sensor_namespace(opts: SensorOptions) -> str:
    """Where the Sensor goes: ``HEADWATER_ARGO_EVENTS_SENSOR_NAMESPACE``, else the workflows' namespace."""
    return opts.events.sensor_namespace or opts.namespace


def _required(events: EventsSettings) -> None:
    for key, value, what in (("EVENT", events.event, "the Argo Events event every headwater event travels under"),
                             ("EVENT_SOURCE", events.event_source, "the EventSource that receives them"),
                             ("SERVICE_ACCOUNT", events.service_account, "the service account the Sensor "
                                                                         "creates Workflows with")):
        if not value:
            raise ArgoCompileError(f"The flow has a trigger, but {EVENTS_PREFIX}{key} ({what}) is not set.",
                                   hint=f"Set {EVENTS_PREFIX}{key} for the cluster's Argo Events installation.")


def _payload_template(fld: str) -> str:
    """A Go template giving the payload field ``fld`` as parameter text: a string as it is, any other
    JSON value as JSON text (how headwater passes parameter values); a missing field fails, so
    Argo Events uses the parameter's default."""
    get = f'get $.Input.body.payload "{fld}"'
    return (f'{{{{ if hasKey $.Input.body.payload "{fld}" }}}}{{{{- $v := {get} -}}}}'
            '{{- if kindIs "string" $v -}}{{- $v -}}{{- else -}}{{- $v | toRawJson -}}{{- end -}}'
            f'{{{{- else -}}}}{_USE_DEFAULT}{{{{- end }}}}')


def _mapped(trigger: FlowTrigger, defaults: dict[str, FlowParameter]) -> dict[str, str]:
    """The trigger's ``parameter -> field`` pairs the workflow can take: ``init`` is passed only
    parameters with a static default, so mapping a payload field to any other one cannot work."""
    out = {}
    for param, fld in trigger.parameters.items():
        p = defaults[param]
        if not p.default:
            if trigger.auto_mapped:
                continue
            raise ArgoCompileError(f"@trigger sets the parameter {p.name!r} from the payload field {fld!r}, but "
                                   f"{p.name!r} has no static default, which a deployed flow needs to take a value "
                                   "from an event.", hint=f"Give {p.name!r} a default value.")
        out[param] = fld
    return out


def _dependency(trigger: FlowTrigger, events: EventsSettings) -> dict[str, Any]:
    exprs = [{"expr": f"name == '{trigger.name}'", "fields": [{"name": "name", "path": "body.payload.name"}]}]
    for key, value in sorted(trigger.filters.items()):
        exprs.append({"expr": f"field == '{value}'", "fields": [{"name": "field", "path": f"body.payload.{key}"}]})
    return {"name": trigger.sanitized_name, "eventSourceName": events.event_source, "eventName": events.event,
            "filters": {"exprs": exprs}}


def compile_sensor(triggers: list[FlowTrigger], params: list[FlowParameter], opts: SensorOptions) -> dict[str, Any]:
    """The Sensor (a dict ready for ``json.dumps``) that starts ``opts.template_name`` on ``triggers``.

    Parameters
    ----------
    triggers : list of FlowTrigger
        The flow's resolved triggers (``headwater.flow.triggers.flow_triggers``); not empty.
    params : list of FlowParameter
        The flow's parameters as the WorkflowTemplate declares them (names, defaults as text).
    opts : SensorOptions
        Names, namespace and the Argo Events settings.

    Raises
    ------
    ArgoCompileError
        An Argo Events setting the Sensor needs is not configured, or a payload field is mapped
        to a parameter the deployed flow cannot take it in.
    """
    _required(opts.events)
    by_name = {parameter_name(p.name): p for p in params}
    arguments = [{"name": parameter_name(p.name), "value": p.default} for p in params]
    trigger_params = []
    for trig in triggers:
        for param, fld in sorted(_mapped(trig, by_name).items()):
            trigger_params.append({
                "src": {"dependencyName": trig.sanitized_name, "dataTemplate": _payload_template(fld),
                        "value": by_name[param].default},
                "dest": f"spec.arguments.parameters.#(name={param}).value",
            })
    for trig in triggers:  # the whole payload, for current.trigger (compute/argo/payloads.py)
        arguments.append({"name": trig.sanitized_name, "value": NO_PAYLOAD})
        trigger_params.append({"src": {"dependencyName": trig.sanitized_name, "dataKey": "body.payload",
                                       "value": NO_PAYLOAD},
                               "dest": f"spec.arguments.parameters.#(name={trig.sanitized_name}).value"})
    triggered_by = json.dumps([{"name": t.name, "type": t.kind.value} for t in triggers])
    workflow: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": "Workflow",
        "metadata": {"generateName": f"{opts.template_name}-", "namespace": opts.namespace,
                     "annotations": {TRIGGERED_BY_ANNOTATION: triggered_by}},
        "spec": {"workflowTemplateRef": {"name": opts.template_name}},
    }
    workflow["spec"]["arguments"] = {"parameters": arguments}
    k8s: dict[str, Any] = {"operation": "create", "source": {"resource": workflow}, "parameters": trigger_params}
    template: dict[str, Any] = {"name": opts.template_name, "k8s": k8s}
    if opts.reset_at:
        template["conditionsReset"] = [{"byTime": dict(opts.reset_at)}]
    labels = {"app.kubernetes.io/name": "headwater-sensor", **opts.labels}
    return {
        "apiVersion": API_VERSION, "kind": "Sensor",
        "metadata": {"name": sensor_name(opts.template_name),
                     "namespace": sensor_namespace(opts), "labels": labels,
                     "annotations": {WORKFLOW_TEMPLATE_ANNOTATION: opts.template_name}},
        "spec": {
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": "headwater-sensor"}},
                         "container": {"resources": {"requests": dict(SENSOR_RESOURCES),
                                                                     "limits": dict(SENSOR_RESOURCES)}},
                         "serviceAccountName": opts.events.service_account},
            "replicas": 1,
            "eventBusName": opts.events.event_bus,
            "dependencies": [_dependency(t, opts.events) for t in triggers],
            "triggers": [{"template": template}],
        },
    }


def trigger_annotations(triggers: list[FlowTrigger], opts: SensorOptions) -> dict[str, str]:
    """Annotations for the WorkflowTemplate naming its triggers and its Sensor (what ``delete`` needs)."""
    return {TRIGGERS_ANNOTATION: json.dumps([{"name": t.name, "type": t.kind.value} for t in triggers]),
            SENSOR_NAME_ANNOTATION: sensor_name(opts.template_name),
            SENSOR_NAMESPACE_ANNOTATION: sensor_namespace(opts)}


__all__ = ["SensorOptions", "compile_sensor", "sensor_name", "sensor_namespace", "trigger_annotations"]
