"""Rendering cards inside the task process (internal): no subprocesses.

A ``CardSession`` lives for one task attempt. It builds ``current.card``, renders
live versions when the step calls ``refresh()``, and renders the final card of
each ``@card`` after the attempt is committed, each under its own timeout (in a
thread the task stops waiting for). A failure becomes an ``error`` card, never
a failed task.

Store layout (beside the attempt record)::

    runs/<Flow>/<run>/<step>/<task>/<attempt>.cards/<type>[-<id>]-<n>.html   (n: the @card's position on the step)
    runs/<Flow>/<run>/<step>/<task>/<attempt>.cards/live/<type>[-<id>]-<n>.<seq>.html   (while running)

Objects are written once, so a live re-render is a new object and the one it
replaces is removed; the final render removes the live ones.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from typing import Any, Callable

from .card import CARD_TYPES, CardTask, ErrorCard, card_type, make_card
from .collector import CardComponentCollector, CardSlot

CARDS_SUFFIX = ".cards"
LIVE_DIR = "live"

_graph_infos: dict[int, dict[str, Any]] = {}


def cards_prefix(flow: str, run_id: str, step: str, task_id: str, attempt: int) -> str:
    """The folder of an attempt's cards in the object store."""
    return f"runs/{flow}/{run_id}/{step}/{task_id}/{attempt}{CARDS_SUFFIX}"


class RenderTimeout(Exception):
    """The card did not render within its ``timeout``."""


def call_with_timeout(fn: Callable[[], str], timeout: float) -> str:
    """``fn()`` in a daemon thread; ``RenderTimeout`` if it has not returned after ``timeout`` s.

    A Python thread cannot be killed: a render that overruns is abandoned and its
    result dropped; the task process exits without waiting for it.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["html"] = fn()
        except BaseException as e:  # reported to the caller's thread
            box["error"] = e

    t = threading.Thread(target=run, name="headwater-card-render", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise RenderTimeout(f"Rendering took longer than the card's timeout of {timeout:g} s; it was abandoned.")
    if "error" in box:
        raise box["error"]
    return box["html"]  # type: ignore[no-any-return]


_param_names: dict[type, list[str]] = {}


def _readable_traceback(e: BaseException) -> str:
    """The failure as the user needs it: no traceback for a timeout, no headwater frames above their code."""
    if isinstance(e, RenderTimeout):
        return f"RenderTimeout: {e}"
    tb = traceback.TracebackException.from_exception(e)
    frames = [f for f in tb.stack if "/headwater/cards/" not in f.filename.replace("\\", "/")]
    if frames:
        tb.stack = traceback.StackSummary.from_list(frames)
    return "".join(tb.format())


def _parameter_names(flow_cls: type) -> list[str]:
    names = _param_names.get(flow_cls)
    if names is None:
        from ..flow.parameters import Parameter

        names = _param_names[flow_cls] = [n for n in dir(flow_cls) if isinstance(getattr(flow_cls, n, None), Parameter)]
    return names


def _graph_info(graph: Any) -> dict[str, Any]:
    info = _graph_infos.get(id(graph))
    if info is None:
        info = _graph_infos[id(graph)] = graph.to_info() if hasattr(graph, "to_info") else {}
    return info


class CardSession:
    """The cards of one task attempt (built by the first ``@card``'s ``task_pre_step``).

    Parameters
    ----------
    ctx : TaskHookContext
        The executor's hook context (flow, spec, graph, datastore).
    decorators : list of CardDecorator
        The step's ``@card`` decorators, in order.
    """

    def __init__(self, ctx: Any, decorators: list[Any]) -> None:
        self.ctx = ctx
        spec = ctx.spec
        self.prefix = cards_prefix(spec.flow_name, spec.run_id, spec.step_name, spec.task_id, spec.attempt)
        self.objects = ctx.datastore.objects
        self.started_at = time.time()
        self.slots: dict[int, CardSlot] = {}
        ordered = []
        for pos, deco in enumerate(decorators):
            attrs = deco.attributes
            slot = CardSlot(attrs, card_type(attrs["type"]) or ErrorCard, pos)
            slot.refresher = self.refresh
            self.slots[id(deco)] = slot
            ordered.append(slot)
        self.collector = CardComponentCollector(ordered, spec.step_name)
        self._lock = threading.Lock()

    # -- the task as a card sees it -------------------------------------------------------

    def card_task(self, *, live: bool) -> CardTask:
        ctx, spec = self.ctx, self.ctx.spec
        flow = ctx.flow
        values = {k: v for k, v in vars(flow).items() if not k.startswith("_hw_")} if flow is not None else {}
        record = None if live else ctx.record
        return CardTask(
            flow_name=spec.flow_name, run_id=spec.run_id, step_name=spec.step_name, task_id=spec.task_id,
            attempt=spec.attempt, record=record, load=ctx.datastore.content.load,
            values=values if record is not None and record.get("status") == "ok" else {},
            graph_info=_graph_info(ctx.graph), parameter_names=_parameter_names(type(flow)) if flow else [],
            started_at=self.started_at,
        )

    def _card(self, slot: CardSlot) -> Any:
        components = list(slot.components) if slot.editable else []
        return make_card(slot.cls, options=slot.options, components=components,
                         graph=_graph_info(self.ctx.graph), flow=self.ctx.flow)

    # -- live ------------------------------------------------------------------------------

    def refresh(self, slot: CardSlot, data: Any, force: bool) -> None:
        """Re-render ``slot`` while the step runs (``current.card.refresh()``)."""
        if not getattr(slot.cls, "RUNTIME_UPDATABLE", False):
            self.collector._warn_once(f"live:{slot.name}", f"the {slot.type!r} card cannot be refreshed while the "
                                                            "step runs; refresh() ignored.")
            return
        now = time.monotonic()
        if not force and slot.last_refresh is not None and now - slot.last_refresh < slot.refresh_interval:
            return
        slot.last_refresh = now
        with self._lock:
            slot.live_seq += 1
            seq = slot.live_seq
            try:
                task = self.card_task(live=True)
                card = self._card(slot)
                payload = {"mode": "runtime", "user": data, "render_seq": seq, "component_count": len(slot.components)}
                html = call_with_timeout(lambda: card.render_runtime(task, payload), slot.timeout)
            except Exception as e:
                self.collector._warn_once(f"live-fail:{slot.name}", f"live render of card {slot.name} failed: "
                                                                    f"{type(e).__name__}: {e}")
                return
            key = f"{self.prefix}/{LIVE_DIR}/{slot.name}.{seq:06d}.html"
            self.objects.put(key, html.encode("utf-8"))
            old, slot.live_key = slot.live_key, key
            if old:
                self.objects.delete(old)

    # -- final -----------------------------------------------------------------------------

    def render_final(self, deco: Any) -> str | None:
        """Render and store the card of ``deco``; returns its key (``None`` if nothing was stored)."""
        slot = self.slots.get(id(deco))
        if slot is None:
            return None
        key = f"{self.prefix}/{slot.name}.html"
        task = self.card_task(live=False)
        try:
            if slot.cls is ErrorCard and slot.type != "error":
                known = ", ".join(sorted(CARD_TYPES))
                raise LookupError(f"There is no card type {slot.type!r} (known: {known}).")
            card = self._card(slot)
            html = call_with_timeout(lambda: card.render(task), slot.timeout)
            if not isinstance(html, str):
                raise TypeError(f"{type(card).__name__}.render() returned a {type(html).__name__}, not an HTML str.")
        except Exception as e:
            tb = _readable_traceback(e)
            sys.stderr.write(f"@card: the {slot.type!r} card ({slot.name}) failed to render: "
                             f"{type(e).__name__}: {e}\n")
            if not slot.save_errors:
                self._drop_live(slot)
                return None
            html = ErrorCard(options={"card_type": slot.type}).render(task, stack_trace=tb)
            # Stored as type "error" (same id and position), so get_cards(type="error") finds failures.
            key = f"{self.prefix}/error{'-' + slot.id if slot.id else ''}-{slot.position}.html"
        self.objects.put(key, html.encode("utf-8"))
        self._drop_live(slot)
        return key

    def _drop_live(self, slot: CardSlot) -> None:
        with self._lock:
            if slot.live_key:
                self.objects.delete(slot.live_key)
                slot.live_key = None


__all__ = ["CardSession", "RenderTimeout", "call_with_timeout", "cards_prefix"]
