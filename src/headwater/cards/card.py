"""Card types (public through ``headwater.cards``): the ``HeadwaterCard`` base
class (alias ``MetaflowCard``) with its registry, the built-in ``default``,
``blank`` and ``error`` cards, and ``CardTask``, the task a card renders.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Callable, Iterator

from .components import MetaflowCardComponent, render_safely
from .dag import dag_svg
from .html import esc, page, section
from .preview import preview

#: Every card type by name; subclassing ``HeadwaterCard`` with a ``type`` registers it.
CARD_TYPES: dict[str, type["HeadwaterCard"]] = {}


def card_type(name: str) -> type["HeadwaterCard"] | None:
    """The card type called ``name``: defined or imported by the flow, else a ``headwater.cards`` plugin."""
    cls = CARD_TYPES.get(name)
    if cls is None:
        from ..plugins import PluginKind, find_plugin

        found = find_plugin(PluginKind.CARD, name)
        if isinstance(found, type) and issubclass(found, HeadwaterCard):
            cls = CARD_TYPES[name] = found
    return cls


def card_type_names() -> list[str]:
    """Every card type name: registered ones and installed plugins (not imported)."""
    from ..plugins import PluginKind, plugin_names

    return sorted(set(CARD_TYPES) | set(plugin_names(PluginKind.CARD)))


class HeadwaterCard:
    """Base class of card types. Subclass it, set ``type`` and implement :meth:`render`.

    Defining the subclass registers it (the last class defined for a type wins),
    so ``@card(type="...")`` can use it in any flow that imports it.

    Parameters
    ----------
    options : dict, optional
        ``@card(options=...)``.
    components : list, optional
        The components the step appended to this card (when ``ALLOW_USER_COMPONENTS``).
    graph : dict, optional
        The flow's graph (``FlowGraph.to_info()``).
    flow : FlowSpec, optional
        The flow instance of the task.

    Examples
    --------
    >>> class HelloCard(HeadwaterCard):
    ...     type = "hello_doc"
    ...     def render(self, task):
    ...         return self.html_page("<p>Hello from " + task.pathspec + "</p>", title="Hello")
    >>> CARD_TYPES["hello_doc"] is HelloCard
    True
    """

    #: The name ``@card(type=...)`` uses.
    type: str | None = None
    #: Whether ``current.card.append()`` adds components to this card.
    ALLOW_USER_COMPONENTS = False
    #: Whether ``current.card.refresh()`` re-renders the card while the step runs.
    RUNTIME_UPDATABLE = False
    #: Kept for Metaflow compatibility (headwater re-renders whole cards).
    RELOAD_POLICY = "never"
    scope = "task"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        t = cls.__dict__.get("type")
        if isinstance(t, str) and t:
            CARD_TYPES[t] = cls

    def __init__(self, options: dict[str, Any] | None = None, components: list[Any] | None = None,
                 graph: dict[str, Any] | None = None, flow: Any = None, **kwargs: Any) -> None:
        self.options = dict(options or {})
        self.components = list(components or [])
        self.graph = graph
        self.flow = flow

    def render(self, task: "CardTask") -> str:
        """The card's HTML for a finished task."""
        raise NotImplementedError(f"Card type {self.type!r} ({type(self).__name__}) must implement render(task).")

    def render_runtime(self, task: "CardTask", data: dict[str, Any]) -> str:
        """The card's HTML while the step runs (``current.card.refresh()``); ``data["user"]`` is refresh's data."""
        return self.render(task)

    def refresh(self, task: "CardTask", data: dict[str, Any]) -> Any:
        """Kept for Metaflow compatibility: headwater re-renders the whole card instead."""
        return None

    # helpers for subclasses ---------------------------------------------------------

    def render_components(self) -> str:
        """The user components as HTML, each in its own block (a failing one shows its error)."""
        return "".join(f'<div class="hw-component">{render_safely(c)}</div>' for c in self.components)

    def html_page(self, body: str, title: str | None = None, subtitle: str | None = None) -> str:
        """``body`` in headwater's self-contained page, with its stylesheet and title bar."""
        return page(title or (self.type or "card"), body, subtitle=subtitle)


#: Metaflow's name for :class:`HeadwaterCard`.
MetaflowCard = HeadwaterCard


def make_card(cls: type[HeadwaterCard], **kwargs: Any) -> HeadwaterCard:
    """Instantiate a card class with the keyword arguments its ``__init__`` accepts."""
    import inspect

    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return cls(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return cls(**kwargs)
    return cls(**{k: v for k, v in kwargs.items() if k in params})


# -- the task a card renders --------------------------------------------------------------


class _Artifact:
    """``task["name"]``: an artifact with its ``.data`` loaded on first access."""

    def __init__(self, task: "CardTask", name: str) -> None:
        self._task = task
        self.id = name
        self.pathspec = f"{task.pathspec}/{name}"

    @property
    def data(self) -> Any:
        return self._task._value(self.id)

    @property
    def type(self) -> str:
        return str(self._task._refs.get(self.id, {}).get("type", ""))

    @property
    def size(self) -> int:
        return int(self._task._refs.get(self.id, {}).get("size", 0))

    def __repr__(self) -> str:
        return f"<artifact {self.pathspec}>"


class _Data:
    def __init__(self, task: "CardTask") -> None:
        self._task = task

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self._task._value(name)
        except KeyError:
            raise AttributeError(f"Task {self._task.pathspec!r} has no artifact {name!r}.") from None

    def __contains__(self, name: object) -> bool:
        return name in self._task._refs


class CardTask:
    """The task a card renders: what a client ``Task`` offers, read from the attempt
    being committed (no index lookup), so cards render inside the task process.

    ``status`` is ``"running"`` for a live card, else ``"ok"`` or ``"failed"``.
    """

    def __init__(self, *, flow_name: str, run_id: str, step_name: str, task_id: str, attempt: int,
                 record: dict[str, Any] | None = None, load: Callable[[dict[str, Any]], Any] | None = None,
                 values: dict[str, Any] | None = None, graph_info: dict[str, Any] | None = None,
                 parameter_names: list[str] | tuple[str, ...] = (), started_at: float | None = None) -> None:
        self.flow_name, self.run_id, self.step_name, self.id = flow_name, run_id, step_name, str(task_id)
        self.current_attempt = attempt
        self.record = record
        self._load = load
        self._values = dict(values or {})
        self._cache: dict[str, Any] = {}
        self.graph_info = graph_info or {}
        self.parameter_names = list(parameter_names)
        self.started_at = (record or {}).get("started_at") or started_at or time.time()

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step_name}/{self.id}"

    @property
    def status(self) -> str:
        return "running" if self.record is None else str(self.record.get("status", "failed"))

    @property
    def successful(self) -> bool:
        """As ``Task.successful``: ``False`` for a failure ``@catch`` caught."""
        return self.status == "ok" and not (self.record or {}).get("caught")

    @property
    def finished(self) -> bool:
        """As ``Task.finished``: the step succeeded or ``@catch`` handled its failure."""
        return self.status == "ok"

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.started_at)

    @property
    def finished_at(self) -> datetime | None:
        ts = (self.record or {}).get("finished_at")
        return datetime.fromtimestamp(ts) if ts else None

    @property
    def exception(self) -> dict[str, Any] | None:
        return (self.record or {}).get("exception")

    @property
    def metadata_dict(self) -> dict[str, Any]:
        return dict((self.record or {}).get("metadata") or {})

    @property
    def index(self) -> int | None:
        return (self.record or {}).get("split_index")

    @property
    def _refs(self) -> dict[str, dict[str, Any]]:
        return dict((self.record or {}).get("artifacts") or {})

    def _value(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        if name not in self._cache:
            ref = self._refs[name]  # KeyError: no such artifact
            if self._load is None:
                raise KeyError(name)
            self._cache[name] = self._load(ref)
        return self._cache[name]

    @property
    def data(self) -> _Data:
        """Artifact values by attribute: ``task.data.x``."""
        return _Data(self)

    def artifact_names(self) -> list[str]:
        """Names of the public artifacts (not ``_private`` ones)."""
        return sorted(n for n in self._refs if not n.startswith("_"))

    def __getitem__(self, name: str) -> _Artifact:
        if name not in self._refs:
            raise KeyError(f"Task {self.pathspec!r} has no artifact {name!r}.")
        return _Artifact(self, name)

    def __contains__(self, name: object) -> bool:
        return name in self._refs

    def __iter__(self) -> Iterator[_Artifact]:
        return iter([_Artifact(self, n) for n in self.artifact_names()])

    def __repr__(self) -> str:
        return f"CardTask('{self.pathspec}', attempt={self.current_attempt}, status={self.status!r})"


# -- built-in card types ------------------------------------------------------------------


def _fmt_ts(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "—"


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _footer() -> str:
    from .. import __version__

    return f"Rendered by headwater {__version__} at {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}"


def task_badges(task: CardTask) -> list[tuple[str, str]]:
    """Status, attempt and duration badges of the card header."""
    status = task.status
    badges = [({"ok": "✓ succeeded", "failed": "✗ failed"}.get(status, "● running"), status),
              (f"attempt {task.current_attempt}", "")]
    rec = task.record or {}
    if rec.get("finished_at"):
        badges.append((_fmt_duration(rec["finished_at"] - task.started_at), ""))
    return badges


class DefaultCard(HeadwaterCard):
    """The ``default`` card: task info, parameters, artifacts, the DAG and user components.

    Options: ``artifacts`` (names to show; default all public ones), ``only_repr``
    (show artifacts as ``repr`` text only), ``hide_dag``.
    """

    type = "default"
    ALLOW_USER_COMPONENTS = True
    RUNTIME_UPDATABLE = True

    def render(self, task: CardTask) -> str:
        return self._page(task, live=False)

    def render_runtime(self, task: CardTask, data: dict[str, Any]) -> str:
        return self._page(task, live=True)

    def _page(self, task: CardTask, *, live: bool) -> str:
        parts = []
        if self.components:
            parts.append(section(None, self.render_components(), cls="hw-components"))
        parts.append(section("Task", self._info(task)))
        exc = task.exception
        if exc:
            text = exc.get("traceback") or f"{exc.get('type')}: {exc.get('message')}"
            parts.append(section("Error", f'<div class="hw-error"><h3>{esc(exc.get("type"))}: '
                                          f'{esc(exc.get("message", ""))}</h3><pre class="hw-wrap">{esc(text)}</pre>'
                                          "</div>"))
        params = [n for n in task.parameter_names if n in task]
        if params:
            rows = "".join(f"<tr><td><code>{esc(n)}</code></td><td>{self._preview(task, n, 300)}</td></tr>"
                           for n in params)
            parts.append(section("Parameters", '<div class="hw-table-wrap"><table class="hw-table"><thead><tr>'
                                               f"<th>Name</th><th>Value</th></tr></thead><tbody>{rows}</tbody>"
                                               "</table></div>"))
        parts.append(section("Artifacts", self._artifacts(task, set(params), live)))
        info = self.graph or task.graph_info
        if info and not self.options.get("hide_dag"):
            parts.append(section("Flow graph", f'<div class="hw-dag">{dag_svg(info, task.step_name)}</div>'))
        title = f"{task.flow_name} · {task.step_name}"
        return page(title, "".join(parts), subtitle=task.pathspec, badges=task_badges(task), footer=_footer())

    def _info(self, task: CardTask) -> str:
        rec = task.record or {}
        rows = [("Pathspec", task.pathspec), ("Status", task.status), ("Attempt", str(task.current_attempt)),
                ("Started", _fmt_ts(task.started_at)), ("Finished", _fmt_ts(rec.get("finished_at"))),
                ("Duration", _fmt_duration(rec["finished_at"] - task.started_at) if rec.get("finished_at") else "—")]
        meta = rec.get("metadata") or {}
        if meta.get("user"):
            rows.append(("User", str(meta["user"])))
        if rec.get("split_index") is not None:
            rows.append(("Foreach index", str(rec["split_index"])))
        doc = (task.graph_info.get("steps", {}).get(task.step_name, {}) or {}).get("doc")
        if doc:
            rows.append(("Step", doc.strip()))
        return '<dl class="hw-kv">' + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows) + "</dl>"

    def _preview(self, task: CardTask, name: str, max_chars: int = 2000) -> str:
        try:
            return preview(task._value(name), max_chars=max_chars, only_repr=bool(self.options.get("only_repr")))
        except Exception as e:  # an artifact that cannot load must not hide the others
            why = esc(f"cannot show it: {type(e).__name__}: {e}")
            return f'<div class="hw-error"><pre class="hw-wrap">{why}</pre></div>'

    def _artifacts(self, task: CardTask, params: set[str], live: bool) -> str:
        if live and task.record is None:
            return '<div class="hw-note">Artifacts appear when the task finishes.</div>'
        wanted = self.options.get("artifacts")
        names = [n for n in task.artifact_names() if n not in params and not (
            n == "name" and task._refs[n].get("type") == "builtins.str")]
        if wanted:
            names = [n for n in names if n in set(wanted)]
        if not names:
            return '<div class="hw-note">No artifacts.</div>'
        out = []
        for n in names:
            ref = task._refs[n]
            t = str(ref.get("type", ""))
            label = t[len("builtins."):] if t.startswith("builtins.") else t
            out.append(f'<div class="hw-artifact" data-artifact="{esc(n)}"><div class="hw-artifact-head">'
                       f'<span class="hw-artifact-name">{esc(n)}</span><span class="hw-type">{esc(label)}</span>'
                       f'<span class="hw-note">{int(ref.get("size", 0)):,} bytes</span></div>'
                       f"{self._preview(task, n)}</div>")
        return "".join(out)


class BlankCard(HeadwaterCard):
    """The ``blank`` card: only the components the step appends (option ``title``)."""

    type = "blank"
    ALLOW_USER_COMPONENTS = True
    RUNTIME_UPDATABLE = True

    def render(self, task: CardTask) -> str:
        body = section(None, self.render_components() or '<div class="hw-note">This card has no components.</div>')
        title = self.options.get("title")
        return page(str(title or task.pathspec), body, header=bool(title))


class ErrorCard(HeadwaterCard):
    """The ``error`` card: stored in place of a card that failed to render."""

    type = "error"

    def render(self, task: CardTask, stack_trace: str | None = None) -> str:
        what = self.options.get("card_type", "a")
        body = section(None, f'<div class="hw-error"><h3>The {esc(what)} card of this task failed to render.</h3>'
                             f'<pre class="hw-wrap">{esc(stack_trace or "(no traceback)")}</pre></div>'
                             '<div class="hw-note">The task itself is not affected.</div>')
        return page("Card error", body, subtitle=task.pathspec, badges=[("card failed", "failed")], footer=_footer())


__all__ = ["BlankCard", "CARD_TYPES", "card_type", "card_type_names", "CardTask", "DefaultCard", "ErrorCard", "HeadwaterCard", "MetaflowCard",
           "MetaflowCardComponent", "make_card"]
