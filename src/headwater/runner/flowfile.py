"""Internal (runner layer): import a flow file by path, once, and find its FlowSpec class.

The Runner needs the flow's class in-process only to check arguments before a
run starts (its Parameters) and to know the flow's name; the run itself happens
in a subprocess. The module is imported under a private name, so its
``if __name__ == "__main__":`` block does not run.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
import threading

from ..exceptions import RunnerError
from ..flow.spec import FlowSpec

_lock = threading.Lock()
# (path, mtime_ns, size) -> flow class: an edited file is imported again.
_cache: dict[tuple[str, int, int], type] = {}


def load_flow_class(path: str) -> type:
    """The FlowSpec subclass the flow file at ``path`` runs (imported once per file version)."""
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise RunnerError(f"Cannot read the flow file {path!r} ({e.strerror}).",
                          hint="Pass the path of an existing flow file.") from None
    key = (path, st.st_mtime_ns, st.st_size)
    with _lock:
        cls = _cache.get(key)
        if cls is None:
            cls = _import_flow_class(path)
            _cache[key] = cls
        return cls


def _import_flow_class(path: str) -> type:
    digest = hashlib.blake2b(path.encode(), digest_size=8).hexdigest()
    name = f"_headwater_flow_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RunnerError(f"{path!r} is not a Python file.", hint="Pass the path of a flow's .py file.")
    module = importlib.util.module_from_spec(spec)
    here = os.path.dirname(path)
    sys.modules[name] = module  # dataclasses, pickle and typing look the module up while it executes
    sys.path.insert(0, here)  # as `python flow.py` would: sibling modules import
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(name, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        raise RunnerError(
            f"Importing the flow file {path!r} failed: {type(e).__name__}: {e}",
            hint=f"Run `python {os.path.basename(path)} check` to see the whole error.",
        ) from e
    finally:
        try:
            sys.path.remove(here)
        except ValueError:
            pass
    return _pick_flow_class(module, path)


def _pick_flow_class(module: object, path: str) -> type:
    name = getattr(module, "__name__", "")
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, FlowSpec) and v is not FlowSpec and v.__module__ == name]
    if len(found) == 1:
        return found[0]
    if not found:
        raise RunnerError(f"The file {path!r} defines no FlowSpec subclass.",
                          hint="Pass the file that defines your flow class.")
    # Several flows in one file: the one its `if __name__ == "__main__":` block instantiates.
    wanted = _main_block_calls(path)
    chosen = [c for c in found if c.__name__ in wanted]
    if len(chosen) == 1:
        return chosen[0]
    names = ", ".join(sorted(c.__name__ for c in found))
    raise RunnerError(f"The file {path!r} defines several flows ({names}) and none is started by its "
                      f"`if __name__ == \"__main__\":` block.",
                      hint="End the file with `if __name__ == \"__main__\": MyFlow()` for the flow to run.")


def _main_block_calls(path: str) -> set[str]:
    """Names called in the file's ``if __name__ == "__main__":`` blocks."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and is_main_guard(node):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
                    names.add(sub.func.id)
    return names


def is_main_guard(node: ast.If) -> bool:
    """Whether ``node`` is ``if __name__ == "__main__":`` (either operand order)."""
    t = node.test
    if not (isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq)):
        return False
    sides = [t.left, t.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main
