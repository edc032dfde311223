"""The worker side of a task that runs on another machine (runtime layer).

``run_remote`` runs inside a long-lived remote worker (a Ray task today): it
fetches the run's code package from the datastore by the key the TaskSpec
carries, extracts it once per node (``package.stored``: temp dir + rename, so
concurrent tasks are safe), imports the flow module from it (never from the
head's path), runs ``execute`` and returns the TaskResult. The task's stdout
and stderr go, at the fd level, to spool files on the node that a log shipper
streams to the store (``headwater.store.logsink``).

``deadline`` (the head's ``time.monotonic()``) means nothing here: it arrives
as a remaining-seconds budget and is set again on this host's clock.
``run_owner`` is the launcher's token for the run (``ray-job:<job id>`` for Ray,
registered by the Ray launcher with ``owner.register_owner_scheme``): the
executor checks it right before the commit, so a task whose run died (Ray
SIGTERMs the workers of a dead driver) commits nothing, not even a failure.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from ..exceptions import HeadwaterException
from ..store import Datastore
from .owner import RunGoneError
from .taskspec import TaskResult, TaskSpec

#: ``TaskSpec.extra`` key naming the run's code package (its ``code_package`` record, as JSON).
CODE_PACKAGE_EXTRA = "code_package"
#: Where a node spools task logs before they are shipped (under the temp dir unless set).
SPOOL_ENV = "HEADWATER_SPOOL_DIR"


class RemoteTaskError(HeadwaterException):
    """A remote task could not start: no datastore, no code package, no flow."""

    headline = "Remote task failed to start"


@dataclasses.dataclass(frozen=True)
class RemoteOutcome:
    """What a remote task sends back: the TaskResult as JSON, or why it never ran."""

    result_json: str | None
    error: str | None = None


def with_package(spec: TaskSpec, info: dict[str, Any]) -> TaskSpec:
    """``spec`` carrying the run's code package record (``TaskSpec.extra``)."""
    return dataclasses.replace(spec, extra=spec.extra + ((CODE_PACKAGE_EXTRA, json.dumps(info)),))


def remaining_seconds(spec: TaskSpec, now: float | None = None) -> float | None:
    """The head-side deadline as seconds left from ``now`` (``time.monotonic()``); None without one."""
    if spec.deadline is None:
        return None
    return spec.deadline - (time.monotonic() if now is None else now)


# -- the flow, imported from the package, once per worker process and run ---------------

_flows: dict[tuple[str, str, tuple[str, ...]], tuple[type, ModuleType]] = {}
_flows_lock = threading.Lock()


def _package_info(spec: TaskSpec) -> dict[str, Any]:
    raw = dict(spec.extra).get(CODE_PACKAGE_EXTRA)
    if raw is None:
        raise RemoteTaskError(f"Task {spec.pathspec} carries no code package.",
                              hint="Remote launchers store the run's code package; start the run with one.")
    return json.loads(raw)


def _import_flow_module(path: str) -> ModuleType:
    name = os.path.splitext(os.path.basename(path))[0]
    mod_spec = importlib.util.spec_from_file_location(name, path)
    if mod_spec is None or mod_spec.loader is None:
        raise RemoteTaskError(f"Cannot import the flow file {path!r} from the code package.")
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module  # the flow class (and its source, for the graph) is found by this name
    mod_spec.loader.exec_module(module)
    _pickle_as_main(module)
    return module


def _pickle_as_main(module: ModuleType) -> None:
    """Name the flow file's own classes and functions ``__main__.<name>``, as on the head.

    The head runs the flow file as ``__main__``, so what it pickles of them says
    ``__main__``; renamed here too, artifacts of those types travel both ways (with
    ``_as_main`` in effect while a task runs). Flow classes keep their module: the
    graph is read from their source.
    """
    from ..flow.spec import FlowSpec

    for obj in list(vars(module).values()):
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if isinstance(obj, type) and issubclass(obj, FlowSpec):
            continue
        if isinstance(obj, type) or callable(obj):
            try:
                obj.__module__ = "__main__"
            except (AttributeError, TypeError):
                pass


def load_flow(ds: Datastore, spec: TaskSpec, info: dict[str, Any]) -> tuple[type, ModuleType]:
    """The flow class of ``spec`` and its module, imported from the run's code package (cached per run).

    The package is fetched and extracted into the node's code cache (once per
    package key) and put first on ``sys.path``; the run's configs and flow
    decorator state are restored as in any fresh interpreter.
    """
    key = (info["key"], spec.run_id, spec.decospecs)
    with _flows_lock:
        loaded = _flows.get(key)
        if loaded is not None:
            return loaded
        from ..package.stored import fetch_package
        from .run_state import restore_run_state

        root = fetch_package(ds.content, info)
        _forget_other_packages(root)
        module = _import_flow_module(os.path.join(root, info["script"]))
        cls = getattr(module, spec.flow_name, None)
        if not isinstance(cls, type):
            raise RemoteTaskError(f"The code package of run {spec.flow_name}/{spec.run_id} has no flow "
                                  f"class {spec.flow_name!r} in {info['script']!r}.")
        restore_run_state(ds, cls, spec.run_id)
        _flows.clear()  # one run's flow at a time per worker: an old run's module is not kept
        _flows[key] = (cls, module)
        return cls, module


def _forget_other_packages(root: str) -> None:
    """Drop other code packages from ``sys.path`` and their modules from ``sys.modules``.

    A worker that ran another run's code (Ray gives each run's driver its own
    workers, but another engine may not) must not import that run's user modules.
    """
    cache = os.path.dirname(root) + os.sep
    for entry in [p for p in sys.path if p.startswith(cache) and p != root]:
        sys.path.remove(entry)
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None) or ""
        if f.startswith(cache) and not f.startswith(root + os.sep):
            del sys.modules[name]


@contextmanager
def _as_main(flow_module: ModuleType) -> Iterator[None]:
    """While a task runs, ``__main__`` is the flow module, as on the head (see ``_pickle_as_main``)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = flow_module
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


# -- the datastore and its log pump, once per worker process and root ---------------------

_stores: dict[str, tuple[Datastore, Any]] = {}


def _datastore(root: str, node: str) -> Datastore:
    """The datastore at ``root``, checked reachable from this node the first time."""
    entry = _stores.get(root)
    if entry is None:
        ds = Datastore(root)
        _check_datastore(ds, node)
        entry = _stores[root] = (ds, None)
    return entry[0]


def _pump(ds: Datastore) -> Any:
    """The worker's LogPump for ``ds``: one background thread ships every task's logs."""
    entry = _stores.get(ds.root)
    if entry is None or entry[1] is None:
        from ..store.logsink import LogPump

        entry = _stores[ds.root] = (ds, LogPump(ds.objects))
    return entry[1]


# -- logs: fds 1/2 into spool files, shipped to the store ---------------------------------

def spool_dir() -> str:
    return os.environ.get(SPOOL_ENV) or os.path.join(tempfile.gettempdir(), "headwater-spool")


@contextmanager
def ship_task_output(ds: Datastore, spec: TaskSpec) -> Iterator[None]:
    """fds 1 and 2 (and ``sys.stdout``/``sys.stderr``) into the task's spool files, shipped as they grow."""
    from ..store.logsink import spool_path
    from ..store.records import RecordStore
    from .launchers.base import StampedLines

    pump = _pump(ds)
    shipped = []
    saved = []
    py_streams = (sys.stdout, sys.stderr)
    for stream in py_streams:
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    for fd, stream in ((1, "stdout"), (2, "stderr")):
        key = RecordStore.log_key(spec.flow_name, spec.run_id, spec.step_name, spec.task_id, spec.attempt, stream)
        path = spool_path(spool_dir(), key)
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        saved.append(os.dup(fd))
        os.dup2(f, fd)
        os.close(f)
        pump.add(key, path)
        shipped.append((key, path))
    sys.stdout, sys.stderr = StampedLines(1), StampedLines(2)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = py_streams
        for fd, old in zip((1, 2), saved):
            os.dup2(old, fd)
            os.close(old)
        for key, _ in shipped:
            pump.finish(key, wait=True)  # stored before the task reports; the spool file is removed


def _restore_environ(saved: dict[str, str]) -> None:
    for k in [k for k in os.environ if k not in saved]:
        del os.environ[k]
    for k, v in saved.items():
        if os.environ.get(k) != v:
            os.environ[k] = v


# -- the entry point ------------------------------------------------------------------------

def _check_datastore(ds: Datastore, node: str) -> None:
    try:
        reachable = ds.exists()
    except Exception as e:  # any error of the store's client: say where it happened
        raise RemoteTaskError(f"Node {node} cannot reach the datastore {ds.root}: {e}",
                              hint="Give every node of the cluster access to the datastore (credentials, "
                                   "endpoint, or the same shared directory).") from None
    if not reachable:
        raise RemoteTaskError(f"Node {node} cannot reach the datastore {ds.root}: it does not exist there.",
                              hint="Use a datastore every node can reach: s3://bucket/prefix, or a directory "
                                   "shared by all nodes.")


def run_remote(spec_json: str, remaining: float | None, node: str, environment: str | None = None) -> RemoteOutcome:
    """Run one task attempt on this worker; ``node`` names the machine in error messages.

    Parameters
    ----------
    spec_json : str
        The TaskSpec as JSON, with the code package in its ``extra``.
    remaining : float, optional
        Seconds left until the attempt's ``@timeout`` deadline when it was launched.
    node : str
        How to name this node (address and id) in messages.
    environment : str, optional
        The step's ``environments.remote.RemoteEnvironment`` as JSON: the task runs in that
        environment, built on this node if it is not yet (``run_in_environment``).

    Returns
    -------
    RemoteOutcome
        The TaskResult, or why the task could not start (nothing committed).
    """
    received = time.monotonic()
    spec = TaskSpec.from_json(spec_json)
    deadline = received + remaining if remaining is not None else None
    spec = dataclasses.replace(spec, deadline=deadline, dedicated_process=False)
    try:
        ds = _datastore(spec.datastore_root, node)
        info = _package_info(spec)
        if environment is not None:
            return run_in_environment(ds, spec, info, environment, node)
        try:
            flow_cls, flow_module = load_flow(ds, spec, info)
        except HeadwaterException:
            raise
        except Exception as e:
            raise RemoteTaskError(f"Node {node} could not load the code of run {spec.flow_name}/{spec.run_id} "
                                  f"from the datastore {ds.root}: {type(e).__name__}: {e}") from None
    except HeadwaterException as e:
        return RemoteOutcome(None, e.details())
    from .launchers.base import TaskContext, run_task

    ctx = TaskContext(flow_cls, flow_cls._graph, spec.datastore_root, info["script"], decorators_attached=False)
    env = dict(os.environ)
    try:
        with ship_task_output(ds, spec), _as_main(flow_module):
            try:
                result: TaskResult = run_task(spec, ctx)
            except RunGoneError as e:  # the run died under the task: nothing committed, say why in its log
                sys.stderr.write(f"{e}\n")
                raise
            except BaseException:
                traceback.print_exc()
                raise
    except Exception as e:
        return RemoteOutcome(None, f"Task {spec.pathspec} failed on node {node} (datastore {spec.datastore_root}): "
                                   f"{type(e).__name__}: {e}")
    finally:
        _restore_environ(env)  # a step's @environment stays with its task
    return RemoteOutcome(result.to_json())


def run_in_environment(ds: Datastore, spec: TaskSpec, info: dict[str, Any], environment: str,
                       node: str) -> RemoteOutcome:
    """Run the attempt as ``python flow.py step --task-spec ...`` with the interpreter of the step's
    environment, built on this node first if it is not yet (``environments.remote.build_here``).

    The flow is not imported here: it may import what only its environment has. The child runs
    from the extracted code package with the headwater shim, writes its logs to this task's
    spool files (the same log contract as an in-process task) and its TaskResult to a file. It
    is this worker's for life (``die_with_parent``); it commits only while this worker lives
    (its ``run_owner``), and the worker dies with the run's Ray job.
    """
    from ..environments.prepare import METADATA_KEY
    from ..environments.remote import RemoteEnvironment, build_here, settings_with_index, shim_here
    from ..environments.shim import SHIM_ENV_VAR
    from ..package.stored import fetch_package
    from .launchers.subprocess import die_with_parent
    from .owner import process_token

    carried = RemoteEnvironment.from_json(environment)
    settings = settings_with_index(carried.index)
    with ship_task_output(ds, spec):  # the build's messages and the step's output are the task's log
        try:
            root = fetch_package(ds.content, info, add_to_path=False)
            step_env = build_here(ds.content, carried.lock_key, settings, where=f"node {node}")
            shim = shim_here(settings)
        except HeadwaterException as e:
            sys.stderr.write(e.render() + "\n")
            return RemoteOutcome(None, f"Node {node} could not prepare the environment of step "
                                       f"{spec.step_name!r}: {e.details()}")
        work = tempfile.mkdtemp(prefix="headwater-env-task-")
        try:
            child = dataclasses.replace(spec, dedicated_process=True, run_owner=process_token(),
                                        extra=spec.extra + ((METADATA_KEY, step_env.metadata()),))
            spec_path, result_path = os.path.join(work, "spec.json"), os.path.join(work, "result.json")
            with open(spec_path, "w") as f:
                f.write(child.to_json())
            cmd = [step_env.python, "-u", os.path.join(root, info["script"]), "--quiet",
                   "--datastore-root", spec.datastore_root, "step", spec.step_name,
                   "--task-spec", spec_path, "--result-file", result_path]
            env = dict(os.environ, PYTHONUNBUFFERED="1", **{SHIM_ENV_VAR: shim})
            sys.stdout.flush()
            sys.stderr.flush()
            code = subprocess.call(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                   preexec_fn=die_with_parent(), start_new_session=True)
            try:
                with open(result_path) as f:
                    return RemoteOutcome(f.read())
            except OSError:
                return RemoteOutcome(None, f"Task {spec.pathspec} on node {node}: its process in the environment "
                                           f"{step_env.lock_digest[:12]} ({step_env.python}) exited with code "
                                           f"{code} before it reported; its output is in the task's log.")
        finally:
            shutil.rmtree(work, ignore_errors=True)
