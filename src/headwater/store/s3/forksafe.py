"""obstore in forked processes (storage layer, internal): the obstore extension module
this process may use.

obstore runs every request on one tokio runtime per loaded copy of its extension,
started on first use. ``fork`` copies only the calling thread, so in a child forked
after the parent started that runtime the runtime's worker threads are gone and the
first request hangs for ever (tokio does not support fork). headwater forks every
task from a zygote, so a task must be able to use S3 after its parent did.

The fix: a process forked from one that had obstore loaded loads a private copy of
the extension's shared library (a file copy has its own inode, so the dynamic loader
maps it afresh, with its own statics and so its own runtime, started in the child).
The copy is made once per machine and generation of forks under
``$HEADWATER_HOME/cache/obstore/`` and costs about 10 ms to load. Clients and
exceptions must come from the module in use here: an obstore client made by one copy
cannot be passed to another copy's functions.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import threading
from types import ModuleType

#: Name of obstore's extension module (functions, ``_store`` classes, ``exceptions``).
_EXTENSION = "obstore._obstore"

_lock = threading.Lock()
#: The module usable in the process with this pid.
_active: tuple[int, ModuleType] | None = None
#: How many fresh copies this line of processes has loaded.
_generation = 0
#: Whether this process was forked from one that had obstore loaded (its runtime may be dead here).
_inherited = _EXTENSION in sys.modules


def _after_fork_in_child() -> None:
    global _lock, _inherited
    _lock = threading.Lock()  # another thread may have held it at the fork
    _inherited = _inherited or _active is not None or _EXTENSION in sys.modules


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def active_here() -> bool:
    """Whether this process has taken obstore into use (its runtime may be running here)."""
    active = _active
    return active is not None and active[0] == os.getpid()


def obstore_api(home: str) -> ModuleType:
    """obstore's extension module for this process: the installed one, or a private copy
    in a process forked after its parent loaded obstore. ``ImportError`` without obstore.

    Parameters
    ----------
    home : str
        ``Settings.home``: where the copies of the shared library are kept.
    """
    global _active, _generation
    pid = os.getpid()
    active = _active
    if active is not None and active[0] == pid:
        return active[1]
    with _lock:
        if _active is not None and _active[0] == pid:
            return _active[1]
        if _active is None and not _inherited:
            module = importlib.import_module(_EXTENSION)
        else:
            _generation += 1
            module = _load_copy(home, _generation)
        _active = (pid, module)
        return module


def _library_path() -> str:
    spec = importlib.util.find_spec("obstore")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("obstore is not installed")
    for folder in spec.submodule_search_locations:
        for name in sorted(os.listdir(folder)):
            if name.startswith("_obstore.") and name.endswith((".so", ".pyd")):
                return os.path.join(folder, name)
    raise ImportError("obstore's extension module was not found")


def _load_copy(home: str, generation: int) -> ModuleType:
    """Load copy number ``generation`` of the extension (made if missing) as a module of its own."""
    src = _library_path()
    st = os.stat(src)
    folder = os.path.join(home, "cache", "obstore", f"{st.st_size}-{st.st_mtime_ns}", f"g{generation}")
    dst = os.path.join(folder, os.path.basename(src))
    if not os.path.exists(dst):
        os.makedirs(folder, exist_ok=True)
        tmp = f"{dst}.{os.getpid()}.tmp"
        shutil.copyfile(src, tmp)  # a copy, never a link: the loader must see a new inode
        os.replace(tmp, dst)
    # The last name part must stay "_obstore": the loader calls PyInit__obstore.
    name = f"_headwater_obstore_g{generation}._obstore"
    spec = importlib.util.spec_from_file_location(name, dst)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {dst}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


__all__ = ["active_here", "obstore_api"]
