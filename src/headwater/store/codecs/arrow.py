"""Arrow tables and record batches as Arrow IPC streams (storage layer, internal).

Saving copies no column: the IPC writer's pieces (small message headers, then
the column's own Arrow buffers) are stored back to back as one part
(``gathered.gather``). Each column is its own IPC stream and its own part, so
the store decides compression per column, as it does per numpy array: a column
zstd cannot shrink is stored raw, 4 KiB-aligned, and loaded by mmap, its Arrow
buffers pointing into the mapping (zero copy), whatever its neighbours hold. The
table's schema (with its metadata, e.g. pandas') is kept whole beside them. IPC
is Arrow's stable format: any later pyarrow (or any Arrow implementation) reads
it. The pandas and polars codecs reuse these helpers.
"""

from __future__ import annotations

import pickle
from typing import Any

import pyarrow as pa

TABLE = "table"
BATCH = "batch"


#: Buffers the IPC writer hands over below this size are copied into the running
#: header piece; larger ones stay the table's own memory.
_OWN_PIECE = 64 << 10


class _Pieces:
    """A write-only file for ``pyarrow.PythonFile`` that keeps what it is given.

    The IPC writer passes each column buffer as a ``pyarrow.Buffer`` over the
    table's memory (no copy); small writes (message headers, padding) are joined.
    """

    closed = False

    def __init__(self) -> None:
        self.pieces: list[Any] = []
        self._small = bytearray()

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        if n >= _OWN_PIECE and isinstance(data, pa.Buffer):
            if self._small:
                self.pieces.append(bytes(self._small))
                self._small.clear()
            self.pieces.append(data)
        else:
            self._small += data
        return n

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self._small:
            self.pieces.append(bytes(self._small))
            self._small.clear()
        self.closed = True


def ipc_stream(table: pa.Table | pa.RecordBatch) -> pickle.PickleBuffer:
    """``table`` as an Arrow IPC stream, its large buffers not copied (``gathered.gather``)."""
    from ..gathered import gather

    sink = _Pieces()
    _write(pa.PythonFile(sink, mode="w"), table)
    sink.close()
    return gather(sink.pieces)


def _write(sink: Any, table: pa.Table | pa.RecordBatch) -> None:
    with pa.ipc.new_stream(sink, table.schema) as writer:
        if isinstance(table, pa.RecordBatch):
            writer.write_batch(table)
        else:
            writer.write_table(table)


def read_ipc(data: Any) -> pa.RecordBatchStreamReader:
    """A reader over the IPC stream in ``data`` (any buffer), sharing its memory."""
    return pa.ipc.open_stream(pa.py_buffer(data))


def columns_state(table: pa.Table | pa.RecordBatch) -> Any:
    """``(schema, rows, [one IPC stream per column])``; a table without columns is one stream."""
    schema = table.schema
    if not table.num_columns:
        return schema.serialize().to_pybytes(), table.num_rows, [ipc_stream(table)]
    bare = schema.remove_metadata()
    streams = []
    for i in range(table.num_columns):
        field = bare.field(i)
        column = table.column(i)
        one = (pa.RecordBatch.from_arrays([column], schema=pa.schema([field])) if isinstance(table, pa.RecordBatch)
               else pa.Table.from_arrays([column], schema=pa.schema([field])))
        streams.append(ipc_stream(one))
    return schema.serialize().to_pybytes(), table.num_rows, streams


def table_from_columns(state: Any, *, batch: bool = False) -> pa.Table | pa.RecordBatch:
    """The table (or record batch) ``columns_state`` saved, sharing the streams' memory."""
    schema_bytes, rows, streams = state
    schema = pa.ipc.read_schema(pa.py_buffer(schema_bytes))
    if not schema.names:
        reader = read_ipc(streams[0])
        return reader.read_next_batch() if batch else reader.read_all()
    if batch:  # a batch was written as one batch per stream
        arrays = [read_ipc(s).read_next_batch().column(0) for s in streams]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
    return pa.Table.from_arrays([read_ipc(s).read_all().column(0) for s in streams], schema=schema)


def encode(value: pa.Table | pa.RecordBatch) -> Any:
    """The codec state of a table or record batch: its kind, schema and column streams."""
    kind = BATCH if isinstance(value, pa.RecordBatch) else TABLE
    return kind, columns_state(value)


def decode(state: Any) -> pa.Table | pa.RecordBatch:
    """The table or record batch ``encode`` saved, its columns in ``state``'s buffers."""
    kind, columns = state
    return table_from_columns(columns, batch=kind == BATCH)
