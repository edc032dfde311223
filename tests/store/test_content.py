"""ContentStore: inline vs blob refs, dedup, missing and corrupt blobs."""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import pytest

from headwater.exceptions import DataCorruptionError, DataMissingError
from headwater.store import ContentStore, Datastore, LocalObjectStore
from headwater.store.content import INLINE_LIMIT, blob_key


@pytest.fixture
def cs(tmp_path) -> ContentStore:
    return ContentStore(LocalObjectStore(tmp_path))


def _blob_files(cs: ContentStore) -> list[str]:
    out = []
    for d in cs.objects.list_dir("blobs"):
        out += cs.objects.list_dir(f"blobs/{d}")
    return out


def test_small_values_are_inline(cs: ContentStore) -> None:
    ref = cs.save({"a": 1})
    assert set(ref) == {"key", "size", "type", "inline"}
    assert ref["type"] == "builtins.dict" and len(ref["key"]) == 64
    assert cs.load(ref) == {"a": 1}
    assert _blob_files(cs) == []
    assert cs.save(5)["size"] == 5  # pickle protocol 5 of a small int: 5 bytes


def test_inline_false_writes_a_small_value_as_a_blob(cs: ContentStore) -> None:
    # What is fetched by its key alone (a code package: bootstrap --package-key) must be a blob.
    ref = cs.save(b"tiny package", inline=False)
    assert "inline" not in ref and cs.has(ref["key"]) and _blob_files(cs) == [ref["key"]]
    assert cs.load(ref) == b"tiny package"


def test_inline_limit(cs: ContentStore) -> None:
    at = cs.save(b"x" * (INLINE_LIMIT - 20))
    over = cs.save(b"x" * (INLINE_LIMIT + 1))
    assert "inline" in at and at["size"] <= INLINE_LIMIT
    assert "inline" not in over and cs.has(over["key"])
    assert cs.load(over) == b"x" * (INLINE_LIMIT + 1)


def test_out_of_band_buffers_go_to_a_blob(cs: ContentStore) -> None:
    arr = np.arange(1000, dtype=np.float64)  # 8000 bytes: one out-of-band buffer
    ref = cs.save(arr)
    assert "inline" not in ref
    assert ref["type"] == "numpy.ndarray"
    assert ref["size"] > arr.nbytes
    assert _blob_files(cs) == [ref["key"]]
    assert os.path.isfile(cs.objects.local_path(blob_key(ref["key"])))
    np.testing.assert_array_equal(cs.load(ref), arr)


def test_large_blob_streams(cs: ContentStore) -> None:
    arr = np.random.default_rng(0).random(1 << 19)  # 4 MiB: written through open_writer
    ref = cs.save(arr)
    np.testing.assert_array_equal(cs.load(ref), arr)
    assert cs.objects.list_dir("tmp") == []


def test_dedup_writes_nothing_new(cs: ContentStore) -> None:
    arr = np.ones(50_000)
    first = cs.save(arr)
    path = cs.objects.local_path(blob_key(first["key"]))
    mtime = os.stat(path).st_mtime_ns
    second = cs.save(arr.copy())
    assert second == first
    assert _blob_files(cs) == [first["key"]]
    assert os.stat(path).st_mtime_ns == mtime
    assert cs.objects.list_dir("tmp") == []


def test_same_key_inline_and_blob(cs: ContentStore) -> None:
    # The key is over the logical bytes, whichever way the value is stored.
    small = cs.save("v")
    assert small["key"] == cs.save("v")["key"]
    big = "y" * 5000
    ref = cs.save(big)
    assert "inline" not in ref and cs.load(ref) == big


def test_type_string(cs: ContentStore) -> None:
    assert cs.save(OrderedDict())["type"] == "collections.OrderedDict"
    assert cs.save(None)["type"] == "builtins.NoneType"
    assert cs.save(np.float32(1))["type"] == "numpy.float32"


def test_missing_blob(cs: ContentStore) -> None:
    ref = cs.save(np.ones(10_000))
    cs.objects.delete(blob_key(ref["key"]))
    assert not cs.has(ref["key"])
    with pytest.raises(DataMissingError, match=f"Blob {ref['key']} is missing from the store local:"):
        cs.load(ref)


def test_corrupt_blob_and_inline(cs: ContentStore) -> None:
    ref = cs.save(np.random.default_rng(0).random(10_000))  # incompressible: stored raw
    path = cs.objects.local_path(blob_key(ref["key"]))
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(b"\x01")
    assert cs.load(ref, verify=False).shape == (10_000,)  # unverified reads return what is there
    with pytest.raises(DataCorruptionError, match=f"Blob {ref['key']} .*is corrupt"):
        cs.load(ref)
    # The damaged blob is quarantined, so saving the value again stores it anew.
    assert not cs.has(ref["key"]) and os.listdir(os.path.join(cs.objects.root, "quarantine"))
    assert cs.save(np.random.default_rng(0).random(10_000)) == ref
    assert cs.load(ref).shape == (10_000,)
    inline = cs.save([1, 2, 3])
    with pytest.raises(DataCorruptionError, match="inline artifact"):
        cs.load({**inline, "key": "0" * 64})


def test_datastore_facade(tmp_path) -> None:
    ds = Datastore(tmp_path / "root")
    assert ds.root == str(tmp_path / "root")
    assert ds.content.load(ds.content.save([1, 2])) == [1, 2]
    p = ds.log_path("F", "1", "start", "2", 0, "stdout")
    assert p == f"{ds.root}/runs/F/1/start/2/0.stdout"
    assert os.path.isdir(os.path.dirname(p))
    with open(p, "ab") as f:
        f.write(b"hello\n")
    assert ds.records.read_log("F", "1", "start", "2", 0, "stdout") == b"hello\n"


def _damage(cs: ContentStore, ref: dict) -> None:
    path = cs.objects.local_path(blob_key(ref["key"]))
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(b"\x01")


def test_a_late_quarantine_never_moves_a_good_copy_stored_since(cs: ContentStore, monkeypatch) -> None:
    # Readers A and B both find the blob damaged. Right after A's second read, B
    # quarantines it and a writer W stores the good bytes again; A's quarantine
    # must leave W's file alone, and A reads it.
    import headwater.store.content as content_module

    value = np.random.default_rng(1).random(10_000)
    ref = cs.save(value)
    _damage(cs, ref)
    real_read = content_module.read_blob
    reads = []

    def read_then_interleave(path, key, *, verify=True):
        reads.append(path)
        try:
            return real_read(path, key, verify=verify)
        finally:
            if len(reads) == 2:  # A's second read: B and W run now, before A quarantines
                monkeypatch.setattr(content_module, "read_blob", real_read)
                b = ContentStore(LocalObjectStore(cs.objects.root))
                with pytest.raises(DataCorruptionError, match=f"Blob {ref['key']} .*is corrupt"):
                    b.load(ref)
                assert ContentStore(LocalObjectStore(cs.objects.root)).save(value) == ref  # W

    monkeypatch.setattr(content_module, "read_blob", read_then_interleave)
    assert np.array_equal(cs.load(ref), value)  # A reads W's good copy
    assert len(reads) == 2
    assert np.array_equal(ContentStore(LocalObjectStore(cs.objects.root)).load(ref), value)
    assert len(os.listdir(os.path.join(cs.objects.root, "quarantine"))) == 1  # B's


def _rewrite_header(cs: ContentStore, ref: dict, old: bytes, new: bytes) -> str:
    path = cs.objects.local_path(blob_key(ref["key"]))
    with open(path, "r+b") as f:
        head = f.read(4096)
        assert len(old) == len(new) and head.count(old) == 1
        f.seek(head.index(old))
        f.write(new)
    return path


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        (b'"v":1', b'"v":9', "its format version is 9"),
        (b'"raw"],', b'"lz8"],', "unknown codec 'lz8'"),  # the pickle stream
        (b'"raw"]]', b'"lz9"]]', "unknown codec 'lz9'"),  # the buffer
    ],
    ids=["version", "pickle-codec", "buffer-codec"],
)
def test_blobs_of_a_newer_format_are_reported_and_left_in_place(cs: ContentStore, old, new, why) -> None:
    from headwater.store import codec

    ref = cs.save(np.random.default_rng(2).random(10_000))  # one raw buffer
    path = _rewrite_header(cs, ref, old, new)
    for _ in range(2):  # every reader gets the same answer: nothing was moved
        with pytest.raises(
            codec.UnsupportedBlobError, match=f"Blob {ref['key']} .*cannot be read by this version of headwater: {why}"
        ) as e:
            cs.load(ref)
        assert "pip install -U headwater" in e.value.hint
    assert os.path.isfile(path) and not os.path.exists(os.path.join(cs.objects.root, "quarantine"))
    assert not isinstance(e.value, DataCorruptionError)


def test_zstd_data_that_needs_more_than_this_reader_allows_is_left_in_place(cs: ContentStore) -> None:
    import json
    import struct

    import zstandard

    from headwater.store import codec

    ref = cs.save(np.zeros(1 << 16))  # one zstd buffer
    path = cs.objects.local_path(blob_key(ref["key"]))
    with open(path, "rb") as f:
        data = f.read()
    magic, hlen = struct.unpack_from("<4sI", data)
    header = json.loads(data[8 : 8 + hlen])
    off, _stored, n, codec_name = header["parts"][1]
    assert codec_name == "zstd"
    # A valid frame, as a writer with a 1 GiB window makes it: past the 128 MiB default
    # limit of this reader's decompressor, so it refuses the frame without any damage.
    params = zstandard.ZstdCompressionParameters.from_level(1, window_log=30, write_content_size=False)
    writer = zstandard.ZstdCompressor(compression_params=params).compressobj()
    frame = writer.compress(bytes(n)) + writer.flush()
    assert zstandard.ZstdDecompressor(max_window_size=1 << 30).decompressobj().decompress(frame) == bytes(n)
    header["parts"][1] = [off, len(frame), n, "zstd"]
    text = json.dumps(header, separators=(",", ":")).encode().ljust(hlen)
    assert len(text) == hlen
    with open(path, "wb") as f:
        f.write(data[:4] + struct.pack("<I", hlen) + text + data[8 + hlen : off] + frame)
    with pytest.raises(codec.UnsupportedBlobError, match="zstd cannot decode a compressed part .*memory"):
        cs.load(ref)
    assert os.path.isfile(path) and not os.path.exists(os.path.join(cs.objects.root, "quarantine"))


def test_a_store_that_cannot_quarantine_says_so(tmp_path) -> None:
    from headwater.store.objects import ObjectStore

    class NoQuarantine(LocalObjectStore):
        quarantine = ObjectStore.quarantine  # the default: cannot tell which file it holds

    cs = ContentStore(NoQuarantine(tmp_path))
    ref = cs.save(np.random.default_rng(3).random(10_000))
    _damage(cs, ref)
    with pytest.raises(DataCorruptionError, match=f"Blob {ref['key']} .*is corrupt") as e:
        cs.load(ref)
    assert "could not move the damaged blob aside" in e.value.hint and cs.has(ref["key"])
