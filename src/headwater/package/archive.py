"""What a code package holds, and its deterministic bytes (internal).

A package holds, under paths relative to where they were found:

- every file in the flow's directory tree whose name ends in one of the package
  suffixes (Metaflow's ``--package-suffixes``; default ``.py``), skipping hidden
  directories (``.headwater``, ``.git`` ...) and ``__pycache__``;
- every imported module whose file lies under an entry of ``sys.path`` that holds
  user code: not the standard library, not ``site-packages``/``dist-packages``,
  and never headwater itself.

The archive is a gzip'ed tar with entries sorted by path and every header fixed
(mtime 0, mode 0644, owner root, no user or group names), so the same code always
gives the same bytes and therefore the same content key.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import sysconfig
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType

from ..exceptions import HeadwaterException

#: Suffixes packaged from the flow's directory when ``--package-suffixes`` is not given.
DEFAULT_SUFFIXES: tuple[str, ...] = (".py",)
_SKIP_DIRS = frozenset({"__pycache__"})
_INSTALLED_DIRS = frozenset({"site-packages", "dist-packages"})
_HEADWATER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CodePackageError(HeadwaterException):
    headline = "Code package error"


@dataclass(frozen=True)
class PackageEntry:
    """One file of a package: its path inside the archive and on this machine."""

    arcname: str
    path: str


@dataclass(frozen=True)
class CodePackage:
    """A built package: its archive bytes, its entries and the flow script's path in it."""

    blob: bytes
    entries: tuple[PackageEntry, ...]
    script: str  # arcname of the flow file
    suffixes: tuple[str, ...]
    root: str  # the flow's directory

    @property
    def size(self) -> int:
        return len(self.blob)


def parse_suffixes(text: str | None) -> tuple[str, ...]:
    """``--package-suffixes`` (comma separated, e.g. ``.py,.json``) as a sorted tuple."""
    if not text:
        return DEFAULT_SUFFIXES
    out = sorted({s.strip() for s in text.split(",") if s.strip()})
    if not out:
        return DEFAULT_SUFFIXES
    return tuple(out)


def _installed_roots() -> tuple[str, ...]:
    roots = set()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(name)
        if p:
            roots.add(os.path.realpath(p))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib")))
    return tuple(sorted(roots))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _user_path_roots(flow_dir: str, path_entries: Iterable[str]) -> list[str]:
    """sys.path entries that may hold user code, the flow's directory first."""
    installed = _installed_roots()
    roots = [flow_dir]
    for entry in path_entries:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if real in roots or any(_under(real, r) for r in installed):
            continue
        if _INSTALLED_DIRS & set(real.split(os.sep)):
            continue
        roots.append(real)
    return roots


def _walk_suffixed(flow_dir: str, suffixes: tuple[str, ...]) -> Iterable[PackageEntry]:
    for dirpath, dirnames, filenames in os.walk(flow_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS]
        for name in filenames:
            if name.endswith(suffixes) and not name.startswith("."):
                path = os.path.join(dirpath, name)
                if os.path.isfile(path):
                    yield PackageEntry(os.path.relpath(path, flow_dir).replace(os.sep, "/"), path)


def _module_entries(roots: list[str], modules: Mapping[str, ModuleType]) -> Iterable[PackageEntry]:
    for mod in list(modules.values()):
        f = getattr(mod, "__file__", None)
        if not f or not f.endswith(".py"):
            continue  # built-in, namespace package or compiled extension
        path = os.path.realpath(f)
        if _under(path, _HEADWATER_DIR) or not os.path.isfile(path):
            continue
        for root in roots:
            if _under(path, root):
                yield PackageEntry(os.path.relpath(path, root).replace(os.sep, "/"), path)
                break


def collect_entries(flow_file: str, suffixes: tuple[str, ...] = DEFAULT_SUFFIXES, *,
                    modules: Mapping[str, ModuleType] | None = None,
                    path_entries: Iterable[str] | None = None) -> tuple[PackageEntry, ...]:
    """The files a package of ``flow_file`` holds, sorted by archive path.

    Parameters
    ----------
    flow_file : str
        The flow's script.
    suffixes : tuple of str
        File suffixes packaged from the flow's directory tree.
    modules, path_entries : optional
        ``sys.modules`` and ``sys.path`` by default.

    Returns
    -------
    tuple of PackageEntry
        One per archive path (the first found wins when two roots hold the same path).
    """
    flow_path = os.path.realpath(flow_file)
    if not os.path.isfile(flow_path):
        raise CodePackageError(f"Cannot package the flow: its file {flow_file!r} does not exist.",
                               hint="Run the command as `python <flow file> package ...`.")
    flow_dir = os.path.dirname(flow_path)
    roots = _user_path_roots(flow_dir, sys.path if path_entries is None else path_entries)
    found: dict[str, PackageEntry] = {}
    first = [PackageEntry(os.path.basename(flow_path), flow_path)]
    for e in (*first, *_walk_suffixed(flow_dir, suffixes),
              *_module_entries(roots, sys.modules if modules is None else modules)):
        found.setdefault(e.arcname, e)
    return tuple(found[k] for k in sorted(found))


def _tar_info(arcname: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def archive_bytes(entries: Iterable[PackageEntry]) -> bytes:
    """The deterministic ``.tgz`` of ``entries`` (sorted by archive path, fixed headers)."""
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for e in sorted(entries, key=lambda e: e.arcname):
                with open(e.path, "rb") as f:
                    data = f.read()
                tar.addfile(_tar_info(e.arcname, len(data)), io.BytesIO(data))
    return raw.getvalue()


def build_package(flow_file: str, suffixes: tuple[str, ...] = DEFAULT_SUFFIXES, *,
                  modules: Mapping[str, ModuleType] | None = None,
                  path_entries: Iterable[str] | None = None) -> CodePackage:
    """Collect and pack the code of the flow in ``flow_file`` (see ``collect_entries``)."""
    entries = collect_entries(flow_file, suffixes, modules=modules, path_entries=path_entries)
    flow_path = os.path.realpath(flow_file)
    return CodePackage(archive_bytes(entries), entries, os.path.basename(flow_path), tuple(suffixes),
                       os.path.dirname(flow_path))
