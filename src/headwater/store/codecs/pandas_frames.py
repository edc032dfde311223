"""pandas DataFrames and Series through Arrow IPC (storage layer, internal).

A frame goes through ``pyarrow.Table.from_pandas`` (pandas metadata in the schema
keeps dtypes, the index and its names, categoricals, time zones) only when that
round-trips exactly; otherwise ``encode`` declines and pickle saves the frame. The
check is cheap: the Arrow schema alone is converted back (an empty table) and its
dtypes, labels and index kind compared with the frame's. On load, columns of
numpy numeric, bool and datetime dtypes point into the blob's mapping: zero copy,
and writable (the mapping is copy-on-write), like arrays loaded by pickle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .arrow import columns_state, table_from_columns

FRAME = "frame"
SERIES = "series"
#: Column name a Series travels under (its own name is kept in the state).
_SERIES_COLUMN = "__series__"
#: numpy dtype kinds whose Arrow -> pandas conversion can share the Arrow memory.
_ZERO_COPY_KINDS = frozenset("biufmM")


def encode(value: pd.DataFrame | pd.Series) -> Any:
    """The codec state, or ``NotImplemented`` when Arrow would not round-trip ``value`` exactly."""
    if isinstance(value, pd.Series):
        name = value.name
        if not (name is None or isinstance(name, str)) or value.attrs:
            return NotImplemented
        frame = value.to_frame(_SERIES_COLUMN)
        table = _exact_table(frame)
        return NotImplemented if table is None else (SERIES, name, columns_state(table))
    table = _exact_table(value)
    return NotImplemented if table is None else (FRAME, None, columns_state(table))


def _exact_table(df: pd.DataFrame) -> pa.Table | None:
    """``df`` as an Arrow table with pandas metadata, or None if it would not come back equal."""
    if df.attrs or not df.flags.allows_duplicate_labels or not df.columns.is_unique:
        return None
    if isinstance(df.columns, pd.MultiIndex) or not all(isinstance(c, str) for c in df.columns):
        return None
    index = df.index
    levels = index.levels if isinstance(index, pd.MultiIndex) else (index,)
    if any(getattr(level, "freq", None) is not None for level in levels):  # Arrow keeps no frequency
        return None
    try:
        table = pa.Table.from_pandas(df, preserve_index=None)
        back = table.schema.empty_table().to_pandas()
    except (pa.ArrowException, TypeError, ValueError, NotImplementedError):
        return None  # e.g. an object column of mixed Python values
    if not back.columns.equals(df.columns) or back.columns.dtype != df.columns.dtype:
        return None
    # e.g. an object column of str comes back as str: pickle keeps it object.
    if not all(map(_same_dtype, back.dtypes, df.dtypes)):
        return None
    if not isinstance(index, pd.RangeIndex):
        if type(back.index) is not type(index) or list(back.index.names) != list(index.names):
            return None
        if isinstance(index, pd.MultiIndex):
            if not all(map(_same_dtype, back.index.dtypes, index.dtypes)):
                return None
        elif not _same_dtype(back.index.dtype, index.dtype):
            return None
    elif index.name is not None and not isinstance(index.name, str):
        return None
    return table


def _same_dtype(back: Any, orig: Any) -> bool:
    """Whether a dtype read back from the schema alone matches the original.

    An empty table has no categories, so for a categorical only the ordering and
    the dtype the categories come back with are compared.
    """
    if isinstance(orig, pd.CategoricalDtype):
        if not isinstance(back, pd.CategoricalDtype) or back.ordered != orig.ordered:
            return False
        cats = orig.categories
        return bool(pd.Index(pa.array(cats[:1]).to_pandas()).dtype == cats.dtype)
    return bool(back == orig)


def decode(state: Any) -> pd.DataFrame | pd.Series:
    """The frame or series ``encode`` saved; numeric columns share ``state``'s buffer."""
    kind, name, columns = state
    table = table_from_columns(columns)
    # split_blocks: one block per column, so no column is copied to consolidate blocks.
    df = _writable(table.to_pandas(split_blocks=True), [memoryview(s) for s in columns[2]])
    if kind == SERIES:
        return df[_SERIES_COLUMN].rename(name)
    return df


def _writable(df: pd.DataFrame, views: list[memoryview]) -> pd.DataFrame:
    """``df`` with its read-only zero-copy columns re-viewed through ``views``.

    Arrow hands pandas read-only arrays; the same bytes seen through the
    (copy-on-write) blob buffers are writable, so the frame behaves like one
    loaded by pickle: in-place edits work and never reach the file. Covers numpy
    numeric, bool and datetime columns, categorical codes and tz-aware datetimes.
    """
    spans = []
    for view in views:
        if not view.readonly and view.nbytes:
            view = view.cast("B") if view.format != "B" else view
            start = np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0]
            spans.append((start, start + view.nbytes, view))
    if not spans or not df.shape[1]:
        return df
    columns: dict[int, Any] = {}
    swapped = False
    for i in range(df.shape[1]):
        col = df.iloc[:, i]
        values = _writable_values(col, spans)
        if values is None:
            columns[i] = col
        else:
            columns[i] = pd.Series(values, index=df.index, name=col.name, copy=False)
            swapped = True
    if not swapped:
        return df
    out = pd.DataFrame(columns, index=df.index, copy=False)
    out.columns = df.columns
    return out


def _writable_values(col: pd.Series, spans: list[tuple[int, int, memoryview]]) -> Any:
    """The column's values over writable memory, or None if it has none to re-view."""
    dtype = col.dtype
    if isinstance(dtype, np.dtype):
        return _rewrap(col.to_numpy(copy=False), spans) if dtype.kind in _ZERO_COPY_KINDS else None
    if isinstance(dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy(copy=False)
        if codes.flags.writeable:
            return None
        # Arrow converts dictionary indices into a read-only array of its own: copy the
        # codes when they are not the blob's (one byte a row for up to 127 categories).
        fresh = _rewrap(codes, spans)
        return pd.Categorical.from_codes(codes.copy() if fresh is None else fresh, dtype=dtype, validate=False)
    if isinstance(dtype, pd.DatetimeTZDtype):
        i8 = _rewrap(col.array.asi8, spans)
        if i8 is None:
            return None
        try:  # no public constructor adopts an array without converting it
            return pd.arrays.DatetimeArray._simple_new(i8.view(f"M8[{dtype.unit}]"), dtype=dtype)
        except (AttributeError, TypeError):
            return None
    return None


def _rewrap(arr: np.ndarray, spans: list[tuple[int, int, memoryview]]) -> np.ndarray | None:
    """A writable array over the same bytes as the read-only ``arr``, if they lie in a span."""
    if arr.flags.writeable or arr.ndim != 1 or not arr.flags.c_contiguous:
        return None
    addr = arr.__array_interface__["data"][0]
    for start, end, view in spans:
        if start <= addr and addr + arr.nbytes <= end:
            return np.frombuffer(view, dtype=arr.dtype, count=len(arr), offset=addr - start)
    return None
