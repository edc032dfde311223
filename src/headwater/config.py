"""One settings object, read once: ``HEADWATER_*`` env vars, then
``$HEADWATER_HOME/config.json`` (default ``~/.headwater``), then defaults.

Nothing else in headwater reads ``os.environ`` for configuration; code receives
a ``Settings`` and passes it down.
"""

from __future__ import annotations

import enum
import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from .exceptions import HeadwaterException, UnknownUserError

STORE_DIRNAME = ".headwater"

#: Conda channels used when neither ``@conda(channels=...)`` nor HEADWATER_CONDA_CHANNELS names any.
DEFAULT_CONDA_CHANNELS: tuple[str, ...] = ("conda-forge",)


def find_datastore_root(start: str | os.PathLike[str] | None = None) -> str:
    """The nearest ``.headwater/`` directory upward from ``start`` (default: cwd),
    else ``<start>/.headwater`` (not created here)."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        cand = d / STORE_DIRNAME
        if cand.is_dir():
            return str(cand)
    return str(here / STORE_DIRNAME)


class DatastoreKind(str, enum.Enum):
    """The datastore types ``--datastore`` names (Metaflow's spelling). The root URL is what
    chooses the object store; the kind only says which root to use when none is given."""

    LOCAL = "local"
    S3 = "s3"


class DatastoreConfigError(HeadwaterException):
    """``--datastore`` / ``HEADWATER_DATASTORE`` and the datastore root disagree, or no root is
    configured for the chosen datastore."""

    headline = "Datastore not configured"


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of headwater, resolved once per process."""

    datastore_root: str
    user: str | None
    #: Set in the tasks of a production deployment (HEADWATER_PRODUCTION_TOKEN): runs and tasks then
    #: belong to the namespace ``production:<token>`` instead of ``user:<name>`` (Metaflow's identity).
    production_token: str | None = None
    launcher: str = "fork"  # "fork" | "subprocess"
    metadata: str = "local"  # the metadata provider: "local" (SQLite index) or a plugin's name
    max_workers: int = 16
    max_num_splits: int = 100
    home: str = field(default_factory=lambda: str(Path.home() / STORE_DIRNAME))
    #: The datastore type asked for (HEADWATER_DATASTORE), if any; see ``with_datastore``.
    datastore: DatastoreKind | None = None
    #: The root used for ``--datastore=s3`` when HEADWATER_DATASTORE_ROOT is not an S3 URL.
    datastore_sysroot_s3: str | None = None
    #: S3-compatible endpoint (MinIO, R2, a test server); None = AWS.
    s3_endpoint_url: str | None = None
    #: Region for S3 requests when the usual AWS sources name none.
    s3_region: str | None = None
    #: How many times a transient S3 error (throttling, 5xx, reset) is retried with backoff.
    s3_retries: int = 7
    #: How many S3 requests bulk operations keep in flight.
    s3_workers: int = 16
    #: Size bound of the local read cache of S3 objects (``$HEADWATER_HOME/cache/s3``), in bytes.
    s3_cache_bytes: int = 10 << 30
    #: Root of ``S3(run=...)`` locations (Metaflow's DATATOOLS_S3ROOT); None = ``<datastore root>/data``.
    datatools_s3root: str | None = None
    #: Namespace of Kubernetes Jobs when ``@kubernetes`` names none (Metaflow's default: "default").
    kubernetes_namespace: str = "default"
    #: Service account of Kubernetes pods when ``@kubernetes`` names none; None = the namespace's default.
    kubernetes_service_account: str | None = None
    #: Container image of Kubernetes pods when ``@kubernetes`` names none; None = ``python:<major.minor>``.
    kubernetes_container_image: str | None = None
    #: Kubernetes secrets every pod gets as environment variables (``@kubernetes(secrets=...)`` adds to them).
    kubernetes_secrets: tuple[str, ...] = ()
    #: The package index of PyPI environments (``@pypi``); None = uv's default (PyPI or ``UV_INDEX_URL``).
    pypi_index_url: str | None = None
    #: Directories or URLs of wheels searched too (``HEADWATER_PYPI_FIND_LINKS``, comma separated).
    pypi_find_links: tuple[str, ...] = ()
    #: Use no index at all, only ``pypi_find_links`` (``HEADWATER_PYPI_NO_INDEX=1``).
    pypi_no_index: bool = False
    #: Conda channels (names or URLs, in priority order) of ``@conda`` environments that name none.
    conda_channels: tuple[str, ...] = DEFAULT_CONDA_CHANNELS
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def envs_dir(self) -> Path:
        """Where built step environments live, one directory per lock digest (``$HEADWATER_HOME/envs``)."""
        return Path(self.home) / "envs"

    def with_(self, **changes: Any) -> "Settings":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def with_datastore(self, kind: str | DatastoreKind | None, root: str | None = None,
                       cwd: str | None = None) -> "Settings":
        """These settings for ``--datastore=kind`` and ``--datastore-root=root`` (each optional).

        An explicit root wins (it must be of the kind, when both are given); a kind alone picks
        the configured root of that kind (for ``s3``: HEADWATER_DATASTORE_ROOT when it is an
        ``s3://`` URL, else HEADWATER_DATASTORE_SYSROOT_S3; for ``local``: the local default).

        Raises
        ------
        DatastoreConfigError
            The kind and the root disagree, or ``s3`` is asked for and no S3 root is configured.
        """
        from .store.roots import is_local_root, normalize_root

        want = DatastoreKind(kind) if kind is not None else None
        if root:
            root = normalize_root(root, cwd=cwd)
            if want is not None and (want is DatastoreKind.LOCAL) != is_local_root(root):
                raise DatastoreConfigError(
                    f"--datastore={want.value} does not match the datastore root {root!r}.",
                    hint="Leave out --datastore (the root chooses the store), or pass a root of that kind.")
            return replace(self, datastore_root=root, datastore=want)
        if want is None:
            return self
        current_local = is_local_root(self.datastore_root)
        if want is DatastoreKind.S3:
            if not current_local:
                return replace(self, datastore=want)
            if self.datastore_sysroot_s3:
                return replace(self, datastore=want, datastore_root=normalize_root(self.datastore_sysroot_s3))
            raise DatastoreConfigError(
                "--datastore=s3 needs an S3 root, and none is configured.",
                hint="Set HEADWATER_DATASTORE_ROOT=s3://bucket/prefix (or HEADWATER_DATASTORE_SYSROOT_S3), "
                     "or pass --datastore-root s3://bucket/prefix.")
        if current_local:
            return replace(self, datastore=want)
        return replace(self, datastore=want, datastore_root=find_datastore_root(cwd))

    @property
    def identity(self) -> str | None:
        """Who runs: ``production:<token>`` in a production deployment's tasks, else ``user:<name>``."""
        if self.production_token:
            return f"production:{self.production_token}"
        return f"user:{self.user}" if self.user else None

    def require_user(self) -> str:
        if not self.user:
            raise UnknownUserError(
                "headwater could not tell who is running this flow.",
                hint="Set HEADWATER_USER (or USER) to your user name.",
            )
        return self.user


def _file_config(home: str) -> dict[str, Any]:
    path = Path(home) / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _login_name() -> str | None:
    """The account name from the password database (covers shells without $USER)."""
    try:
        import getpass

        return getpass.getuser() or None
    except (KeyError, OSError, ImportError):
        return None


def _names(value: Any) -> tuple[str, ...]:
    """A comma-separated string (env var) or a JSON list (config file) of names, as a tuple."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(v).strip() for v in items if str(v).strip())


def load_settings(environ: Mapping[str, str] | None = None, cwd: str | None = None) -> Settings:
    """Build ``Settings`` from the environment, the config file and defaults."""
    env = os.environ if environ is None else environ
    home = env.get("HEADWATER_HOME") or str(Path.home() / STORE_DIRNAME)
    filecfg = _file_config(home)

    def get(name: str, default: Any = None) -> Any:
        key = f"HEADWATER_{name}"
        if key in env and env[key] != "":
            return env[key]
        return filecfg.get(key, default)

    kind = get("DATASTORE") or get("DEFAULT_DATASTORE")
    root = get("DATASTORE_ROOT") or get("DATASTORE_SYSROOT_LOCAL")
    if root:
        from .store.roots import is_local_root, normalize_root  # lazily: the store package imports config

        root = normalize_root(root)
        sysroot_only = get("DATASTORE_SYSROOT_LOCAL") and not get("DATASTORE_ROOT")
        if sysroot_only and is_local_root(root) and os.path.basename(root) != STORE_DIRNAME:
            root = os.path.join(root, STORE_DIRNAME)
    else:
        root = find_datastore_root(cwd)
    sysroot_s3 = get("DATASTORE_SYSROOT_S3") or None
    if kind == DatastoreKind.S3.value and sysroot_s3 and not get("DATASTORE_ROOT"):
        from .store.roots import normalize_root

        root = normalize_root(sysroot_s3)  # HEADWATER_DATASTORE=s3: every reader finds the S3 root too
    user = get("USER") or env.get("USERNAME") or env.get("USER") or env.get("LOGNAME") or _login_name()
    default_launcher = "fork" if hasattr(os, "fork") and sys.platform != "win32" else "subprocess"
    launcher = str(get("LAUNCHER", default_launcher))
    if launcher == "fork" and not hasattr(os, "fork"):
        launcher = "subprocess"
    extra = {k: v for k, v in env.items() if k.startswith("HEADWATER_")}
    return Settings(
        datastore_root=root,
        user=user,
        production_token=get("PRODUCTION_TOKEN") or None,
        launcher=launcher,
        metadata=str(get("DEFAULT_METADATA", "local")),
        max_workers=int(get("RUN_MAX_WORKERS", 16)),
        max_num_splits=int(get("RUN_MAX_NUM_SPLITS", 100)),
        home=home,
        datastore=DatastoreKind(kind) if kind in {k.value for k in DatastoreKind} else None,
        datastore_sysroot_s3=sysroot_s3,
        s3_endpoint_url=get("S3_ENDPOINT_URL") or None,
        s3_region=get("S3_REGION") or None,
        s3_retries=int(get("S3_RETRY_COUNT", 7)),
        s3_workers=int(get("S3_WORKER_COUNT", 16)),
        s3_cache_bytes=int(get("S3_CACHE_BYTES", 10 << 30)),
        datatools_s3root=get("DATATOOLS_S3ROOT") or None,
        kubernetes_namespace=str(get("KUBERNETES_NAMESPACE") or "default"),
        kubernetes_service_account=get("KUBERNETES_SERVICE_ACCOUNT") or None,
        kubernetes_container_image=get("KUBERNETES_CONTAINER_IMAGE") or None,
        kubernetes_secrets=_names(get("KUBERNETES_SECRETS")),
        pypi_index_url=get("PYPI_INDEX_URL") or None,
        pypi_find_links=_names(get("PYPI_FIND_LINKS")),
        pypi_no_index=str(get("PYPI_NO_INDEX", "")).lower() in ("1", "true", "yes"),
        conda_channels=_names(get("CONDA_CHANNELS")) or DEFAULT_CONDA_CHANNELS,
        extra=extra,
    )
