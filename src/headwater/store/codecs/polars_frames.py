"""polars DataFrames through Arrow IPC, one stream per column (storage layer, internal).

``DataFrame.to_arrow`` shares polars' memory, the IPC stream is written once, and
on load ``polars.from_arrow`` adopts the Arrow columns that point into the blob's
mapping (zero copy; no rechunking). A frame Arrow cannot hold (a column of Python
objects) is left to pickle.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from .arrow import columns_state, table_from_columns


def encode(value: pl.DataFrame) -> Any:
    """The frame's IPC stream, or ``NotImplemented`` when Arrow cannot hold a column."""
    if any(dtype == pl.Object for dtype in value.dtypes):
        return NotImplemented
    try:
        table = value.to_arrow()
    except (pa.ArrowException, pl.exceptions.PolarsError, TypeError, ValueError):
        return NotImplemented
    return columns_state(table)


def decode(state: Any) -> pl.DataFrame:
    """The frame ``encode`` saved, its columns in ``state``'s buffer."""
    table = table_from_columns(state)
    return pl.from_arrow(table, rechunk=False)  # type: ignore[return-value]
