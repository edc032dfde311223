"""The public surface: ``headwater.__all__`` is the contract, imports stay light, layers point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import headwater

SRC = Path(headwater.__file__).parent


def test_all_is_sorted_and_resolves():
    assert headwater.__all__ == sorted(headwater.__all__)
    for name in headwater.__all__:
        assert getattr(headwater, name) is not None, name


def test_metaflow_names_importable():
    from headwater import (  # noqa: F401
        DataArtifact, Flow, FlowSpec, IncludeFile, JSONType, Metaflow, Parameter, Run, Step, Task, current,
        default_namespace, get_namespace, namespace, step,
    )

    assert Metaflow is headwater.Headwater


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_headwater_is_light():
    mods = _modules_after("import headwater")
    for heavy in ("rich", "obstore", "ray", "starlette", "numpy", "click", "sqlite3", "zstandard",
                  "headwater.client", "headwater.runtime", "headwater.runner"):
        assert heavy not in mods, f"import headwater pulled in {heavy}"


def test_flow_help_is_light(tmp_path):
    flow = Path(__file__).parents[1] / "flows" / "linear_flow.py"
    code = f"import sys, runpy; sys.argv=['x', '--help']\ntry:\n runpy.run_path({str(flow)!r}, run_name='__main__')\nexcept SystemExit: pass"
    mods = _modules_after(code)
    for heavy in ("rich", "obstore", "ray", "starlette", "numpy", "headwater.client"):
        assert heavy not in mods, f"python flow.py --help pulled in {heavy}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                found.add(node.module)
    return found


def _under(mod: str, *pkgs: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in pkgs)


def _layer_imports(layer: str) -> dict[str, set[str]]:
    return {str(p.relative_to(SRC)): _imports(p) for p in (SRC / layer).rglob("*.py")}


def test_client_never_imports_runtime_or_cli():
    for path, imps in _layer_imports("client").items():
        bad = {i for i in imps if _under(i, "headwater.runtime", "headwater.cli")}
        assert not bad, f"{path} imports {bad}"


def test_runtime_never_imports_the_client():
    # Exit hooks are the one exception: Metaflow hands them a client Run once the run has ended.
    for path, imps in _layer_imports("runtime").items():
        bad = {i for i in imps if _under(i, "headwater.client")}
        assert not bad or path.endswith("exit_hooks.py"), f"{path} imports {bad}"


def test_nothing_below_cli_imports_cli():
    for layer in ("runtime", "store", "meta", "client"):
        for path, imps in _layer_imports(layer).items():
            bad = {i for i in imps if _under(i, "headwater.cli")}
            assert not bad, f"{path} imports {bad}"


def test_nothing_below_runner_imports_runner():
    for layer in ("flow", "runtime", "store", "meta", "client", "cli"):
        for path, imps in _layer_imports(layer).items():
            bad = {i for i in imps if _under(i, "headwater.runner")}
            assert not bad, f"{path} imports {bad}"


def test_runner_imports_the_cli_only_to_parse_argv():
    # The option table is shared (headwater.top_options); the one way in is check_with_cli, which
    # parses a Runner's argv with the flow's own click command so its messages are the CLI's.
    for path, imps in _layer_imports("runner").items():
        bad = {i for i in imps if _under(i, "headwater.cli") and i != "headwater.cli.flow_cli"}
        assert not bad, f"{path} imports {bad}"


def test_runner_names_are_public():
    from headwater import ExecutingRun, NBRunner, Runner
    from headwater.runner import ExecutingRun as E, NBRunner as N, Runner as R

    assert (Runner, NBRunner, ExecutingRun) == (R, N, E)


def test_store_and_index_know_nothing_above():
    for layer in ("store", "meta"):
        for path, imps in _layer_imports(layer).items():
            bad = {i for i in imps if _under(i, "headwater.runtime", "headwater.client", "headwater.flow")}
            assert not bad, f"{path} imports {bad}"
