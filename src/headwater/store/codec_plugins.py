"""Artifact codec plugins (storage layer, internal): a ``headwater.codecs`` plugin
serializes the values of one type instead of pickle.

The entry point's name is the type's qualified name (``module.QualName``, e.g.
``pandas.core.frame.DataFrame``) and its object has ``encode(value) -> bytes``
and ``decode(data) -> value``. Inside the pickle stream such a value becomes a
call to :func:`decode_with_plugin`, so it may sit anywhere in an artifact (in a
list, a dict, an object). The plugin is imported the first time a value of its
type is saved or loaded; when no codec plugin is installed, pickling is untouched.
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any, Callable

_UNSET: Any = object()
_names: frozenset[str] | None = None  # type names with a codec plugin
_by_type: dict[type, Any] = {}  # type -> codec, or None for "no codec"


def _codec_names() -> frozenset[str]:
    global _names
    if _names is None:
        from ..plugins import PluginKind, plugin_names

        _names = frozenset(plugin_names(PluginKind.CODEC))
    return _names


def codec_for(tp: type) -> Any:
    """The codec plugin for values of ``tp`` (imported on first use), or None."""
    codec = _by_type.get(tp, _UNSET)
    if codec is _UNSET:
        name = f"{tp.__module__}.{tp.__qualname__}"
        codec = None
        if name in _codec_names():
            from ..plugins import PluginKind, find_plugin

            found = find_plugin(PluginKind.CODEC, name)
            if found is not None and callable(getattr(found, "encode", None)) and callable(getattr(found, "decode", None)):
                codec = found
        _by_type[tp] = codec
    return codec


def decode_with_plugin(type_name: str, data: bytes) -> Any:
    """Rebuild a value saved by the codec plugin for ``type_name`` (called by unpickling)."""
    from ..exceptions import ArtifactError
    from ..plugins import PluginKind, find_plugin

    codec = find_plugin(PluginKind.CODEC, type_name)
    if codec is None:
        raise ArtifactError(
            f"This artifact holds a {type_name} saved by a codec plugin, and no working "
            f"headwater.codecs plugin for {type_name} is installed here.",
            hint="Install the package that provides the codec (see `headwater plugins`).")
    return codec.decode(data)  # type: ignore[attr-defined]


class _PluginPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        codec = codec_for(type(obj))
        if codec is None:
            return NotImplemented
        tp = type(obj)
        return decode_with_plugin, (f"{tp.__module__}.{tp.__qualname__}", bytes(codec.encode(obj)))


def dumps(obj: Any, buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None) -> bytes:
    """``pickle.dumps(obj, protocol=5)``, with codec plugins when any is installed.

    Raises
    ------
    pickle.PicklingError
        Also for a value nested past Python's recursion limit (pickle recurses once
        per level), so callers that name the artifact name this failure too.
    """
    try:
        if not _codec_names():
            return pickle.dumps(obj, protocol=5, buffer_callback=buffer_callback)
        out = io.BytesIO()
        _PluginPickler(out, protocol=5, buffer_callback=buffer_callback).dump(obj)
        return out.getvalue()
    except RecursionError:
        raise pickle.PicklingError(
            f"it is nested too deeply: pickle recurses once per level, and the value goes past Python's "
            f"recursion limit ({sys.getrecursionlimit()})"
        ) from None


def _reset() -> None:
    global _names
    _names = None
    _by_type.clear()
