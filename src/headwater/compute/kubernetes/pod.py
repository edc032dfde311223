"""The pod-spec pieces of a step's ``@kubernetes`` options, as plain dicts (pure).

One definition for every object that runs a step in a pod: the batch/v1 Job of the Kubernetes
launcher (``job.py``) and the container templates of a compiled Argo WorkflowTemplate
(``headwater.compute.argo``). Each caller adds what is its own (the command, names, identity
labels, headwater's environment).
"""

from __future__ import annotations

from typing import Any, Sequence

from ...flow.kubernetes import KubernetesOptions, QosClass


def cpu_quantity(cpu: float) -> str:
    """A CPU count as a Kubernetes quantity (``"2"``, ``"500m"``)."""
    return str(int(cpu)) if float(cpu).is_integer() else f"{int(round(cpu * 1000))}m"


def resources(opts: KubernetesOptions) -> dict[str, dict[str, str]]:
    """The container's ``resources``: requests (cpu, memory in MB, disk as ephemeral storage),
    limits equal to them for the Guaranteed QoS class, a GPU as request and limit; empty for
    BestEffort without GPUs or extended resources."""
    requests = {"cpu": cpu_quantity(opts.cpu), "memory": f"{opts.memory}M", "ephemeral-storage": f"{opts.disk}M"}
    requests.update(opts.extended_resources)
    limits: dict[str, str] = {}
    if opts.qos is QosClass.GUARANTEED:
        limits = dict(requests)
    if opts.gpu:  # extended resources: a GPU request must equal its limit
        requests[opts.gpu_vendor.resource] = limits[opts.gpu_vendor.resource] = str(opts.gpu)
    if opts.qos is QosClass.BEST_EFFORT and not opts.gpu and not opts.extended_resources:
        return {}
    return {"requests": requests, **({"limits": limits} if limits else {})}


def volumes(opts: KubernetesOptions) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's volumes and the container's mounts: tmpfs, /dev/shm, persistent volume claims."""
    vols: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if opts.tmpfs_size:
        vols.append({"name": "tmpfs", "emptyDir": {"medium": "Memory", "sizeLimit": f"{opts.tmpfs_size}Mi"}})
        mounts.append({"name": "tmpfs", "mountPath": opts.tmpfs_path})
    if opts.shared_memory:
        vols.append({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{opts.shared_memory}Mi"}})
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    for i, (claim, path) in enumerate(sorted(opts.persistent_volume_claims.items())):
        vols.append({"name": f"pvc-{i}", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": f"pvc-{i}", "mountPath": path})
    return vols, mounts


def step_env(opts: KubernetesOptions) -> dict[str, str]:
    """The step's own environment variables: ``@environment``, and ``TMPDIR`` on the tmpfs."""
    env = dict(opts.env)
    if opts.tmpfs_size and opts.tmpfs_tempdir:
        env["TMPDIR"] = opts.tmpfs_path
    return env


def container_fields(opts: KubernetesOptions, *, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """The task container's fields ``opts`` decide (beside name, image, command and env):
    ``envFrom`` (``secrets``: configured ones, then the step's), ``imagePullPolicy``,
    ``resources``, ``volumeMounts``, ``ports`` and ``securityContext``."""
    out: dict[str, Any] = {}
    names = list(dict.fromkeys((*secrets, *opts.secrets)))
    if names:
        out["envFrom"] = [{"secretRef": {"name": s}} for s in names]
    if opts.image_pull_policy is not None:
        out["imagePullPolicy"] = opts.image_pull_policy.value
    res = resources(opts)
    if res:
        out["resources"] = res
    _, mounts = volumes(opts)
    if mounts:
        out["volumeMounts"] = mounts
    if opts.port is not None:
        out["ports"] = [{"containerPort": opts.port, "protocol": "TCP"}]
    if opts.security_context:
        out["securityContext"] = dict(opts.security_context)
    return out


def pod_fields(opts: KubernetesOptions, *, service_account: str | None = None) -> dict[str, Any]:
    """The pod's fields ``opts`` decide: ``serviceAccountName`` (the step's, else
    ``service_account``), ``imagePullSecrets``, ``nodeSelector``, ``tolerations``, ``volumes``."""
    out: dict[str, Any] = {}
    account = opts.service_account or service_account
    if account:
        out["serviceAccountName"] = account
    if opts.image_pull_secrets:
        out["imagePullSecrets"] = [{"name": s} for s in opts.image_pull_secrets]
    if opts.node_selector:
        out["nodeSelector"] = dict(opts.node_selector)
    if opts.tolerations:
        out["tolerations"] = [dict(t) for t in opts.tolerations]
    vols, _ = volumes(opts)
    if vols:
        out["volumes"] = vols
    return out
