"""Which blobs a record names (storage layer, internal): the one definition that garbage
collection, delete and clones use to find a record's references.

An attempt record names blobs through its artifacts (every ref without ``inline``) and its
foreach item table (``foreach_items``); a run record through its code package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _ref_key(ref: Any) -> str | None:
    if isinstance(ref, dict) and "inline" not in ref:
        key = ref.get("key")
        if isinstance(key, str):
            return key
    return None


def attempt_blob_refs(rec: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """``(content key, logical size)`` of every blob an attempt record names."""
    for ref in (rec.get("artifacts") or {}).values():
        key = _ref_key(ref)
        if key is not None:
            yield key, int(ref.get("size") or 0)
    table = rec.get("foreach_items")
    if isinstance(table, dict) and isinstance(table.get("key"), str):
        yield table["key"], int(table.get("size") or 0)


def run_blob_refs(rec: dict[str, Any]) -> Iterator[tuple[str, int]]:
    """``(content key, logical size)`` of every blob a run record names (its code package)."""
    package = rec.get("code_package")
    if isinstance(package, dict):
        ref = package.get("ref")
        key = _ref_key(ref)
        if key is not None:
            yield key, int(ref.get("size") or 0)


def attempt_blob_keys(rec: dict[str, Any]) -> list[str]:
    """Content keys of every blob an attempt record names."""
    return [key for key, _ in attempt_blob_refs(rec)]


def artifact_blob_keys(artifacts: dict[str, Any]) -> list[str]:
    """Content keys of the artifacts in ``artifacts`` (name -> ref) that are blobs, not inline."""
    return [k for k in (_ref_key(r) for r in artifacts.values()) if k is not None]


__all__ = ["artifact_blob_keys", "attempt_blob_keys", "attempt_blob_refs", "run_blob_refs"]
