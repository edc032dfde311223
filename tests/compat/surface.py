"""Print an engine's user-facing surface as JSON (run with that engine's Python).

``python surface.py ENGINE FLOW_FILE`` where ENGINE is ``metaflow`` or ``headwater``:
top-level names, step and flow decorators with their attribute defaults, the flow CLI
(commands, sub-commands and options, read from click's objects, not from help text) and
the public members of the client classes. ``compat_table.py`` turns two of these into
docs/compat.md. For headwater, the decorator names to probe (Metaflow's) come as a third
argument, a JSON object ``{"step": [...], "flow": [...]}``.
"""

from __future__ import annotations

import importlib
import json
import runpy
import sys
import types
from typing import Any

CLIENT_CLASSES = ("Metaflow", "Flow", "Run", "Step", "Task", "DataArtifact")
# Modules users import from the package (the other submodules are internals).
USER_MODULES = ("cards",)


class _Captured(BaseException):
    """Raised instead of running the CLI (BaseException: engines catch Exception)."""


def names(mod: types.ModuleType) -> list[str]:
    out = [n for n in dir(mod) if not n.startswith("_") and not isinstance(getattr(mod, n), types.ModuleType)]
    out += [m for m in USER_MODULES if _has_module(mod.__name__ + "." + m)]
    out += [n for n in ("__version__",) if hasattr(mod, n)]
    return sorted(set(out))


def _has_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def exceptions(engine: str) -> list[str]:
    """Exception classes users catch, named as Metaflow names them (``Headwater`` -> ``Metaflow``)."""
    mod = importlib.import_module("metaflow.exception" if engine == "metaflow" else "headwater.exceptions")
    found = [n for n, v in vars(mod).items()
             if isinstance(v, type) and issubclass(v, BaseException) and v.__module__ == mod.__name__]
    # The @catch wrapper is not an exception class in either engine, but users import it from here.
    found += [n for n in ("MetaflowExceptionWrapper", "HeadwaterExceptionWrapper") if hasattr(mod, n)]
    return sorted({n.replace("Headwater", "Metaflow") for n in found})


def _defaults(deco: Any) -> dict[str, str]:
    return {k: repr(v) for k, v in sorted(deco.defaults.items())}


def step_decorators(mod: types.ModuleType, wanted: list[str]) -> dict[str, dict[str, str]]:
    """Apply each decorator to a throwaway step function and read what it attached."""
    out = {}
    for name in wanted:
        fn = getattr(mod, name, None)
        if fn is None:
            continue

        def probe(self: Any) -> None:
            pass

        try:
            f = fn(mod.step(probe))
            out[name] = _defaults(f.decorators[-1])
        except Exception as e:  # a decorator that cannot be applied this way is reported, not hidden
            out[name] = {"__error__": repr(e)}
    return out


def flow_decorators(mod: types.ModuleType, wanted: list[str]) -> dict[str, dict[str, str]]:
    if mod.__name__ == "metaflow":
        from metaflow.plugins import FLOW_DECORATORS

        return {d.name: _defaults(d) for d in FLOW_DECORATORS if d.name in wanted}
    out = {}
    for name in wanted:
        fn = getattr(mod, name, None)
        if fn is None:
            continue
        try:
            from headwater.flow.flow_decorators import flow_decorators as attached

            cls = fn(type(f"Probe{name}", (mod.FlowSpec,), {"__module__": __name__}))
            out[name] = _defaults(attached(cls)[-1])
        except Exception as e:
            out[name] = {"__error__": repr(e)}
    return out


def cli(engine: str, flow_file: str) -> dict[str, Any]:
    """Every command of ``python flow_file`` with its options, from click's own objects."""
    click = importlib.import_module("metaflow._vendor.click" if engine == "metaflow" else "click")
    core = importlib.import_module(click.__name__ + ".core")
    # Old click (Metaflow's vendored copy) defines main() on BaseCommand; new click on Command.
    base = vars(core).get("BaseCommand") or core.Command
    seen: dict[str, Any] = {}

    def capture(self: Any, *a: Any, **k: Any) -> None:
        seen["root"] = self
        raise _Captured()

    base.main = capture
    sys.argv = [flow_file]
    try:
        runpy.run_path(flow_file, run_name="__main__")
    except _Captured:
        pass
    root = seen["root"]
    out: dict[str, Any] = {}

    def walk(cmd: Any, ctx: Any, path: str) -> None:
        options = {}
        for p in cmd.params:
            if isinstance(p, click.Option):
                for o in p.opts + p.secondary_opts:
                    if o.startswith("--"):
                        options[o] = bool(getattr(p, "hidden", False))
        out[path] = {"hidden": bool(getattr(cmd, "hidden", False)), "options": options}
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, click.Context(sub, parent=ctx, info_name=name), f"{path} {name}".strip())

    walk(root, click.Context(root, info_name="flow.py"), "")
    return out


def client(mod: types.ModuleType) -> dict[str, list[str]]:
    out = {}
    for cls_name in CLIENT_CLASSES:
        cls = getattr(mod, cls_name, None)
        if cls is not None:
            out[cls_name] = sorted(n for n in dir(cls) if not n.startswith("_"))
    return out


def main(engine: str, flow_file: str, wanted_json: str = "{}") -> None:
    mod = importlib.import_module(engine)
    wanted = json.loads(wanted_json)
    if engine == "metaflow":
        from metaflow.plugins import FLOW_DECORATORS, STEP_DECORATORS

        wanted = {"step": [d.name for d in STEP_DECORATORS], "flow": [d.name for d in FLOW_DECORATORS]}
    doc = {
        "names": names(mod),
        "step_decorators": step_decorators(mod, wanted.get("step", [])),
        "flow_decorators": flow_decorators(mod, wanted.get("flow", [])),
        "client": client(mod),
        "exceptions": exceptions(engine),
        "cli": cli(engine, flow_file),
    }
    json.dump(doc, sys.__stdout__, sort_keys=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
