"""``current.card`` (public behaviour, internal module): collects the components a
step adds to its cards and asks for live re-renders.

One ``CardSlot`` per ``@card`` on the step; the collector routes ``append`` and
friends to the default editable card, and ``current.card["id"]`` to a card by id.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable, Iterator

from .components import MetaflowCardComponent


def _warn(message: str) -> None:
    sys.stderr.write(f"@card: {message}\n")
    sys.stderr.flush()


class CardSlot:
    """One ``@card`` of the running step: its attributes, class, file name and components."""

    def __init__(self, attributes: dict[str, Any], cls: type, position: int) -> None:
        self.type: str = attributes["type"]
        self.id: str | None = attributes["id"]
        self.options: dict[str, Any] = dict(attributes.get("options") or {})
        self.timeout: float = float(attributes["timeout"])
        self.refresh_interval: float = float(attributes["refresh_interval"])
        self.save_errors: bool = bool(attributes["save_errors"])
        self.customize: bool = bool(attributes["customize"])
        self.cls = cls
        self.position = position
        #: File name without ``.html``: ``<type>[-<id>]-<position>``.
        self.name = f"{self.type}{'-' + self.id if self.id else ''}-{position}"
        self.editable = bool(getattr(cls, "ALLOW_USER_COMPONENTS", False))
        self.components = ComponentManager(self)
        self.last_refresh: float | None = None
        self.live_seq = 0
        self.live_key: str | None = None
        self.refresher: Callable[[CardSlot, Any, bool], None] | None = None

    def __repr__(self) -> str:
        return f"<card {self.name}>"


class ComponentManager:
    """The components of one card: ``current.card["id"]`` and ``current.card.components``.

    Supports ``append``, ``extend``, ``clear``, ``refresh``, ``len``, iteration,
    and ``manager[component_id]`` / ``manager[i]`` lookup.
    """

    def __init__(self, slot: CardSlot | None) -> None:
        self._slot = slot
        self._items: list[Any] = []

    def _accepts(self, what: str) -> bool:
        slot = self._slot
        if slot is None:
            return False
        if not slot.editable:
            _warn(f"the {slot.type!r} card ({slot.name}) does not take components; {what} ignored.")
            return False
        return True

    def append(self, component: Any, id: str | None = None) -> None:
        """Add a component to the end of the card (``id`` makes it reachable as ``[id]``)."""
        if not isinstance(component, MetaflowCardComponent):
            _warn(f"current.card.append() takes a card component (Markdown, Table, ...), got a "
                  f"{type(component).__name__}; it is not shown. Wrap text in Markdown(...).")
            return
        if not self._accepts("append()"):
            return
        if id is not None:
            component.component_id = str(id)
        self._items.append(component)

    def extend(self, components: Iterable[Any]) -> None:
        """Add several components."""
        for c in components:
            self.append(c)

    def clear(self) -> None:
        """Remove every component."""
        self._items.clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        """Re-render this card now, while the step runs (at most every ``refresh_interval`` s unless ``force``)."""
        slot = self._slot
        if slot is not None and slot.refresher is not None:
            slot.refresher(slot, data, force)

    @property
    def components(self) -> "ComponentManager":
        return self

    def _find(self, key: Any) -> int:
        if isinstance(key, int):
            return key
        for i, c in enumerate(self._items):
            if c.component_id == key:
                return i
        raise KeyError(f"This card has no component with id {key!r}.")

    def __getitem__(self, key: str | int) -> Any:
        return self._items[self._find(key)]

    def __setitem__(self, key: str | int, component: Any) -> None:
        try:
            i = self._find(key)
        except KeyError:
            self.append(component, id=key if isinstance(key, str) else None)
            return
        if isinstance(key, str):
            component.component_id = key
        self._items[i] = component

    def __delitem__(self, key: str | int) -> None:
        del self._items[self._find(key)]

    def __contains__(self, key: object) -> bool:
        return any(c.component_id == key for c in self._items) or any(c is key for c in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items))

    def __repr__(self) -> str:
        name = self._slot.name if self._slot else "no card"
        return f"<components of {name}: {len(self._items)}>"


class CardComponentCollector:
    """``current.card``: add components to the step's cards and refresh them live.

    ``append``, ``extend``, ``clear``, ``refresh`` and ``components`` act on the
    default editable card: the one with ``customize=True``, else the only card
    whose type takes components. ``current.card["id"]`` reaches a card by id.

    Examples
    --------
    In a step decorated with ``@card``::

        current.card.append(Markdown("# Training"))
        bar = ProgressBar(max=epochs)
        current.card.append(bar)
        for epoch in range(epochs):
            bar.update(epoch + 1)
            current.card.refresh()
    """

    def __init__(self, slots: list[CardSlot], step_name: str = "") -> None:
        self._slots = list(slots)
        self._step = step_name
        self._warned: set[str] = set()
        custom = [s for s in slots if s.customize and s.editable]
        editable = [s for s in slots if s.editable]
        self._default = custom[0] if custom else (editable[0] if len(editable) == 1 else None)
        self._nowhere = ComponentManager(None)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _warn(message)

    def _default_manager(self, what: str) -> ComponentManager:
        if self._default is not None:
            return self._default.components
        editable = [s for s in self._slots if s.editable]
        if editable:
            ids = ", ".join(repr(s.id) for s in editable if s.id) or "none set"
            why = (f"step {self._step!r} has {len(editable)} cards that take components and none has "
                   f"customize=True; use current.card['<id>'] (ids: {ids}) or mark one customize=True")
        else:
            types = ", ".join(s.type for s in self._slots) or "none"
            why = f"no @card of step {self._step!r} takes components (types: {types})"
        self._warn_once("default", f"current.card.{what} ignored: {why}.")
        return self._nowhere

    def append(self, component: Any, id: str | None = None) -> None:
        """Add a component to the default editable card."""
        self._default_manager("append()").append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        """Add several components to the default editable card."""
        self._default_manager("extend()").extend(components)

    def clear(self) -> None:
        """Remove the default editable card's components."""
        self._default_manager("clear()").clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        """Re-render the default editable card (rate-limited by its ``refresh_interval`` unless ``force``)."""
        self._default_manager("refresh()").refresh(data, force)

    @property
    def components(self) -> ComponentManager:
        """The default editable card's components (``current.card.components["id"]``)."""
        return self._default_manager("components")

    def _by_id(self, card_id: str) -> ComponentManager:
        for s in self._slots:
            if s.id == card_id:
                return s.components
        ids = ", ".join(repr(s.id) for s in self._slots if s.id) or "none"
        self._warn_once(f"id:{card_id}", f"current.card[{card_id!r}]: step {self._step!r} has no @card with "
                                         f"id={card_id!r} (card ids: {ids}); its components are not shown.")
        return ComponentManager(None)

    def __getitem__(self, card_id: str) -> ComponentManager:
        return self._by_id(card_id)

    def __setitem__(self, card_id: str, components: Any) -> None:
        mgr = self._by_id(card_id)
        mgr.clear()
        mgr.extend(components if isinstance(components, (list, tuple)) else [components])

    def __contains__(self, card_id: object) -> bool:
        return any(s.id == card_id for s in self._slots)

    def __repr__(self) -> str:
        return f"<current.card: {', '.join(s.name for s in self._slots)}>"
