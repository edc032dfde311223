"""Arrow tables and record batches as one Arrow IPC stream (storage layer, internal).

The stream travels as one out-of-band buffer, so it is stored 4 KiB-aligned and,
uncompressed, loaded by mmap: the loaded table's columns point into the mapping
(zero copy). IPC is Arrow's stable format: any later pyarrow (or any Arrow
implementation) reads it. The pandas and polars codecs reuse these helpers.
"""

from __future__ import annotations

import pickle
from typing import Any

import pyarrow as pa

TABLE = "table"
BATCH = "batch"


def ipc_buffer(table: pa.Table | pa.RecordBatch) -> pickle.PickleBuffer:
    """``table`` written as an Arrow IPC stream into one exactly sized buffer.

    The size is measured first with a mock stream (no data copied), so the stream is
    written once, with no growth reallocations.
    """
    mock = pa.MockOutputStream()
    _write(mock, table)
    buf = pa.allocate_buffer(mock.size())
    _write(pa.FixedSizeBufferWriter(buf), table)
    return pickle.PickleBuffer(buf)


def _write(sink: Any, table: pa.Table | pa.RecordBatch) -> None:
    with pa.ipc.new_stream(sink, table.schema) as writer:
        if isinstance(table, pa.RecordBatch):
            writer.write_batch(table)
        else:
            writer.write_table(table)


def read_ipc(data: Any) -> pa.RecordBatchStreamReader:
    """A reader over the IPC stream in ``data`` (any buffer), sharing its memory."""
    return pa.ipc.open_stream(pa.py_buffer(data))


def encode(value: pa.Table | pa.RecordBatch) -> Any:
    """The codec state of a table or record batch: its kind and its IPC stream."""
    kind = BATCH if isinstance(value, pa.RecordBatch) else TABLE
    return kind, ipc_buffer(value)


def decode(state: Any) -> pa.Table | pa.RecordBatch:
    """The table or record batch ``encode`` saved, its columns in ``state``'s buffer."""
    kind, data = state
    reader = read_ipc(data)
    if kind == BATCH:
        return reader.read_next_batch()
    return reader.read_all()
