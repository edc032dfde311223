"""The Ray launcher: each task attempt runs as one Ray task on a Ray cluster.

Selected for every step with ``HEADWATER_LAUNCHER=ray`` and for chosen steps with
``@ray_task`` (``routing.RoutingLauncher``). Imported lazily; ``ray`` is the
optional extra ``headwater[ray]``. The scheduler stays on the head; the worker
side is ``runtime.remote``: it fetches the run's code package from the shared
datastore and calls the same ``execute``. Ray never retries a task
(``max_retries=0``, ``retry_exceptions=False``): ``@retry`` and ``@catch`` decide,
as locally. ``@resources`` become Ray's resource requests, and Ray sets
``CUDA_VISIBLE_DEVICES`` for the GPUs it gives a task. A step with an environment
(``@pypi``, ``@conda``) runs on its node in that environment's interpreter, built there
from the run's stored lock once per node (``runtime.remote.run_in_environment``).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...exceptions import HeadwaterException, ResourcesError
from ..owner import register_owner_scheme
from ..remote import RemoteOutcome, remaining_seconds, run_remote, with_package
from ..taskspec import TaskResult, TaskSpec
from .admission import Admission, Env, Request
from .base import Finished, Launcher, TaskContext

#: Address used when neither HEADWATER_RAY_ADDRESS nor @ray_task(address=...) names one.
DEFAULT_ADDRESS = "auto"
_MB = 1024 * 1024
#: Seconds to wait for the cluster's GCS port to accept a connection.
CONNECT_TIMEOUT = 5.0
#: Seconds the cluster's node list is reused by admission before Ray is asked again.
NODES_TTL = 1.0
#: Returncode reported for a Ray task that was cancelled (killed) or whose worker or node died.
KILLED = -signal.SIGKILL


class RayClusterError(HeadwaterException):
    """Ray is not installed, or its cluster cannot be reached."""

    headline = "Ray cluster error"


def import_ray() -> Any:
    """The ``ray`` module, or a RayClusterError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayClusterError("Running tasks on Ray needs the `ray` package, which is not installed.",
                              hint="pip install 'headwater[ray]' (on the head and on every node).") from None
    return ray


def _unreachable(address: str) -> str | None:
    """Why the GCS at ``host:port`` cannot be reached (a TCP connect), or None.

    ``ray.init`` retries an unreachable address for minutes; this fails at once.
    ``auto`` and ``ray://`` addresses are left to Ray.
    """
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        return e.strerror or str(e)
    return None


def connect(address: str) -> Any:
    """Connect this process to the Ray cluster at ``address`` (once); returns ``ray``."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    why = _unreachable(address)
    if why is not None:
        raise RayClusterError(f"Cannot connect to the Ray cluster at {address!r}: {why}.",
                              hint="Start one with `ray start --head`, then set HEADWATER_RAY_ADDRESS to "
                                   "its address (host:port) or use @ray_task(address=...).")
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayClusterError(f"Cannot connect to the Ray cluster at {address!r}: {e}",
                              hint="Start one with `ray start --head`, then set HEADWATER_RAY_ADDRESS to "
                                   "its address (host:port) or use @ray_task(address=...).") from None
    return ray


def step_ray_options(flow_cls: type, step: str) -> dict[str, Any]:
    """Ray's resource options for a task of ``step``: from its ``@resources``, else one CPU.

    cpu -> ``num_cpus``, gpu -> ``num_gpus``, memory (MB, only when given) -> ``memory`` in bytes.
    """
    for deco in getattr(getattr(flow_cls, step, None), "decorators", ()):
        if deco.name != "resources":
            continue
        a = deco.validate().attributes
        opts: dict[str, Any] = {"num_cpus": float(a.get("cpu") or 0)}
        if a.get("gpu"):
            opts["num_gpus"] = float(a["gpu"])
        if "memory" in deco._given and a.get("memory"):
            opts["memory"] = int(float(a["memory"]) * _MB)
        return opts
    return {"num_cpus": 1.0}


_RESOURCE_OF = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}


def _describe(options: Mapping[str, Any]) -> str:
    parts = [f"cpu={options.get('num_cpus', 0):g}"]
    if options.get("num_gpus"):
        parts.append(f"gpu={options['num_gpus']:g}")
    if options.get("memory"):
        parts.append(f"memory={options['memory'] / _MB:g} MB")
    return "@resources(" + ", ".join(parts) + ")"


def _node_text(resources: Mapping[str, float]) -> str:
    mem = resources.get("memory", 0) / _MB
    return f"{resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs, {mem:.0f} MB"


class RayAdmission(Admission):
    """Admits every task Ray could ever place; refuses at once one that no node can hold.

    Ray queues what does not fit now; a request larger than every node would stay
    pending forever, so ``check`` fails the step with the cluster's totals instead.
    Asked before every launch, against the live nodes (refreshed every ``NODES_TTL``
    seconds), so a request only a dead node could hold fails too. A ``@parallel``
    gang's tasks need not share a node: each is checked alone.
    """

    def __init__(self, launcher: RayLauncher) -> None:
        self._launcher = launcher

    def check(self, step: str, request: Request, count: int = 1) -> None:
        options = self._launcher.options(step)
        nodes = self._launcher.node_resources()
        need = {_RESOURCE_OF[k]: float(v) for k, v in options.items() if k in _RESOURCE_OF and v}
        if any(all(res.get(r, 0.0) >= amount for r, amount in need.items()) for res in nodes):
            return
        listing = "; ".join(_node_text(res) for res in nodes) or "no live nodes"
        raise ResourcesError(
            f"Step {step!r} asks for {_describe(options)} but no node of the Ray cluster can hold it "
            f"(nodes: {listing}).",
            hint="Lower the request, or add a node that has it to the cluster.")

    def admit(self, tasks: Sequence[tuple[str, Request]]) -> list[Env] | None:
        return [() for _ in tasks]


#: Owner tokens of Ray tasks: ``ray-job:<hex job id>`` of the driver (the run process).
OWNER_SCHEME = "ray-job"
#: Seconds a task waits for the GCS to say whether its run's job lives, before it commits.
OWNER_CHECK_TIMEOUT = 10


def job_alive(job_hex: str) -> bool:
    """Whether the Ray job (the run process's driver) ``job_hex`` is still alive, asked of the GCS.

    Asks the GCS for that one job (the worker's GCS client; an internal Ray API). If
    the question cannot be asked, it answers True: the commit is then guarded by
    Ray's fate sharing alone (a dead driver's workers are killed).
    """
    try:
        import ray

        gcs = ray._private.worker.global_worker.gcs_client
        jobs = gcs.get_all_job_info(job_or_submission_id=job_hex, skip_submission_job_info_field=True,
                                    skip_is_running_tasks_field=True, timeout=OWNER_CHECK_TIMEOUT)
    except Exception:
        return True
    return not any(info.is_dead for info in jobs.values())


register_owner_scheme(OWNER_SCHEME, job_alive)


def _ray_task_entry(spec_json: str, remaining: float | None, environment: str | None = None) -> RemoteOutcome:
    """What a Ray worker runs for one attempt (ray is initialised here: user code may use it).
    ``environment``: the step's ``RemoteEnvironment`` as JSON, for a step with an environment."""
    import ray

    ctx = ray.get_runtime_context()
    node = f"{ray.util.get_node_ip_address()} (Ray node {ctx.get_node_id()[:12]})"
    return run_remote(spec_json, remaining, node, environment)


class RayLauncher(Launcher):
    """Runs each attempt as a Ray task; polls with ``ray.wait``, kills with ``ray.cancel(force=True)``.

    Parameters
    ----------
    ctx : TaskContext
        The run's flow, graph and datastore root (the root must be reachable from every node).
    address : str, optional
        The cluster (``HEADWATER_RAY_ADDRESS``, else ``@ray_task(address=...)``, else ``"auto"``).
    """

    name = "ray"
    ships_logs = True
    remote = True

    def __init__(self, ctx: TaskContext, address: str | None = None) -> None:
        super().__init__(ctx)
        self.address = ctx.ray_address or address or DEFAULT_ADDRESS
        self.admission = RayAdmission(self)
        self._ray: Any = None
        self._fn: Any = None
        self._package: dict[str, Any] | None = None
        self._running: dict[str, tuple[Any, int]] = {}  # task key -> (object ref, attempt)
        self._keys: dict[Any, str] = {}  # object ref -> task key
        self._options: dict[str, dict[str, Any]] = {}
        self._owner: str | None = None
        self._nodes: tuple[float, list[dict[str, float]]] | None = None  # (when asked, live nodes' resources)
        self._envs: Any = None  # environments.remote.RemoteEnvironments, once a step with one launches
        self._content: Any = None

    def start(self) -> None:
        self._ray = connect(self.address)
        self._fn = self._ray.remote(_ray_task_entry)
        self._owner = f"{OWNER_SCHEME}:{self._ray.get_runtime_context().get_job_id()}"

    def use_code_package(self, info: Mapping[str, Any]) -> None:
        self._package = dict(info)

    def options(self, step: str) -> dict[str, Any]:
        opts = self._options.get(step)
        if opts is None:
            opts = self._options[step] = step_ray_options(self.ctx.flow_cls, step)
        return opts

    def node_resources(self) -> list[dict[str, float]]:
        """Total resources of each live node of the cluster (asked at most every ``NODES_TTL`` s)."""
        now = time.monotonic()
        if self._nodes is None or now - self._nodes[0] > NODES_TTL:
            if self._ray is None:
                self.start()
            self._nodes = (now, [dict(n.get("Resources") or {}) for n in self._ray.nodes() if n.get("Alive")])
        return self._nodes[1]

    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        if self._package is None:
            raise RayClusterError("The run stored no code package for its Ray tasks.")
        remaining = remaining_seconds(spec)
        # The task commits only while this run's Ray job lives (runtime.owner).
        carried = with_package(dataclasses.replace(spec, run_owner=self._owner), self._package).to_json()
        opts = dict(self.options(spec.step_name), max_retries=0, retry_exceptions=False,
                    name=f"{spec.pathspec}/{spec.attempt}")
        ref = self._fn.options(**opts).remote(carried, remaining, self._environment(spec))
        self._running[spec.key] = (ref, spec.attempt)
        self._keys[ref] = spec.key
        return -1

    def _environment(self, spec: TaskSpec) -> str | None:
        """The ``RemoteEnvironment`` (JSON) of ``step``'s tasks, None for a step without one: the node
        builds the environment from the lock stored in the datastore (``environments.remote``)."""
        step = spec.step_name
        prepared = self.ctx.environments
        if prepared is None or step not in prepared.steps:
            return None
        if self._envs is None:
            from ...environments.remote import RemoteEnvironments
            from ...store import Datastore

            settings = self.ctx.settings
            if settings is None:
                from ...config import load_settings

                settings = load_settings()
            self._envs = RemoteEnvironments.of_run(prepared, settings)
            self._content = Datastore(self.ctx.datastore_root).content
        # The lock blob is pinned as the run's (kept until it ends), not anonymously.
        remote = self._envs.for_step(step, self._content.for_run(spec.flow_name, spec.run_id))
        return remote.to_json() if remote is not None else None

    def poll(self, timeout: float) -> list[Finished]:
        if not self._running:
            time.sleep(timeout)
            return []
        refs = list(self._keys)
        ready, rest = self._ray.wait(refs, num_returns=1, timeout=timeout, fetch_local=True)
        if ready and rest:
            more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0, fetch_local=True)
            ready += more
        return [self._collect(ref) for ref in ready]

    def _collect(self, ref: Any) -> Finished:
        key = self._keys.pop(ref)
        _, attempt = self._running.pop(key)
        ray = self._ray
        try:
            outcome: RemoteOutcome = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return Finished(key, attempt, None, KILLED)
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.OwnerDiedError, ray.exceptions.ObjectLostError) as e:
            why = type(e).__name__
            return Finished(key, attempt, None, KILLED,
                            message=f"The Ray worker or node running the task died ({why}) before it reported back.")
        except ray.exceptions.RayError as e:
            return Finished(key, attempt, None, 1, message=f"Ray could not run the task: {type(e).__name__}: {e}")
        if outcome.result_json is None:
            return Finished(key, attempt, None, 1, message=outcome.error)
        result = TaskResult.from_json(outcome.result_json)
        return Finished(key, attempt, result, 0 if result.ok else 1)

    def kill(self, task_key: str) -> None:
        entry = self._running.get(task_key)
        if entry is not None:
            try:
                self._ray.cancel(entry[0], force=True)
            except Exception:  # already finished, or its worker is gone: poll reports it
                pass

    def shutdown(self) -> None:
        for key in list(self._running):
            self.kill(key)
        self._running.clear()
        self._keys.clear()


def launcher_for_steps(ctx: TaskContext, decorators: Mapping[str, Any]) -> RayLauncher:
    """The Ray launcher of a run whose ``decorators`` (``@ray_task`` by step) go to Ray (``routing.BACKENDS``):
    the cluster is the first ``address`` one of them names, unless HEADWATER_RAY_ADDRESS is set."""
    address = next((d.attributes.get("address") for d in decorators.values() if d.attributes.get("address")), None)
    return RayLauncher(ctx, address)
