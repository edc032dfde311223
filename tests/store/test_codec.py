"""Codec: round trips, the blob layout, compression choice and verification."""

from __future__ import annotations

import json
import os
import pickle
import struct

import blake3
import numpy as np
import pytest

from headwater.exceptions import DataCorruptionError
from headwater.store import codec
from headwater.store.codec import ALIGN, Encoded, decode_inline, encode, encode_inline, read_blob, write_blob
from headwater.store.objects import file_id


def _write(enc: Encoded, path) -> str:
    with open(path, "wb") as f:
        size = write_blob(enc, f)
    assert size == os.path.getsize(path)
    return str(path)


def _roundtrip(obj, tmp_path, name: str = "blob"):
    enc = encode(obj)
    return read_blob(_write(enc, tmp_path / name), enc.key)


def _parts(path: str) -> list[list]:
    with open(path, "rb") as f:
        magic, hlen = struct.unpack("<4sI", f.read(8))
        assert magic == b"HWB1"
        return json.loads(f.read(hlen))["parts"]


def _flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def _logical_key(pickled: bytes, buffers: list[bytes]) -> str:
    h = blake3.blake3()
    h.update(struct.pack("<Q", len(pickled)) + pickled)
    for b in buffers:
        h.update(struct.pack("<Q", len(b)) + bytes(b))
    return h.hexdigest()


@pytest.mark.parametrize(
    "obj",
    [
        0, -(2**70), 3.5, "héllo", "", None, True, b"", b"\x00" * 10, bytearray(b"abc"),
        {"a": [1, 2, {"b": (3, 4.5)}], "c": {1, 2}}, [[[]]], list(range(10_000)),
        {"s": "x" * 100_000},
    ],
    ids=repr,
)  # fmt: skip
def test_roundtrip_plain_values(obj, tmp_path) -> None:
    assert _roundtrip(obj, tmp_path) == obj


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(10),  # small: in band
        np.arange(100_000, dtype=np.int32),
        np.arange(60_000, dtype=np.float64).reshape(300, 200)[:, ::3],  # non-contiguous
        np.asfortranarray(np.arange(120_000, dtype=np.float32).reshape(300, 400)),
        np.zeros((0, 5)),
        np.array(7.0),
        np.zeros(50_000, dtype=[("a", "<i4"), ("b", "<f8")]),
    ],
    ids=["small", "int32", "noncontig", "fortran", "empty", "0d", "structured"],
)
def test_roundtrip_arrays(arr, tmp_path) -> None:
    out = _roundtrip(arr, tmp_path)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_roundtrip_large_float64(tmp_path) -> None:
    arr = np.random.default_rng(1).random(8 << 20)  # 64 MiB
    enc = encode(arr)
    assert len(enc.buffers) == 1 and enc.buffers[0].nbytes == arr.nbytes
    assert enc.size == len(enc.pickled) + arr.nbytes
    path = _write(enc, tmp_path / "big")
    (pickle_part, buf_part) = _parts(path)
    assert buf_part[0] % ALIGN == 0 and buf_part[3] == "raw"
    np.testing.assert_array_equal(read_blob(path, enc.key), arr)


def test_several_buffers_are_aligned(tmp_path) -> None:
    rng = np.random.default_rng(5)
    obj = {"a": np.ones(3000), "b": rng.random(1001), "c": np.arange(70_000, dtype=np.int8), "d": bytearray(9000)}
    enc = encode(obj)
    assert len(enc.buffers) == 3  # bytearray pickles in band
    path = _write(enc, tmp_path / "b")
    parts = _parts(path)
    assert [p[0] % ALIGN for p in parts[1:]] == [0, 0, 0]
    out = read_blob(path, enc.key)
    assert out["d"] == obj["d"] and isinstance(out["d"], bytearray)
    for k in "abc":
        np.testing.assert_array_equal(out[k], obj[k])


def test_bytes_and_large_in_band_pickles(tmp_path) -> None:
    raw = os.urandom(9 << 20)  # bytes stay in band; > 8 MiB: streamed from the file
    assert _roundtrip(raw, tmp_path, "r") == raw
    assert _parts(str(tmp_path / "r"))[0][3] == "raw"
    text = [f"row {i}" for i in range(200_000)]  # compressible pickle stream (> 512 KiB: sampled)
    assert _roundtrip(text, tmp_path, "t") == text
    assert _parts(str(tmp_path / "t"))[0][3] == "zstd"


def test_key_is_blake3_of_logical_bytes() -> None:
    arr = np.arange(4096, dtype=np.int64)
    enc = encode({"x": arr})
    assert enc.key == _logical_key(enc.pickled, [bytes(b) for b in enc.buffers])
    small = encode_inline({"x": 1})
    assert small.key == _logical_key(small.pickled, [])
    assert encode({"x": 1}).key == small.key  # inline and blob forms agree


def test_key_independent_of_compression(tmp_path, monkeypatch) -> None:
    arr = np.zeros(1 << 20)  # 8 MiB of zeros: compresses to almost nothing
    enc = encode(arr)
    compressed = _write(enc, tmp_path / "z")
    monkeypatch.setattr(codec, "MAX_RATIO", 0.0)  # nothing passes the probe now
    raw = _write(encode(arr), tmp_path / "r")
    assert _parts(compressed)[1][3] == "zstd" and _parts(raw)[1][3] == "raw"
    assert os.path.getsize(compressed) < os.path.getsize(raw) // 100
    np.testing.assert_array_equal(read_blob(compressed, enc.key), arr)
    np.testing.assert_array_equal(read_blob(raw, enc.key), arr)


def test_codec_choice(tmp_path) -> None:
    rng = np.random.default_rng(0)
    cases = {  # name: (object, part index, expected codec)
        "random": (rng.integers(0, 2**63, 1 << 20), 1, "raw"),
        "ramp": (np.arange(1 << 20, dtype=np.int64), 1, "zstd"),
        "small_random": (rng.integers(0, 255, 100_000, dtype=np.uint8), 1, "raw"),
        "small_text": (np.frombuffer(b"abcdefgh" * 20_000, dtype=np.uint8), 1, "zstd"),
        "below_4k": (np.zeros(3000, dtype=np.uint8), 0, "raw"),  # in band; pickle < 4 KiB
        "bytes_random": (os.urandom(100_000), 0, "raw"),
        "bytes_text": (b"abcdefgh" * 20_000, 0, "zstd"),
    }
    for name, (obj, part, want) in cases.items():
        enc = encode(obj)
        path = _write(enc, tmp_path / name)
        assert _parts(path)[part][3] == want, name
        out = read_blob(path, enc.key)
        assert bytes(memoryview(out).cast("B")) == bytes(memoryview(obj).cast("B")), name


def test_mmapped_arrays_are_writable_copy_on_write(tmp_path) -> None:
    arr = np.random.default_rng(2).random(1 << 18)  # 2 MiB: mmap'ed
    enc = encode(arr)
    path = _write(enc, tmp_path / "m")
    with open(path, "rb") as f:
        before = f.read()
    out = read_blob(path, enc.key)
    assert out.flags.writeable
    out[:] = -1.0
    assert (out == -1.0).all()
    with open(path, "rb") as f:
        assert f.read() == before
    np.testing.assert_array_equal(read_blob(path, enc.key), arr)


@pytest.mark.parametrize("size", [5000, 1 << 20], ids=["copied", "mmapped"])
def test_loaded_compressed_and_small_arrays_are_writable(size, tmp_path) -> None:
    for name, arr in {"raw": np.random.default_rng(3).random(size // 8), "zstd": np.zeros(size // 8)}.items():
        out = _roundtrip(arr, tmp_path, name)
        assert out.flags.writeable
        out[0] = 42.0


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        (np.random.default_rng(4).random(1 << 18), "buffer"),  # raw buffer, mmap'ed
        (np.random.default_rng(4).random(1000), "buffer"),  # raw buffer, copied
        (np.zeros(1 << 18), "buffer"),  # compressed buffer
        ({"k": "v" * 1000}, "pickle"),  # raw pickle stream
        ([f"row {i}" for i in range(20_000)], "pickle"),  # compressed pickle stream
        (os.urandom(9 << 20), "pickle"),  # streamed pickle
    ],
    ids=["mmap", "copied", "zstd", "pickle", "pickle-zstd", "pickle-streamed"],
)
def test_flipped_byte_is_detected(obj, where, tmp_path) -> None:
    enc = encode(obj)
    path = _write(enc, tmp_path / "c")
    parts = _parts(path)
    off, stored, _, _ = parts[1] if where == "buffer" else parts[0]
    _flip(path, off + stored // 2)
    with pytest.raises(DataCorruptionError, match=f"Blob {enc.key} .* is corrupt.*The store is corrupt"):
        read_blob(path, enc.key)


def test_corruption_error_names_key_and_fix(tmp_path) -> None:
    enc = encode(np.ones(10_000))
    path = _write(enc, tmp_path / "c")
    _flip(path, _parts(path)[1][0])
    with pytest.raises(DataCorruptionError) as e:
        read_blob(path, enc.key)
    assert enc.key in str(e.value) and "Re-run the step" in str(e.value)
    assert e.value.file == file_id(os.stat(path))  # which file failed: only that one is quarantined


def test_truncated_and_foreign_files(tmp_path) -> None:
    enc = encode(np.ones(10_000))
    path = _write(enc, tmp_path / "t")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 10)
    with pytest.raises(DataCorruptionError, match="truncated"):
        read_blob(path, enc.key)
    (tmp_path / "foreign").write_bytes(b"PK\x03\x04 not a blob at all")
    with pytest.raises(DataCorruptionError, match="bad magic"):
        read_blob(str(tmp_path / "foreign"), "k")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataCorruptionError, match="truncated"):
        read_blob(str(tmp_path / "empty"), "k")


def test_verify_false_skips_hashing(tmp_path) -> None:
    enc = encode(np.zeros(2000, dtype=np.int64))
    path = _write(enc, tmp_path / "v")
    assert read_blob(path, "0" * 64, verify=False).sum() == 0
    assert read_blob(path, None).sum() == 0


def test_inline_helpers() -> None:
    enc = encode_inline({"a": (1, 2)})
    assert enc.buffers == [] and enc.size == len(enc.pickled)
    assert enc.pickled == pickle.dumps({"a": (1, 2)}, protocol=5)
    assert decode_inline(enc.pickled, enc.key) == {"a": (1, 2)}
    assert decode_inline(enc.pickled, None) == {"a": (1, 2)}
    bad = enc.pickled[:-2] + b"X."
    with pytest.raises(DataCorruptionError, match=f"Blob {enc.key} \\(inline artifact"):
        decode_inline(bad, enc.key)


def test_pickling_errors_propagate() -> None:
    with pytest.raises((pickle.PicklingError, AttributeError), match="pickle"):
        encode(lambda: 1)


def test_large_compressed_parts_are_cut_into_frames(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(codec, "FRAME", 1 << 20)  # small frames keep the test fast
    monkeypatch.setattr(codec, "_choose_frames", lambda part, frame: True)  # every frame compressed, not by timing
    arr = np.arange(700_000, dtype=np.float64)  # 5.3 MiB, compressible: 6 frames
    enc = encode(arr)
    path = _write(enc, tmp_path / "f")
    part = _parts(path)[1]
    off, stored, n, c, frames = part
    assert c == "zstd" and n == arr.nbytes and len(frames) == 6
    assert [f[0] for f in frames] == [1 << 20] * 5 + [n - 5 * (1 << 20)]
    assert sum(f[1] for f in frames) == stored
    out = read_blob(path, enc.key)
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable
    _flip(path, off + frames[0][1] + frames[1][1] + frames[2][1] // 2)  # inside frame 3
    with pytest.raises(DataCorruptionError, match=f"Blob {enc.key} .* is corrupt"):
        read_blob(path, enc.key)


class TestResaveOfLoadedBlobs:
    """A task re-saves artifacts it read; untouched mmap-loaded ones keep their key cheaply."""

    def _roundtrip(self, tmp_path, arr):
        from headwater.store import codec

        enc = codec.encode(arr)
        path = tmp_path / "blob"
        with open(path, "wb") as f:
            codec.write_blob(enc, f)
        codec.track_loaded_blobs(True)
        try:
            return enc.key, codec.read_blob(str(path), enc.key)
        finally:
            codec.track_loaded_blobs(False)

    def test_untouched_array_reuses_key(self, tmp_path):
        from headwater.store import codec

        np = pytest.importorskip("numpy")
        key, loaded = self._roundtrip(tmp_path, np.arange(3 << 20, dtype=np.float64))
        float(loaded.sum())  # reading pages does not count as a change
        codec.track_loaded_blobs(True)
        try:
            assert codec.encode(loaded).key == key
            regions = codec._regions([memoryview(loaded).cast("B")])
            assert regions is not None and codec._untouched(*regions[0])
        finally:
            codec.track_loaded_blobs(False)

    def test_changed_in_place_gets_new_key(self, tmp_path):
        from headwater.store import codec

        np = pytest.importorskip("numpy")
        key, loaded = self._roundtrip(tmp_path, np.arange(3 << 20, dtype=np.float64))
        loaded[12345] = -1.0
        codec.track_loaded_blobs(True)
        try:
            new = codec.encode(loaded)
        finally:
            codec.track_loaded_blobs(False)
        assert new.key != key
        assert new.key == codec.encode(np.array(loaded)).key  # the true hash of the new content
