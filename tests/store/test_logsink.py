"""Logs through the object store (store.logsink): a growing local file shipped as chunks
while it grows and as one complete object at the end, read back from any machine."""

from __future__ import annotations

import os
import threading

import pytest

from headwater.store.logsink import LogPump, StoreLogTail, chunk_prefix, read_log
from headwater.store.objects import LocalObjectStore
from memstore import MemoryObjectStore

KEY = "runs/F/1/start/1/0.stdout"


@pytest.fixture(params=["mem", "local"])
def objects(request, tmp_path):
    return MemoryObjectStore() if request.param == "mem" else LocalObjectStore(str(tmp_path / "store"))


def _ship_now(pump: LogPump) -> None:
    """One shipment pass, as the pump's thread does every interval (deterministic in tests)."""
    for ship in list(pump._files.values()):
        pump._ship_new(ship)


def test_chunks_while_growing_then_one_complete_object(objects, tmp_path):
    log = tmp_path / "task.log"
    pump = LogPump(objects, interval=3600)  # the thread never ticks: shipments are driven below
    pump.add(KEY, str(log))
    tail = StoreLogTail(objects, KEY, min_interval=0)
    assert read_log(objects, KEY) == b"" and tail.read_new() == b""

    log.write_bytes(b"line 1\n")
    _ship_now(pump)
    assert read_log(objects, KEY) == b"line 1\n"
    assert tail.read_new() == b"line 1\n"
    with open(log, "ab") as f:
        f.write(b"line 2\npartial")
    _ship_now(pump)
    _ship_now(pump)  # nothing new: no empty chunk
    assert objects.list_dir(chunk_prefix(KEY)) == ["00000000", "00000001"]
    assert read_log(objects, KEY) == b"line 1\nline 2\npartial"
    assert tail.read_new() == b"line 2\npartial"

    with open(log, "ab") as f:
        f.write(b" end\n")
    pump.finish(KEY)
    pump.close()  # waits for the pump's thread to store the complete log
    assert objects.get(KEY) == b"line 1\nline 2\npartial end\n"
    assert objects.list_dir(chunk_prefix(KEY)) == []  # chunks removed once the complete object exists
    assert tail.read_new(final=True) == b" end\n"  # what the chunks had not carried, nothing twice
    assert tail.read_new(final=True) == b""
    assert not log.exists()  # the spooled file is gone once shipped


def test_tail_that_starts_after_the_task_ended_reads_everything_once(objects, tmp_path):
    log = tmp_path / "task.log"
    log.write_bytes(b"a\nb\n")
    pump = LogPump(objects, interval=3600)
    pump.add(KEY, str(log))
    pump.finish(KEY, wait=True)
    pump.close()
    tail = StoreLogTail(objects, KEY, min_interval=0)
    assert tail.read_new(final=True) == b"a\nb\n"
    assert tail.read_new(final=True) == b""


def test_empty_log_writes_nothing(objects, tmp_path):
    pump = LogPump(objects, interval=3600)
    pump.add(KEY, str(tmp_path / "never-written.log"))
    pump.close()
    assert not objects.exists(KEY)
    assert read_log(objects, KEY) == b""


def test_background_thread_ships_while_the_task_runs(objects, tmp_path):
    log = tmp_path / "task.log"
    pump = LogPump(objects, interval=0.01)
    pump.add(KEY, str(log))
    shipped = threading.Event()
    with open(log, "ab", buffering=0) as f:
        f.write(b"hello\n")
        for _ in range(500):  # the pump ships within a few intervals; no sleep-and-hope
            if read_log(objects, KEY) == b"hello\n":
                shipped.set()
                break
            threading.Event().wait(0.01)
    assert shipped.is_set()
    pump.close()
    assert objects.get(KEY) == b"hello\n"


def test_tail_throttles_its_looks_at_the_store(tmp_path):
    class Counting(MemoryObjectStore):
        lists = 0

        def list_dir(self, prefix):
            Counting.lists += 1
            return super().list_dir(prefix)

    objects = Counting()
    tail = StoreLogTail(objects, KEY, min_interval=3600)
    for _ in range(100):
        tail.read_new()
    assert Counting.lists == 1
    tail.read_new(final=True)
    assert Counting.lists == 2


def test_a_chunk_stored_though_its_reply_was_lost_is_kept_and_nothing_is_lost_or_doubled(tmp_path):
    class LostReply(MemoryObjectStore):
        """The first put of chunk 0 is stored but reports failure, as a PUT whose response
        was lost and then retried would (the retry finds the key taken)."""

        lost = False

        def put(self, key, data):
            stored = super().put(key, data)
            if key.endswith("/00000000") and not self.lost:
                self.lost = True
                raise ConnectionResetError("reply lost")
            return stored

    objects = LostReply()
    log = tmp_path / "task.log"
    pump = LogPump(objects, interval=3600)
    pump.add(KEY, str(log))
    tail = StoreLogTail(objects, KEY, min_interval=0)
    log.write_bytes(b"line1\n")
    with pytest.raises(ConnectionResetError):
        _ship_now(pump)
    with open(log, "ab") as f:
        f.write(b"line2\n")
    _ship_now(pump)  # chunk 0 already holds line1: keep it, ship line2 as chunk 1
    _ship_now(pump)
    assert read_log(objects, KEY) == b"line1\nline2\n"
    assert tail.read_new() == b"line1\nline2\n"
    pump.close()
    assert objects.get(KEY) == b"line1\nline2\n" and tail.read_new(final=True) == b""


def test_read_log_of_a_task_that_ends_between_the_two_looks(tmp_path):
    class EndsMeanwhile(MemoryObjectStore):
        """The complete log appears (and the chunks go) right after a reader missed it."""

        def get(self, key):
            if key == KEY and KEY not in self.objects and not getattr(self, "ended", False):
                self.ended = True
                self.objects[KEY] = b"all of it\n"
                raise KeyError(key)
            return super().get(key)

    assert read_log(EndsMeanwhile(), KEY) == b"all of it\n"



def test_finish_with_wait_returns_once_the_complete_log_is_stored(objects, tmp_path):
    """A remote task reports only after its log is in the store (and its spool file is gone)."""
    log = tmp_path / "task.log"
    pump = LogPump(objects, interval=3600)
    pump.add(KEY, str(log))  # the pump's thread is running
    log.write_bytes(b"last words\n")
    pump.finish(KEY, wait=True)
    assert objects.get(KEY) == b"last words\n" and not log.exists()
    pump.close()


def test_spooled_logs_of_a_run_leave_no_directories_behind(objects, tmp_path):
    from headwater.store.logsink import remove_spool_dirs, spool_path

    spool = str(tmp_path / "spool")
    pump = LogPump(objects, interval=3600)
    for task in range(50):
        key = f"runs/F/7/work/{task}/0.stdout"
        path = spool_path(spool, key)
        assert os.path.dirname(path) == os.path.join(spool, "runs", "F", "7")  # one flat directory per run
        with open(path, "wb") as f:
            f.write(b"x\n")
        pump.add(key, path)
        pump.finish(key)
    pump.close()
    assert objects.get("runs/F/7/work/49/0.stdout") == b"x\n"
    remove_spool_dirs(spool, "F", "7")
    assert os.listdir(spool) == []
