"""Locks kept on this machine, so a run whose environments were resolved before needs no index
(environments layer).

A lock is cached under ``$HEADWATER_HOME/envs/locks/<key>.json``, the key covering the request,
where packages come from (the backend's ``source_key``: index, find-links, channels, a uv
project's files), the platform and the launching interpreter. A run uses the cached lock when
there is one; ``python flow.py environment resolve`` and ``HEADWATER_ENVIRONMENT_REFRESH=1``
resolve again (and replace it).
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
from pathlib import Path
from typing import Any

import blake3

from .base import EnvironmentBackend, EnvRequest, Lock

#: The directory of cached locks, under ``Settings.envs_dir``.
LOCKS_DIRNAME = "locks"
#: Set to a true value to resolve every environment again instead of using cached locks.
REFRESH_VAR = "HEADWATER_ENVIRONMENT_REFRESH"
_TRUE = ("1", "true", "yes", "on")


def refresh_wanted(settings: Any) -> bool:
    """Whether ``settings`` ask to resolve again (``HEADWATER_ENVIRONMENT_REFRESH``)."""
    extra = getattr(settings, "extra", None) or {}
    return str(extra.get(REFRESH_VAR, "")).strip().lower() in _TRUE


def locks_dir(settings: Any) -> Path:
    """Where cached locks live."""
    return Path(settings.envs_dir) / LOCKS_DIRNAME


def cache_key(backend: EnvironmentBackend, request: EnvRequest) -> str:
    """The key of ``request``'s cached lock."""
    payload = {"request": request.digest(), "source": backend.source_key(request),
               "platform": f"{sys.platform}-{platform.machine()}", "python": platform.python_version(),
               "implementation": sys.implementation.name}
    return blake3.blake3(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def resolve_cached(backend: EnvironmentBackend, request: EnvRequest, directory: Path, *,
                   refresh: bool = False) -> Lock:
    """``request``'s lock: the cached one unless ``refresh`` (or none is cached), else resolved and cached."""
    path = Path(directory) / f"{cache_key(backend, request)}.json"
    if not refresh:
        try:
            return Lock.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # not cached (or unreadable): resolve
    lock = backend.resolve(request)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(lock.to_json()))
    os.replace(tmp, path)
    return lock


__all__ = ["LOCKS_DIRNAME", "REFRESH_VAR", "cache_key", "locks_dir", "refresh_wanted", "resolve_cached"]
