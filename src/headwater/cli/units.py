"""How the store commands write sizes and counts (interface layer)."""

from __future__ import annotations


def size_text(n: float) -> str:
    """``"512 B"``, ``"3.4 MiB"``, ``"1.2 TiB"``: a byte count for people."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def counted(count: int, noun: str) -> str:
    """``"1 blob"``, ``"3 blobs"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
