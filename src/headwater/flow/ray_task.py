"""``@ray_task``: run a step's tasks on a Ray cluster (authoring layer).

The decorator only marks the step; the launchers route its tasks
(``runtime.launchers.routing``). It is called ``ray_task`` so that it never
shadows ``import ray`` in a flow file. ``address`` names the cluster
(``HEADWATER_RAY_ADDRESS`` wins over it, as it does for every step).
"""

from __future__ import annotations

from typing import Any

from .decorators import InvalidDecoratorAttribute, StepDecorator, _make

#: The decorator's name (``@ray_task``, ``--with ray_task``).
RAY_TASK = "ray_task"


class RayTaskDecorator(StepDecorator):
    """Run this step's tasks as Ray tasks.

    Parameters
    ----------
    address : str, optional
        The Ray cluster to connect to (``"auto"``, ``"<host>:<port>"``, ``"ray://..."``);
        by default ``HEADWATER_RAY_ADDRESS``, else ``"auto"``.
    """

    name = RAY_TASK
    defaults: dict[str, Any] = {"address": None}

    def init(self) -> None:
        address = self.attributes["address"]
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise InvalidDecoratorAttribute(f"@ray_task(address={address!r}): address must be a non-empty string.",
                                            hint='Use e.g. @ray_task(address="10.0.0.5:6379"), or omit it.')


def ray_step_addresses(flow_cls: type, steps: Any) -> dict[str, str | None]:
    """The steps of ``flow_cls`` marked ``@ray_task`` (after ``--with``), each with its ``address``."""
    out: dict[str, str | None] = {}
    for name in steps:
        for deco in getattr(getattr(flow_cls, name, None), "decorators", ()):
            if deco.name == RAY_TASK:
                out[name] = deco.validate().attributes.get("address")
    return out


ray_task = _make(RayTaskDecorator)

__all__ = ["RAY_TASK", "RayTaskDecorator", "ray_step_addresses", "ray_task"]
