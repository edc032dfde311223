"""``@card``: attach an HTML report to a step's tasks (public as ``headwater.card``).

The decorator validates its attributes when the flow is checked; at run time it
creates ``current.card`` before the step and renders the card, in the task
process, after the attempt is committed (``headwater.cards.render``).
"""

from __future__ import annotations

import re
from typing import Any

from ..exceptions import HeadwaterException
from ..flow.decorators import InvalidDecoratorAttribute, StepDecorator, _make, _number

_NAME = re.compile(r"^[A-Za-z0-9_]+$")


class CardDecorator(StepDecorator):
    """Render a card (an HTML report) for every task of the step.

    Attributes: ``type`` (``"default"``, ``"blank"`` or a registered custom
    type), ``id`` (to address it as ``current.card["id"]``), ``options`` (passed
    to the card type), ``timeout`` (seconds the render may take), ``save_errors``
    (store an error card when rendering fails), ``customize`` (make it the card
    ``current.card.append`` adds to), ``refresh_interval`` (seconds between live
    re-renders), ``scope`` and ``rank`` (accepted for Metaflow compatibility).
    Several ``@card`` decorators may sit on one step.
    """

    name = "card"
    defaults: dict[str, Any] = {
        "type": "default", "options": {}, "scope": "task", "rank": None, "timeout": 45, "id": None,
        "save_errors": True, "customize": False, "refresh_interval": 5,
    }
    allow_multiple = True

    def init(self) -> None:
        from .card import card_type, card_type_names

        a = self.attributes
        t = a["type"]
        if not isinstance(t, str) or not _NAME.match(t):
            raise InvalidDecoratorAttribute(f"@card(type={t!r}): type must be a name of letters, digits and _.")
        cls = card_type(t)
        if cls is None:
            known = ", ".join(card_type_names())
            raise InvalidDecoratorAttribute(
                f"@card(type={t!r}): there is no card type {t!r}.",
                hint=f"Card types: {known}. A custom type is a subclass of headwater.cards.HeadwaterCard with "
                     f"type = {t!r}, defined or imported in the flow's file.",
            )
        cid = a["id"]
        if cid is not None and (not isinstance(cid, str) or not _NAME.match(cid)):
            raise InvalidDecoratorAttribute(f"@card(id={cid!r}): id must be a name of letters, digits and _.")
        if a["options"] is None:
            a["options"] = {}
        if not isinstance(a["options"], dict):
            raise InvalidDecoratorAttribute(f"@card(options={a['options']!r}): options must be a dict.")
        given = a["timeout"]
        if _number(self, "timeout") <= 0:
            raise InvalidDecoratorAttribute(f"@card(timeout={given!r}): timeout must be more than 0 seconds.")
        _number(self, "refresh_interval")
        for flag in ("save_errors", "customize"):
            if not isinstance(a[flag], bool):
                raise InvalidDecoratorAttribute(f"@card({flag}={a[flag]!r}): {flag} must be True or False.")
        if a["customize"] and not getattr(cls, "ALLOW_USER_COMPONENTS", False):
            raise InvalidDecoratorAttribute(
                f"@card(type={t!r}, customize=True): the {t!r} card does not take components.",
                hint="Use customize=True on a default or blank card.")
        # Import the renderer now, in the run process: forked tasks then find it loaded.
        from . import render  # noqa: F401

    def step_init(self, flow: Any, graph: Any, step_name: str, decorators: list[Any],
                  environment: Any = None, flow_datastore: Any = None, logger: Any = None) -> None:
        """Rules across the step's cards: unique ids, at most one ``customize=True``."""
        flow_cls = type(flow)
        cards = [d for d in decorators if d.name == "card"]
        if cards[0] is not self:
            return
        if graph is not None:  # computed once here, in the run process, instead of in every forked task
            from .render import _graph_info, _parameter_names

            _graph_info(graph)
            _parameter_names(flow_cls)
        ids = [d.attributes["id"] for d in cards if d.attributes["id"] is not None]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        location = graph[step_name].location if graph is not None else None
        if dup:
            raise HeadwaterException(f"Step {step_name!r} has two @card decorators with id={dup[0]!r}.",
                                     location=location, hint="Give each card of a step its own id.")
        if sum(1 for d in cards if d.attributes["customize"]) > 1:
            raise HeadwaterException(f"Step {step_name!r} has more than one @card with customize=True.",
                                     location=location, hint="Mark only the card current.card.append() should fill.")

    def _session(self, ctx: Any) -> Any:
        session = getattr(ctx, "_hw_cards", None)
        if session is None:
            from .render import CardSession

            step = getattr(type(ctx.flow), ctx.spec.step_name)
            decos = [d for d in getattr(step, "decorators", ()) if d.name == "card"]
            # Python applies decorators bottom-up: number the cards in reading order instead.
            decos = [d for d in decos if d.statically_defined][::-1] + [d for d in decos if not d.statically_defined]
            session = CardSession(ctx, decos)
            ctx._hw_cards = session
        return session

    def hw_task_pre_step(self, ctx: Any) -> None:
        from ..flow.current import current

        current._update(card=self._session(ctx).collector)

    def hw_task_finished(self, ctx: Any) -> None:
        self._session(ctx).render_final(self)


card = _make(CardDecorator)

__all__ = ["CardDecorator", "card"]
