"""What a flow's step decorators and parameters mean to the Argo compiler (internal)."""

from __future__ import annotations

import json
from typing import Any

from .compile import FlowParameter, StepSettings


def step_settings(flow_cls: type) -> dict[str, StepSettings]:
    """Each step's retries, timeout, resources and environment, from its decorators."""
    from ...flow.decorators import step_policy

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
            gpu=policy.gpu, env=dict(policy.env))
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
