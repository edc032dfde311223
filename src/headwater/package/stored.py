"""A code package in the datastore (internal): saved content-addressed, recorded in
the run record under ``code_package``, fetched and extracted on a worker into a
cache directory named by the package key, and put on ``sys.path``.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import tempfile
from typing import Any

from ..store.content import ContentStore
from .archive import CodePackage, CodePackageError

#: The run record's field that describes the run's code package.
PACKAGE_RECORD_KEY = "code_package"
_CACHE_ENV = "HEADWATER_CODE_CACHE"


def save_package(content: ContentStore, pkg: CodePackage) -> dict[str, Any]:
    """Store ``pkg``'s archive (a dedup hit when the same code was stored before).

    Returns
    -------
    dict
        The run record's ``code_package`` value: the artifact ref of the archive
        bytes (``key``, ``size``, ...) plus ``script`` (the flow file's path in the
        package), ``suffixes`` and ``files`` (how many files it holds).
    """
    # Never inline, however small: a pod fetches the package by its key alone (bootstrap --package-key).
    ref = content.save(pkg.blob, what="the code package", inline=False)
    return {"ref": ref, "key": ref["key"], "script": pkg.script, "suffixes": list(pkg.suffixes),
            "files": len(pkg.entries)}


def package_bytes(content: ContentStore, info: dict[str, Any]) -> bytes:
    """The archive bytes a ``code_package`` record names (verified against its key)."""
    return content.load(info["ref"])


def default_cache_dir(environ: dict[str, str] | None = None) -> str:
    """Where extracted packages live: ``HEADWATER_CODE_CACHE``, else ``<tmp>/headwater-code``."""
    env = os.environ if environ is None else environ
    return env.get(_CACHE_ENV) or os.path.join(tempfile.gettempdir(), "headwater-code")


def extract_package(blob: bytes, dest: str) -> str:
    """Extract the archive ``blob`` into the directory ``dest`` (created atomically); returns ``dest``.

    An existing ``dest`` is taken as the same package extracted before and kept.
    Paths that would leave ``dest`` (absolute, ``..``, links) are refused.
    """
    if os.path.isdir(dest):
        return dest
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=parent)
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            try:
                tar.extractall(tmp, filter="data")
            except tarfile.FilterError as e:
                raise CodePackageError(f"The code package holds an unsafe path: {e}.",
                                       hint="Rebuild the package with `python <flow file> package save`.") from None
        try:
            os.rename(tmp, dest)
        except OSError:
            if not os.path.isdir(dest):  # not a concurrent extraction of the same package
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch_package(content: ContentStore, info: dict[str, Any], cache_dir: str | None = None, *,
                  add_to_path: bool = True) -> str:
    """Fetch the package a run record's ``code_package`` names, extract it and return its directory.

    Parameters
    ----------
    content : ContentStore
        The datastore's content store.
    info : dict
        The run record's ``code_package`` value.
    cache_dir : str, optional
        Parent of the extracted packages (``default_cache_dir()`` if not given); each
        package is extracted once, into ``<cache_dir>/<key>``.
    add_to_path : bool
        Put the directory first on ``sys.path`` so the flow module imports from it.
    """
    dest = os.path.join(cache_dir or default_cache_dir(), info["key"])
    if not os.path.isdir(dest):
        extract_package(package_bytes(content, info), dest)
    if add_to_path and dest not in sys.path:
        sys.path.insert(0, dest)
    return dest


def run_package_fields(content: ContentStore, script: str, suffixes: str | None) -> dict[str, Any]:
    """``{"code_package": ...}`` for a run record: builds and stores the flow's package."""
    from .archive import build_package, parse_suffixes

    return {PACKAGE_RECORD_KEY: save_package(content, build_package(script, parse_suffixes(suffixes)))}
