"""parallel_map, parallel_imap_unordered and profile (headwater's multicore utilities)."""

from __future__ import annotations

import os

import pytest

import headwater
from headwater import parallel_imap_unordered, parallel_map, profile
from headwater.multicore import MulticoreException


def test_exported_from_headwater():
    assert {"parallel_map", "parallel_imap_unordered", "profile"} <= set(headwater.__all__)


def test_parallel_map_keeps_item_order_and_runs_closures():
    offset = 10
    assert parallel_map(lambda x: x * x + offset, range(7), max_parallel=3) == [x * x + offset for x in range(7)]


def test_parallel_map_runs_in_other_processes():
    pids = parallel_map(lambda _: os.getpid(), range(3), max_parallel=3)
    assert os.getpid() not in pids
    assert len(set(pids)) == 3


def test_parallel_map_of_nothing_is_empty():
    assert parallel_map(lambda x: x, []) == []


def test_imap_unordered_yields_every_result():
    assert sorted(parallel_imap_unordered(lambda s: s.upper(), iter("abcde"), max_parallel=2)) == list("ABCDE")


def test_max_parallel_one_runs_items_one_after_another(tmp_path):
    def work(i):
        seen = sorted(int(p.name) for p in tmp_path.iterdir() if p.name.isdigit())
        (tmp_path / str(i)).touch()
        return seen

    assert parallel_map(work, range(4), max_parallel=1) == [[], [0], [0, 1], [0, 1, 2]]


def test_results_go_through_dir(tmp_path):
    assert parallel_map(lambda x: [x] * 3, [1, 2], dir=str(tmp_path)) == [[1, 1, 1], [2, 2, 2]]
    assert list(tmp_path.iterdir()) == []  # temporary result files are removed


def _children() -> set[int]:
    """This process's live children (from /proc): a session's servers are among them."""
    out: set[int] = set()
    for tid in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            with open(f"/proc/{os.getpid()}/task/{tid}/children") as f:
                out.update(int(p) for p in f.read().split())
        except FileNotFoundError:  # the thread ended since the listing (a server's thread, say)
            continue
    return out


@pytest.fixture(autouse=True)
def _children_before():
    global _BEFORE
    _BEFORE = _children()
    yield


_BEFORE: set[int] = set()


def _no_children_left():
    assert _children() <= _BEFORE  # every worker parallel_map started is gone (and reaped)


def test_exception_in_worker_names_item_and_error(capfd):
    def work(x):
        if x == 2:
            raise ValueError("bad item two")
        return x

    with pytest.raises(MulticoreException, match=r"raised ValueError on item 2: bad item two"):
        parallel_map(work, range(4), max_parallel=4)
    assert "Traceback" in capfd.readouterr().err
    _no_children_left()


def test_failure_kills_the_other_workers():
    import time

    def work(x):
        if x == 0:
            raise RuntimeError("first fails")
        time.sleep(60)  # killed, never waited for
        return x

    with pytest.raises(MulticoreException, match="first fails"):
        parallel_map(work, range(3), max_parallel=3)
    _no_children_left()


def test_worker_that_dies_is_reported():
    with pytest.raises(MulticoreException, match=r"item 1 died without a result \(exit code 3\)"):
        parallel_map(lambda x: os._exit(3) if x == 1 else x, range(2))


def test_unpicklable_result_is_reported():
    with pytest.raises(MulticoreException, match="cannot be pickled"):
        parallel_map(lambda x: (lambda: x), [1])


def test_bad_max_parallel():
    with pytest.raises(MulticoreException, match="max_parallel=0 must be at least 1"):
        parallel_map(lambda x: x, [1], max_parallel=0)


def test_profile_prints_start_and_completion(capsys):
    with profile("load"):
        pass
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "PROFILE: load starting"
    assert out[1].startswith("PROFILE: load completed in ") and out[1].endswith("ms")


def test_profile_accumulates_into_stats_dict(capsys):
    stats = {"load": 5}
    with profile("load", stats):
        pass
    with profile("save", stats):
        pass
    assert capsys.readouterr().out == ""
    assert stats["load"] >= 5 and set(stats) == {"load", "save"}
    assert all(isinstance(v, int) for v in stats.values())
