"""What a test sees of an envs directory ($HEADWATER_HOME/envs): the built environments only,
named by their lock's digest, beside the lock cache, package caches and shims (test helper)."""

from __future__ import annotations

import re
from pathlib import Path

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def built_envs(envs_dir: Path) -> list[Path]:
    """The built environments under ``envs_dir`` (none when it does not exist)."""
    if not envs_dir.is_dir():
        return []
    return sorted(p for p in envs_dir.iterdir() if _DIGEST.match(p.name))
