"""Build a directory aside, then rename it into place with its ready marker written last
(environments layer): how built environments and shims appear atomically.

Every builder makes ``.<name>.<host>.<pid>.<token>.building`` beside the target, so a builder
killed midway leaves only an aside directory; the next builder removes those of this host whose
pid is no longer alive. A target is complete only when its ready marker exists: a concurrent
builder that loses the rename race keeps the winner's directory and drops its own copy.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import blake3

#: The suffix of a directory being built aside.
ASIDE_SUFFIX = ".building"
#: Written last into a built environment or shim: its presence means the directory is complete.
READY_MARKER = "headwater-env.json"


def _host() -> str:
    return blake3.blake3(socket.gethostname().encode()).hexdigest()[:8]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def aside_path(target: Path, pid: int | None = None) -> Path:
    """A fresh aside directory name for ``target``, owned by ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return target.with_name(f".{target.name[:24]}.{_host()}.{pid}.{secrets.token_hex(4)}{ASIDE_SUFFIX}")


def sweep_stale(parent: Path) -> list[Path]:
    """Remove the aside directories under ``parent`` left by dead builders of this host; returns them."""
    host = _host()
    removed = []
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return removed
    for entry in entries:
        parts = entry.name.split(".")
        # "", name, host, pid, token, "building"
        if not entry.name.endswith(ASIDE_SUFFIX) or len(parts) < 6 or parts[-4] != host:
            continue
        try:
            pid = int(parts[-3])
        except ValueError:
            continue
        if pid != os.getpid() and not _alive(pid):  # another host's pid never matches this host
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def is_ready(target: Path, marker: str) -> bool:
    """Whether ``target`` is a complete build (its ready marker exists)."""
    return (target / marker).is_file()


def build_aside(target: Path, marker: str, make: Callable[[Path], None], *,
                marker_text: str = "") -> Path:
    """``target``, built by ``make(aside_dir)`` if it is not complete yet.

    ``make`` fills a fresh aside directory; the marker (``marker_text``) is written last, then the
    directory is renamed to ``target``. A rename that fails is re-raised unless ``target`` is
    complete by then (another builder won the race). An incomplete ``target`` (not made by this
    helper) is replaced.
    """
    target = Path(target).absolute()
    if is_ready(target, marker):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target.parent)
    aside = aside_path(target)
    aside.mkdir()
    try:
        make(aside)
        (aside / marker).write_text(marker_text)
        try:
            os.rename(aside, target)
        except OSError:
            if is_ready(target, marker):
                return target  # lost the race: the winner's build is the same
            if not target.exists():
                raise
            # an incomplete target, e.g. from before this helper existed: put it aside and retry
            stale = aside_path(target)
            os.rename(target, stale)
            shutil.rmtree(stale, ignore_errors=True)
            os.rename(aside, target)
    finally:
        if aside.exists():
            shutil.rmtree(aside, ignore_errors=True)
    return target


def discard(target: Path) -> None:
    """Remove a built ``target`` (found broken) by renaming it aside first, so no reader sees half of it."""
    target = Path(target).absolute()
    if not target.exists():
        return
    gone = aside_path(target)
    try:
        os.rename(target, gone)
    except FileNotFoundError:
        return
    shutil.rmtree(gone, ignore_errors=True)


__all__ = ["ASIDE_SUFFIX", "READY_MARKER", "aside_path", "build_aside", "discard", "is_ready", "sweep_stale"]
