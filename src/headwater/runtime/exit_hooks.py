"""Call a flow's ``@exit_hook`` functions once its run has ended (orchestration layer).

Hooks run in the run's process, one after another, after the run's end is
recorded (so the ``Run`` they get reads as finished). Their output goes to the
run's stdout; a hook that fails is reported as Metaflow reports it (its traceback on
stderr, ``[exit_hook] Hook 'name' failed with error: ...`` on stdout), and the next one
still runs.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from typing import Any, Callable

from ..flow.flow_decorators import flow_decorators


def _resolve(hook: Any, flow_cls: type) -> Callable[..., Any]:
    if callable(hook):
        return hook
    module = sys.modules.get(flow_cls.__module__)
    fn = getattr(module, hook, None) if module is not None else None
    if fn is None and "." in hook:
        mod_name, _, attr = hook.rpartition(".")
        fn = getattr(importlib.import_module(mod_name), attr, None)
    if not callable(fn):
        raise LookupError(f"no function {hook!r} in the flow's module, and it is not an importable dotted name")
    return fn


def _wants_run(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "run" or p.kind is p.VAR_KEYWORD for p in params)


def _hook_name(hook: Any) -> str:
    return hook if isinstance(hook, str) else getattr(hook, "__name__", repr(hook))


def run_exit_hooks(flow_cls: type, run_id: str, ok: bool, datastore_root: str) -> list[str]:
    """Call the hooks for a run that succeeded (``ok``) or failed; returns the names of
    the hooks that failed (each reported: traceback on stderr, one line on stdout)."""
    hooks = [h for d in flow_decorators(flow_cls) if d.name == "exit_hook" for h in d.validate().hooks(ok)]
    failed: list[str] = []
    run: Any = None
    for hook in hooks:
        name = _hook_name(hook)
        try:
            fn = _resolve(hook, flow_cls)
            if _wants_run(fn):
                if run is None:
                    run = _client_run(flow_cls.__name__, run_id, datastore_root)
                fn(run=run)
            else:
                fn()
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # a hook must never change how the run ended
            failed.append(name)
            sys.stdout.flush()
            # As Metaflow: the hook's traceback on stderr, then the one-line report on stdout.
            sys.stderr.write("".join(traceback.format_exception(type(e), e, e.__traceback__)))
            sys.stderr.flush()
            sys.stdout.write(f"[exit_hook] Hook {name!r} failed with error: {type(e).__name__}: {e}\n")
        finally:
            sys.stdout.flush()
    return failed


def _client_run(flow_name: str, run_id: str, datastore_root: str) -> Any:
    from ..client import Run
    from ..client.source import pin_root

    pin_root(datastore_root)  # the run process may use --datastore-root; hooks read that store
    return Run(f"{flow_name}/{run_id}", _namespace_check=False)
