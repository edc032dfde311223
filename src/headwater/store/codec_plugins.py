"""Artifact codecs inside pickle (storage layer, internal): values of a type with a
codec are saved by that codec instead of pickle's default, wherever they sit in an
artifact (in a list, a dict, an object).

Two sources, looked up by the value's exact type name (``module.QualName``):

- a ``headwater.codecs`` entry-point plugin, whose name is the type's qualified name
  (``pandas.core.frame.DataFrame``) and whose object has ``encode(value)`` and
  ``decode(data)``. ``encode`` returns bytes (``decode`` then receives bytes), or
  any picklable state in which ``pickle.PickleBuffer`` objects travel out of band
  (``decode`` then receives that state with each buffer as a zero-copy buffer);
  a plugin overrides the built-in codec for its type;
- the built-in typed codecs (:mod:`headwater.store.codecs.registry`): Arrow tables
  and record batches, pandas and polars frames, torch tensors.

Inside the pickle stream such a value becomes a call to :func:`decode_with_plugin`
or :func:`~headwater.store.codecs.registry.decode_typed`. Codec modules and
plugins are imported the first time a value of their type is saved or loaded; when
no plugin is installed and no library with a built-in codec is imported, pickling
is plain ``pickle.dumps``.
"""

from __future__ import annotations

import io
import pickle
import sys
from typing import Any, Callable

from .codecs.registry import BUILTIN_ROOTS, BUILTIN_TYPES, builtin_codec, decode_typed

_UNSET: Any = object()
_names: frozenset[str] | None = None  # type names with a codec plugin
_by_type: dict[type, Any] = {}  # type -> plugin codec, or None for "no plugin"
_reducers: dict[type, Any] = {}  # type -> reducer(obj) for the pickler, or None


def _codec_names() -> frozenset[str]:
    global _names
    if _names is None:
        from ..plugins import PluginKind, plugin_names

        _names = frozenset(plugin_names(PluginKind.CODEC))
    return _names


def _type_name(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


def codec_for(tp: type) -> Any:
    """The codec plugin for values of ``tp`` (imported on first use), or None."""
    codec = _by_type.get(tp, _UNSET)
    if codec is _UNSET:
        name = _type_name(tp)
        codec = None
        if name in _codec_names():
            from ..plugins import PluginKind, find_plugin

            found = find_plugin(PluginKind.CODEC, name)
            if found is not None and callable(getattr(found, "encode", None)) and callable(getattr(found, "decode", None)):
                codec = found
        _by_type[tp] = codec
    return codec


def decode_with_plugin(type_name: str, data: Any) -> Any:
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


def _plugin_reducer(name: str, codec: Any) -> Callable[[Any], Any]:
    def reduce(obj: Any) -> Any:
        state = codec.encode(obj)
        if isinstance(state, (bytes, bytearray, memoryview)):
            state = bytes(state)  # the original contract: decode receives bytes
        return decode_with_plugin, (name, state)

    return reduce


def _builtin_reducer(codec_id: str, module: Any) -> Callable[[Any], Any]:
    encode = module.encode

    def reduce(obj: Any) -> Any:
        state = encode(obj)
        if state is NotImplemented:  # this value does not round-trip exactly: plain pickle
            return NotImplemented
        return decode_typed, (codec_id, state)

    return reduce


def _reducer_for(tp: type) -> Any:
    reducer = _reducers.get(tp, _UNSET)
    if reducer is _UNSET:
        name = _type_name(tp)
        plugin = codec_for(tp) if _codec_names() else None
        if plugin is not None:
            reducer = _plugin_reducer(name, plugin)
        elif name in BUILTIN_TYPES:
            try:
                reducer = _builtin_reducer(BUILTIN_TYPES[name].value, builtin_codec(name))
            except ImportError:  # e.g. pandas without pyarrow: pickle it, as before codecs
                reducer = None
        else:
            reducer = None
        _reducers[tp] = reducer
    return reducer


class _CodecPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        reducer = _reducers.get(type(obj), _UNSET)
        if reducer is _UNSET:
            reducer = _reducer_for(type(obj))
        if reducer is None:
            return NotImplemented
        return reducer(obj)


def _codecs_possible() -> bool:
    """Whether any value could have a codec: a plugin is installed, or a library with a
    built-in codec is imported (no value of its types can exist before)."""
    modules = sys.modules
    return any(root in modules for root in BUILTIN_ROOTS) or bool(_codec_names())


def dumps(obj: Any, buffer_callback: Callable[[pickle.PickleBuffer], Any] | None = None) -> bytes:
    """``pickle.dumps(obj, protocol=5)``, with typed codecs and codec plugins where they apply.

    Raises
    ------
    pickle.PicklingError
        Also for a value nested past Python's recursion limit (pickle recurses once
        per level), so callers that name the artifact name this failure too.
    """
    try:
        if not _codecs_possible():
            return pickle.dumps(obj, protocol=5, buffer_callback=buffer_callback)
        out = io.BytesIO()
        _CodecPickler(out, protocol=5, buffer_callback=buffer_callback).dump(obj)
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
    _reducers.clear()
