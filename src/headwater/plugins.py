"""Plugins on standard Python entry points (cross-cutting, internal API used by every registry).

A third-party package adds step and flow decorators, card types, CLI commands,
launchers, object stores, metadata providers, secrets providers and artifact
codecs by declaring entry points in one of the groups of :class:`PluginKind`.
Entry points are listed by name once per process and each is imported only when
something asks for it by name, so a task that does not use a plugin never imports
it. Listing needs ``importlib.metadata``, whose import alone costs ~30 ms: the
listing is therefore cached in ``$HEADWATER_HOME/plugins.json``, keyed by the
modification times of the ``sys.path`` directories (installing or removing a
package changes them) and of the entry-point files that declared a plugin. A plugin that fails to import is named in a
:class:`PluginWarning` and treated as absent: it never breaks an unrelated flow.
"""

from __future__ import annotations

import enum
import importlib
import json
import os
import sys
import warnings
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PluginEntry:
    """One declared plugin: ``value`` is the entry point's ``module:attr``, ``dist`` its package."""

    name: str
    value: str
    dist: str | None = None

    def load(self) -> Any:
        """Import the module and return the attribute the entry point names."""
        module, _, attr = self.value.split("[", 1)[0].strip().partition(":")
        obj = importlib.import_module(module.strip())
        for part in attr.strip().split(".") if attr.strip() else ():
            obj = getattr(obj, part)
        return obj


_index: dict[PluginKind, dict[str, PluginEntry]] | None = None
_loaded: dict[tuple[PluginKind, str], Any] = {}
_failed: dict[tuple[PluginKind, str], str] = {}
_CACHE_VERSION = 2
_CACHE_ENTRIES = 32  # listings kept, one per distinct sys.path (flows in many directories)


def plugin_index() -> dict[PluginKind, dict[str, PluginEntry]]:
    """Every declared plugin by kind and name (listed once per process, cached on disk).

    The run process calls this before it forks tasks, so forked tasks inherit the
    listing instead of repeating it.
    """
    global _index
    if _index is None:
        key = _path_key()
        cached = _read_cache(key)
        if cached is None:
            cached, files = _scan()
            _write_cache(key, cached, files)
        _index = cached
    return _index


def _scan() -> tuple[dict[PluginKind, dict[str, PluginEntry]], list[str]]:
    from importlib.metadata import entry_points

    index: dict[PluginKind, dict[str, PluginEntry]] = {k: {} for k in PluginKind}
    files: set[str] = set()
    every = entry_points()  # one scan of the installed packages; select() filters it
    for kind, ep in ((k, ep) for k in PluginKind for ep in every.select(group=k.value)):
        dist = getattr(ep, "dist", None)
        first = index[kind].get(ep.name)
        if first is None:
            index[kind][ep.name] = PluginEntry(ep.name, ep.value, getattr(dist, "name", None))
            located = getattr(dist, "_path", None)  # the dist-info directory, when it is one
            if located is not None:
                files.add(os.path.join(str(located), "entry_points.txt"))
        elif first.value != ep.value:
            _warn(f"Two packages declare the {kind.value} plugin {ep.name!r} ({first.value} and "
                  f"{ep.value}); using {first.value}. Uninstall one of them to silence this warning.")
    return index, sorted(files)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _path_key() -> list[list[Any]]:
    return [[p, _mtime(p or ".")] for p in sys.path]


def _cache_file() -> str:
    from .config import load_settings

    return os.path.join(load_settings().home, "plugins.json")


def _load_cache_doc() -> dict[str, Any]:
    try:
        with open(_cache_file()) as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) and doc.get("version") == _CACHE_VERSION else {}
    except (OSError, ValueError):
        return {}


def _read_cache(key: list[list[Any]]) -> dict[PluginKind, dict[str, PluginEntry]] | None:
    try:
        entry = _load_cache_doc().get("listings", {}).get(json.dumps(key))
        if entry is None or any(_mtime(path) != mtime for path, mtime in entry["files"]):
            return None
        return {k: {n: PluginEntry(n, v, d) for n, (v, d) in entry["plugins"].get(k.value, {}).items()}
                for k in PluginKind}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _write_cache(key: list[list[Any]], index: dict[PluginKind, dict[str, PluginEntry]], files: list[str]) -> None:
    listings = dict(_load_cache_doc().get("listings", {}))
    listings.pop(json.dumps(key), None)
    listings[json.dumps(key)] = {  # newest last; the oldest go first
        "files": [[f, _mtime(f)] for f in files],
        "plugins": {k.value: {n: [e.value, e.dist] for n, e in v.items()} for k, v in index.items() if v}}
    doc = {"version": _CACHE_VERSION, "listings": dict(list(listings.items())[-_CACHE_ENTRIES:])}
    try:
        path = _cache_file()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except OSError:  # a read-only home: list again next time
        pass


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
        source = f" from package {ep.dist!r}" if ep.dist else ""
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
