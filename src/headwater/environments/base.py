"""The interface of a per-step environment tool: a request, its lock, the built environment.

A step's decorators (``@pypi``, ``@conda``, their ``_base`` forms, ``--environment=uv``) become
an ``EnvRequest``. A backend resolves the request once, when a run starts, to a ``Lock``: the
exact packages to install, which travels with the run (and the code package) so every machine
builds the same thing. ``build`` turns a lock into a ``BuiltEnv`` under a cache directory keyed
by the lock's digest, so an environment built once is reused by every run and flow that locks to
the same packages. Contract tests: tests/environments/test_backend_contract.py.
"""

from __future__ import annotations

import abc
import enum
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import blake3

from ..exceptions import HeadwaterException


class EnvKind(str, enum.Enum):
    """The tool that resolves and builds an environment (``--environment=``)."""

    PYPI = "pypi"
    CONDA = "conda"
    UV = "uv"


#: The layout of built environments (how ``build`` arranges a prefix, what it adds: the shim's
#: ``.pth``, the ready marker). Part of every lock's digest, so a change of layout builds anew
#: instead of reusing environments laid out the old way.
ENV_LAYOUT_VERSION = 2


def _digest(payload: Any) -> str:
    return blake3.blake3(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class EnvRequest:
    """What a step asks for.

    ``packages`` are (name, version specifier) pairs sorted by name; an empty specifier means
    any version. ``channels`` are conda channels (URLs or names), ``project`` the directory of a
    uv project (its ``pyproject.toml`` and ``uv.lock``).
    """

    kind: EnvKind
    python: str | None = None
    packages: tuple[tuple[str, str], ...] = ()
    channels: tuple[str, ...] = ()
    project: str | None = None

    def digest(self) -> str:
        """A stable hash of the request (the same request resolves once per run start)."""
        return _digest({**asdict(self), "kind": self.kind.value})


@dataclass(frozen=True)
class LockedPackage:
    """One package of a lock, pinned: name, version and where it comes from."""

    name: str
    version: str
    url: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Lock:
    """A resolved environment: exactly what ``build`` installs.

    ``text`` is the tool's own lock (uv's pinned requirements with hashes, rattler's lock file),
    what ``build`` reads; ``packages`` is the same content for people and metadata.
    """

    kind: EnvKind
    python: str
    platform: str
    packages: tuple[LockedPackage, ...]
    text: str
    extra: dict[str, str] = field(default_factory=dict)  # what a backend needs beyond the text
    implementation: str = "cpython"  # the interpreter's implementation (sys.implementation.name)

    def digest(self) -> str:
        """The key of the built environment: equal locks share one environment.

        Covers the interpreter (implementation and version, so ABIs never mix) and
        ``ENV_LAYOUT_VERSION`` besides the packages.
        """
        return _digest({"kind": self.kind.value, "python": self.python, "platform": self.platform,
                        "text": self.text, "extra": self.extra, "implementation": self.implementation,
                        "layout": ENV_LAYOUT_VERSION})

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "python": self.python, "platform": self.platform,
                "packages": [asdict(p) for p in self.packages], "text": self.text, "extra": self.extra,
                "implementation": self.implementation}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Lock":
        return cls(kind=EnvKind(data["kind"]), python=data["python"], platform=data["platform"],
                   packages=tuple(LockedPackage(**p) for p in data["packages"]), text=data["text"],
                   extra=dict(data.get("extra") or {}), implementation=data.get("implementation") or "cpython")


@dataclass(frozen=True)
class BuiltEnv:
    """An environment ready to run tasks: its prefix and its interpreter."""

    lock_digest: str
    prefix: Path
    python: Path


class StepEnvironmentError(HeadwaterException):
    """A step's environment cannot be resolved or built (base of the specific errors below)."""

    headline = "Environment error"


class PackageNotFound(StepEnvironmentError):
    """A requested package does not exist in the index or channels tried."""

    headline = "Package not found"


class Unsatisfiable(StepEnvironmentError):
    """The requested versions cannot be installed together."""

    headline = "Conflicting requirements"


class PythonUnavailable(StepEnvironmentError):
    """The requested Python version cannot be found or installed."""

    headline = "Python version not available"


class IndexUnreachable(StepEnvironmentError):
    """The package index or channel cannot be reached."""

    headline = "Package index unreachable"


class DecoratorConflict(StepEnvironmentError):
    """Environment decorators that cannot be combined on one step or flow."""

    headline = "Conflicting environment decorators"


class EnvironmentBackend(abc.ABC):
    """Resolves requests to locks and builds locks into environments, for one ``EnvKind``."""

    kind: EnvKind

    @abc.abstractmethod
    def resolve(self, request: EnvRequest) -> Lock:
        """The lock of ``request``; raises the errors above, naming what was asked and what was tried."""

    def source_key(self, request: EnvRequest) -> dict[str, Any]:
        """Where ``request``'s packages would come from (index, channels, project files): part of
        the key of its cached lock (``lockcache``), so a change of source resolves again."""
        return {}

    @abc.abstractmethod
    def build(self, lock: Lock, cache_dir: Path) -> BuiltEnv:
        """The environment of ``lock`` under ``cache_dir / lock.digest()``, built if it is not there yet.

        Idempotent and safe against concurrent builders (build aside, then rename into place): a
        second call, from this or another process, returns the existing environment at once.
        """
