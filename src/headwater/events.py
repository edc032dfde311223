"""``current.trigger``: what started a run, as Metaflow's ``metaflow.events`` shows it.

A deployed run started by ``@trigger`` events or by ``@trigger_on_finish`` upstream runs sees
them in every task as ``current.trigger`` (a ``Trigger``); a run nothing triggered has no
``current.trigger`` (``current.get("trigger")`` is None), as in Metaflow. The Argo compiler
hands each event's payload to the tasks in an environment variable
(``HEADWATER_ARGO_EVENT_PAYLOAD_<type>_<name>``); ``trigger_from_environ`` reads them.
"""

from __future__ import annotations

import enum
import json
from collections import namedtuple
from datetime import datetime
from typing import Any, Iterable, Mapping

#: The environment variables that carry event payloads into a deployed run's tasks.
PAYLOAD_ENV_PREFIX = "HEADWATER_ARGO_EVENT_PAYLOAD_"


class TriggerKind(str, enum.Enum):
    """What starts a flow: a named event (``@trigger``), or the end of an upstream flow's run
    (``@trigger_on_finish``); an event's ``type``."""

    EVENT = "event"
    RUN = "run"


HeadwaterEvent = namedtuple("HeadwaterEvent", ["name", "id", "timestamp", "type"])
HeadwaterEvent.__doc__ = """One event that started the run: its ``name``, ``id``, ``timestamp``
(a ``datetime`` when the event gave one) and ``type`` (``"event"``, or ``"run"`` for an upstream run)."""
#: Metaflow's name for the same record.
MetaflowEvent = HeadwaterEvent


class Trigger:
    """The events (or upstream runs) that started the run, latest first.

    Parameters
    ----------
    meta : list of dict, optional
        One dict per event with ``name``, ``id``, ``timestamp`` (epoch seconds) and ``type``.
    """

    def __init__(self, meta: list[dict[str, Any]] | None = None) -> None:
        items = sorted(meta or [], key=lambda m: _seconds(m.get("timestamp")), reverse=True)
        self._events = [HeadwaterEvent(name=m.get("name"), id=m.get("id"), type=m.get("type"),
                                       timestamp=_time(m.get("timestamp"))) for m in items]
        self._runs: list[Any] | None = None

    @classmethod
    def from_runs(cls, runs: Iterable[Any]) -> "Trigger":
        """A Trigger for finished upstream runs (``Run`` objects), as ``--trigger`` gives it locally."""
        from .flow.triggers import end_event_name

        done = sorted((r for r in runs if r.end_task is not None), key=lambda r: _seconds(r.finished_at),
                      reverse=True)
        out = cls([{"type": TriggerKind.RUN.value, "timestamp": r.finished_at, "name": end_event_name(r.path_components[0]),
                    "id": r.end_task.pathspec} for r in done])
        out._runs = list(done)
        return out

    @property
    def event(self) -> HeadwaterEvent | None:
        """The latest event that started the run."""
        return next(iter(self._events), None)

    @property
    def events(self) -> list[HeadwaterEvent] | None:
        """Every event that started the run (None if there were none)."""
        return list(self._events) or None

    @property
    def runs(self) -> list[Any] | None:
        """The upstream runs (``Run``) among the events, latest first (None if there were none)."""
        if self._runs is None:
            from .client import Run

            # A run event's id is its end task's pathspec: Flow/run/step/task.
            self._runs = [Run("/".join(str(e.id).split("/")[:2]), _namespace_check=False)
                          for e in self._events if e.type == TriggerKind.RUN]
        return list(self._runs) or None

    @property
    def run(self) -> Any | None:
        """The latest upstream run that started this one, or None."""
        return next(iter(self.runs or ()), None)

    def __getitem__(self, key: str) -> Any:
        """The upstream run of flow ``key`` (when runs started this one), else the event named ``key``."""
        if self.runs:
            for run in self.runs:
                if run.path_components[0] == key:
                    return run
        else:
            for event in self._events:
                if event.name == key:
                    return event
        raise KeyError(key)

    def __iter__(self) -> Any:
        """The events, latest first."""
        return iter(self._events)

    def __contains__(self, key: str) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __repr__(self) -> str:
        return f"Trigger({[e.name for e in self._events]!r})"


def _seconds(value: Any) -> float:
    """A timestamp (epoch seconds, digits, or a datetime) as seconds; -inf when there is none."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.isdigit():
        return float(value)
    return float("-inf")


def _time(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value)
    if isinstance(value, str) and value.isdigit():
        return datetime.fromtimestamp(int(value))
    return value


def trigger_from_environ(environ: Mapping[str, str]) -> Trigger | None:
    """The Trigger the event payloads in ``environ`` describe, or None (nothing triggered the run).

    A payload is the JSON the event carried (``null`` when that event did not start the run); the
    variable's name gives its type: ``HEADWATER_ARGO_EVENT_PAYLOAD_<type>_<dependency name>``.
    """
    meta = []
    for key, text in sorted(environ.items()):
        if not key.startswith(PAYLOAD_ENV_PREFIX) or text in ("", "null"):
            continue
        try:
            payload = json.loads(text)
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        kind = key[len(PAYLOAD_ENV_PREFIX):].split("_", 1)[0]
        meta.append({"name": payload.get("name"), "id": payload.get("id"), "timestamp": payload.get("timestamp"),
                     "type": kind})
    return Trigger(meta) if meta else None


__all__ = ["HeadwaterEvent", "MetaflowEvent", "PAYLOAD_ENV_PREFIX", "Trigger", "TriggerKind", "trigger_from_environ"]
