"""Fixtures for the client tests: fabricate real runs (records, blobs, logs and
index rows) in a tmp datastore, the way the runtime writes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from headwater.client import default_metadata, default_namespace
from headwater.meta.index import Index
from headwater.store import Datastore

USER = "alice"
ITEMS = ["a", "b", "c"]
BIG = b"x" * 10_000  # over the inline limit: stored as a blob


@dataclass
class FakeRun:
    """What make_run wrote: enough for the tests to know what to expect."""

    root: Path
    flow: str
    run_id: str
    created_at: float
    tags: list[str]
    system_tags: list[str]
    tasks: dict[str, list[str]] = field(default_factory=dict)  # step -> task ids, in start order
    failed: tuple[str, str] | None = None

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"


class _Writer:
    def __init__(self, root: Path, flow: str, run_id: str, t0: float):
        self.ds = Datastore(root)
        self.flow, self.run_id, self.t = flow, run_id, t0
        self.rows: list[dict[str, Any]] = []

    def save(self, **values: Any) -> dict[str, dict[str, Any]]:
        return {k: self.ds.content.save(v) for k, v in values.items()}

    def attempt(
        self,
        step: str,
        task_id: str,
        *,
        artifacts: dict[str, Any],
        inputs: list[str],
        nxt: list[str],
        attempt: int = 0,
        ok: bool = True,
        foreach_stack: list[dict] | None = None,
        metadata: dict[str, Any] | None = None,
        foreach: str | None = None,
    ) -> dict[str, Any]:
        self.t += 1.0
        started, finished = self.t, self.t + 0.5
        rec = {
            "version": 1, "flow": self.flow, "run_id": self.run_id, "step": step, "task_id": task_id,
            "attempt": attempt, "status": "ok" if ok else "failed", "started_at": started,
            "finished_at": finished, "input_paths": inputs, "split_index": None,
            "foreach_stack": foreach_stack or [],
            "transition": {"next": nxt, "foreach": foreach, "num_splits": None, "switch_case": None},
            # A failed attempt's record carries no artifacts (docs/internals.md).
            "artifacts": artifacts if ok else {},
            "exception": None if ok else {"type": "ValueError", "message": f"boom in {step}",
                                          "traceback": "Traceback (most recent call last):\n  ...\nValueError"},
            "metadata": metadata or {},
        }  # fmt: skip
        for stream in ("stdout", "stderr"):
            path = self.ds.log_path(self.flow, self.run_id, step, task_id, attempt, stream)
            Path(path).write_text(f"{stream} of {step}/{task_id} attempt {attempt}\n")
        assert self.ds.records.write_attempt(rec)
        self.rows.append({"flow": self.flow, "run_id": self.run_id, "step": step, "task_id": task_id,
                          "attempt": attempt, "status": rec["status"], "started_at": started,
                          "finished_at": finished})  # fmt: skip
        return rec

    def running(self, step: str, task_id: str, attempt: int = 0) -> None:
        """A task attempt that has started: an index row and a log, no record yet."""
        self.t += 1.0
        path = self.ds.log_path(self.flow, self.run_id, step, task_id, attempt, "stdout")
        Path(path).write_text("working...\n")
        self.rows.append({"flow": self.flow, "run_id": self.run_id, "step": step, "task_id": task_id,
                          "attempt": attempt, "status": "running", "started_at": self.t,
                          "finished_at": None})  # fmt: skip


def make_run(
    root: Path,
    flow: str = "HelloFlow",
    run_id: str = "1000",
    *,
    user: str = USER,
    tags: tuple[str, ...] = (),
    created_at: float = 1_700_000_000.0,
    fail_at: str | None = None,
    retry: bool = False,
    running: bool = False,
    index: bool = True,
    origin_run_id: str | None = None,
) -> FakeRun:
    """Write a run of start -> foreach work x3 -> join -> end, as the runtime would.

    ``fail_at``: the step whose (first) task fails; the run stops there and ends failed.
    ``retry``: task ``work`` #2 fails on attempt 0 and succeeds on attempt 1.
    ``running``: the run has not ended; ``end`` is in flight (index row, no record).
    ``index``: also write the index rows (what the scheduler does).
    """
    w = _Writer(root, flow, run_id, created_at)
    system_tags = [f"user:{user}", "runtime:dev", "python_version:3.11.7", "headwater_version:0.1.0"]
    run_rec = {"version": 1, "flow": flow, "run_id": run_id, "user": user, "tags": list(tags),
               "system_tags": system_tags, "created_at": created_at, "start_step": "start",
               "end_step": "end", "parameters": ["alpha"], "origin_run_id": origin_run_id, "pid": 1,
               "host": "box", "script": "/abs/flow.py"}  # fmt: skip
    assert w.ds.records.write_run(run_rec)
    fake = FakeRun(root, flow, run_id, created_at, list(tags), system_tags)
    ids = iter(str(i) for i in range(100))

    def done(step: str, tid: str) -> None:
        fake.tasks.setdefault(step, []).append(tid)

    params = w.save(alpha=0.5, name=flow, _graph_info={"steps": ["start", "work", "join", "end"]})
    tid = next(ids)
    w.attempt("_parameters", tid, artifacts=params, inputs=[], nxt=["start"])
    done("_parameters", tid)

    def stop(step: str, tid: str) -> FakeRun:
        w.attempt(step, tid, artifacts={}, inputs=[], nxt=[], ok=False)
        done(step, tid)
        fake.failed = (step, tid)
        return finish("failed")

    def finish(status: str | None) -> FakeRun:
        if index:
            with Index(root) as idx:
                idx.add_run(run_rec)
                idx.upsert_attempts(w.rows)
                if status:
                    idx.end_run(flow, run_id, status, w.t + 1.0)
        if status:
            w.ds.records.write_run_end(
                flow,
                run_id,
                {"status": status, "finished_at": w.t + 1.0, "failed": [list(fake.failed)] if fake.failed else []},
            )
        return fake

    start_id = next(ids)
    if fail_at == "start":
        return stop("start", start_id)
    start_arts = {**params, **w.save(items=ITEMS, _private="secret", blob=BIG)}
    w.attempt(
        "start",
        start_id,
        artifacts=start_arts,
        inputs=["_parameters/0"],
        nxt=["work"],
        foreach="items",
        metadata={"runtime": "dev"},
    )
    done("start", start_id)

    work_ids = []
    for i, item in enumerate(ITEMS):
        tid = next(ids)
        frame = [{"step": "start", "var": "items", "index": i, "num_splits": len(ITEMS), "value": repr(item)}]
        arts = {**start_arts, **w.save(item=item, result=item * 2)}
        if fail_at == "work" and i == 1:
            w.attempt("work", tid, artifacts={}, inputs=[f"start/{start_id}"], nxt=[], ok=False, foreach_stack=frame)
            done("work", tid)
            fake.failed = ("work", tid)
            return finish("failed")
        if retry and i == 1:
            w.attempt(
                "work", tid, artifacts=arts, inputs=[f"start/{start_id}"], nxt=["join"], ok=False, foreach_stack=frame
            )
            w.attempt(
                "work",
                tid,
                artifacts=arts,
                inputs=[f"start/{start_id}"],
                nxt=["join"],
                attempt=1,
                foreach_stack=frame,
                metadata={"attempt_ok": True},
            )
        else:
            w.attempt("work", tid, artifacts=arts, inputs=[f"start/{start_id}"], nxt=["join"], foreach_stack=frame)
        done("work", tid)
        work_ids.append(tid)

    join_id = next(ids)
    join_arts = {**params, **w.save(results=[x * 2 for x in ITEMS])}
    w.attempt("join", join_id, artifacts=join_arts, inputs=[f"work/{t}" for t in work_ids], nxt=["end"])
    done("join", join_id)

    end_id = next(ids)
    if running:
        w.running("end", end_id)
        done("end", end_id)
        return finish(None)
    if fail_at == "end":
        return stop("end", end_id)
    w.attempt("end", end_id, artifacts={**join_arts, **w.save(message="done")}, inputs=[f"join/{join_id}"], nxt=[])
    done("end", end_id)
    return finish("successful")


@pytest.fixture(autouse=True)
def client_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test reads its own store as user alice, in her default namespace."""
    root = tmp_path / ".headwater"
    for k in ("HEADWATER_DATASTORE_SYSROOT_LOCAL", "HEADWATER_HOME"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(root))
    monkeypatch.setenv("HEADWATER_USER", USER)
    default_metadata()
    default_namespace()
    yield root
    default_metadata()
    default_namespace()


@pytest.fixture
def root(client_env: Path) -> Path:
    return client_env


@pytest.fixture
def hello(root: Path) -> FakeRun:
    """One successful run of HelloFlow by alice, tagged 'exp'."""
    return make_run(root, tags=("exp",))
