"""Resolve and build the environments of a run's steps, once, when the run starts.

``resolve_steps`` resolves each distinct ``EnvRequest`` once (two steps asking for the same
packages share one lock); ``prepare_steps`` also builds every distinct lock of the steps that run
on this machine under ``Settings.envs_dir`` and the headwater shim, and returns what the launchers
and the run record need. Errors surface here, before any task runs.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .base import EnvironmentBackend, EnvKind, EnvRequest, Lock, StepEnvironmentError

#: The module and class of each kind's backend (conda's is built separately and may be absent).
BACKENDS: dict[EnvKind, str] = {
    EnvKind.PYPI: "headwater.environments.pypi:PypiBackend",
    EnvKind.UV: "headwater.environments.pypi:PypiBackend",
    EnvKind.CONDA: "headwater.environments.conda:CondaBackend",
}
#: The run record's field holding the run's locks.
RUN_RECORD_FIELD = "environments"
#: The task metadata entry describing the environment a task ran in (a JSON object).
METADATA_KEY = "environment"


def backend_for(kind: EnvKind, settings: Any) -> EnvironmentBackend:
    """The backend of ``kind``, configured from ``settings`` (its ``from_settings``, if it has one)."""
    module, _, attr = BACKENDS[kind].partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise StepEnvironmentError(f"--environment={kind.value} environments are not available in this "
                                   "installation of headwater.",
                                   hint="Use @pypi with --environment=pypi, or install headwater with the "
                                        "extra that provides them.") from None
    factory = getattr(cls, "from_settings", None)
    return factory(settings) if factory is not None and settings is not None else cls()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class StepEnvironment:
    """The environment one step's tasks run in."""

    kind: EnvKind
    lock_digest: str
    python: str  # the interpreter; empty for a step that runs elsewhere (built there: ``remote``)
    packages: dict[str, str] = field(default_factory=dict)  # name -> version
    python_version: str = ""  # the interpreter's version (the lock's)

    def metadata(self) -> str:
        """The task metadata value: ``{"kind", "lock_digest", "python_version", "packages"}`` as JSON."""
        return json.dumps({"kind": self.kind.value, "lock_digest": self.lock_digest, "packages": self.packages,
                           "python_version": self.python_version}, sort_keys=True)


@dataclass(frozen=True)
class PreparedEnvironments:
    """Every step's built environment (steps without one are absent), the locks and the shim."""

    steps: dict[str, StepEnvironment]
    locks: dict[str, Lock]  # lock digest -> lock
    shim: str | None = None

    def record(self) -> dict[str, Any]:
        """The run record's ``environments`` field: ``{"steps": {step: digest}, "locks": {digest: lock}}``."""
        return {"steps": {s: e.lock_digest for s, e in self.steps.items()},
                "locks": {d: lock.to_json() for d, lock in self.locks.items()}}


def resolve_steps(requests: Mapping[str, EnvRequest | None], settings: Any,
                  echo: Callable[[str], None] | None = None, *, refresh: bool = False) -> dict[str, Lock]:
    """The lock of each step that has a request, each distinct request resolved once (or taken
    from the lock cache, ``lockcache``, unless ``refresh`` or HEADWATER_ENVIRONMENT_REFRESH)."""
    by_request: dict[str, Lock] = {}
    backends: dict[EnvKind, EnvironmentBackend] = {}
    out: dict[str, Lock] = {}
    for step, request in requests.items():
        if request is None:
            continue
        key = request.digest()
        if key not in by_request:
            backend = backends.get(request.kind) or backends.setdefault(request.kind, backend_for(request.kind, settings))
            try:
                by_request[key] = _resolve(backend, request, settings, step, echo, refresh)
            except StepEnvironmentError as e:
                sharing = [s for s, r in requests.items() if r is not None and r.digest() == key]
                names = ", ".join(repr(s) for s in sharing)
                raise type(e)(f"The environment of step{'s' if len(sharing) > 1 else ''} {names}: {e.message}",
                              location=e.location, hint=e.hint) from None
        out[step] = by_request[key]
    return out


def _resolve(backend: EnvironmentBackend, request: EnvRequest, settings: Any, step: str,
             echo: Callable[[str], None] | None, refresh: bool) -> Lock:
    """One request's lock, through the lock cache when ``settings`` has a home for it."""
    from . import lockcache

    def announce() -> None:
        if echo is not None:
            echo(f"Resolving the {request.kind.value} environment of step {step!r}...")

    if settings is None:
        announce()
        return backend.resolve(request)
    refresh = refresh or lockcache.refresh_wanted(settings)
    directory = lockcache.locks_dir(settings)
    if refresh or not (directory / f"{lockcache.cache_key(backend, request)}.json").is_file():
        announce()
    return lockcache.resolve_cached(backend, request, directory, refresh=refresh)


def prepare_steps(requests: Mapping[str, EnvRequest | None], settings: Any,
                  echo: Callable[[str], None] | None = None, *,
                  remote: Collection[str] = ()) -> PreparedEnvironments:
    """Resolve the steps' environments and build those of the steps that run here; empty when no
    step has one. The steps in ``remote`` run on other machines (Ray, Kubernetes), which build
    their environments themselves (``environments.remote``)."""
    locks = resolve_steps(requests, settings, echo)
    if not locks:
        return PreparedEnvironments({}, {})
    built: dict[str, str] = {}
    distinct = {lock.digest(): lock for lock in locks.values()}
    here = {locks[step].digest() for step in locks if step not in remote}
    for digest, lock in distinct.items():
        if digest in here:
            built[digest] = str(backend_for(lock.kind, settings).build(lock, settings.envs_dir).python)
    steps = {step: StepEnvironment(lock.kind, lock.digest(), built.get(lock.digest(), ""),
                                   {p.name: p.version for p in lock.packages}, lock.python)
             for step, lock in locks.items()}
    shim = None
    if built:
        from .shim import shim_dir

        shim = str(shim_dir(settings.envs_dir))
    return PreparedEnvironments(steps, distinct, shim)


__all__ = ["BACKENDS", "METADATA_KEY", "RUN_RECORD_FIELD", "PreparedEnvironments", "StepEnvironment",
           "backend_for", "prepare_steps", "resolve_steps"]
