"""The batch/v1 Job for one task attempt, as plain dicts (pure: no client, no cluster).

Every decision is made here from three inputs: the task (``JobTask``), the
step's validated ``KubernetesOptions`` and ``Settings`` (the configured
namespace, service account, image, secrets, datastore and S3 endpoint).
headwater retries a failed attempt itself, so a Job never retries
(``backoffLimit: 0``, ``restartPolicy: Never``); each attempt is its own Job
with its own deterministic name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...config import Settings
from ...environments.remote import RemoteEnvironment
from ...flow.kubernetes import KubernetesOptions
from ...store.taskmeta import PARAMETERS_STEP
from ..commands import DEFAULT_IMAGE, bootstrap_command
from .commands import StepInvocation, init_args, step_args
from .names import dns_label, label_value
from .pod import container_fields, pod_fields, step_env

#: The container's working directory (the bootstrap extracts the code package under its cache).
WORKDIR = "/headwater"
#: The task container's name.
CONTAINER = "task"
#: A finished Job (and its pod, for its logs) is kept this long before Kubernetes deletes it.
TTL_AFTER_FINISHED = 7 * 24 * 3600
#: Prefix of headwater's own labels and annotations.
LABEL_PREFIX = "headwater.dev/"
#: headwater's labels on every Job and pod (values made valid label values; exact values in annotations).
LABEL_KEYS = ("flow", "run", "step", "task", "attempt")


@dataclass(frozen=True, slots=True)
class JobTask:
    """What the Job runs: one attempt of one task, and its container command (``commands``)."""

    flow_name: str
    run_id: str
    step: str
    task_id: str
    attempt: int
    command: tuple[str, ...]
    user: str | None = None
    env: tuple[tuple[str, str], ...] = ()  # more environment variables of the container


def job_name(task: JobTask) -> str:
    """The Job's name: a DNS label, the same for the same attempt, different for any other."""
    return dns_label(task.flow_name, task.step, task.run_id, task.task_id, str(task.attempt))


def _identity(task: JobTask) -> dict[str, str]:
    return dict(zip(LABEL_KEYS, (task.flow_name, task.run_id, task.step, task.task_id, str(task.attempt))))


def _env(task: JobTask, opts: KubernetesOptions, settings: Settings) -> list[dict[str, Any]]:
    env = step_env(opts)
    env["HEADWATER_DATASTORE_ROOT"] = settings.datastore_root
    for key, value in (("HEADWATER_USER", task.user or settings.user),
                       ("HEADWATER_S3_ENDPOINT_URL", settings.s3_endpoint_url),
                       ("HEADWATER_S3_REGION", settings.s3_region)):
        if value:
            env[key] = value
    env.update(task.env)
    env["PYTHONUNBUFFERED"] = "1"
    out: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in env.items()]
    for name, path in (("HEADWATER_KUBERNETES_POD_NAME", "metadata.name"),
                       ("HEADWATER_KUBERNETES_POD_NAMESPACE", "metadata.namespace"),
                       ("HEADWATER_KUBERNETES_NODE_NAME", "spec.nodeName")):
        out.append({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
    return out


def build_job(task: JobTask, opts: KubernetesOptions, settings: Settings) -> dict[str, Any]:
    """The batch/v1 Job that runs ``task`` with the pod ``opts`` describes.

    Parameters
    ----------
    task : JobTask
        The attempt and its container command.
    opts : KubernetesOptions
        The step's validated ``@kubernetes`` (``headwater.flow.kubernetes.kubernetes_options``).
    settings : Settings
        Configured defaults (``HEADWATER_KUBERNETES_*``) and the datastore the pod writes to.

    Returns
    -------
    dict
        The Job manifest, ready for ``BatchV1Api.create_namespaced_job`` or ``kubectl apply``.
    """
    identity = _identity(task)
    labels = {**opts.labels, "app.kubernetes.io/name": "headwater", "app.kubernetes.io/component": "task",
              **{LABEL_PREFIX + k: label_value(v) for k, v in identity.items()}}
    annotations = {**opts.annotations, **{LABEL_PREFIX + k: v for k, v in identity.items()}}
    if task.user:
        labels[LABEL_PREFIX + "user"] = label_value(task.user)
        annotations[LABEL_PREFIX + "user"] = task.user
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": opts.image or settings.kubernetes_container_image or DEFAULT_IMAGE,
        "command": list(task.command),
        "workingDir": WORKDIR,
        "env": _env(task, opts, settings),
        **container_fields(opts, secrets=settings.kubernetes_secrets),
    }
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container],
                                **pod_fields(opts, service_account=settings.kubernetes_service_account)}
    meta = {"labels": labels, "annotations": annotations}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(task), "namespace": opts.namespace or settings.kubernetes_namespace, **meta},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": opts.run_time_limit,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {"metadata": meta, "spec": pod_spec},
        },
    }




def step_job(settings: Settings, opts: KubernetesOptions, inv: StepInvocation, *, flow_name: str,
             flow_file: str, package_key: str, user: str | None = None,
             environment: RemoteEnvironment | None = None) -> dict[str, Any]:
    """The Job for one attempt of a step's task: ``bootstrap_command`` + ``step_args`` against the
    configured datastore (the same root in the command and in the pod's environment). A step with
    an ``environment`` (``@pypi``, ``@conda``) gets its stored lock's key in the command (the pod
    builds it) and the package sources it was resolved against in the pod's environment."""
    root = settings.datastore_root
    lock = environment.lock_key if environment is not None else None
    command = bootstrap_command(root, package_key, flow_file, step_args(root, inv), environment_lock=lock)
    extra_env = tuple(sorted(environment.index.items())) if environment is not None else ()
    task = JobTask(flow_name, inv.run_id, inv.step, inv.task_id, inv.retry_count, tuple(command), user, extra_env)
    return build_job(task, opts, settings)


def init_job(settings: Settings, opts: KubernetesOptions, *, flow_name: str, flow_file: str, package_key: str,
             run_id: str, task_id: str, tags: tuple[str, ...] = (), parameters: dict[str, Any] | None = None,
             user: str | None = None) -> dict[str, Any]:
    """The Job that writes the run record and the ``_parameters`` task (``init``, create-only)."""
    root = settings.datastore_root
    args = init_args(root, run_id=run_id, task_id=task_id, tags=tags, parameters=parameters)
    command = bootstrap_command(root, package_key, flow_file, args)
    task = JobTask(flow_name, run_id, PARAMETERS_STEP, task_id, 0, tuple(command), user)
    return build_job(task, opts, settings)
