"""``@schedule``: when a deployed flow runs by itself (authoring layer).

Only orchestrators read it (``argo-workflows create`` makes a CronWorkflow); a local
``run`` ignores it, as in Metaflow. The schedule is a cron expression: ``cron`` as
given, else weekly (Sunday 00:00), hourly or daily (00:00), checked in that order.
"""

from __future__ import annotations

from .decorators import InvalidDecoratorAttribute
from .flow_decorators import FlowDecorator, flow_decorators, make_flow_decorator

WEEKLY = "0 0 * * 0"
HOURLY = "0 * * * *"
DAILY = "0 0 * * *"


class ScheduleDecorator(FlowDecorator):
    """Run the deployed flow on a schedule.

    Parameters
    ----------
    cron : str, optional
        A cron expression (five fields; a sixth, year field as AWS writes it is dropped).
    weekly : bool, default False
        Every Sunday at midnight.
    daily : bool, default True
        Every day at midnight.
    hourly : bool, default False
        Every hour on the hour.
    timezone : str, optional
        An IANA time zone for the schedule, e.g. ``"Europe/Paris"`` (Argo Workflows).

    Examples
    --------
    >>> @schedule(cron="30 2 * * *", timezone="UTC")  # doctest: +SKIP
    ... class NightlyFlow(FlowSpec):
    ...     ...
    """

    name = "schedule"
    defaults = {"cron": None, "weekly": False, "daily": True, "hourly": False, "timezone": None}

    def init(self) -> None:
        cron = self.attributes["cron"]
        if cron is not None and (not isinstance(cron, str) or len(cron.split()) not in (5, 6)):
            raise InvalidDecoratorAttribute(f"@schedule(cron={cron!r}): cron must be a cron expression of "
                                            "five fields (minute hour day month weekday).")
        tz = self.attributes["timezone"]
        if tz is not None and not isinstance(tz, str):
            raise InvalidDecoratorAttribute(f"@schedule(timezone={tz!r}): timezone must be a name such as "
                                            "'America/Los_Angeles'.")

    @property
    def schedule(self) -> str | None:
        """The cron expression (five fields), or None when every flag is off."""
        a = self.validate().attributes
        if a["cron"]:
            return " ".join(a["cron"].split()[:5])
        if a["weekly"]:
            return WEEKLY
        if a["hourly"]:
            return HOURLY
        if a["daily"]:
            return DAILY
        return None

    @property
    def timezone(self) -> str | None:
        """The schedule's time zone, or None (the controller's)."""
        return self.validate().attributes["timezone"]


def flow_schedule(flow_cls: type) -> ScheduleDecorator | None:
    """The flow's ``@schedule``, or None."""
    return next((d for d in flow_decorators(flow_cls) if isinstance(d, ScheduleDecorator)), None)


schedule = make_flow_decorator(ScheduleDecorator)
