"""Running the ``uv`` binary and turning its failures into the environment errors a user can act on.

uv is a Python package shipping one binary (the ``envs`` extra); ``uv.find_uv_bin()`` finds it,
else ``uv`` on ``PATH``. Errors are read from uv's ``error:``/``cause:`` lines, whose wording
is uv's own (checked against uv 0.13).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .base import (IndexUnreachable, PackageNotFound, PythonUnavailable, StepEnvironmentError,
                   Unsatisfiable)

#: The index uv uses when none is configured (named in error messages).
DEFAULT_INDEX = "https://pypi.org/simple"

_NOT_FOUND = re.compile(r"Because (\S+) was not found in the (package registry|provided package locations)")
#: uv's words for a requirement of the user's that no version of the package satisfies (a
#: typo'd or unpublished version, not a conflict between packages).
_NO_VERSION = re.compile(r"there is no version of ([A-Za-z0-9][A-Za-z0-9._-]*?)([<>=!~]\S*)? and you require \1")
_FETCH = re.compile(r"Failed to fetch: `?(\S+?)`?$", re.M)
_URL = re.compile(r"for url \(`?(\S+?)`?\)")
_NETWORK = ("Connection refused", "tcp connect error", "dns error", "failed to lookup address",
            "error sending request", "timed out", "Network is unreachable")


class UvMissing(StepEnvironmentError):
    """uv is not installed."""

    headline = "uv is not installed"


def uv_binary() -> str:
    """The path of the uv binary."""
    try:
        import uv

        return str(uv.find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return found
    raise UvMissing("PyPI environments (@pypi, --environment=pypi|uv) are built with uv, which is not installed.",
                    hint="pip install 'headwater[envs]' (or pip install uv).")


@dataclass(frozen=True)
class IndexConfig:
    """Where uv finds packages: headwater's settings, passed as uv options (uv's own ``UV_*``
    environment variables also apply: the environment is passed through)."""

    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def args(self) -> list[str]:
        out = ["--no-index"] if self.no_index else []
        if self.index_url and not self.no_index:
            out += ["--index-url", self.index_url]
        for link in self.find_links:
            out += ["--find-links", link]
        return out

    def describe(self, environ: Mapping[str, str]) -> str:
        """What was tried, for messages."""
        places = [] if self.no_index else [
            self.index_url or environ.get("UV_INDEX_URL") or environ.get("UV_DEFAULT_INDEX") or DEFAULT_INDEX]
        places += [f"find-links {link}" for link in self.find_links]
        return ", ".join(places) or "no index and no find-links"


def run_uv(args: Sequence[str], *, what: str, index: IndexConfig, environ: Mapping[str, str] | None = None,
           stdin: str | None = None, cwd: str | None = None) -> str:
    """Run ``uv args`` and return its stdout; a failure is raised as the matching error.

    ``what`` names what was being done in the user's terms (``"resolving @pypi of step 'start'"``).
    """
    env = dict(os.environ if environ is None else environ)
    env.pop("VIRTUAL_ENV", None)  # uv must not act on the launching virtual environment
    p = subprocess.run([uv_binary(), *args], input=stdin, capture_output=True, text=True, env=env, cwd=cwd)
    if p.returncode != 0:
        raise uv_error(p.stderr, what=what, index=index, environ=env)
    return p.stdout


def uv_error(stderr: str, *, what: str, index: IndexConfig, environ: Mapping[str, str]) -> StepEnvironmentError:
    """The error for uv's ``stderr`` (its warnings left out of the message)."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("error:")), 0)
    text = "\n".join(ln for ln in lines[start:] if not ln.startswith("warning:"))
    tried = index.describe(environ)
    found = _NOT_FOUND.search(text)
    if found:
        name = found.group(1)
        return PackageNotFound(f"Package {name!r} was not found while {what} (looked in: {tried}).",
                               hint=f"Check the spelling of {name!r}, or point HEADWATER_PYPI_INDEX_URL / "
                                    "HEADWATER_PYPI_FIND_LINKS at an index that has it.")
    missing = _NO_VERSION.search(text)
    if missing:
        name, spec = missing.group(1), missing.group(2) or ""
        return PackageNotFound(f"No version of package {name!r} matches {name}{spec} while {what} (looked in: {tried}).",
                               hint=f"Ask for a version of {name!r} that exists (see the index), or point "
                                    "HEADWATER_PYPI_INDEX_URL / HEADWATER_PYPI_FIND_LINKS at an index that has it.")
    if "unsatisfiable" in text or "No solution found" in text:
        cause = "\n".join(ln.strip().removeprefix("cause:").strip() for ln in text.splitlines()[1:])
        return Unsatisfiable(f"The requirements cannot be installed together ({what}):\n{cause}",
                             hint="Relax or change the versions named above so one version of each package fits.")
    if "No interpreter found" in text or "Python" in text and ("not supported" in text or "not found" in text):
        return PythonUnavailable(f"{text.splitlines()[0].removeprefix('error:').strip()} ({what}).",
                                 hint="Install that Python (e.g. `uv python install 3.12`), or change python= "
                                      "(leave it out to use the launching Python).")
    if any(marker in text for marker in _NETWORK):
        url = (_FETCH.search(text) or _URL.search(text))
        where = url.group(1) if url else tried
        return IndexUnreachable(f"The package index could not be reached while {what}: {where} "
                                f"(tried: {tried}).",
                                hint="Check the network, or set HEADWATER_PYPI_INDEX_URL to a reachable index "
                                     "(or HEADWATER_PYPI_FIND_LINKS to a directory of wheels).")
    return StepEnvironmentError(f"uv failed while {what}:\n{text}", hint="See uv's message above.")


__all__ = ["DEFAULT_INDEX", "IndexConfig", "UvMissing", "run_uv", "uv_binary", "uv_error"]
