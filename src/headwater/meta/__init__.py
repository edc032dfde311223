"""The index layer (internal): a cache of the store's run and attempt records that
makes listings fast; rebuildable from the store at any time. ``open_index`` picks
the implementation by metadata provider name (``local`` = the SQLite index: in the
datastore root for a local store, a synced cache under ``Settings.home`` for a URL root).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..exceptions import HeadwaterException
from ..store.roots import is_local_root
from .base import MetadataIndex
from .index import Index, RunRow, TaskRow
from .liveness import attempt_status, run_is_dead, run_status

if TYPE_CHECKING:
    from ..store.records import RecordStore

#: The built-in metadata provider: the SQLite index inside the datastore root.
LOCAL_PROVIDER = "local"


class UnknownMetadataProviderError(HeadwaterException):
    """``--metadata`` (or ``metadata("name@...")``) named a provider that is not installed."""

    headline = "Unknown metadata provider"


def metadata_providers() -> list[str]:
    """The metadata providers this process can use: ``local`` and the installed plugins."""
    from ..plugins import PluginKind, plugin_names

    return sorted({LOCAL_PROVIDER, *plugin_names(PluginKind.METADATA_PROVIDER)})


def open_index(root: str | os.PathLike[str], *, records: RecordStore | None = None,
               provider: str = LOCAL_PROVIDER, home: str | None = None) -> MetadataIndex:
    """The metadata index of the datastore at ``root``.

    Parameters
    ----------
    root : str or PathLike
        The datastore root.
    records : RecordStore, optional
        The store's records, from which a new index fills itself.
    provider : str
        ``"local"`` (the SQLite index), or the name of a ``headwater.metadata_providers``
        plugin: a callable ``(root, records=...)`` returning a ``MetadataIndex``.
    home : str, optional
        Where a URL root's index cache lives (``<home>/index/<hash of the root>/``);
        default ``Settings.home``. A local root keeps ``<root>/index.sqlite``.
    """
    if provider == LOCAL_PROVIDER:
        if is_local_root(root):
            return Index(root, records=records)
        from .remote import RemoteIndex

        if home is None:
            from ..config import load_settings

            home = load_settings().home
        return RemoteIndex(os.fspath(root), home=home, records=records)
    from ..plugins import PluginKind, find_plugin

    factory = find_plugin(PluginKind.METADATA_PROVIDER, provider)
    if not callable(factory):
        raise UnknownMetadataProviderError(
            f"There is no metadata provider called {provider!r}.",
            hint=f"Use one of: {', '.join(metadata_providers())} (or install the plugin that provides it).")
    index = factory(os.fspath(root), records=records)
    if not isinstance(index, MetadataIndex):
        raise UnknownMetadataProviderError(
            f"The metadata provider plugin {provider!r} gave a {type(index).__name__}, not a metadata index.",
            hint="Fix or uninstall the plugin.")
    return index


__all__ = ["LOCAL_PROVIDER", "Index", "MetadataIndex", "RunRow", "TaskRow", "UnknownMetadataProviderError",
           "attempt_status", "metadata_providers", "open_index", "run_is_dead", "run_status"]
