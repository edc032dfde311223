"""The rule every backend follows when a step's Python is not the launching one (environments layer).

headwater reaches a step's environment through the shim (``shim``): symlinks to the launching
environment's packages. Pure-Python ones serve any Python 3; compiled ones (blake3, zstandard)
are built for the launching interpreter's major.minor only. So an environment with another
major.minor must install its own copies of those distributions: every backend adds them to what
it resolves (``shim_requirements``), or refuses before anything runs (``ShimUnavailable``).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

from .base import StepEnvironmentError


class ShimUnavailable(StepEnvironmentError):
    """A step's environment has another Python and cannot get the distributions headwater needs."""

    headline = "headwater cannot run in the step's environment"


def same_minor(version: str) -> bool:
    """Whether ``version`` (``"3.12.1"``, ``"3.12"``) has the launching interpreter's major.minor."""
    return version.split(".")[:2] == platform.python_version().split(".")[:2]


def shim_requirements(python_version: str, asked: Iterable[str]) -> list[str]:
    """The distributions an environment of ``python_version`` must install for headwater to run in
    it: none when it has the launching major.minor (the shim serves it), else the shim's compiled
    distributions that ``asked`` (the names requested already) does not name."""
    if same_minor(python_version):
        return []
    from .shim import compiled_distributions

    names = {name.lower() for name in asked}
    return [name for name in compiled_distributions() if name.lower() not in names]


__all__ = ["ShimUnavailable", "same_minor", "shim_requirements"]
