"""runtime.prefork: reads of a store whose client does not survive fork run in a child,
so the run process can still fork its zygote afterwards."""

from __future__ import annotations

import os

import pytest

from headwater.runtime.prefork import before_fork
from headwater.runtime.resume import ResumeError
from headwater.store import Datastore


class _NotForkSafe(Datastore):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.objects.fork_safe = False  # as the S3 store says of itself


def test_a_fork_safe_store_reads_in_this_process(tmp_path):
    ds = Datastore(str(tmp_path))
    assert before_fork(ds, os.getpid) == os.getpid()


def test_other_stores_read_in_a_child_that_sends_the_result_back(tmp_path):
    ds = _NotForkSafe(str(tmp_path))
    ds.objects.put("k", b"value")
    pid, data = before_fork(ds, lambda: (os.getpid(), ds.objects.get("k")))
    assert pid != os.getpid() and data == b"value"


def test_a_user_error_in_the_child_is_raised_here_with_its_hint(tmp_path):
    ds = _NotForkSafe(str(tmp_path))

    def fail():
        raise ResumeError("no such run", hint="pass another --origin-run-id")

    with pytest.raises(ResumeError, match="no such run") as err:
        before_fork(ds, fail)
    assert err.value.hint == "pass another --origin-run-id"


def test_a_child_that_dies_is_an_internal_error(tmp_path):
    ds = _NotForkSafe(str(tmp_path))
    with pytest.raises(RuntimeError, match="died"):
        before_fork(ds, lambda: os._exit(3))
