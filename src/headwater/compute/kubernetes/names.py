"""Deterministic Kubernetes names and label values for a task attempt."""

from __future__ import annotations

import re

import blake3

#: Longest DNS-1123 label (Job names become pod names and a label value: keep them a label).
MAX_LABEL = 63
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_NOT_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")


def digest(*parts: str, size: int = 10) -> str:
    """A short, stable hex digest of ``parts`` (blake3)."""
    return blake3.blake3("\0".join(parts).encode()).hexdigest()[:size]


def dns_label(*parts: str, prefix: str = "hw", max_len: int = MAX_LABEL) -> str:
    """A DNS-1123 label for ``parts``: readable slugs plus a digest of the exact parts.

    Two different ``parts`` never share a name unless their digests collide, and
    the result always matches ``[a-z0-9]([-a-z0-9]*[a-z0-9])?`` within ``max_len``.
    """
    tail = digest(*parts)
    slug = "-".join(filter(None, (_NOT_LABEL.sub("-", p.lower()).strip("-") for p in parts)))
    room = max_len - len(prefix) - len(tail) - 2
    slug = slug[:room].strip("-")
    return "-".join(filter(None, (prefix, slug, tail)))


def label_value(value: str) -> str:
    """``value`` as a valid label value (at most 63 characters of ``[A-Za-z0-9_.-]``, alphanumeric
    at both ends); a value that had to change keeps a digest of the original."""
    clean = _NOT_VALUE.sub("-", value).strip("-_.")
    if clean == value and len(value) <= MAX_LABEL:
        return value
    tail = digest(value, size=8)
    return (clean[: MAX_LABEL - len(tail) - 1].strip("-_.") + "-" + tail).lstrip("-")
