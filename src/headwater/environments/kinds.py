"""The values of ``--environment`` (environments layer; imports nothing, so the option table and
the run request can name them without importing a backend)."""

from __future__ import annotations

import enum


class ExecutionEnvironment(str, enum.Enum):
    """The values of ``--environment`` headwater runs with (the first is the default)."""

    LOCAL = "local"
    PYPI = "pypi"
    CONDA = "conda"
    UV = "uv"


__all__ = ["ExecutionEnvironment"]
