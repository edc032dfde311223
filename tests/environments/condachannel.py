"""A conda channel built in the test, offline: tiny packages made with conda-package-handling.

No conda channel is reachable here, and a real CPython is not a package we can build, so the
channel's ``python`` wraps the interpreter running the tests, the way ``python -m venv`` does:
a platform package holding ``bin/python3.X`` (a symlink to this machine's base interpreter) and a
``pyvenv.cfg`` at the environment's root without system site-packages. Python started through the
symlink takes the environment as its ``sys.prefix``, puts ``<prefix>/lib/python3.X/site-packages``
(where the installer links ``noarch: python`` packages) on ``sys.path``, and sees none of the
launching environment's packages. Everything else is real: .conda archives with ``info/index.json``
and ``info/paths.json``, repodata made by an indexer, fetched from ``file://`` URLs, solved and
linked by rattler.

The channel (``CHANNEL_PACKAGES``):

- ``python <this interpreter's version>`` for the current platform (the wrapper above);
- ``tinylib 1.0`` and ``tinylib 2.0``, ``noarch: python``, each a module with ``__version__``;
- ``tinyapp 1.0``, ``noarch: python``, depending on ``tinylib >=2`` (``tinylib 1.*`` with it
  cannot be solved), with ``etc/tinyapp/prefix.txt`` naming its install prefix through conda's
  prefix placeholder (an environment built aside must name its final path).

Repodata is written by rattler's indexer (``rattler.index.index_fs``): ``conda-index`` needs the
``conda`` package itself, which is not installable from PyPI.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: The placeholder conda-build writes where a file names its install prefix.
PREFIX_PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
#: A fixed build time (ms since the epoch), so a package built twice has the same metadata.
_TIMESTAMP = 1_700_000_000_000


@dataclass(frozen=True)
class PackageSpec:
    """One package of the test channel: its files (path -> text) and symlinks (path -> target)."""

    name: str
    version: str
    subdir: str  # "noarch" or the current platform
    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    #: Text files naming their install prefix by ``PREFIX_PLACEHOLDER`` (rewritten when installed).
    prefix_files: dict[str, str] = field(default_factory=dict)
    depends: tuple[str, ...] = ()
    noarch_python: bool = False


def current_platform() -> str:
    import rattler

    return str(rattler.Subdir.current())


def base_interpreter() -> Path:
    """The interpreter behind this one (a venv's ``bin/python`` resolves to it)."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def python_version() -> str:
    return "%d.%d.%d" % sys.version_info[:3]


def _python_package(platform: str) -> PackageSpec:
    short = "%d.%d" % sys.version_info[:2]
    base = base_interpreter()
    cfg = (f"home = {base.parent}\ninclude-system-site-packages = false\n"
           f"version = {python_version()}\n")
    return PackageSpec(
        name="python", version=python_version(), subdir=platform,
        files={"pyvenv.cfg": cfg},
        links={f"bin/python{short}": str(base), "bin/python3": f"python{short}", "bin/python": f"python{short}"})


def _module(name: str, version: str) -> dict[str, str]:
    return {f"site-packages/{name}/__init__.py": f'"""A test package."""\n\n__version__ = "{version}"\n'}


def channel_packages(platform: str) -> list[PackageSpec]:
    """Every package of the test channel."""
    return [
        _python_package(platform),
        PackageSpec("tinylib", "1.0", "noarch", _module("tinylib", "1.0"), depends=("python",), noarch_python=True),
        PackageSpec("tinylib", "2.0", "noarch", _module("tinylib", "2.0"), depends=("python",), noarch_python=True),
        PackageSpec("tinyapp", "1.0", "noarch", _module("tinyapp", "1.0"),
                    prefix_files={"etc/tinyapp/prefix.txt": PREFIX_PLACEHOLDER + "\n"},
                    depends=("python", "tinylib >=2"), noarch_python=True),
    ]


def _stage(spec: PackageSpec, src: Path) -> list[str]:
    """Lay out the package's files and its ``info/`` metadata under ``src``; the archive's file list."""
    paths = []
    for rel, text in sorted(spec.files.items()):
        data = text.encode()
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        paths.append({"_path": rel, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
                      "size_in_bytes": len(data)})
    for rel, text in sorted(spec.prefix_files.items()):
        data = text.encode()
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        paths.append({"_path": rel, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
                      "size_in_bytes": len(data), "file_mode": "text", "prefix_placeholder": PREFIX_PLACEHOLDER})
    for rel, dest in sorted(spec.links.items()):
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(dest, target)
        paths.append({"_path": rel, "path_type": "softlink"})
    info = src / "info"
    info.mkdir()
    index = {"name": spec.name, "version": spec.version, "build": "0", "build_number": 0,
             "depends": list(spec.depends), "subdir": spec.subdir, "timestamp": _TIMESTAMP}
    if spec.noarch_python:
        index["noarch"] = "python"
        (info / "link.json").write_text(json.dumps({"noarch": {"type": "python"}, "package_metadata_version": 1}))
    else:
        index["platform"], _, index["arch"] = spec.subdir.partition("-")
    (info / "index.json").write_text(json.dumps(index, indent=1))
    (info / "paths.json").write_text(json.dumps({"paths": paths, "paths_version": 1}, indent=1))
    (info / "files").write_text("".join(p["_path"] + "\n" for p in paths))
    return sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file() or p.is_symlink())


def build_channel(root: Path, extra: tuple[PackageSpec, ...] = ()) -> Path:
    """Build every package of the channel into ``root`` and index it; the channel directory.

    Each package is a ``.conda`` archive made by conda-package-handling from a staged directory;
    ``noarch/`` and ``<platform>/`` get a ``repodata.json`` from the indexer. ``extra``: more packages.
    """
    import rattler
    from conda_package_handling import api as cph

    platform = current_platform()
    channel = root / "channel"
    for sub in ("noarch", platform):
        (channel / sub).mkdir(parents=True, exist_ok=True)
    for spec in [*channel_packages(platform), *extra]:
        src = root / "staging" / f"{spec.name}-{spec.version}"
        files = _stage(spec, src)
        cph.create(str(src), files, f"{spec.name}-{spec.version}-0.conda", out_folder=str(channel / spec.subdir))
    asyncio.run(rattler.index.index_fs(channel, write_zst=False, write_shards=False))
    return channel
