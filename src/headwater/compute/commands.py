"""The container command every compute backend and orchestrator compiler runs (internal):
fetch the run's code package, then run the flow file's CLI with the given arguments
(``headwater.runtime.bootstrap``). One definition for Kubernetes Jobs and Argo templates."""

from __future__ import annotations

import platform

from ..config import DatastoreKind
from ..store.roots import is_local_root

#: The image of a task's container when neither ``@kubernetes(image=)``, ``--image`` nor
#: HEADWATER_KUBERNETES_CONTAINER_IMAGE names one: the official image of this Python.
DEFAULT_IMAGE = "python:{}.{}".format(*platform.python_version_tuple()[:2])

#: The module a container runs first (fetches the code package, then runs the flow's CLI).
BOOTSTRAP_MODULE = "headwater.runtime.bootstrap"


def bootstrap_command(datastore_root: str, package_key: str, flow_file: str, args: list[str], *,
                      python: str = "python", environment_lock: str | None = None) -> list[str]:
    """The container command: fetch the code package ``package_key``, then run ``flow_file`` with
    ``args`` (the flow CLI's arguments, without the file name). With ``environment_lock`` (the
    content key of a stored lock, ``environments.remote.store_lock``) the container builds that
    environment first and runs the flow file with its interpreter."""
    env = ["--environment-lock", environment_lock] if environment_lock else []
    return [python, "-m", BOOTSTRAP_MODULE, "--datastore-root", datastore_root, "--package-key", package_key,
            "--flow-file", flow_file, *env, "--", *args]


def datastore_args(datastore_root: str) -> list[str]:
    """The flow CLI's top-level options that point a task at ``datastore_root``
    (``--datastore=s3 --datastore-root s3://...``)."""
    kind = DatastoreKind.LOCAL if is_local_root(datastore_root) else DatastoreKind.S3
    return [f"--datastore={kind.value}", "--datastore-root", datastore_root]
