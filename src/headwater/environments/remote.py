"""A step's environment on another machine (a Ray node, a Kubernetes pod): what travels there
and how it is built there, once per machine.

The head stores each lock a remote step needs as an object of the run's content store
(``store_lock``: write-once and keyed by its content, so a lock is stored once however many runs
use it) and sends its key with every task of the step (``RemoteEnvironment``): in the Ray task's
arguments, or as the bootstrap's ``--environment-lock KEY`` in a pod. The package sources the lock
was resolved against (``HEADWATER_PYPI_*``, ``HEADWATER_CONDA_CHANNELS``: ``index_environ``)
travel with it and win over the machine's own. There, ``build_here`` loads the lock and builds it
with the same backend under that machine's ``Settings.envs_dir``, where it stays for every later
task and run; a file lock makes concurrent tasks of one machine build it once.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import EnvKind, Lock, StepEnvironmentError
from .prepare import StepEnvironment, backend_for

#: The variable the bootstrap sets for the step it starts: the task metadata of its environment
#: (``StepEnvironment.metadata``), which the ``step`` command records (``prepare.METADATA_KEY``).
METADATA_ENV_VAR = "HEADWATER_STEP_ENVIRONMENT"
#: The settings naming package sources, as ``HEADWATER_*`` variables: they travel with a lock.
INDEX_VARS = ("HEADWATER_PYPI_INDEX_URL", "HEADWATER_PYPI_FIND_LINKS", "HEADWATER_PYPI_NO_INDEX",
              "HEADWATER_CONDA_CHANNELS")
#: Directory under ``envs_dir`` holding the per-lock build locks of remote machines.
LOCKS_DIRNAME = ".locks"


@dataclass(frozen=True)
class RemoteEnvironment:
    """What a remote task of a step with an environment carries: the stored lock and its sources.

    ``lock_key`` is the content key of the stored lock (``store_lock``), ``index`` the head's
    ``index_environ``.
    """

    lock_key: str
    index: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"lock_key": self.lock_key, "index": self.index}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RemoteEnvironment":
        data = json.loads(text)
        return cls(str(data["lock_key"]), {str(k): str(v) for k, v in (data.get("index") or {}).items()})


def index_environ(settings: Any) -> dict[str, str]:
    """The package sources of ``settings`` that are set, as the ``HEADWATER_*`` variables that set them."""
    from ..config import DEFAULT_CONDA_CHANNELS

    out: dict[str, str] = {}
    if settings.pypi_index_url:
        out["HEADWATER_PYPI_INDEX_URL"] = settings.pypi_index_url
    if settings.pypi_find_links:
        out["HEADWATER_PYPI_FIND_LINKS"] = ",".join(settings.pypi_find_links)
    if settings.pypi_no_index:
        out["HEADWATER_PYPI_NO_INDEX"] = "1"
    if tuple(settings.conda_channels) != tuple(DEFAULT_CONDA_CHANNELS):
        out["HEADWATER_CONDA_CHANNELS"] = ",".join(settings.conda_channels)
    return out


def settings_with_index(index: Mapping[str, str]) -> Any:
    """This machine's settings, with the package sources ``index`` (the head's) in place of its own."""
    from ..config import load_settings

    own = {k: v for k, v in os.environ.items() if k not in INDEX_VARS}
    return load_settings({**own, **index})


def store_lock(content: Any, lock: Lock) -> str:
    """Store ``lock`` in the content store (never inline: a pod fetches it by key alone); its key."""
    return str(content.save(lock.to_json(), what="an environment lock", inline=False)["key"])


def load_lock(content: Any, key: str) -> Lock:
    """The lock stored under ``key``.

    Raises
    ------
    StepEnvironmentError
        No such object in the datastore.
    """
    from ..exceptions import DataMissingError

    try:
        data = content.load({"key": key})
    except DataMissingError:
        raise StepEnvironmentError(f"The environment lock {key[:12]} is not in the datastore.",
                                   hint="Start the run again: it stores the locks of its steps.") from None
    return Lock.from_json(data)


class RemoteEnvironments:
    """The head's side: the ``RemoteEnvironment`` of each step that has one, each lock stored once.

    Parameters
    ----------
    locks : mapping
        The lock of each step that has an environment (``prepare.resolve_steps``).
    settings : Settings
        The run's settings: their package sources travel with the locks.
    """

    def __init__(self, locks: Mapping[str, Lock], settings: Any) -> None:
        self._locks = dict(locks)
        self._index = index_environ(settings) if self._locks else {}
        self._keys: dict[str, str] = {}  # step -> stored key

    @classmethod
    def of_run(cls, prepared: Any, settings: Any) -> "RemoteEnvironments":
        """Those of a run's ``PreparedEnvironments`` (``TaskContext.environments``; None: no step has one)."""
        steps = prepared.steps if prepared is not None else {}
        return cls({step: prepared.locks[env.lock_digest] for step, env in steps.items()}, settings)

    def for_step(self, name: str, content: Any) -> RemoteEnvironment | None:
        """What a task of step ``name`` carries (its lock stored in ``content`` on first use), or None."""
        lock = self._locks.get(name)
        if lock is None:
            return None
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = store_lock(content, lock)  # a lock shared by steps: a dedup hit
        return RemoteEnvironment(key, self._index)


def check_platform(lock: Lock, where: str) -> None:
    """Refuse a PyPI lock resolved for another platform than this machine's (its wheels would not fit).

    Conda locks are checked by their backend.
    """
    if lock.kind is EnvKind.CONDA:
        return
    from .pypi import platform_tag

    here = platform_tag()
    if lock.platform != here:
        raise StepEnvironmentError(
            f"The {lock.kind.value} environment {lock.digest()[:12]} was resolved for {lock.platform}, but "
            f"{where} is {here}: its pinned wheels may not install there.",
            hint="Start the run from a machine of the platform the steps run on.")


_built: dict[tuple[str, str], StepEnvironment] = {}  # (lock key, envs dir) -> built here, in this process


def build_here(content: Any, lock_key: str, settings: Any, *, where: str = "this machine",
               log: Any = None) -> StepEnvironment:
    """The environment of the lock stored under ``lock_key``, built under ``settings.envs_dir`` if
    it is not there yet; a process remembers what it built.

    Concurrent callers on one machine build once: the first holds a file lock
    (``envs_dir/.locks/<digest>``) while it builds, the others wait for it and find it built.
    ``log`` (a text stream, default stderr) hears one line when this call built it.

    Raises
    ------
    StepEnvironmentError
        The lock is missing, was resolved for another platform, or cannot be built here.
    """
    envs_dir = Path(settings.envs_dir)
    cached = _built.get((lock_key, str(envs_dir)))
    if cached is not None:
        return cached
    lock = load_lock(content, lock_key)
    check_platform(lock, where)
    digest = lock.digest()
    backend = backend_for(lock.kind, settings)
    (envs_dir / LOCKS_DIRNAME).mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    with _file_lock(envs_dir / LOCKS_DIRNAME / digest):
        there = (envs_dir / digest).is_dir()
        built = backend.build(lock, envs_dir)
    if not there:
        packages = ", ".join(f"{p.name} {p.version}" for p in lock.packages) or "no packages"
        (log or sys.stderr).write(f"Built the {lock.kind.value} environment {digest[:12]} ({packages}) in "
                                  f"{envs_dir} on {where} in {time.monotonic() - began:.1f} s.\n")
    env = StepEnvironment(lock.kind, digest, str(built.python), {p.name: p.version for p in lock.packages})
    _built[(lock_key, str(envs_dir))] = env
    return env


_shims: dict[str, str] = {}  # envs dir -> the shim of this process's headwater there


def shim_here(settings: Any) -> str:
    """The headwater shim under ``settings.envs_dir`` (``shim.shim_dir``), made once per process."""
    key = str(settings.envs_dir)
    shim = _shims.get(key)
    if shim is None:
        from .shim import shim_dir

        shim = _shims[key] = str(shim_dir(Path(settings.envs_dir)))
    return shim


class _file_lock:
    """An exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


__all__ = ["INDEX_VARS", "METADATA_ENV_VAR", "RemoteEnvironment", "RemoteEnvironments", "build_here",
           "check_platform", "index_environ", "load_lock", "settings_with_index", "shim_here", "store_lock"]
