"""Plugins on standard Python entry points (cross-cutting, internal API used by every registry).

A third-party package adds step and flow decorators, card types, CLI commands,
launchers, object stores, metadata providers, secrets providers and artifact
codecs by declaring entry points in one of the groups of :class:`PluginKind`.
Entry points are listed by name once per process (one scan, ~2 ms) and each is
imported only when something asks for it by name, so a task that does not use a
plugin never imports it. A plugin that fails to import is named in a
:class:`PluginWarning` and treated as absent: it never breaks an unrelated flow.
"""

from __future__ import annotations

import enum
import warnings
from typing import Any

__all__ = ["PluginKind", "PluginWarning", "find_plugin", "plugin_names", "plugin_status"]


class PluginKind(enum.Enum):
    """The kinds of plugin; each value is the entry-point group that declares them."""

    STEP_DECORATOR = "headwater.step_decorators"
    FLOW_DECORATOR = "headwater.flow_decorators"
    CARD = "headwater.cards"
    CLI = "headwater.cli"
    LAUNCHER = "headwater.launchers"
    OBJECT_STORE = "headwater.object_stores"
    METADATA_PROVIDER = "headwater.metadata_providers"
    SECRETS_PROVIDER = "headwater.secrets_providers"
    CODEC = "headwater.codecs"


class PluginWarning(UserWarning):
    """A plugin could not be loaded; it is skipped."""


_index: dict[PluginKind, dict[str, Any]] | None = None  # kind -> name -> EntryPoint
_loaded: dict[tuple[PluginKind, str], Any] = {}
_failed: dict[tuple[PluginKind, str], str] = {}


def plugin_index() -> dict[PluginKind, dict[str, Any]]:
    """Every declared plugin entry point by kind and name (scanned once per process).

    The run process calls this before it forks tasks, so forked tasks inherit the
    scan instead of repeating it.
    """
    global _index
    if _index is None:
        from importlib.metadata import entry_points

        index: dict[PluginKind, dict[str, Any]] = {k: {} for k in PluginKind}
        every = entry_points()  # one scan of the installed packages; select() filters it
        for kind, ep in ((k, ep) for k in PluginKind for ep in every.select(group=k.value)):
            first = index[kind].get(ep.name)
            if first is None:
                index[kind][ep.name] = ep
            elif first.value != ep.value:
                _warn(f"Two packages declare the {kind.value} plugin {ep.name!r} ({first.value} and "
                      f"{ep.value}); using {first.value}. Uninstall one of them to silence this warning.")
        _index = index
    return _index


def plugin_names(kind: PluginKind) -> list[str]:
    """The names of the installed plugins of ``kind``, sorted; nothing is imported.

    Parameters
    ----------
    kind : PluginKind
        Which entry-point group to list.

    Examples
    --------
    >>> isinstance(plugin_names(PluginKind.CODEC), list)
    True
    """
    return sorted(plugin_index()[kind])


def find_plugin(kind: PluginKind, name: str) -> object | None:
    """The plugin of ``kind`` called ``name``, imported on first use; None if there is none.

    A plugin whose import fails is reported once per process as a
    :class:`PluginWarning` naming it, its package and the error, and then
    behaves as if it were not installed.

    Parameters
    ----------
    kind : PluginKind
        The plugin's kind (its entry-point group).
    name : str
        The entry point's name.

    Examples
    --------
    >>> find_plugin(PluginKind.LAUNCHER, "no-such-launcher") is None
    True
    """
    key = (kind, name)
    if key in _loaded:
        return _loaded[key]
    if key in _failed:
        return None
    ep = plugin_index()[kind].get(name)
    if ep is None:
        return None
    try:
        obj = ep.load()
    except Exception as e:  # a broken plugin must not break an unrelated flow
        _failed[key] = f"{type(e).__name__}: {e}"
        dist = getattr(getattr(ep, "dist", None), "name", None)
        source = f" from package {dist!r}" if dist else ""
        _warn(f"The {kind.value} plugin {name!r} ({ep.value}{source}) failed to load and is skipped: "
              f"{_failed[key]}. Fix or uninstall the package.")
        return None
    _loaded[key] = obj
    return obj


def _warn(message: str) -> None:
    # Attributed to no source line, so the console shows one line: "<headwater plugins>:0: PluginWarning: ...".
    # Filters still match on the category and on module "headwater.plugins".
    warnings.warn_explicit(message, PluginWarning, "<headwater plugins>", 0, module="headwater.plugins")


def plugin_status(kind: PluginKind) -> list[tuple[str, str, str | None]]:
    """Load every plugin of ``kind``: ``(name, "module:attr", error or None)`` for each.

    Used by ``headwater plugins`` to check an installation; everything else loads
    plugins one at a time, by name.
    """
    out = []
    for name in plugin_names(kind):
        ep = plugin_index()[kind][name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PluginWarning)
            find_plugin(kind, name)
        out.append((name, ep.value, _failed.get((kind, name))))
    return out


def _reset() -> None:
    """Forget the scan and every loaded plugin (tests install plugins at run time)."""
    global _index
    _index = None
    _loaded.clear()
    _failed.clear()
