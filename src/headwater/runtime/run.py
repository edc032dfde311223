"""Start a run (or a resume): allocate its id, write the run and ``_parameters``
records, drive the Scheduler, and record how it ended. Called by the CLI's
``run`` and ``resume`` commands; it takes resolved values, not command-line strings.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import socket
import time
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..config import Settings
from ..environments.kinds import ExecutionEnvironment
from ..exceptions import ParameterError
from ..flow.decorators import step_policy
from ..flow.flow_decorators import flow_decorators, flow_system_tags
from ..meta import MetadataIndex, open_index
from ..package import package_wanted
from ..store import Datastore
from ..store.full import StoreFullError
from ..store.taskmeta import PARAMETERS_PATH, PARAMETERS_STEP, PARAMETERS_TASK_ID
from ..tags import check_run_tags
from .console import Console
from .exit_hooks import run_exit_hooks
from .hooks import runtime_hooks
from .launchers import TaskContext, make_launcher
from .resume import ResumePlan, plan_resume, unresumable
from .run_id_file import RunIdFileError, check_run_id_file, write_run_id_file
from .launchers import Request
from .scheduler import RunOutcome, Scheduler


@dataclass(frozen=True)
class RunRequest:
    flow_cls: type
    graph: Any
    script: str
    params: dict[str, Any]  # attribute name -> resolved value (ignored by a resume)
    constants: dict[str, Any]
    tags: tuple[str, ...] = ()
    max_workers: int = 16
    max_num_splits: int = 100
    run_id_file: str | None = None
    runner_attribute_file: str | None = None  # JSON {flow_name, run_id, datastore_root} for the Runner
    decospecs: tuple[str, ...] = ()
    resume_from: str | None = None  # origin run id: this is a resume
    resume_step: str | None = None
    namespace: str | None = None  # run --namespace: the client namespace in tasks ("" = global)
    package_suffixes: str | None = None  # --package-suffixes, for the code package
    environment: ExecutionEnvironment = ExecutionEnvironment.LOCAL  # --environment


def system_tags(identity: str) -> list[str]:
    """A run's system tags; ``identity`` is ``user:<name>`` or, in a production deployment,
    ``production:<token>`` (``Settings.identity``)."""
    return [identity, "runtime:dev", f"python_version:{platform.python_version()}",
            f"headwater_version:{__version__}"]


def new_run_id(ds: Datastore, run_rec: dict[str, Any]) -> str:
    """Allocate a run id by writing ``run_rec`` (its ``run_id`` filled in) as the run record.

    The id is integer-looking (microseconds since the epoch). The run record is a
    create-only put, so it is the reservation: of two runs that pick one id, the
    second finds the record there and takes the next id. Works on any object store.
    """
    rid = int(time.time() * 1e6)
    while True:
        rec = {**run_rec, "run_id": str(rid)}
        if ds.records.write_run(rec):
            run_rec.update(rec)
            return str(rid)
        rid += 1


@dataclass(frozen=True)
class ResumeOrigin:
    """Which run a bare ``resume`` continues, and the newer runs it had to pass over."""

    run_id: str | None  # None: no run of the flow can be resumed
    skipped: tuple[tuple[str, str], ...] = ()  # (run id, why it cannot be resumed), newest first


def resume_origin(settings: Settings, flow_name: str) -> ResumeOrigin:
    """The newest resumable run of ``flow_name`` by this user (else by anyone): resume's default origin.

    A run killed after its run record but before its parameters record has nothing
    to resume from; it is skipped (and reported) rather than chosen.
    """
    ds = Datastore(settings.datastore_root)
    if not ds.exists():
        return ResumeOrigin(None)
    index = open_index(ds.root, records=ds.records, provider=settings.metadata)
    try:
        rows = index.runs(flow_name, tags=(f"user:{settings.user}",)) or index.runs(flow_name)
    finally:
        index.close()
    skipped = []
    for row in rows:
        why = unresumable(ds, flow_name, row.run_id)
        if why is None:
            return ResumeOrigin(row.run_id, tuple(skipped))
        skipped.append((row.run_id, why))
    return ResumeOrigin(None, tuple(skipped))


def execute_run(req: RunRequest, settings: Settings, console_factory: Any = Console) -> tuple[str, RunOutcome]:
    """Run (or resume) the flow to completion; returns (run id, outcome)."""
    user = settings.require_user()
    flow_name = req.flow_cls.__name__
    check_run_tags(req.tags, arg="--tag")
    for path, option in ((req.run_id_file, "--run-id-file"), (req.runner_attribute_file, "--runner-attribute-file")):
        if path:
            check_run_id_file(path, option=option, datastore_root=settings.datastore_root)
    ds = Datastore(settings.datastore_root)
    ds.ensure_local_root()
    ds.sweep_temp()  # temp files of writers killed earlier; never one a live writer uses
    policies = {name: step_policy(getattr(req.flow_cls, name)) for name in req.graph.sorted_nodes}
    hooks = runtime_hooks(req.flow_cls, req.graph)
    environments = prepare_environments(req, settings)  # resolved and built before anything runs
    ctx = TaskContext(req.flow_cls, req.graph, ds.root, req.script, machine=settings.extra.get("HEADWATER_MACHINE"),
                      ray_address=settings.extra.get("HEADWATER_RAY_ADDRESS") or None, settings=settings,
                      environments=environments)
    launcher = make_launcher(settings.launcher, ctx)
    launcher.admission.expect(Request(p.cpu, p.gpu) for p in policies.values() if p.cpu is not None)
    # Fork the zygote before SQLite, any thread, or a remote store's client exists (runtime.prefork).
    launcher.start()
    index: MetadataIndex | None = None
    plan: ResumePlan | None = None
    try:
        if req.resume_from is not None:
            plan = plan_resume(ds, req.graph, flow_name, req.resume_from, req.resume_step)
        index = open_index(ds.root, records=ds.records, provider=settings.metadata)
        saved = _parameter_artifacts(ds, flow_name, req, plan)  # after the fork: hashing may start threads
        code: dict[str, Any] = {}
        remote = getattr(launcher, "remote", False)  # a plugin launcher may not subclass Launcher
        if package_wanted(settings.extra) or remote:  # its code, for tasks on other machines
            from ..package.stored import PACKAGE_RECORD_KEY, run_package_fields

            code = run_package_fields(ds.content, req.script, req.package_suffixes)
            if remote:
                launcher.use_code_package(code[PACKAGE_RECORD_KEY])
        now = time.time()
        run_rec = run_record(req, user, now, plan, code, identity=settings.identity)
        if environments is not None:
            from ..environments.prepare import RUN_RECORD_FIELD

            run_rec[RUN_RECORD_FIELD] = environments.record()
        run_id = new_run_id(ds, run_rec)  # writes the run record: the id is reserved by it
        index.add_run(run_rec)
        _write_parameters_task(ds, index, flow_name, run_id, req, user, now, saved)
        if plan is not None:
            plan.pin_origin_blobs(ds, flow_name, run_id)  # one pin batch for every clone to come
        try:
            # Only now: whoever reads the id (the Runner) can open the run with the client at once.
            if req.run_id_file:
                write_run_id_file(req.run_id_file, run_id, option="--run-id-file")
            if req.runner_attribute_file:
                attributes = {"flow_name": flow_name, "run_id": run_id, "datastore_root": ds.root}
                write_run_id_file(req.runner_attribute_file, json.dumps(attributes), option="--runner-attribute-file")
        except RunIdFileError:
            end_run(ds, index, flow_name, run_id, False, [])  # it ran nothing: failed, not killed
            raise
        console = console_factory(run_id)
        has_exit_hooks = any(d.name == "exit_hook" for d in flow_decorators(req.flow_cls))
        if plan is not None and plan.rerun:
            console.info(f"Resuming run {plan.origin_run_id} as run-id {run_id}: re-running step "
                         f"{plan.first_step!r} and everything after it.")
        elif plan is not None:
            rest = (f"running from step {plan.first_step!r} on" if plan.first_step is not None
                    else "the origin run succeeded, so every task is cloned")
            console.info(f"Resuming run {plan.origin_run_id} as run-id {run_id}: cloning the tasks that "
                         f"succeeded, {rest}.")
        else:
            console.info(f"Workflow starting (run-id {run_id}):")
        sched = Scheduler(
            flow_name=flow_name, graph=req.graph, ds=ds, index=index, launcher=launcher, run_id=run_id,
            user=user, tags=req.tags, max_workers=req.max_workers, max_num_splits=req.max_num_splits,
            console=console, origin_run_id=plan.origin_run_id if plan else None, policies=policies,
            decospecs=req.decospecs, resume=plan, task_created=hooks.runtime_task_created,
            namespace=req.namespace, identity=settings.identity,
        )
        try:
            hooks.init(req.flow_cls, req.graph, run_id)
            outcome = sched.run()
        except BaseException as e:
            try:
                end_run(ds, index, flow_name, run_id, False, [])
            except StoreFullError:
                pass  # the disk is full: the error that stopped the run is the one to show
            hooks.finished(e)
            if has_exit_hooks and not isinstance(e, KeyboardInterrupt):
                run_exit_hooks(req.flow_cls, run_id, False, ds.root)
            raise
        hooks.finished(None)
        end_run(ds, index, flow_name, run_id, outcome.ok, outcome.failed[:1])
        if has_exit_hooks:
            run_exit_hooks(req.flow_cls, run_id, outcome.ok, ds.root)
        if outcome.ok:
            console.info("Done!")
        return run_id, outcome
    finally:
        launcher.shutdown()
        if index is not None:
            index.close()


def prepare_environments(req: RunRequest, settings: Settings) -> Any:
    """The steps' environments (``environments.prepare.PreparedEnvironments``), resolved once for
    the run and built for the steps that run here (those on Ray or Kubernetes are built on their
    nodes), in a forked child (no thread of the tools stays in this process); None when no step
    has one (nothing of ``headwater.environments`` is imported)."""
    from ..flow.environment_decorators import step_env_requests

    requests = step_env_requests(req.flow_cls, req.graph.sorted_nodes, req.environment,
                                 project_dir=os.path.dirname(os.path.abspath(req.script)))
    if not any(r is not None for r in requests.values()):
        return None
    from ..environments.prepare import prepare_steps
    from ..subfork import call_in_child
    from .launchers.routing import remote_steps

    elsewhere = remote_steps(req.flow_cls, req.graph.sorted_nodes, settings.launcher)  # built on their nodes
    # Resolving and building may start threads in this process (rattler runs a Tokio runtime),
    # and the zygote forked next must come from a process without any: so the work runs in a
    # short-lived forked child, and only its result (plain data) comes back.
    return call_in_child(lambda: prepare_steps(requests, settings, echo=_echo_environment, remote=elsewhere),
                         what="The process preparing the steps' environments")


def _echo_environment(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def run_record(req: RunRequest, user: str, now: float, plan: ResumePlan | None = None,
               code: dict[str, Any] | None = None, identity: str | None = None) -> dict[str, Any]:
    """The run record of ``req`` (its ``run_id`` still ``None``): who, when, tags, parameters.
    ``identity`` (``Settings.identity``) names the run's namespace; ``user:<user>`` when not given."""
    params = sorted(req.params) if plan is None else plan.parameters.get("metadata", {}).get("parameters", [])
    return {
        "version": 1, "flow": req.flow_cls.__name__, "run_id": None, "user": user, "tags": list(req.tags),
        "system_tags": system_tags(identity or f"user:{user}") + flow_system_tags(req.flow_cls), "created_at": now,
        "start_step": req.graph.start, "end_step": req.graph.end, "parameters": params,
        "origin_run_id": plan.origin_run_id if plan else None,
        "pid": os.getpid(), "host": socket.gethostname(), "script": os.path.abspath(req.script), **(code or {}),
    }


def init_run(req: RunRequest, settings: Settings, run_id: str, plan: ResumePlan | None = None) -> bool:
    """Record run ``run_id`` and its ``_parameters`` task without running anything: what an
    orchestrator's first task does (Metaflow's ``init``). Both writes are create-only, so a
    retried ``init`` is safe; returns whether this call created the run record. With ``plan``
    (a resume, see ``resume.parameters_plan``) the run records its origin and copies the
    origin's parameters, as a local resume does."""
    user = settings.require_user()
    flow_name = req.flow_cls.__name__
    check_run_tags(req.tags, arg="--tag")
    ds = Datastore(settings.datastore_root)
    ds.ensure_local_root()
    saved = _parameter_artifacts(ds, flow_name, req, plan)
    now = time.time()
    # No pid: the run lives in the orchestrator, not in this process, and must not look killed when it exits.
    run_rec = {**run_record(req, user, now, plan, identity=settings.identity), "run_id": run_id, "pid": None}
    created = ds.records.write_run(run_rec)
    index = open_index(ds.root, records=ds.records, provider=settings.metadata)
    try:
        if created:
            index.add_run(run_rec)
        if not ds.records.attempts(flow_name, run_id, PARAMETERS_STEP, PARAMETERS_TASK_ID):
            _write_parameters_task(ds, index, flow_name, run_id, req, user, now, saved)
        if plan is not None:
            plan.pin_origin_blobs(ds, flow_name, run_id)  # one pin batch for every clone to come
    finally:
        index.close()
    return created


def end_run(ds: Datastore, index: MetadataIndex, flow: str, run_id: str, ok: bool, failed: list) -> None:
    """Write the run's end record (``successful`` or ``failed``, with the first failed task) and index it."""
    now = time.time()
    status = "successful" if ok else "failed"
    ds.records.write_run_end(flow, run_id, {
        "status": status, "finished_at": now,
        "failed": [{"step": s, "task_id": t} for s, t in failed],
    })
    index.end_run(flow, run_id, status, now)


def _parameter_artifacts(ds: Datastore, flow: str, req: RunRequest,
                         plan: ResumePlan | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(artifacts, metadata) of the ``_parameters`` task, saved before the run is recorded, so
    a value that cannot be stored is an error with no run left behind."""
    if plan is not None:  # a resume keeps the origin's parameters and constants, by reference
        meta = dict(plan.parameters.get("metadata") or {})
        meta["origin_pathspec"] = f"{flow}/{plan.origin_run_id}/{PARAMETERS_PATH}"
        return dict(plan.parameters["artifacts"]), meta
    artifacts = {}
    for kind, values in (("constant", req.constants), ("parameter", req.params)):
        for name, value in values.items():
            try:
                artifacts[name] = ds.content.save(value)
            except pickle.PicklingError as e:
                raise ParameterError(f"The value of {kind} {name!r} of {flow} cannot be stored: {e}.",
                                     hint=f"Give {name!r} a value that pickle can store.") from None
    artifacts["name"] = ds.content.save(flow)
    artifacts["_graph_info"] = ds.content.save(req.graph.to_info())
    return artifacts, {"parameters": sorted(req.params)}


def _write_parameters_task(ds: Datastore, index: MetadataIndex, flow: str, run_id: str, req: RunRequest,
                           user: str, now: float, saved: tuple[dict[str, Any], dict[str, Any]]) -> None:
    artifacts, meta = saved
    content = ds.content.for_run(flow, run_id)  # every blob written from now on is pinned as the run's
    origin = meta.get("origin_pathspec")
    if origin:  # a resume names the origin's parameter blobs: pin them before the record does
        from ..store.refs import artifact_blob_keys

        content.adopt(artifact_blob_keys(artifacts), ds.records.attempt_key(
            flow, origin.split("/")[1], PARAMETERS_STEP, PARAMETERS_TASK_ID, 0))
    meta = {**meta, "user": user}
    rec = {
        "version": 1, "flow": flow, "run_id": run_id, "step": PARAMETERS_STEP, "task_id": PARAMETERS_TASK_ID,
        "attempt": 0, "status": "ok", "started_at": now, "finished_at": time.time(),
        "input_paths": [], "split_index": None, "foreach_stack": [],
        "transition": {"next": [req.graph.start], "foreach": None, "num_splits": None, "switch_case": None},
        "artifacts": artifacts, "exception": None, "metadata": meta,
    }
    ds.records.write_attempt(rec)
    index.upsert_attempts([{"flow": flow, "run_id": run_id, "step": PARAMETERS_STEP, "task_id": PARAMETERS_TASK_ID,
                            "attempt": 0, "status": "ok", "started_at": now, "finished_at": rec["finished_at"]}])
