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
