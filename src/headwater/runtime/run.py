"""Start a run: allocate its id, write the run and ``_parameters`` records, drive the
Scheduler, and record how it ended. Called by the CLI's ``run`` command (and later
by Runner); it takes resolved values, not command-line strings.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..config import Settings
from ..meta.index import Index
from ..store import Datastore
from .console import Console
from .launchers import TaskContext, make_launcher
from .scheduler import RunOutcome, Scheduler


@dataclass(frozen=True)
class RunRequest:
    flow_cls: type
    graph: Any
    script: str
    params: dict[str, Any]  # attribute name -> resolved value
    constants: dict[str, Any]
    tags: tuple[str, ...] = ()
    max_workers: int = 16
    max_num_splits: int = 100
    run_id_file: str | None = None


def system_tags(user: str) -> list[str]:
    return [f"user:{user}", "runtime:dev", f"python_version:{platform.python_version()}",
            f"headwater_version:{__version__}"]


def new_run_id(ds: Datastore, flow_name: str) -> str:
    """An integer-looking id (microseconds since the epoch), unique in this store."""
    base = ds.objects.path(f"runs/{flow_name}")
    os.makedirs(base, exist_ok=True)
    rid = int(time.time() * 1e6)
    while True:
        try:
            os.mkdir(os.path.join(base, str(rid)))
            return str(rid)
        except FileExistsError:
            rid += 1


def execute_run(req: RunRequest, settings: Settings, console_factory: Any = Console) -> tuple[str, RunOutcome]:
    """Run the flow to completion; returns (run id, outcome)."""
    user = settings.require_user()
    flow_name = req.flow_cls.__name__
    os.makedirs(settings.datastore_root, exist_ok=True)
    ds = Datastore(settings.datastore_root)
    launcher = make_launcher(settings.launcher, TaskContext(req.flow_cls, req.graph, ds.root, req.script))
    launcher.start()  # fork the zygote before SQLite or any thread exists
    try:
        index = Index(ds.root, records=ds.records)
        run_id = new_run_id(ds, flow_name)
        if req.run_id_file:
            with open(req.run_id_file, "w") as f:
                f.write(run_id)
        now = time.time()
        run_rec = {
            "version": 1, "flow": flow_name, "run_id": run_id, "user": user, "tags": list(req.tags),
            "system_tags": system_tags(user), "created_at": now, "start_step": req.graph.start,
            "end_step": req.graph.end, "parameters": sorted(req.params), "origin_run_id": None,
            "pid": os.getpid(), "host": socket.gethostname(), "script": os.path.abspath(req.script),
        }
        ds.records.write_run(run_rec)
        index.add_run(run_rec)
        _write_parameters_task(ds, index, flow_name, run_id, req, user, now)
        console = console_factory(run_id)
        console.info(f"Workflow starting (run-id {run_id}):")
        sched = Scheduler(
            flow_name=flow_name, graph=req.graph, ds=ds, index=index, launcher=launcher, run_id=run_id,
            user=user, tags=req.tags, max_workers=req.max_workers, max_num_splits=req.max_num_splits,
            console=console,
        )
        try:
            outcome = sched.run()
        except BaseException:
            _end(ds, index, flow_name, run_id, False, [])
            raise
        _end(ds, index, flow_name, run_id, outcome.ok, outcome.failed[:1])
        if outcome.ok:
            console.info("Done!")
        return run_id, outcome
    finally:
        launcher.shutdown()


def _end(ds: Datastore, index: Index, flow: str, run_id: str, ok: bool, failed: list) -> None:
    now = time.time()
    status = "successful" if ok else "failed"
    ds.records.write_run_end(flow, run_id, {
        "status": status, "finished_at": now,
        "failed": [{"step": s, "task_id": t} for s, t in failed],
    })
    index.end_run(flow, run_id, status, now)


def _write_parameters_task(ds: Datastore, index: Index, flow: str, run_id: str, req: RunRequest,
                           user: str, now: float) -> None:
    save = ds.content.save
    artifacts = {name: save(value) for name, value in req.constants.items()}
    artifacts.update({name: save(value) for name, value in req.params.items()})
    artifacts["name"] = save(flow)
    artifacts["_graph_info"] = save(req.graph.to_info())
    rec = {
        "version": 1, "flow": flow, "run_id": run_id, "step": "_parameters", "task_id": "0",
        "attempt": 0, "status": "ok", "started_at": now, "finished_at": time.time(),
        "input_paths": [], "split_index": None, "foreach_stack": [],
        "transition": {"next": [req.graph.start], "foreach": None, "num_splits": None, "switch_case": None},
        "artifacts": artifacts, "exception": None, "metadata": {"user": user},
    }
    ds.records.write_attempt(rec)
    index.upsert_attempts([{"flow": flow, "run_id": run_id, "step": "_parameters", "task_id": "0",
                            "attempt": 0, "status": "ok", "started_at": now, "finished_at": rec["finished_at"]}])
