"""``NBRunner``: run a flow class defined in a notebook cell (runner layer).

The flow's source is written to a temp ``.py`` file that ends with
``if __name__ == "__main__": MyFlow()`` and run with :class:`Runner`. The
source is the cell that defined the class (found through its step functions'
code objects, which IPython registers in ``linecache``), or the class's module
when it comes from a file. Statements of that cell that only make sense in the
notebook (``NBRunner(...)`` calls, magics, ``display``, and whatever uses their
results) are left out; imports from earlier cells are carried over.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from ..exceptions import RunnerError
from .executing import ExecutingRun
from .flowfile import is_main_guard
from .runner import Runner

if TYPE_CHECKING:
    from ..client import Run

# Names that only exist in the notebook process, or would start runs from inside the run.
_NOTEBOOK_ONLY = frozenset({"get_ipython", "display", "NBRunner", "Runner", "nbrun", "nbresume",
                            "async_run", "async_resume"})


class NBRunner:
    """Run a flow class defined in a notebook (or any module) from Python.

    Parameters
    ----------
    flow : type
        The FlowSpec subclass (defined in a notebook cell or a module).
    show_output : bool, default True
        Show the run's output as it comes (inline, in a notebook).
    env : dict, optional
        Environment variables for the run, on top of ``os.environ``.
    base_dir : str, optional
        Where the temp flow file goes (default: the system temp dir).
    file_read_timeout : float, default 3600
        Seconds ``async_run()`` waits for the run to be recorded.
    **kwargs
        Top-level options, as for :class:`Runner` (``quiet=True``,
        ``datastore_root=``, ``decospecs=[...]``).

    Examples
    --------
    In a notebook cell, after the cell that defines ``HelloFlow``:

    >>> run = NBRunner(HelloFlow).nbrun(alpha=0.5)  # doctest: +SKIP
    >>> run.data.message  # doctest: +SKIP
    'Hello, world!'
    """

    def __init__(self, flow: type, show_output: bool = True, env: dict[str, str] | None = None,
                 base_dir: str | os.PathLike[str] | None = None, file_read_timeout: float = 3600,
                 **kwargs: Any):
        from ..flow.spec import FlowSpec

        if not (isinstance(flow, type) and issubclass(flow, FlowSpec)) or flow is FlowSpec:
            raise RunnerError(f"NBRunner() expects a FlowSpec subclass, got {flow!r}.",
                              hint="Pass the flow class itself: NBRunner(MyFlow).")
        self.flow = flow
        self.show_output = show_output
        self.base_dir = os.fspath(base_dir) if base_dir is not None else tempfile.gettempdir()
        self.file_read_timeout = file_read_timeout
        self._kwargs = kwargs
        source, source_dir = flow_source(flow)
        self._source = source
        # The flow's own directory (or the notebook's) stays importable from the temp file.
        extra = [source_dir or os.getcwd()]
        env = dict(env or {})
        old = env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
        env["PYTHONPATH"] = os.pathsep.join(extra + ([old] if old else []))
        self.env = env
        self._runner: Runner | None = None
        self._path: str | None = None
        self._runner = self._make_runner()  # checks the options now, not at the first run

    def __repr__(self) -> str:
        return f"NBRunner({self.flow.__name__})"

    def __enter__(self) -> NBRunner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    @property
    def flow_file(self) -> str | None:
        """The temp file the flow runs from (``None`` after :meth:`cleanup`)."""
        return self._path

    def _make_runner(self) -> Runner:
        fd, path = tempfile.mkstemp(prefix=f"{self.flow.__name__}_", suffix=".py", dir=self.base_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self._source)
        self._path = path
        try:
            runner = Runner(path, show_output=self.show_output, env=self.env,
                            file_read_timeout=self.file_read_timeout, **self._kwargs)
        except BaseException:
            os.unlink(path)
            self._path = None
            raise
        runner._flow_cls = self.flow  # already here: no need to import the temp file
        return runner

    @property
    def runner(self) -> Runner:
        """The :class:`Runner` of the temp flow file (re-created after :meth:`cleanup`)."""
        if self._runner is None:
            self._runner = self._make_runner()
        return self._runner

    def nbrun(self, **kwargs: Any) -> Run:
        """Run the flow, wait for it, clean up, and return the client ``Run``.

        Arguments as for :meth:`Runner.run`. A failing flow returns its (unsuccessful)
        ``Run``; a run that never started raises ``RunnerError`` with the reason.
        """
        return self._blocking("run", kwargs)

    def nbresume(self, **kwargs: Any) -> Run:
        """Resume a run, wait for it, clean up, and return the new client ``Run``.

        Arguments as for :meth:`Runner.resume`.
        """
        return self._blocking("resume", kwargs)

    def _blocking(self, command: str, kwargs: dict[str, Any]) -> Run:
        try:
            ex = self.runner.run(**kwargs) if command == "run" else self.runner.resume(**kwargs)
            run = ex.run
            if run is None:
                tail = "\n".join(ex.stderr.strip().splitlines()[-8:])
                raise RunnerError(f"The {command} of {self.flow.__name__} did not start (exit status "
                                  f"{ex.returncode}):\n{tail}")
            return run
        finally:
            self.cleanup()

    def run(self, **kwargs: Any) -> ExecutingRun:
        """:meth:`Runner.run` on the flow (blocking; returns an ``ExecutingRun``)."""
        return self.runner.run(**kwargs)

    def resume(self, **kwargs: Any) -> ExecutingRun:
        """:meth:`Runner.resume` on the flow."""
        return self.runner.resume(**kwargs)

    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        """:meth:`Runner.async_run` on the flow."""
        return await self.runner.async_run(**kwargs)

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        """:meth:`Runner.async_resume` on the flow."""
        return await self.runner.async_resume(**kwargs)

    def cleanup(self) -> None:
        """Delete the temp flow file and the Runner's temp files."""
        if self._runner is not None:
            self._runner.cleanup()
            self._runner = None
        if self._path is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._path = None


# ---- finding the flow's source ----------------------------------------------------------------

def _ipython() -> Any:
    mod = sys.modules.get("IPython")
    if mod is None:
        return None
    try:
        return mod.get_ipython()
    except Exception:
        return None


def _defining_file(flow_cls: type) -> str | None:
    """The file (or notebook cell) the flow's own step functions were compiled from."""
    funcs = [v for v in vars(flow_cls).values() if getattr(v, "is_step", False)]
    for func in funcs:
        code = getattr(inspect.unwrap(func), "__code__", None)
        if code is not None:
            return str(code.co_filename)
    return None


def _defines_class(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.ClassDef) and n.name == name for n in tree.body)


def flow_source(flow_cls: type) -> tuple[str, str | None]:
    """The text of a runnable flow file for ``flow_cls``, and the directory its source came from
    (``None`` for a notebook cell)."""
    ip = _ipython()
    in_notebook = ip is not None and flow_cls.__module__ == "__main__"
    text: str | None = None
    source_dir: str | None = None
    filename = _defining_file(flow_cls)
    if filename is not None:
        lines = linecache.getlines(filename)
        if lines and _defines_class("".join(lines), flow_cls.__name__):
            text = "".join(lines)
            if os.path.isfile(filename) and not in_notebook:
                source_dir = os.path.dirname(os.path.abspath(filename))
    cells: list[str] = []
    if in_notebook:
        cells = [c for c in (ip.user_ns.get("_ih") or ip.user_ns.get("In") or []) if isinstance(c, str)]
        if text is None:  # the newest cell that defines the class
            text = next((c for c in reversed(cells) if _defines_class(c, flow_cls.__name__)), None)
    if text is None:
        module = sys.modules.get(flow_cls.__module__)
        try:
            text = inspect.getsource(module) if module is not None else None
            source_dir = os.path.dirname(os.path.abspath(inspect.getsourcefile(module) or "")) or None
        except (OSError, TypeError):
            text = None
    if text is None:
        raise RunnerError(f"Cannot find the source of flow {flow_cls.__name__}.",
                          hint="Define the flow class in a notebook cell or a .py file, then pass it to NBRunner.")
    prelude = _earlier_imports(cells, text) if in_notebook else []
    return _runnable(text, prelude, flow_cls.__name__), source_dir


def _earlier_imports(cells: list[str], defining: str) -> list[str]:
    """Top-level imports of the cells run before the defining one (they are usually in cell 1)."""
    stripped = defining.strip()
    idx = next((i for i, c in enumerate(cells) if c.strip() == stripped), len(cells))
    seen: dict[str, None] = {}
    for cell in cells[:idx]:
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not _is_future(node):
                seen.setdefault(ast.unparse(node), None)
    return list(seen)


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _names(node: ast.AST) -> set[str]:
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
    return out


def _targets(node: ast.stmt) -> set[str]:
    out: set[str] = set()
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [i.optional_vars for i in node.items if i.optional_vars is not None]
    for t in targets:
        out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return out


def _runnable(text: str, prelude: list[str], flow_name: str) -> str:
    """``text`` without its notebook-only statements, with ``prelude`` imports and the main footer.

    Dropped statements become blank lines, so a line of the cell keeps its number in the file
    (shifted by the carried-over imports, which come first).
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise RunnerError(f"The source of flow {flow_name} does not parse: {e}") from None
    lines = text.splitlines()
    futures: list[str] = []
    tainted = set(_NOTEBOOK_ONLY)
    for node in tree.body:
        drop = False
        if _is_future(node):
            futures.append(ast.unparse(node))
            drop = True
        elif isinstance(node, ast.If) and is_main_guard(node):
            drop = True
        elif not isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                                   ast.ClassDef)):
            if _names(node) & tainted:
                tainted |= _targets(node)  # and whatever uses what it made
                drop = True
        if drop:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            for i in range(start - 1, (node.end_lineno or node.lineno)):
                lines[i] = ""
    head = futures + prelude
    body = "\n".join(lines).rstrip()
    return ("\n".join(head) + "\n" if head else "") + body + \
        f'\n\n\nif __name__ == "__main__":\n    {flow_name}()\n'
