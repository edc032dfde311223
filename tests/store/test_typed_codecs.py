"""Typed codecs: pandas, Arrow, polars and torch values round-trip exactly, load without
copies (checked by address and by memory), dedup, and name their library when it is missing."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import torch

from flowrun import run_flow
from headwater import Flow
from headwater.store import ContentStore, LocalObjectStore, codec_plugins
from headwater.store.codec import encode, read_blob, write_blob
from headwater.store.codecs.registry import CodecLibraryMissingError

N = 200_000


def _save(obj, path: Path):
    enc = encode(obj)
    with open(path, "wb") as f:
        write_blob(enc, f)
    return enc


def _roundtrip(obj, tmp_path: Path, name: str = "blob"):
    enc = _save(obj, tmp_path / name)
    return enc, read_blob(str(tmp_path / name), enc.key)


def _typed(enc) -> bool:
    """Whether the value went through a built-in typed codec (not pandas' own pickling)."""
    return b"decode_typed" in enc.pickled


def _inside_mapping(addr: int, nbytes: int, path: Path) -> bool:
    """Whether [addr, addr + nbytes) lies in a mapping of the file ``path`` in this process."""
    real = os.path.realpath(path)
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].strip() == real:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                if lo <= addr and addr + nbytes <= hi:
                    return True
    return False


def _rss_anon() -> int:
    """Private (anonymous) resident memory of this process, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


# -- pandas ----------------------------------------------------------------------


def _frame(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    f = rng.random(n)
    f[::7] = np.nan
    return pd.DataFrame({
        "i": np.arange(n, dtype=np.int64),
        "f": f,
        "b": rng.random(n) > 0.5,
        "u8": np.arange(n, dtype=np.uint8),
        "nullable": pd.array(np.where(np.arange(n) % 3 == 0, None, np.arange(n)), dtype="Int64"),
        "s": pd.array(np.where(np.arange(n) % 4 == 0, None, np.arange(n).astype(str)), dtype="string"),
        "default_str": np.where(np.arange(n) % 5 == 0, None, "v" + np.arange(n).astype(str)),
        "cat": pd.Categorical(rng.choice(["lo", "mid", "hi"], n), categories=["lo", "mid", "hi"], ordered=True),
        "when": pd.date_range("2024-03-30", periods=n, freq="s", tz="Europe/Paris", unit="ns"),
        "naive": pd.date_range("2000-01-01", periods=n, freq="h", unit="ns"),
        "delta": pd.to_timedelta(np.arange(n), unit="s"),
    })


INDEXES = {
    "range": lambda n: pd.RangeIndex(5, 5 + 3 * n, 3, name="r"),
    "named_str": lambda n: pd.Index([f"k{i}" for i in range(n)], name="key"),
    "int_with_name": lambda n: pd.Index(np.arange(n) * 10, name="id"),
    "multi": lambda n: pd.MultiIndex.from_arrays(
        [np.arange(n) % 11, pd.DatetimeIndex(pd.date_range("2020", periods=n, freq="min", tz="UTC"), freq=None)],
        names=["shard", "at"]),
    "datetime_tz": lambda n: pd.DatetimeIndex(pd.date_range("2021", periods=n, freq="s", tz="US/Eastern"),
                                              freq=None, name="t"),
}


@pytest.mark.parametrize("index", sorted(INDEXES))
def test_pandas_frames_round_trip_exactly_through_arrow(index, tmp_path) -> None:
    df = _frame()
    df.index = INDEXES[index](len(df))
    enc, out = _roundtrip(df, tmp_path)
    assert _typed(enc)
    pd.testing.assert_frame_equal(out, df, check_exact=True, check_index_type=True, check_column_type=True)
    assert out.dtypes.to_dict() == df.dtypes.to_dict()
    assert out["cat"].cat.categories.tolist() == ["lo", "mid", "hi"] and out["cat"].cat.ordered
    assert out["f"].isna().sum() == df["f"].isna().sum() and out["nullable"].isna().sum() == len(df) // 3 + 1
    assert list(out.index.names) == list(df.index.names)


def test_pandas_series_round_trip(tmp_path) -> None:
    df = _frame(5000)
    for s in (df["f"], df["cat"].rename(None), df["nullable"].rename("n")):
        enc, out = _roundtrip(s, tmp_path)
        assert _typed(enc)
        pd.testing.assert_series_equal(out, s, check_exact=True)
        assert out.name == s.name


FALLBACKS = {
    "mixed_objects": lambda: pd.DataFrame({"x": [1, "a", 2.5, None, b"z"] * 1000}),
    "object_of_str": lambda: pd.DataFrame({"x": pd.Series(["a", "b"] * 1000, dtype=object)}),
    "int_column_labels": lambda: pd.DataFrame(np.arange(6000.0).reshape(1000, 6)),
    "index_with_freq": lambda: pd.DataFrame({"x": np.arange(1000.0)},
                                            index=pd.date_range("2020", periods=1000, freq="D")),
    "level_with_freq": lambda: pd.DataFrame(
        {"x": np.arange(1000.0)},
        index=pd.MultiIndex.from_arrays([np.arange(1000) % 3, pd.date_range("2020", periods=1000, freq="h")])),
    "attrs": lambda: pd.DataFrame({"x": np.arange(1000.0)}).set_flags().pipe(_with_attrs),
    "series_with_int_name": lambda: pd.Series(np.arange(1000.0), name=3),
}


def _with_attrs(df: pd.DataFrame) -> pd.DataFrame:
    df.attrs["source"] = "sensor"
    return df


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_pandas_values_arrow_would_change_are_pickled_instead(case, tmp_path) -> None:
    value = FALLBACKS[case]()
    enc, out = _roundtrip(value, tmp_path)
    assert not _typed(enc)
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(out, value, check_exact=True)
    else:
        pd.testing.assert_frame_equal(out, value, check_exact=True, check_freq=True)
        assert out.attrs == value.attrs


def test_loaded_frame_is_zero_copy_and_writable_copy_on_write(tmp_path, monkeypatch) -> None:
    from headwater.store import codec

    monkeypatch.setattr(codec, "_choose_frames", lambda part, frame: True)  # "i" compressed, not by timing
    rng = np.random.default_rng(2)
    # "i" compresses (stored zstd, decoded into memory); the others are stored raw and mapped:
    # each column is its own stream, so one compressible column does not un-map the rest.
    df = pd.DataFrame({"x": rng.random(1 << 20), "i": np.arange(1 << 20), "y": rng.integers(0, 1 << 62, 1 << 20)})
    path = tmp_path / "frame"
    enc = _save(df, path)
    out = read_blob(str(path), enc.key)
    for name in ("x", "y"):
        arr = out[name].to_numpy()
        assert _inside_mapping(arr.__array_interface__["data"][0], arr.nbytes, path), name
    assert not _inside_mapping(out["i"].to_numpy().__array_interface__["data"][0], 8, path)
    pd.testing.assert_frame_equal(out, df, check_exact=True)
    out.loc[0, "x"] = -1.0  # writable, like a frame pickle loads ...
    assert out["x"].iloc[0] == -1.0
    again = read_blob(str(path), enc.key)  # ... and the blob is untouched (copy on write)
    assert again["x"].iloc[0] == df["x"].iloc[0]


def test_every_column_of_a_loaded_frame_can_be_edited_in_place(tmp_path) -> None:
    df = _frame(50_000)
    enc, out = _roundtrip(df, tmp_path)
    assert _typed(enc)
    edits = {"i": 5, "f": 0.5, "b": False, "u8": 3, "nullable": 7, "s": "z", "default_str": "z", "cat": "mid",
             "when": pd.Timestamp("2001-01-01", tz="Europe/Paris"), "naive": pd.Timestamp("2001-01-01"),
             "delta": pd.Timedelta(1, "s")}
    assert set(edits) == set(df.columns)
    for name, value in edits.items():
        out.loc[10, name] = value
        assert out.loc[10, name] == value, name
    pd.testing.assert_frame_equal(read_blob(str(tmp_path / "blob"), enc.key), df, check_exact=True)


def test_loading_a_large_frame_costs_no_private_memory(tmp_path) -> None:
    size = 64 << 20
    df = pd.DataFrame({f"c{i}": np.random.default_rng(i).random(size // 8 // 4) for i in range(4)})
    path = tmp_path / "big"
    enc = _save(df, path)
    del df
    before = _rss_anon()
    out = read_blob(str(path), enc.key)
    grown = _rss_anon() - before
    assert out.shape == (size // 32, 4)
    assert grown < size // 8, f"loading a {size >> 20} MiB frame took {grown >> 20} MiB of private memory"


# -- Arrow -----------------------------------------------------------------------


def _nested_table(n: int = N) -> pa.Table:
    rng = np.random.default_rng(3)
    return pa.table({
        "f": pa.array(rng.random(n)),
        "lists": pa.array([[i, i + 1] if i % 9 else None for i in range(n)], pa.list_(pa.int32())),
        "structs": pa.array([{"a": i, "b": str(i)} for i in range(n)],
                            pa.struct([("a", pa.int64()), ("b", pa.string())])),
        "maps": pa.array([[("k", i)] for i in range(n)], pa.map_(pa.string(), pa.int64())),
        "dict": pa.array(["x", "y", None, "x"] * (n // 4)).dictionary_encode(),
        "ts": pa.array(np.arange(n), pa.timestamp("ns", tz="Asia/Tokyo")),
        "dec": pa.array([i for i in range(n)], pa.int64()).cast(pa.decimal128(24, 2)),
        "large": pa.array(["é" * (i % 5) for i in range(n)], pa.large_string()),
    }).replace_schema_metadata({"owner": "team-a"})


def test_arrow_tables_and_batches_round_trip_with_nested_types(tmp_path) -> None:
    table = _nested_table()
    enc, out = _roundtrip(table, tmp_path)
    assert _typed(enc) and isinstance(out, pa.Table)
    assert out.equals(table) and out.schema.equals(table.schema, check_metadata=True)
    batch = table.slice(10, 5000).combine_chunks().to_batches()[0]
    enc, out = _roundtrip(batch, tmp_path, "batch")
    assert _typed(enc) and isinstance(out, pa.RecordBatch) and out.equals(batch)


def test_loaded_arrow_table_points_into_the_blob(tmp_path) -> None:
    table = pa.table({"f": np.random.default_rng(4).random(1 << 20)})
    path = tmp_path / "table"
    enc = _save(table, path)
    out = read_blob(str(path), enc.key)
    data = out.column("f").chunk(0).buffers()[1]
    assert _inside_mapping(data.address, data.size, path)


def _addresses(enc) -> set[int]:
    """Start addresses of every piece of every out-of-band buffer of ``enc``."""
    out = set()
    for b in enc.buffers:
        for piece in getattr(b, "pieces", [b]):
            out.add(np.frombuffer(piece, np.uint8).__array_interface__["data"][0])
    return out


def test_saving_copies_no_column(tmp_path) -> None:
    rng = np.random.default_rng(7)
    table = pa.table({"f": rng.random(1 << 18), "g": rng.random(1 << 18)})
    enc = _save(table, tmp_path / "t")
    assert {table.column(c).chunk(0).buffers()[1].address for c in "fg"} <= _addresses(enc)
    df = pd.DataFrame({"f": rng.random(1 << 18), "i": rng.integers(0, 9, 1 << 18)})
    enc = _save(df, tmp_path / "df")
    assert _typed(enc)
    assert {df[c].to_numpy().__array_interface__["data"][0] for c in df} <= _addresses(enc)
    assert read_blob(str(tmp_path / "df"), enc.key).equals(df)


def test_compressible_columns_are_compressed_piece_by_piece(tmp_path, monkeypatch) -> None:
    import json
    import struct

    from headwater.store import codec

    monkeypatch.setattr(codec, "_choose_frames", lambda part, frame: True)  # every frame, not by timing

    table = pa.table({"i": np.arange(3 << 20), "f": np.random.default_rng(8).random(3 << 20)})
    path = tmp_path / "t"
    enc = _save(table, path)
    with open(path, "rb") as f:
        _, hlen = struct.unpack("<4sI", f.read(8))
        parts = json.loads(f.read(hlen))["parts"]
    codecs = [p[3] for p in parts[1:]]
    assert codecs == ["zstd", "raw"]  # "i" compresses, "f" does not
    assert len(parts[1][4]) > 1 and parts[1][1] < parts[1][2] // 2  # frames, cut within pieces
    assert read_blob(str(path), enc.key).equals(table)


# -- polars ----------------------------------------------------------------------


def test_polars_frames_round_trip(tmp_path) -> None:
    n = 1 << 16
    df = pl.DataFrame({
        "f": np.random.default_rng(5).random(n),
        "s": [f"row{i}" if i % 3 else None for i in range(n)],
        "cat": pl.Series(["a", "b", "c", "a"] * (n // 4), dtype=pl.Categorical),
        "l": [[i, i] for i in range(n)],
        "d": pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1) + pl.duration(seconds=n - 1),
                               "1s", eager=True, time_zone="UTC"),
    })
    enc, out = _roundtrip(df, tmp_path)
    assert _typed(enc)
    assert out.equals(df) and out.schema == df.schema


def test_loaded_polars_frame_points_into_the_blob(tmp_path) -> None:
    # Incompressible, so stored raw and mapped (a compressible stream is decoded into memory).
    df = pl.DataFrame({"f": np.random.default_rng(6).random(1 << 18)})
    path = tmp_path / "polars"
    enc = _save(df, path)
    arr = read_blob(str(path), enc.key)["f"].to_numpy()
    assert _inside_mapping(arr.__array_interface__["data"][0], arr.nbytes, path)


# -- torch -----------------------------------------------------------------------


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(600, 500, generator=g)
    return {
        "float32": base,
        "bfloat16": torch.randn(700, 300, generator=g).to(torch.bfloat16),
        "int64": torch.arange(300_000, dtype=torch.int64).reshape(3, 100_000),
        "transposed": base.T,
        "permuted": torch.randn(20, 30, 40, generator=g).permute(2, 0, 1),
        "expanded": torch.randn(50, 1, generator=g).expand(50, 4000),
        "requires_grad": torch.randn(400, 300, generator=g, requires_grad=True),
        "bool": torch.rand(10_000, generator=g) > 0.5,
        "0d": torch.tensor(2.5),
        "empty": torch.empty(0, 7),
    }


@pytest.mark.parametrize("name", sorted(_tensors()))
def test_torch_tensors_round_trip_exactly(name, tmp_path) -> None:
    t = _tensors()[name]
    enc, out = _roundtrip(t, tmp_path)
    assert _typed(enc)
    assert out.dtype == t.dtype and out.shape == t.shape and out.stride() == t.stride()
    assert out.device.type == "cpu" and out.requires_grad == t.requires_grad
    assert torch.equal(out.detach(), t.detach())


def test_torch_gapped_views_are_saved_compact(tmp_path) -> None:
    base = torch.randn(1000, 800)
    view = base[::2, ::4]  # spans nearly all of base: saving the span would store 8x the data
    enc, out = _roundtrip(view, tmp_path)
    assert enc.size < view.numel() * 4 + 4096
    assert torch.equal(out, view) and out.is_contiguous()


def test_loaded_tensor_shares_the_blob_and_is_writable(tmp_path) -> None:
    t = torch.randn(1 << 19, dtype=torch.float64)
    path = tmp_path / "tensor"
    enc = _save(t, path)
    assert [b.nbytes for b in enc.buffers] == [t.numel() * 8]  # the storage itself, out of band
    out = read_blob(str(path), enc.key)
    assert _inside_mapping(out.data_ptr(), out.numel() * 8, path)
    out[0] = 42.0
    assert read_blob(str(path), enc.key)[0] == t[0]


# -- all types -------------------------------------------------------------------


VALUES = {
    "pandas": lambda: _frame(20_000),
    "arrow": lambda: _nested_table(20_000),
    "polars": lambda: pl.DataFrame({"a": np.arange(20_000), "b": ["x"] * 20_000}),
    "torch": lambda: torch.arange(50_000, dtype=torch.float32),
}


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_the_same_value_saved_twice_is_stored_once(kind, tmp_path) -> None:
    cs = ContentStore(LocalObjectStore(tmp_path))
    value = VALUES[kind]()
    first, second, equal = cs.save(value), cs.save(value), cs.save(VALUES[kind]())
    assert first["key"] == second["key"] == equal["key"]
    assert "inline" not in first
    assert [f for d in cs.objects.list_dir("blobs") for f in cs.objects.list_dir(f"blobs/{d}")] == [first["key"]]
    loaded = cs.load(first)
    assert type(loaded) is type(value)
    assert cs.save(loaded)["key"] == first["key"]  # a step re-saving what it loaded writes nothing new


def test_typed_values_nested_in_containers(tmp_path) -> None:
    value = {"frame": _frame(1000), "tensors": [torch.ones(3), torch.zeros(2000, 3)], "n": 1}
    enc, out = _roundtrip(value, tmp_path)
    pd.testing.assert_frame_equal(out["frame"], value["frame"], check_exact=True)
    assert torch.equal(out["tensors"][1], value["tensors"][1]) and out["n"] == 1


@pytest.mark.parametrize(
    ("kind", "blocked", "message"),
    [("pandas", "pyarrow", "pandas codec and loading it needs pyarrow"),
     ("pandas", "pandas", "pandas codec and loading it needs pandas"),
     ("polars", "polars", "polars codec and loading it needs polars"),
     ("arrow", "pyarrow", "arrow codec and loading it needs pyarrow"),
     ("torch", "torch", "torch codec and loading it needs torch")],
)
def test_loading_without_the_library_names_it(kind, blocked, message, tmp_path, monkeypatch) -> None:
    enc, _ = _roundtrip(VALUES[kind](), tmp_path)
    monkeypatch.setitem(sys.modules, blocked, None)  # `import blocked` now raises ImportError
    with pytest.raises(CodecLibraryMissingError, match=message) as info:
        read_blob(str(tmp_path / "blob"), enc.key)
    assert "pip install" in info.value.hint and blocked in info.value.hint


def test_loading_a_pickled_frame_without_pandas_names_pandas(tmp_path, monkeypatch) -> None:
    enc, _ = _roundtrip(FALLBACKS["mixed_objects"](), tmp_path)
    assert not _typed(enc)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(CodecLibraryMissingError, match="pickled by pandas, and loading it needs pandas") as info:
        read_blob(str(tmp_path / "blob"), enc.key)
    assert "pip install pandas" in info.value.hint


def test_a_frame_saved_without_pyarrow_is_pickled(tmp_path) -> None:
    code = (
        "import sys\n"
        "sys.modules['pyarrow'] = None  # pandas is installed, pyarrow is not\n"
        "import pandas as pd, numpy as np\n"
        "from headwater.store import ContentStore, LocalObjectStore\n"
        "cs = ContentStore(LocalObjectStore(sys.argv[1]))\n"
        "df = pd.DataFrame({'x': np.arange(10000.0), 'n': pd.array([1, None] * 5000, dtype='Int64')})\n"
        "pd.testing.assert_frame_equal(cs.load(cs.save(df)), df, check_exact=True)\n"
        "print('ok', 'headwater.store.codecs.pandas_frames' in sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok False"


def test_unknown_codec_id_is_unsupported_not_corrupt() -> None:
    from headwater.store.codec import UnsupportedBlobError
    from headwater.store.codecs.registry import decode_typed

    with pytest.raises(UnsupportedBlobError, match="typed codec 'parquet'"):
        decode_typed("parquet", b"")


# -- plugins ---------------------------------------------------------------------


class Blob:
    """A type with a plugin codec that hands its payload out of band."""

    def __init__(self, payload: bytearray):
        self.payload = payload


class BlobCodec:
    received: list[type] = []

    @staticmethod
    def encode(value: Blob):
        return {"n": len(value.payload), "data": pickle.PickleBuffer(value.payload)}

    @classmethod
    def decode(cls, state) -> Blob:
        cls.received.append(type(state["data"]))
        return Blob(bytearray(state["data"]))


def test_a_plugin_codec_may_send_buffers_out_of_band(tmp_path, monkeypatch) -> None:
    from headwater import plugins as hw_plugins

    name = f"{Blob.__module__}.{Blob.__qualname__}"
    codec_plugins._reset()
    monkeypatch.setattr(codec_plugins, "_codec_names", lambda: frozenset({name}))
    monkeypatch.setattr(hw_plugins, "find_plugin", lambda kind, n: BlobCodec if n == name else None)
    try:
        payload = bytearray(os.urandom(1 << 20))
        enc, out = _roundtrip(Blob(payload), tmp_path)
        assert [b.nbytes for b in enc.buffers] == [1 << 20]  # not copied into the pickle stream
        assert len(enc.pickled) < 1000
        assert out.payload == payload and BlobCodec.received == [memoryview]
    finally:
        codec_plugins._reset()


# -- imports and flows -----------------------------------------------------------


def test_the_core_imports_no_dataframe_or_tensor_library() -> None:
    code = (
        "import sys, tempfile, numpy as np\n"
        "import headwater\n"
        "from headwater.store import ContentStore, LocalObjectStore\n"
        "cs = ContentStore(LocalObjectStore(tempfile.mkdtemp()))\n"
        "for v in (np.arange(1 << 20), {'a': [1, 2]}, b'x' * 100000):\n"
        "    cs.load(cs.save(v))\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'polars', 'torch') if m in sys.modules))\n"
        "import torch\n"
        "cs.load(cs.save(torch.ones(100000)))\n"
        "print(sorted(m for m in ('pandas', 'pyarrow', 'polars') if m in sys.modules))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == ["[]", "[]"]


def test_a_dataframe_artifact_flows_to_the_next_step_and_the_client(tmp_path, use_root) -> None:
    root = tmp_path / "store"
    r = run_flow("dataframe_flow.py", "run", root=root)
    assert r.returncode == 0, r.output
    assert "first -2.0" in r.output
    use_root(root)
    run = Flow("DataFrameFlow").latest_run
    df = run["start"].task["df"].data
    assert df.dtypes.to_dict() == {"x": np.dtype("float64"), "k": pd.CategoricalDtype(["a", "b", "c"]),
                                   "when": pd.DatetimeTZDtype("ns", "UTC"), "count": pd.Int64Dtype()}
    assert df.index.name == "row" and df.index[-1] == 2 * (len(df) - 1) and df["count"].isna().sum() == len(df) // 5
    doubled = run["double"].task["doubled"].data
    assert doubled["x"].iloc[0] == -2.0
    assert run["double"].task["total"].data == pytest.approx(float(df["x"].iloc[1:].sum()))
    pd.testing.assert_series_equal(doubled["x"].iloc[1:], df["x"].iloc[1:] * 2)
