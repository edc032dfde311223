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
    """``df`` with its read-only zero-copy numpy columns re-viewed through ``views``.

    Arrow hands pandas read-only arrays; the same bytes seen through the
    (copy-on-write) blob buffers are writable, so the frame behaves like one
    loaded by pickle: in-place edits work and never reach the file.
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
        arr = col.to_numpy(copy=False) if col.dtype.kind in _ZERO_COPY_KINDS and isinstance(col.dtype, np.dtype) else None
        if arr is not None and not arr.flags.writeable and arr.ndim == 1 and arr.flags.c_contiguous:
            addr = arr.__array_interface__["data"][0]
            span = next((sp for sp in spans if sp[0] <= addr and addr + arr.nbytes <= sp[1]), None)
            if span is not None:
                fresh = np.frombuffer(span[2], dtype=arr.dtype, count=len(arr), offset=addr - span[0])
                columns[i] = pd.Series(fresh, index=df.index, name=col.name, copy=False)
                swapped = True
                continue
        columns[i] = col
    if not swapped:
        return df
    out = pd.DataFrame(columns, index=df.index, copy=False)
    out.columns = df.columns
    return out
