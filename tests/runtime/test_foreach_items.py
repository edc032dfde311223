"""Foreach children read only their own item from the split's item table (store.itemtable)."""

from __future__ import annotations

import importlib.util
import os

import pytest

from flowrun import FLOWS, USER, run_flow

N = 300


def _item(i: int) -> str:
    return f"{i:06d}" + "x" * 1000


@pytest.fixture(scope="module", params=["list", "dict", "gen"])
def big_items(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"items-{request.param}") / ".headwater"
    r = run_flow("big_items_flow.py", "run", "--max-num-splits", "1000", "--n", str(N),
                 "--kind", request.param, root=root)
    assert r.returncode == 0, r.output
    return request.param, r


def test_children_get_their_items_through_the_table(big_items, use_root):
    from headwater import Flow

    kind, r = big_items
    use_root(r.root)
    run = Flow("BigItemsFlow").latest_run
    start = run["start"].task
    assert "foreach_items" not in {a.id for a in start}  # the table is internal, not an artifact
    assert list(start.data.items) == [_item(i) for i in range(N)]  # the parent's artifact is intact
    tasks = list(run["body"])
    assert len(tasks) == N
    for t in tasks:
        assert t.data.got == _item(t.index)
        assert t.data.stack == [(t.index, N, _item(t.index))]
    for t in list(run["after"])[:20]:
        assert t.data.again == _item(t.index)
        assert t.data.stack_after == [(t.index, N, _item(t.index))]
    assert run["join"].task.data.got == [_item(i) for i in range(N)]
    assert run["join"].task.data.again == [_item(i) for i in range(N)]


def _load_flow():
    spec = importlib.util.spec_from_file_location("big_items_flow", FLOWS / "big_items_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BigItemsFlow


@pytest.mark.parametrize("step", ["body", "after"])
def test_a_child_reads_only_its_item(big_items, monkeypatch, step):
    from headwater.flow.graph import build_graph
    from headwater.runtime.executor import execute
    from headwater.runtime.taskspec import ForeachFrame, TaskSpec
    from headwater.store import Datastore
    from headwater.store import content as content_mod

    kind, r = big_items
    if kind != "list":
        pytest.skip("one kind is enough to count bytes")
    ds = Datastore(str(r.root))
    (run_id,) = ds.records.runs("BigItemsFlow")
    (split_tid,) = ds.records.tasks("BigItemsFlow", run_id, "start")
    items_key = ds.records.read_attempt("BigItemsFlow", run_id, "start", split_tid, 0)["artifacts"]["items"]["key"]

    flow_cls = _load_flow()
    graph = build_graph(flow_cls)
    parent, split_index = f"start/{split_tid}", 7
    if step == "after":  # its parent is the body task of item 7
        tids = [t for t in ds.records.tasks("BigItemsFlow", run_id, "body") if t != "90007"]  # not the body test's
        (body_tid,) = [t for t in tids if ds.records.read_attempt("BigItemsFlow", run_id, "body", t, 0)["split_index"] == 7]
        parent, split_index = f"body/{body_tid}", None
    spec = TaskSpec(flow_name="BigItemsFlow", run_id=run_id, step_name=step, task_id="90007", attempt=0,
                    input_paths=(parent,), input_attempts=(0,), datastore_root=ds.root, user=USER,
                    split_index=split_index, foreach_stack=(ForeachFrame("start", "items", 7, N, "x"),))
    blob_loads, pread_bytes = [], [0]
    real_read_blob, real_pread = content_mod.read_blob, os.pread

    def counting_read_blob(path, key, **kw):
        blob_loads.append(key)
        return real_read_blob(path, key, **kw)

    def counting_pread(fd, n, off):
        data = real_pread(fd, n, off)
        pread_bytes[0] += len(data)
        return data

    monkeypatch.setattr(content_mod, "read_blob", counting_read_blob)
    monkeypatch.setattr(os, "pread", counting_pread)
    res = execute(spec, flow_cls, graph, ds)
    monkeypatch.undo()
    assert res.ok, res.exception
    assert items_key not in blob_loads  # the whole list (~300 KB) is never loaded
    assert pread_bytes[0] < 20_000, pread_bytes[0]
    rec = ds.records.read_attempt("BigItemsFlow", run_id, step, "90007", 0)
    assert ds.content.load(rec["artifacts"]["got" if step == "body" else "again"]) == _item(7)


def _flip_item_byte(objects, ref, i):
    from headwater.store.itemtable import _ENTRY, _HEAD

    path = objects.local_path(f"blobs/{ref['key'][:2]}/{ref['key']}")
    with open(path, "r+b") as f:  # flip one byte inside item i
        f.seek(_HEAD + i * _ENTRY.size)
        offset, length, _ = _ENTRY.unpack(f.read(_ENTRY.size))
        f.seek(offset + length // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))


def test_a_damaged_item_is_reported_quarantined_and_repaired_by_saving_again(tmp_path):
    from headwater.exceptions import DataCorruptionError, DataMissingError
    from headwater.store import ContentStore
    from headwater.store.itemtable import load_item, save_item_table
    from headwater.store.objects import LocalObjectStore

    content = ContentStore(LocalObjectStore(tmp_path))
    items = [_item(i) for i in range(10)]
    ref = save_item_table(content, items)
    assert ref is not None and ref["count"] == 10
    _flip_item_byte(content.objects, ref, 3)
    assert load_item(content, ref, 2) == _item(2)
    with pytest.raises(DataCorruptionError, match="holds 10 items, not item 10"):
        load_item(content, ref, 10)
    with pytest.raises(DataCorruptionError, match="item 3 does not match its digest") as err:
        load_item(content, ref, 3)
    assert "Re-run the foreach step" in err.value.hint and "quarantine/" in err.value.hint
    assert len(os.listdir(tmp_path / "quarantine")) == 1  # moved out of blobs/ by the store
    with pytest.raises(DataMissingError, match=f"Blob {ref['key']} is missing from the store"):
        load_item(content, ref, 2)
    assert save_item_table(content, items) == ref  # re-running the split writes it again
    assert [load_item(content, ref, i) for i in range(10)] == items


def test_saving_again_replaces_a_damaged_table_nobody_read(tmp_path):
    from headwater.store import ContentStore
    from headwater.store.itemtable import load_item, save_item_table
    from headwater.store.objects import LocalObjectStore

    content = ContentStore(LocalObjectStore(tmp_path))
    items = [_item(i) for i in range(10)]
    ref = save_item_table(content, items)
    _flip_item_byte(content.objects, ref, 5)
    assert save_item_table(content, items) == ref
    assert load_item(content, ref, 5) == _item(5)
    assert len(os.listdir(tmp_path / "quarantine")) == 1


def test_a_large_table_is_streamed(tmp_path, monkeypatch):
    from headwater.store import ContentStore
    from headwater.store import itemtable
    from headwater.store.objects import LocalObjectStore

    monkeypatch.setattr(itemtable, "_IN_MEMORY", 4096)
    content = ContentStore(LocalObjectStore(tmp_path))
    puts = []
    real_put = content.objects.put
    monkeypatch.setattr(content.objects, "put", lambda key, data: puts.append(key) or real_put(key, data))
    items = [_item(i) for i in range(50)]
    ref = itemtable.save_item_table(content, items)
    blob_puts = [k for k in puts if k.startswith("blobs/")]  # (gc's pin is a put of its own)
    assert ref is not None and blob_puts == []  # written through open_writer, not one put of every pickle
    assert [itemtable.load_item(content, ref, i) for i in range(50)] == items


def test_items_too_large_in_band_get_no_table(tmp_path):
    from headwater.store import ContentStore
    from headwater.store.itemtable import MAX_INBAND_ITEM, save_item_table
    from headwater.store.objects import LocalObjectStore

    content = ContentStore(LocalObjectStore(tmp_path))
    assert save_item_table(content, ["a", "x" * (MAX_INBAND_ITEM + 1)]) is None
    assert not (tmp_path / "blobs").exists()


def test_resumed_children_read_items_of_the_cloned_split(big_items, use_root):
    from headwater import Flow

    kind, r = big_items
    if kind != "list":
        pytest.skip("one kind is enough for resume")
    use_root(r.root)
    origin = Flow("BigItemsFlow").latest_run.id
    r2 = run_flow("big_items_flow.py", "resume", "body", "--origin-run-id", origin, "--max-num-splits", "1000",
                  root=r.root)
    assert r2.returncode == 0, r2.output
    run = Flow("BigItemsFlow").latest_run
    assert run.id != origin
    assert sorted(t.data.got for t in run["body"]) == [_item(i) for i in range(N)]


def _blob_bytes(root) -> int:
    return sum(p.stat().st_size for p in (root / "blobs").rglob("*") if p.is_file())


def test_large_array_items_are_mapped_from_the_list_blob_not_copied(tmp_path, use_root):
    from headwater import Flow
    from headwater.store import Datastore

    root = tmp_path / ".headwater"
    n, mib = 4, 8
    r = run_flow("array_items_flow.py", "run", "--n", str(n), "--mib", str(mib), root=root)
    assert r.returncode == 0, r.output
    use_root(root)
    run = Flow("ArrayItemsFlow").latest_run
    join = run["join"].task.data
    assert join.ok == [True] * n
    ds = Datastore(str(root))
    (split_tid,) = ds.records.tasks("ArrayItemsFlow", run.id, "start")
    rec = ds.records.read_attempt("ArrayItemsFlow", run.id, "start", split_tid, 0)
    assert rec["foreach_items"]["size"] < 16 << 10  # the table holds no array
    list_blob = ds.objects.local_path(f"blobs/{rec['artifacts']['arrays']['key'][:2]}/{rec['artifacts']['arrays']['key']}")
    # Items 1.. are raw (random) and mapped straight from the list's blob; item 0 (zeros) is zstd, decoded.
    assert join.mapped[1:] == [list_blob] * (n - 1)
    assert join.mapped[0] != list_blob
    assert join.writeable == [True] * n  # copy-on-write, as a loaded artifact
    # Every random array is written once (in the list's blob), never a second time for its item.
    assert _blob_bytes(root) < (n - 1) * mib * (1 << 20) + (2 << 20), _blob_bytes(root)


def test_an_array_item_with_a_damaged_buffer_is_reported_and_quarantined(tmp_path):
    import numpy as np

    from headwater.exceptions import DataCorruptionError
    from headwater.store import ContentStore
    from headwater.store.itemtable import load_item, save_item_table
    from headwater.store.objects import LocalObjectStore

    content = ContentStore(LocalObjectStore(tmp_path))
    items = [np.random.default_rng(i).integers(0, 2**62, size=1 << 17, dtype=np.int64) for i in range(3)]
    list_ref = content.save(items)
    ref = save_item_table(content, items, list_key=list_ref["key"])
    assert ref is not None
    assert np.array_equal(load_item(content, ref, 2), items[2])
    path = content.objects.local_path(f"blobs/{list_ref['key'][:2]}/{list_ref['key']}")
    with open(path, "r+b") as f:  # flip the last byte: inside item 2's buffer
        f.seek(-1, 2)
        b = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([b[0] ^ 0xFF]))
    assert np.array_equal(load_item(content, ref, 0), items[0])  # its own buffer is intact
    with pytest.raises(DataCorruptionError, match="buffers of item 2 do not match their key") as err:
        load_item(content, ref, 2)
    assert "Re-run the foreach step" in err.value.hint
    assert os.listdir(tmp_path / "quarantine")  # the list blob is out of the way: a re-run writes it again
    assert content.save(items) == list_ref
    assert np.array_equal(load_item(content, ref, 2), items[2])


def test_an_array_shared_by_two_items_gets_no_table(tmp_path):
    import numpy as np

    from headwater.store import ContentStore
    from headwater.store.itemtable import save_item_table
    from headwater.store.objects import LocalObjectStore

    content = ContentStore(LocalObjectStore(tmp_path))
    a = np.arange(1 << 12, dtype=np.int64)
    items = [a, a]  # pickled once inside the list: its buffers do not line up with the items'
    assert save_item_table(content, items, list_key=content.save(items)["key"]) is None


def test_a_dict_of_arrays_gets_a_table_of_its_keys(tmp_path):
    import numpy as np

    from headwater.store import ContentStore
    from headwater.store.itemtable import load_item, save_item_table
    from headwater.store.objects import LocalObjectStore

    content = ContentStore(LocalObjectStore(tmp_path))
    items = {f"k{i}": np.arange(1 << 12, dtype=np.int64) + i for i in range(3)}  # foreach yields the keys
    ref = save_item_table(content, items, list_key=content.save(items)["key"])
    assert ref is not None
    assert [load_item(content, ref, i) for i in range(3)] == ["k0", "k1", "k2"]


def test_small_array_items_read_their_own_buffer(tmp_path):
    import numpy as np

    from headwater.store import ContentStore
    from headwater.store.itemtable import load_item, save_item_table
    from headwater.store.objects import LocalObjectStore

    content = ContentStore(LocalObjectStore(tmp_path))
    items = [np.random.default_rng(i).integers(0, 2**62, size=1 << 12, dtype=np.int64) for i in range(5)]
    ref = save_item_table(content, items, list_key=content.save(items)["key"])
    assert ref is not None and ref["size"] < 4096  # buffers stay in the list's blob
    got = load_item(content, ref, 3)
    assert np.array_equal(got, items[3]) and got.flags.writeable
