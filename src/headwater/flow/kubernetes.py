"""``@kubernetes``: what a step's pod needs on a Kubernetes cluster (authoring layer).

The decorator holds Metaflow's attributes with Metaflow's defaults.
``kubernetes_options`` turns a step's decorators into one validated
``KubernetesOptions`` (``@resources`` merged by max, ``@timeout`` as the pod's
deadline), naming the step and the attribute when a value is wrong. The Job
itself is built by ``headwater.compute.kubernetes.job``; configuration defaults
(namespace, service account, image, secrets) are applied there from ``Settings``.

Run locally (the fork or subprocess launcher), a ``@kubernetes`` step runs on
this machine: the decorator describes a pod, it does not choose a launcher.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from .decorators import InvalidDecoratorAttribute, StepDecorator, _make

#: The decorator's name (``@kubernetes``, ``--with kubernetes``).
KUBERNETES = "kubernetes"
#: A task with no ``@timeout`` may run this long on Kubernetes (Metaflow's default: 5 days).
DEFAULT_RUN_TIME_LIMIT = 5 * 24 * 3600
#: Metaflow refuses a shorter ``@timeout`` for a Kubernetes step (pods need time to start).
MIN_RUN_TIME_LIMIT = 60


class GpuVendor(str, enum.Enum):
    """GPU vendors, each with the extended resource name its device plugin registers."""

    NVIDIA = "nvidia"
    AMD = "amd"

    @property
    def resource(self) -> str:
        return f"{self.value}.com/gpu"


class QosClass(str, enum.Enum):
    """Pod quality-of-service classes (Metaflow's ``qos``): Guaranteed sets limits equal to requests."""

    GUARANTEED = "Guaranteed"
    BURSTABLE = "Burstable"
    BEST_EFFORT = "BestEffort"


class ImagePullPolicy(str, enum.Enum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


#: Toleration keys Kubernetes accepts (a typo is reported, not sent to the cluster).
TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
#: ``security_context`` keys (Metaflow's snake_case) and the container field each sets.
SECURITY_CONTEXT_KEYS = {"privileged": "privileged", "allow_privilege_escalation": "allowPrivilegeEscalation",
                         "run_as_user": "runAsUser", "run_as_group": "runAsGroup",
                         "run_as_non_root": "runAsNonRoot"}
_ABS_PATH = re.compile(r"^/[^\0]*$")
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
#: A label key (optional DNS prefix, then a name) and a label value, as Kubernetes accepts them.
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")


class KubernetesDecorator(StepDecorator):
    """Describe the Kubernetes pod that runs this step's tasks.

    Parameters
    ----------
    cpu, memory, disk : number, default 1, 4096, 10240
        CPUs, memory (MB) and ephemeral disk (MB); ``@resources`` values are merged by max.
    gpu : int, optional
        GPUs (0 = none); ``gpu_vendor`` (``"nvidia"`` or ``"amd"``) picks the resource name.
    image, image_pull_policy, image_pull_secrets : optional
        The container image (default ``HEADWATER_KUBERNETES_CONTAINER_IMAGE``, else
        ``python:<this Python's major.minor>``), its pull policy and pull secrets.
    service_account, namespace, secrets : optional
        Added to (secrets) or overriding the ``HEADWATER_KUBERNETES_*`` configuration.
    node_selector : dict or ``"k=v,k2=v2"``, optional
    tolerations : list of dict, optional
    labels, annotations : dict, optional
        Added to the Job and its pod (headwater's own labels win).
    persistent_volume_claims : dict, optional
        ``{claim name: mount path}``.
    use_tmpfs, tmpfs_size, tmpfs_path, tmpfs_tempdir : optional
        A memory-backed volume at ``tmpfs_path`` (``tmpfs_size`` MiB, default half the
        memory); ``tmpfs_tempdir`` points ``TMPDIR`` at it.
    shared_memory : int, optional
        Size of ``/dev/shm`` in MiB.
    port : int, optional
        A container port to declare.
    compute_pool : str, optional
        Adds the node selector ``outerbounds.co/compute-pool=<pool>`` (as Metaflow does).
    qos : str, default "Burstable"
    extended_resources : dict, optional
        More resources to request (``{"example.com/fpga": "1"}``).
    security_context : dict, optional
        ``privileged``, ``allow_privilege_escalation``, ``run_as_user``, ``run_as_group``,
        ``run_as_non_root``.
    """

    name = KUBERNETES
    defaults: dict[str, Any] = {
        "cpu": "1", "memory": "4096", "disk": "10240", "image": None, "image_pull_policy": None,
        "image_pull_secrets": None, "service_account": None, "secrets": None, "node_selector": None,
        "namespace": None, "gpu": None, "gpu_vendor": None, "tolerations": None, "labels": None,
        "annotations": None, "use_tmpfs": None, "tmpfs_tempdir": True, "tmpfs_size": None,
        "tmpfs_path": "/metaflow_temp", "persistent_volume_claims": None, "shared_memory": None,
        "port": None, "compute_pool": None, "executable": None, "hostname_resolution_timeout": 600,
        "qos": "Burstable", "extended_resources": {}, "security_context": None,
    }

    def step_init(self, flow: Any, graph: Any, step_name: str, decorators: list[StepDecorator],
                  environment: Any, flow_datastore: Any, logger: Any) -> None:
        """Validate before the run starts, naming the step (see ``kubernetes_options``)."""
        kubernetes_options(step_name, decorators)


@dataclass(frozen=True, slots=True)
class KubernetesOptions:
    """A step's validated pod request; ``None`` means "use the configured default"."""

    cpu: float = 1.0
    memory: int = 4096  # MB
    disk: int = 10240  # MB
    gpu: int | None = None
    gpu_vendor: GpuVendor = GpuVendor.NVIDIA
    image: str | None = None
    image_pull_policy: ImagePullPolicy | None = None
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str | None = None
    namespace: str | None = None
    secrets: tuple[str, ...] = ()
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    persistent_volume_claims: dict[str, str] = field(default_factory=dict)
    tmpfs_size: int | None = None  # MiB; None = no tmpfs volume
    tmpfs_path: str = "/metaflow_temp"
    tmpfs_tempdir: bool = True
    shared_memory: int | None = None  # MiB
    port: int | None = None
    qos: QosClass = QosClass.BURSTABLE
    extended_resources: dict[str, str] = field(default_factory=dict)
    security_context: dict[str, Any] = field(default_factory=dict)
    run_time_limit: int = DEFAULT_RUN_TIME_LIMIT  # seconds (@timeout)
    env: dict[str, str] = field(default_factory=dict)  # @environment


class _Checker:
    """Raises ``InvalidDecoratorAttribute`` naming the step and the attribute."""

    def __init__(self, step: str) -> None:
        self.step = step

    def fail(self, attr: str, value: Any, why: str, hint: str | None = None) -> InvalidDecoratorAttribute:
        return InvalidDecoratorAttribute(f"Step {self.step!r}: @kubernetes({attr}={value!r}): {why}", hint=hint)

    def number(self, attr: str, value: Any, *, integer: bool = False, positive: bool = True) -> float:
        try:
            num = float(value)
            ok = math.isfinite(num) and not isinstance(value, bool)
        except (TypeError, ValueError):
            ok = False
        if not ok or (integer and not num.is_integer()):
            raise self.fail(attr, value, f"{attr} must be {'an integer' if integer else 'a number'}.")
        if (positive and num <= 0) or num < 0:
            raise self.fail(attr, value, f"{attr} must be {'greater than 0' if positive else 'at least 0'}.")
        return num

    def strings(self, attr: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [s.strip() for s in value.split(",") if s.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) and s for s in value):
            raise self.fail(attr, value, f"{attr} must be a list of names.", hint=f'e.g. {attr}=["name-1"]')
        return tuple(value)

    def mapping(self, attr: str, value: Any, *, parse_string: bool = False) -> dict[str, str]:
        if value is None:
            return {}
        if isinstance(value, str) and parse_string:
            out: dict[str, str] = {}
            for item in filter(None, (s.strip() for s in value.split(","))):
                key, eq, val = item.partition("=")
                if not eq or not key.strip():
                    raise self.fail(attr, value, f"expected key=value pairs separated by commas, got {item!r}.")
                out[key.strip()] = val.strip()
            return out
        if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
            raise self.fail(attr, value, f"{attr} must be a dict of names to values.")
        return {k: str(v) for k, v in value.items()}


def kubernetes_options(step: str, decorators: Iterable[StepDecorator]) -> KubernetesOptions:
    """The validated ``KubernetesOptions`` of a step from its decorators.

    ``@resources`` merges into cpu, memory and disk by max and sets gpu and
    shared_memory when it gives them (Metaflow's rule); ``@timeout`` becomes the
    run time limit; ``@environment`` the container's extra variables.

    Raises
    ------
    InvalidDecoratorAttribute
        A value is of the wrong type or out of range; the message names the step and attribute.
    """
    by_name = {d.name: d.validate() for d in decorators}
    deco = by_name.get(KUBERNETES)
    a = dict(deco.attributes if deco is not None else KubernetesDecorator.defaults)
    c = _Checker(step)
    cpu = c.number("cpu", a["cpu"])
    memory = c.number("memory", a["memory"])
    disk = c.number("disk", a["disk"])
    gpu = None if a["gpu"] is None else int(c.number("gpu", a["gpu"], integer=True, positive=False))
    shared_memory = a["shared_memory"]
    res = by_name.get("resources")
    if res is not None:
        r = res.attributes
        cpu = max(cpu, float(r.get("cpu") or 0))
        memory = max(memory, float(r.get("memory") or 0))
        if r.get("disk") is not None:
            disk = max(disk, c.number("disk", r["disk"]))
        if r.get("gpu") is not None:
            gpu = int(c.number("gpu", r["gpu"], integer=True, positive=False))
        if r.get("shared_memory") is not None:
            shared_memory = r["shared_memory"]
    try:
        vendor = GpuVendor(str(a["gpu_vendor"] or "nvidia").lower())
    except ValueError:
        raise c.fail("gpu_vendor", a["gpu_vendor"], "this GPU vendor is not supported.",
                     hint="Use gpu_vendor=\"nvidia\" or gpu_vendor=\"amd\".") from None
    qos = _enum(c, "qos", a["qos"] or "Burstable", QosClass)
    pull = None if a["image_pull_policy"] is None else _enum(c, "image_pull_policy", a["image_pull_policy"],
                                                                ImagePullPolicy)
    node_selector = c.mapping("node_selector", a["node_selector"], parse_string=True)
    if a["compute_pool"]:
        node_selector["outerbounds.co/compute-pool"] = str(a["compute_pool"])
    tolerations = a["tolerations"] or []
    if not isinstance(tolerations, (list, tuple)) or not all(isinstance(t, dict) for t in tolerations):
        raise c.fail("tolerations", tolerations, "tolerations must be a list of dicts.",
                     hint='e.g. tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]')
    for t in tolerations:
        bad = sorted(set(t) - TOLERATION_KEYS)
        if bad:
            raise c.fail("tolerations", tolerations, f"unknown toleration key(s) {', '.join(bad)}.",
                         hint=f"A toleration has the keys {', '.join(sorted(TOLERATION_KEYS))}.")
    labels = c.mapping("labels", a["labels"])
    for key, value in labels.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
            raise c.fail("labels", labels, f"{key}={value!r} is not a valid Kubernetes label.",
                         hint="Label names and values: up to 63 letters, digits, '-', '_' or '.', starting and "
                              "ending with a letter or digit (a key may have a DNS prefix and '/').")
    pvcs = c.mapping("persistent_volume_claims", a["persistent_volume_claims"])
    for claim, path in pvcs.items():
        if not _ABS_PATH.match(path):
            raise c.fail("persistent_volume_claims", pvcs, f"the mount path of {claim!r} must be absolute.")
    tmpfs_path = str(a["tmpfs_path"] or "/metaflow_temp")
    if not _ABS_PATH.match(tmpfs_path):
        raise c.fail("tmpfs_path", tmpfs_path, "tmpfs_path must be an absolute path.")
    tmpfs_size = None
    if a["use_tmpfs"] or a["tmpfs_size"]:
        tmpfs_size = int(c.number("tmpfs_size", a["tmpfs_size"], integer=True)) if a["tmpfs_size"] \
            else int(memory) // 2
    if shared_memory is not None:
        shared_memory = int(c.number("shared_memory", shared_memory, integer=True))
    port = None
    if a["port"] is not None:
        port = int(c.number("port", a["port"], integer=True))
        if port > 65535:
            raise c.fail("port", a["port"], "port must be between 1 and 65535.")
    security = a["security_context"] or {}
    if not isinstance(security, dict) or set(security) - set(SECURITY_CONTEXT_KEYS):
        raise c.fail("security_context", security, "unknown security_context key(s).",
                     hint=f"Keys: {', '.join(SECURITY_CONTEXT_KEYS)}.")
    extended = c.mapping("extended_resources", a["extended_resources"])
    limit = DEFAULT_RUN_TIME_LIMIT
    if "timeout" in by_name:
        limit = int(math.ceil(by_name["timeout"].total_seconds))  # type: ignore[attr-defined]
        if limit < MIN_RUN_TIME_LIMIT:
            raise InvalidDecoratorAttribute(
                f"Step {step!r}: @timeout of {limit} s is too short for @kubernetes.",
                hint=f"Give a Kubernetes step a @timeout of at least {MIN_RUN_TIME_LIMIT} seconds.")
    for attr in ("image", "service_account", "namespace"):
        if a[attr] is not None and (not isinstance(a[attr], str) or not a[attr].strip()):
            raise c.fail(attr, a[attr], f"{attr} must be a non-empty string.")
    env = dict(by_name["environment"].attributes["vars"]) if "environment" in by_name else {}
    return KubernetesOptions(
        cpu=cpu, memory=int(math.ceil(memory)), disk=int(math.ceil(disk)), gpu=gpu, gpu_vendor=vendor,
        image=a["image"], image_pull_policy=pull,
        image_pull_secrets=c.strings("image_pull_secrets", a["image_pull_secrets"]),
        service_account=a["service_account"], namespace=a["namespace"],
        secrets=c.strings("secrets", a["secrets"]), node_selector=node_selector,
        tolerations=tuple(dict(t) for t in tolerations), labels=labels,
        annotations=c.mapping("annotations", a["annotations"]), persistent_volume_claims=pvcs,
        tmpfs_size=tmpfs_size, tmpfs_path=tmpfs_path, tmpfs_tempdir=bool(a["tmpfs_tempdir"]),
        shared_memory=shared_memory, port=port, qos=qos, extended_resources=extended,
        security_context={SECURITY_CONTEXT_KEYS[k]: v for k, v in security.items() if v is not None},
        run_time_limit=limit, env=env,
    )


def _enum(c: _Checker, attr: str, value: Any, kind: type[enum.Enum]) -> Any:
    for member in kind:
        if str(value).lower() == member.value.lower():
            return member
    raise c.fail(attr, value, f"{attr} must be one of {', '.join(m.value for m in kind)}.")


def kubernetes_steps(flow_cls: type, steps: Iterable[str]) -> dict[str, KubernetesOptions]:
    """The steps of ``flow_cls`` marked ``@kubernetes`` (after ``--with``), each with its options."""
    out: dict[str, KubernetesOptions] = {}
    for name in steps:
        decos = list(getattr(getattr(flow_cls, name, None), "decorators", ()))
        if any(d.name == KUBERNETES for d in decos):
            out[name] = kubernetes_options(name, decos)
    return out


kubernetes = _make(KubernetesDecorator)

__all__ = ["KUBERNETES", "GpuVendor", "ImagePullPolicy", "KubernetesDecorator", "KubernetesOptions", "QosClass",
           "kubernetes", "kubernetes_options", "kubernetes_steps"]
