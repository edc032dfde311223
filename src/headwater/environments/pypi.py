"""PyPI environments (``@pypi``, ``--environment=uv``) resolved and built with uv.

``resolve`` runs ``uv pip compile`` for the requested Python (pinned versions with hashes), or
``uv export --frozen`` of a uv project's ``uv.lock``; the output is the lock's text. ``build``
makes ``<cache>/<lock digest>`` with ``uv venv`` and ``uv pip sync`` (hardlinked from uv's
cache, hashes checked), in a temporary directory renamed into place, so concurrent builders
leave one environment and a built one is reused at the cost of one ``stat``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import blake3

from .aside import READY_MARKER, build_aside, discard, is_ready
from .base import BuiltEnv, EnvironmentBackend, EnvKind, EnvRequest, Lock, LockedPackage, StepEnvironmentError
from .interpreter import same_minor, shim_requirements
from .shim import install_pth
from .uvtool import IndexConfig, run_uv

#: The lock's text inside a built environment (what ``uv pip sync`` installed).
LOCK_FILE = "headwater-lock.txt"
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
#: uv's variables that change where packages come from (part of a cached lock's key).
_UV_SOURCE_VARS = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS",
                   "UV_NO_INDEX")
#: The files of a uv project that decide its lock (``uv export --frozen`` and ``uv python find``).
_PROJECT_FILES = ("uv.lock", "pyproject.toml", ".python-version")
_OPERATORS = ("<", ">", "!", "~", "=", "@")


def requirement(name: str, version: str) -> str:
    """A PEP 508 requirement from Metaflow's ``packages`` entry: a bare version means ``==``."""
    version = version.strip()
    if not version or version.startswith(_OPERATORS):
        return f"{name}{version}"
    return f"{name}=={version}"


#: The rule shared by every backend (``interpreter.shim_requirements``), under its older name.
runtime_requirements = shim_requirements


def platform_tag() -> str:
    """The platform locks are resolved for (this machine's)."""
    return f"{sys.platform}-{platform.machine()}"


def parse_lock(text: str) -> tuple[LockedPackage, ...]:
    """The pinned packages of uv's requirements output (``name==version`` plus its hashes)."""
    out: list[LockedPackage] = []
    for line in text.splitlines():
        m = _PINNED.match(line.strip())
        if m:
            out.append(LockedPackage(name=m.group(1), version=m.group(2).rstrip("\\").strip()))
        elif out and not out[-1].sha256:
            h = _HASH.search(line)
            if h:
                last = out[-1]
                out[-1] = LockedPackage(last.name, last.version, last.url, h.group(1))
    return tuple(sorted(out, key=lambda p: p.name.lower()))


class PypiBackend(EnvironmentBackend):
    """Resolves and builds PyPI environments with uv (``EnvKind.PYPI`` and ``EnvKind.UV``).

    Parameters
    ----------
    index : IndexConfig, optional
        The index URL, find-links and ``--no-index`` (``HEADWATER_PYPI_*`` settings).
    environ : mapping, optional
        The environment uv runs with (default: this process's; uv's ``UV_*`` variables apply).
    """

    kind = EnvKind.PYPI

    def __init__(self, index: IndexConfig | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.index = index or IndexConfig()
        self.environ = dict(os.environ if environ is None else environ)

    @classmethod
    def from_settings(cls, settings: Any) -> "PypiBackend":
        return cls(IndexConfig(settings.pypi_index_url, tuple(settings.pypi_find_links), settings.pypi_no_index))

    # ---- resolve --------------------------------------------------------------------------
    def source_key(self, request: EnvRequest) -> dict[str, Any]:
        key: dict[str, Any] = {"index": [self.index.index_url, list(self.index.find_links), self.index.no_index],
                               "uv": {k: v for k, v in sorted(self.environ.items()) if k in _UV_SOURCE_VARS}}
        if request.kind is EnvKind.UV:
            project = Path(request.project or ".")
            key["project"] = {name: _file_digest(project / name) for name in _PROJECT_FILES}
        return key

    def resolve(self, request: EnvRequest) -> Lock:
        if request.kind is EnvKind.UV:
            return self._export(request)
        version = self._python_version(request.python, what=f"resolving {_describe(request)}")
        lines = [requirement(name, spec) for name, spec in request.packages]
        lines += shim_requirements(version, (name for name, _ in request.packages))
        reqs = "".join(line + "\n" for line in lines)
        text = run_uv(["pip", "compile", "-", "--python-version", version, "--generate-hashes", "--no-header",
                       "--no-annotate", "--quiet", "--no-config", *self.index.args()],
                      stdin=reqs, what=f"resolving {_describe(request)}", index=self.index, environ=self.environ)
        return Lock(kind=request.kind, python=version, platform=platform_tag(), packages=parse_lock(text),
                    text=text, implementation=sys.implementation.name)

    def _export(self, request: EnvRequest) -> Lock:
        project = Path(request.project or ".")
        what = f"exporting the uv project {str(project)!r}"
        if not (project / "uv.lock").is_file():
            raise StepEnvironmentError(
                f"--environment=uv runs the steps in the uv project of the flow's directory, but {project} "
                "has no uv.lock.",
                hint=f"Run `uv lock` in {project} (it needs a pyproject.toml), or use another --environment.")
        text = run_uv(["export", "--frozen", "--format", "requirements-txt", "--no-header", "--no-annotate",
                       "--no-emit-project", "--quiet", "--project", str(project)],
                      what=what, index=self.index, environ=self.environ)
        found = run_uv(["python", "find", "--show-version", "--project", str(project)],
                       what=what, index=self.index, environ=self.environ).strip()
        python = found or platform.python_version()
        if not same_minor(python):  # the project's Python: it needs its own blake3, zstandard...
            extra = shim_requirements(python, {p.name for p in parse_lock(text)})
            if extra:
                text += run_uv(["pip", "compile", "-", "--python-version", python, "--generate-hashes",
                                "--no-header", "--no-annotate", "--quiet", "--no-config", *self.index.args()],
                               stdin="".join(f"{name}\n" for name in extra),
                               what=f"{what}: adding {', '.join(extra)} for headwater under Python {python}",
                               index=self.index, environ=self.environ)
        return Lock(kind=EnvKind.UV, python=python, platform=platform_tag(), packages=parse_lock(text), text=text,
                    implementation=sys.implementation.name)

    def _python_version(self, python: str | None, *, what: str) -> str:
        if python is None:
            return platform.python_version()
        return run_uv(["python", "find", python, "--show-version", "--no-project", "--no-config"],
                      what=f"{what} (python={python!r})", index=self.index, environ=self.environ).strip()

    # ---- build ----------------------------------------------------------------------------
    def build(self, lock: Lock, cache_dir: Path) -> BuiltEnv:
        digest = lock.digest()
        target = Path(cache_dir).absolute() / digest
        if is_ready(target, READY_MARKER):
            if interpreter_usable(target / "bin" / "python"):
                return _built(digest, target)
            discard(target)  # its base interpreter is gone (uninstalled, another machine's path)
        build_aside(target, READY_MARKER, lambda aside: self._build_into(lock, aside),
                    marker_text=json.dumps(lock.to_json()))
        return _built(digest, target)

    def _build_into(self, lock: Lock, prefix: Path) -> None:
        what = f"building the environment {lock.digest()[:12]}"
        python = sys.executable if lock.python == platform.python_version() else lock.python
        run_uv(["venv", str(prefix), "--python", python, "--relocatable", "--quiet", "--no-project", "--no-config"],
               what=what, index=self.index, environ=self.environ)
        (prefix / LOCK_FILE).write_text(lock.text)
        interpreter = prefix / "bin" / "python"
        if lock.packages:
            hashes = ["--require-hashes"] if all(p.sha256 for p in lock.packages) else []
            run_uv(["pip", "sync", str(prefix / LOCK_FILE), "--python", str(interpreter), "--link-mode", "hardlink",
                    "--quiet", "--no-config", *hashes, *self.index.args()],
                   what=what, index=self.index, environ=self.environ)
        install_pth(prefix, lock.python)


def interpreter_usable(python: Path) -> bool:
    """Whether an environment's interpreter still exists (its symlink chain ends in a file)."""
    return os.path.isfile(python) and os.access(python, os.X_OK)


def _file_digest(path: Path) -> str:
    try:
        return blake3.blake3(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _built(digest: str, prefix: Path) -> BuiltEnv:
    return BuiltEnv(lock_digest=digest, prefix=prefix, python=prefix / "bin" / "python")


def _describe(request: EnvRequest) -> str:
    what = ", ".join(requirement(n, v) for n, v in request.packages) or "no packages"
    return f"@{request.kind.value}({what}{', python=' + repr(request.python) if request.python else ''})"


__all__ = ["LOCK_FILE", "READY_MARKER", "PypiBackend", "interpreter_usable", "parse_lock", "platform_tag", "requirement",
           "runtime_requirements"]
