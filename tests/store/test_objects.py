"""LocalObjectStore beyond the ObjectStore contract (test_object_store_contract.py):
paths, in-flight temp files and quarantine."""

from __future__ import annotations

import os

from headwater.store.objects import LocalObjectStore, ObjectStore, file_id


def test_root_exists_default_asks_for_any_object() -> None:
    from memstore import MemoryObjectStore

    store = MemoryObjectStore()
    assert store.root_exists() is False
    store.put("a/b", b"1")
    assert store.root_exists() is True
    store.delete("a/b")
    assert store.root_exists() is False


def test_local_paths(tmp_path) -> None:
    s = LocalObjectStore(tmp_path)
    assert s.url == f"local:{tmp_path}"
    assert s.path("a/b") == f"{tmp_path}/a/b"
    assert not os.path.exists(s.path("a/b"))


def test_in_flight_temp_files_are_not_listed(tmp_path) -> None:
    s = LocalObjectStore(tmp_path)
    s.put("d/x.json", b"{}")
    open(s.path("d/.123-abc.tmp"), "wb").close()  # what a writer killed mid-put leaves
    assert s.list_dir("d") == ["x.json"]


def _damaged_then_rewritten(store: LocalObjectStore, key: str) -> tuple:
    """``key`` found damaged, quarantined by another reader, then written again with good
    bytes; returns the damaged file's identity (its file lives on in quarantine/)."""
    store.put(key, b"bad")
    bad = file_id(os.stat(store.local_path(key)))
    assert store.quarantine(key) is True
    store.put(key, b"good")
    return bad


def test_quarantine_moves_only_the_file_found_damaged(tmp_path) -> None:
    store = LocalObjectStore(tmp_path / "root")
    bad = _damaged_then_rewritten(store, "blobs/ab/k")
    assert store.quarantine("blobs/ab/k", only=bad) is False
    assert store.get("blobs/ab/k") == b"good" and len(store.list_dir("quarantine")) == 1
    good = file_id(os.stat(store.local_path("blobs/ab/k")))
    assert store.quarantine("blobs/ab/k", only=good) is True
    assert not store.exists("blobs/ab/k") and len(store.list_dir("quarantine")) == 2
    assert store.quarantine("blobs/ab/k", only=good) is True  # already gone: nothing to do


def test_quarantine_without_the_lock_puts_a_good_file_back(tmp_path, monkeypatch) -> None:
    # A quarantiner that does not take the lock moves the damaged file and a writer
    # stores the good bytes between this quarantine's check and its rename.
    store = LocalObjectStore(tmp_path / "root")
    key = "blobs/ab/k"
    store.put(key, b"bad")
    bad = file_id(os.stat(store.local_path(key)))
    real_rename = os.rename

    def rename_after_a_lockless_quarantine(src: str, dst: str) -> None:
        monkeypatch.setattr(os, "rename", real_rename)
        real_rename(src, f"{tmp_path}/moved-by-the-other")
        store.put(key, b"good")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename_after_a_lockless_quarantine)
    assert store.quarantine(key, only=bad) is False
    assert store.get(key) == b"good" and store.list_dir("quarantine") == []


def test_default_quarantine_leaves_what_it_cannot_identify(tmp_path) -> None:
    class Plain(LocalObjectStore):
        quarantine = ObjectStore.quarantine

    store = Plain(tmp_path / "root")
    store.put("a", b"x")
    assert store.quarantine("a", only=(0, 0, 0)) is False and store.get("a") == b"x"
    assert store.quarantine("a") is True and not store.exists("a")

