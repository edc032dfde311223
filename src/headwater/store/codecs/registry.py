"""The typed-codec registry (storage layer, internal): which built-in codec handles a
type, and the function every typed value's pickle stream calls to rebuild it.

A built-in codec is a module with ``encode(value) -> state`` (any picklable value,
``pickle.PickleBuffer`` objects in it travel out of band, 4 KiB-aligned and
mmap'ed on load) or ``NotImplemented`` to let pickle save this value, and
``decode(state) -> value``. Types are named by ``module.QualName``, so nothing is
imported to decide that a value has no codec.
"""

from __future__ import annotations

import enum
import importlib
from typing import Any

from ...exceptions import ArtifactError


class TypedCodec(enum.Enum):
    """The built-in codecs; each value is the id written into the pickle stream."""

    ARROW = "arrow"
    PANDAS = "pandas"
    POLARS = "polars"
    TORCH = "torch"

    @property
    def module(self) -> str:
        """The module that implements this codec."""
        return _MODULES[self]

    @property
    def libraries(self) -> tuple[str, ...]:
        """The importable packages this codec needs to load a value (pip names alike)."""
        return _LIBRARIES[self]


_MODULES = {
    TypedCodec.ARROW: "headwater.store.codecs.arrow",
    TypedCodec.PANDAS: "headwater.store.codecs.pandas_frames",
    TypedCodec.POLARS: "headwater.store.codecs.polars_frames",
    TypedCodec.TORCH: "headwater.store.codecs.torch_tensors",
}
_LIBRARIES = {
    TypedCodec.ARROW: ("pyarrow",),
    TypedCodec.PANDAS: ("pandas", "pyarrow"),
    TypedCodec.POLARS: ("polars", "pyarrow"),
    TypedCodec.TORCH: ("torch",),
}
#: ``headwater[...]`` extra that installs a codec's libraries.
_EXTRAS = {
    TypedCodec.ARROW: "dataframes",
    TypedCodec.PANDAS: "dataframes",
    TypedCodec.POLARS: "dataframes",
    TypedCodec.TORCH: "torch",
}

#: Exact types (``module.QualName``) with a built-in codec. Subclasses are pickled:
#: a codec rebuilds the base type only. pandas 3 sets ``__module__ = "pandas"`` on
#: its public classes; earlier versions keep the defining module.
BUILTIN_TYPES: dict[str, TypedCodec] = {
    "pyarrow.lib.Table": TypedCodec.ARROW,
    "pyarrow.lib.RecordBatch": TypedCodec.ARROW,
    "pandas.DataFrame": TypedCodec.PANDAS,
    "pandas.Series": TypedCodec.PANDAS,
    "pandas.core.frame.DataFrame": TypedCodec.PANDAS,
    "pandas.core.series.Series": TypedCodec.PANDAS,
    "polars.dataframe.frame.DataFrame": TypedCodec.POLARS,
    "torch.Tensor": TypedCodec.TORCH,
}
#: Top-level modules that must be imported before any value of a built-in type can exist.
BUILTIN_ROOTS = frozenset(name.partition(".")[0] for name in BUILTIN_TYPES)


class CodecLibraryMissingError(ArtifactError):
    """Loading an artifact needs a library (pandas, pyarrow, polars, torch) not installed here."""

    headline = "Missing library for an artifact"


#: pip names of the libraries whose absence ``missing_library`` explains.
_PIP_NAMES = {"pandas": "pandas", "pyarrow": "pyarrow", "polars": "polars", "torch": "torch", "numpy": "numpy"}


def missing_library(error: ModuleNotFoundError) -> CodecLibraryMissingError | None:
    """The error to raise when unpickling an artifact failed on a missing well-known library.

    A value pickled the ordinary way (a pandas frame Arrow could not hold, a numpy
    array) names its library's modules in the pickle stream. None when the missing
    module is not one of those libraries (a user's module keeps its own error).
    """
    lib = (error.name or "").partition(".")[0]
    if lib not in _PIP_NAMES:
        return None
    return CodecLibraryMissingError(
        f"This artifact holds a value pickled by {lib}, and loading it needs {lib}, which cannot be "
        f"imported here ({error}).",
        hint=f"Install {lib} where the artifact is read: pip install {_PIP_NAMES[lib]}; in a step with its "
        f"own environment, add it to @pypi or @conda.",
    )


def builtin_codec(type_name: str) -> Any:
    """The codec module for values of exactly ``type_name``, or None (imports the module)."""
    codec = BUILTIN_TYPES.get(type_name)
    return None if codec is None else importlib.import_module(codec.module)


def decode_typed(codec_id: str, state: Any) -> Any:
    """Rebuild a value saved by the built-in codec ``codec_id`` (called by unpickling).

    Raises
    ------
    CodecLibraryMissingError
        When a library the codec needs cannot be imported here.
    """
    try:
        codec = TypedCodec(codec_id)
    except ValueError:
        from ..codec import UnsupportedBlobError

        raise UnsupportedBlobError(
            f"An artifact was saved by the typed codec {codec_id!r}, which this version of headwater does not know.",
            hint="Upgrade headwater (pip install -U headwater) to read it.",
        ) from None
    for lib in codec.libraries:
        try:
            importlib.import_module(lib)
        except ImportError as e:
            need = " ".join(codec.libraries)
            raise CodecLibraryMissingError(
                f"This artifact was saved by headwater's {codec.value} codec and loading it needs {lib}, "
                f"which cannot be imported here ({e}).",
                hint=f"Install {lib} where the artifact is read: pip install {need} "
                f"(or pip install 'headwater[{_EXTRAS[codec]}]'); in a step with its own environment, "
                f"add it to @pypi or @conda.",
            ) from None
    return importlib.import_module(codec.module).decode(state)
