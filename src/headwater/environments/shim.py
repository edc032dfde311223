"""headwater inside a step's environment without installing it there: a directory of symlinks.

The *shim* is a directory holding a symlink to the running ``headwater`` package and to each
distribution it needs (found through ``importlib.metadata``: click, blake3, zstandard and what
they need), with their ``.dist-info``. A built environment carries one ``.pth`` line that appends
the directory named by ``HEADWATER_ENV_SHIM`` to ``sys.path``; the launcher sets it per task.
So the environment itself never names a headwater installation (one environment serves every
headwater checkout and version), nothing else of the launching environment is visible, and the
environment's own packages win over the shim's (the shim comes after ``site-packages``).
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

import blake3

from .aside import READY_MARKER, build_aside, is_ready

#: The variable naming the shim directory in a task process.
SHIM_ENV_VAR = "HEADWATER_ENV_SHIM"
#: The ``.pth`` file every built environment gets, and its one line.
PTH_NAME = "_headwater_shim.pth"
PTH_LINE = f"import os, sys; p = os.environ.get({SHIM_ENV_VAR!r}); p and p not in sys.path and sys.path.append(p)\n"
#: Optional distributions a task may need (the S3 datastore), shimmed when installed.
OPTIONAL = ("obstore",)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


def _requirement_names(dist: metadata.Distribution) -> list[str]:
    out = []
    for req in dist.requires or ():
        if "extra ==" in req.replace("extra==", "extra =="):
            continue
        m = _NAME.match(req.strip())
        if m:
            out.append(m.group(0))
    return out


def needed_distributions() -> list[metadata.Distribution]:
    """headwater's installed dependencies, transitively (headwater itself excluded)."""
    seen: dict[str, metadata.Distribution] = {}
    try:
        todo = _requirement_names(metadata.distribution("headwater"))
    except metadata.PackageNotFoundError:
        todo = ["click", "blake3", "zstandard"]
    todo += list(OPTIONAL)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        todo += _requirement_names(dist)
    return list(seen.values())


def compiled_distributions() -> list[str]:
    """The names of the shimmed distributions with compiled extensions (blake3, zstandard...):
    built for the launching Python, so an environment with another Python installs its own."""
    out = []
    for dist in needed_distributions():
        name = dist.metadata["Name"]
        if name.lower() not in OPTIONAL and any(str(f).endswith((".so", ".pyd")) for f in dist.files or ()):
            out.append(name)
    return sorted(out, key=str.lower)


def _top_level(dist: metadata.Distribution) -> set[Path]:
    """The top-level files and directories of ``dist`` (packages, modules, extensions, dist-info)."""
    out: set[Path] = set()
    for f in dist.files or ():
        parts = Path(str(f)).parts
        if not parts or parts[0] in ("..", "__pycache__") or parts[0].endswith(".data"):
            continue
        out.add(Path(str(dist.locate_file(parts[0]))))
    return out


def shim_dir(envs_dir: Path) -> Path:
    """The shim of the running headwater under ``envs_dir/.shims/``, made if missing (safe to race)."""
    import headwater

    package = Path(headwater.__file__).resolve().parent
    targets = {package}
    for dist in needed_distributions():
        targets |= _top_level(dist)
    targets = {t for t in targets if t.exists()}
    key = blake3.blake3("\n".join([sys.version, *sorted(map(str, targets))]).encode()).hexdigest()[:32]
    final = envs_dir / ".shims" / key
    if is_ready(final, READY_MARKER):
        return final

    def make(aside: Path) -> None:
        for target in targets:
            link = aside / target.name
            if not link.exists():
                link.symlink_to(target)

    return build_aside(final, READY_MARKER, make)

__all__ = ["OPTIONAL", "compiled_distributions", "PTH_LINE", "PTH_NAME", "SHIM_ENV_VAR", "needed_distributions", "shim_dir"]


def install_pth(prefix: Path, python_version: str) -> None:
    """Give the environment at ``prefix`` (its Python ``python_version``) the ``.pth`` line that puts
    the shim on ``sys.path``: every backend calls it before the environment is moved into place."""
    sites = list(prefix.glob("lib/python*/site-packages"))
    if not sites:
        major_minor = ".".join(python_version.split(".")[:2])
        sites = [prefix / "lib" / f"python{major_minor}" / "site-packages"]
        sites[0].mkdir(parents=True)
    for site in sites:
        (site / PTH_NAME).write_text(PTH_LINE)
