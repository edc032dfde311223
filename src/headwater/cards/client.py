"""Reading cards back (public through ``headwater.cards``): ``get_cards``,
``Card`` and ``CardContainer``.

Cards are found through the client's datastore root (``HEADWATER_DATASTORE_ROOT``,
``headwater.metadata()``, else the nearest ``.headwater/``), never the working
directory alone, and read straight from the store: no index needed.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

from .render import CARDS_SUFFIX, LIVE_DIR

_LIVE = re.compile(r"^(?P<name>.+)\.(?P<seq>\d+)\.html$")


def parse_card_name(name: str) -> tuple[str, str | None, int] | None:
    """``<type>[-<id>]-<n>`` → (type, id, n), or ``None`` for another name."""
    head, dash, n = name.rpartition("-")
    if not dash or not n.isdigit() or not head:
        return None
    ctype, dash, cid = head.partition("-")
    return ctype, (cid if dash else None), int(n)


class Card:
    """One stored card. ``get()`` returns its HTML; in a notebook it shows itself.

    Attributes
    ----------
    type : str
        The card type (``"default"``, ``"blank"``, ``"error"`` or a custom one).
    id : str or None
        The ``@card(id=...)``.
    pathspec : str
        The task's pathspec.
    attempt : int
        The task attempt the card belongs to.
    live : bool
        ``True`` for a card rendered by ``current.card.refresh()`` while the step still runs.
    """

    def __init__(self, objects: Any, key: str, *, ctype: str, cid: str | None, position: int, pathspec: str,
                 attempt: int, live: bool = False) -> None:
        self._objects = objects
        self._key = key
        self.type = ctype
        self.id = cid
        self.position = position
        self.pathspec = pathspec
        self.attempt = attempt
        self.live = live
        self._html: str | None = None

    @property
    def name(self) -> str:
        """The card's file name without ``.html``: ``<type>[-<id>]-<n>``."""
        return f"{self.type}{'-' + self.id if self.id else ''}-{self.position}"

    @property
    def hash(self) -> str:
        """A short content hash of the card's HTML."""
        import hashlib

        return hashlib.sha1(self.get().encode("utf-8")).hexdigest()[:16]

    def _refind(self) -> None:
        # A live card is replaced by newer renders (or the final one): look it up again.
        prefix = self._key.split(CARDS_SUFFIX + "/")[0] + CARDS_SUFFIX
        for card in _list(self._objects, prefix, self.pathspec, self.attempt):
            if card.name == self.name:
                self._key, self.live = card._key, card.live
                return
        raise KeyError(self._key)

    def get(self) -> str:
        """The card's HTML (read on first call; a live card is re-read every call)."""
        if self._html is not None and not self.live:
            return self._html
        try:
            data = self._objects.get(self._key)
        except KeyError:
            self._refind()
            data = self._objects.get(self._key)
        self._html = data.decode("utf-8")
        return self._html

    @property
    def path(self) -> str:
        """Path of the card's HTML file in a local datastore."""
        try:
            return str(self._objects.local_path(self._key))
        except KeyError:
            self._refind()
            return str(self._objects.local_path(self._key))

    def view(self, open_browser: bool = True) -> str:
        """Write the card to a temporary file and open it in the web browser; returns the file's path."""
        import tempfile

        fd, path = tempfile.mkstemp(prefix=f"card-{self.name}-", suffix=".html")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.get())
        if open_browser:
            import webbrowser

            webbrowser.open("file://" + path)
        return path

    def _repr_html_(self) -> str:
        from .html import iframe

        return iframe(self.get())

    def __repr__(self) -> str:
        live = ", live" if self.live else ""
        return f"<Card {self.name} of {self.pathspec} attempt {self.attempt}{live}>"


class CardContainer:
    """The cards of a task: ``len``, iteration, indexing; shows them all in a notebook."""

    def __init__(self, cards: list[Card], pathspec: str) -> None:
        self._cards = cards
        self.pathspec = pathspec

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[Card]:
        return iter(self._cards)

    def __getitem__(self, i: int) -> Card:
        return self._cards[i]

    def __bool__(self) -> bool:
        return bool(self._cards)

    def _repr_html_(self) -> str:
        if not self._cards:
            return f"<p>No cards for {self.pathspec}.</p>"
        return "".join(c._repr_html_() for c in self._cards)

    def __repr__(self) -> str:
        return f"<CardContainer {self.pathspec}: {', '.join(c.name for c in self._cards) or 'no cards'}>"


def _list(objects: Any, prefix: str, pathspec: str, attempt: int) -> list[Card]:
    final: dict[str, Card] = {}
    for fname in objects.list_dir(prefix):
        if not fname.endswith(".html"):
            continue
        parsed = parse_card_name(fname[:-5])
        if parsed:
            final[fname[:-5]] = Card(objects, f"{prefix}/{fname}", ctype=parsed[0], cid=parsed[1],
                                     position=parsed[2], pathspec=pathspec, attempt=attempt)
    live: dict[str, tuple[int, str]] = {}
    for fname in objects.list_dir(f"{prefix}/{LIVE_DIR}"):
        m = _LIVE.match(fname)
        if m and m["name"] not in final:
            seq = int(m["seq"])
            if seq > live.get(m["name"], (-1, ""))[0]:
                live[m["name"]] = (seq, fname)
    cards = list(final.values())
    for name, (_, fname) in live.items():
        parsed = parse_card_name(name)
        if parsed:
            cards.append(Card(objects, f"{prefix}/{LIVE_DIR}/{fname}", ctype=parsed[0], cid=parsed[1],
                              position=parsed[2], pathspec=pathspec, attempt=attempt, live=True))
    cards.sort(key=lambda c: c.position)
    return cards


def _attempts_with_cards(objects: Any, task_dir: str) -> list[int]:
    out = []
    for name in objects.list_dir(task_dir):
        stem, _, ext = name.partition(".")
        if "." + ext == CARDS_SUFFIX and stem.isdigit():
            out.append(int(stem))
    return sorted(out)


def _resolve(task_or_pathspec: Any) -> tuple[Any, tuple[str, ...], int | None]:
    """(source, pathspec components, pinned attempt) of a Task or a pathspec string."""
    from ..client.base import parse_pathspec
    from ..client.source import source_for

    if isinstance(task_or_pathspec, str):
        return source_for(), parse_pathspec("get_cards", 4, task_or_pathspec), None
    comps = getattr(task_or_pathspec, "_components", None)
    if comps is None or len(comps) != 4:
        from ..exceptions import HeadwaterInvalidPathspec

        raise HeadwaterInvalidPathspec(
            f"get_cards() takes a Task or a task pathspec 'FlowName/run_id/step_name/task_id', "
            f"got {task_or_pathspec!r}.")
    return task_or_pathspec._source, tuple(comps), task_or_pathspec._attempt


def get_cards(task_or_pathspec: Any, id: str | None = None, type: str | None = None,
              follow_resumed: bool = True) -> CardContainer:
    """The cards of a task.

    Parameters
    ----------
    task_or_pathspec : Task or str
        A client ``Task`` or its pathspec ``"FlowName/run_id/step_name/task_id"``.
    id : str, optional
        Only the card with this ``@card(id=...)``.
    type : str, optional
        Only cards of this type.
    follow_resumed : bool, default True
        For a task a resumed run cloned, the cards of the task it was cloned from.

    Returns
    -------
    CardContainer
        The cards of the latest attempt that has cards (or of the Task's pinned
        attempt), in the order of the step's ``@card`` decorators; live cards
        while the task still runs.

    Raises
    ------
    HeadwaterNotFound
        There is no such task in the datastore.

    Examples
    --------
    >>> from headwater import Flow  # doctest: +SKIP
    >>> cards = get_cards(Flow("TrainFlow").latest_run["train"].task)  # doctest: +SKIP
    >>> cards[0].get()[:15]  # doctest: +SKIP
    '<!DOCTYPE html>'
    """
    from ..exceptions import HeadwaterNotFound

    src, comps, attempt = _resolve(task_or_pathspec)
    pathspec = "/".join(comps)
    records = src.records
    if records is None:
        raise HeadwaterNotFound(f"Task '{pathspec}' does not exist: there is no datastore at {src.root}.",
                                hint="Point HEADWATER_DATASTORE_ROOT (or headwater.metadata('local@/path')) at the "
                                     "datastore the flow ran with.")
    objects = records.objects
    task_dir = "runs/" + pathspec
    with_cards = _attempts_with_cards(objects, task_dir)
    if attempt is None and with_cards:
        attempt = with_cards[-1]
    cards: list[Card] = []
    if attempt is not None and attempt in with_cards:
        flow, run_id, step, task_id = comps
        from .render import cards_prefix

        cards = _list(objects, cards_prefix(flow, run_id, step, task_id, attempt), pathspec, attempt)
    if not cards:
        attempts = records.attempts(*comps)
        if not attempts and not with_cards and not objects.list_dir(task_dir):
            raise HeadwaterNotFound(f"Task '{pathspec}' does not exist in the datastore {src.root}.",
                                    hint="Check the pathspec, or point HEADWATER_DATASTORE_ROOT (or "
                                         "headwater.metadata('local@/path')) at the datastore the flow ran with.")
        if follow_resumed and attempts:
            meta = (records.read_attempt(*comps, attempts[-1]).get("metadata") or {})
            origin = meta.get("origin_pathspec")
            if meta.get("cloned") and origin and origin != pathspec:
                return get_cards(origin, id=id, type=type, follow_resumed=True)
    if id is not None:
        cards = [c for c in cards if c.id == id]
    if type is not None:
        cards = [c for c in cards if c.type == type]
    return CardContainer(cards, pathspec)


__all__ = ["Card", "CardContainer", "get_cards", "parse_card_name"]
