"""What a flow's decorators and parameters, and the Argo Events configuration, mean to the Argo
compiler (internal)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from .compile import FlowParameter, KubernetesPod, StepSettings


def step_settings(flow_cls: type, *, k8s_secrets: tuple[str, ...] = (),
                  k8s_service_account: str | None = None) -> dict[str, StepSettings]:
    """Each step's retries, timeout, resources and environment, from its decorators; a
    ``@kubernetes`` step's validated pod options, with the configured secrets and service account."""
    from ...flow.decorators import step_policy
    from ...flow.kubernetes import kubernetes_steps

    pods = kubernetes_steps(flow_cls, flow_cls._graph.sorted_nodes)

    out: dict[str, StepSettings] = {}
    for name in flow_cls._graph.sorted_nodes:
        func = getattr(flow_cls, name)
        policy = step_policy(func)
        retry = next((d for d in func.decorators if d.name == "retry"), None)
        minutes = float(retry.attributes["minutes_between_retries"]) if retry is not None else 0.0
        res = policy.resources
        out[name] = StepSettings(
            retries=policy.retries, minutes_between_retries=minutes,
            timeout=int(policy.timeout) if policy.timeout else None,
            cpu=float(res["cpu"]) if res else None, memory_mb=float(res["memory"]) if res else None,
            gpu=policy.gpu, env=dict(policy.env),
            pod=KubernetesPod(pods[name], k8s_secrets, k8s_service_account) if name in pods else None)
    return out


def flow_parameters_for_argo(flow_cls: type) -> list[FlowParameter]:
    """The flow's parameters with their defaults as JSON text (a callable default is left empty)."""
    from ...flow.parameters import flow_parameters

    out = []
    for p in flow_parameters(flow_cls):
        default: Any = p.default
        text = "" if callable(default) or default is None else (
            default if isinstance(default, str) else json.dumps(default))
        out.append(FlowParameter(name=p.name, default=text, description=p.help or ""))
    return out


#: Argo Events configuration (``HEADWATER_ARGO_EVENTS_*``, Metaflow's ``METAFLOW_ARGO_EVENTS_*``).
EVENTS_PREFIX = "HEADWATER_ARGO_EVENTS_"


@dataclass(frozen=True)
class EventsSettings:
    """Where a flow's Sensor listens and where its tasks publish events.

    ``event`` is the Argo Events event name every headwater event travels under (a webhook
    EventSource's event, ``HEADWATER_ARGO_EVENTS_EVENT``), ``event_source`` that EventSource,
    ``event_bus`` the EventBus (default ``default``), ``service_account`` the Sensor's (it
    creates Workflows), ``sensor_namespace`` where Sensors go (default: the workflows'
    namespace), ``webhook_url`` where events are POSTed and ``internal_webhook_url`` the URL pods
    use (default: ``webhook_url``).
    """

    event: str | None = None
    event_source: str | None = None
    event_bus: str = "default"
    service_account: str | None = None
    sensor_namespace: str | None = None
    webhook_url: str | None = None
    internal_webhook_url: str | None = None

    @classmethod
    def from_env(cls, extra: Mapping[str, str]) -> "EventsSettings":
        """Read ``HEADWATER_ARGO_EVENTS_*`` from ``Settings.extra`` (the ``HEADWATER_*`` environment)."""
        def get(key: str) -> str | None:
            return extra.get(EVENTS_PREFIX + key) or None

        webhook = get("WEBHOOK_URL")
        return cls(event=get("EVENT"), event_source=get("EVENT_SOURCE"), event_bus=get("EVENT_BUS") or "default",
                   service_account=get("SERVICE_ACCOUNT"), sensor_namespace=get("SENSOR_NAMESPACE"),
                   webhook_url=webhook, internal_webhook_url=get("INTERNAL_WEBHOOK_URL") or webhook)
