"""``Runner``: run a flow file from Python, blocking or with asyncio (runner layer).

A run is ``python flow.py [top-level options] run [options]`` in a subprocess,
the same command a user types, so it behaves exactly like one. The Runner adds
what a Python caller needs: arguments checked before anything starts (with the
CLI's own messages), the run id as soon as the run is recorded (the CLI's
``--run-id-file``), captured output, and the client ``Run`` read from the very
store the subprocess wrote to.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from ..exceptions import FlowFileNotFound, HeadwaterException, RunnerError, RunnerValueError
from ..store.roots import normalize_root
from .executing import ExecutingRun, RunFiles
from .options import (COMMANDS, TOP_LEVEL, check_with_cli, flow_decorator_options, render_command,
                      render_top_level)
from .process import AsyncProcess, LogTee, ThreadedProcess


class Runner:
    """Run a flow file from Python, as ``python flow_file run`` would.

    Parameters
    ----------
    flow_file : str or os.PathLike
        The flow's file (relative paths are taken from ``cwd``).
    show_output : bool, default True
        Echo the run's stdout and stderr here as they come (also captured in
        ``ExecutingRun.stdout`` / ``.stderr`` either way).
    env : dict, optional
        Environment variables for the run, on top of ``os.environ``.
    cwd : str, optional
        Working directory of the run (default: the current one).
    file_read_timeout : float, default 3600
        Seconds ``async_run()`` waits for the run to be recorded.
    **top_level_kwargs
        Top-level CLI options, as in Metaflow: ``quiet=True``,
        ``datastore_root="path"``, ``decospecs=["retry:times=2"]`` (``--with``),
        ``metadata="local"``, ``datastore="local"``, ``environment="local"``,
        ``event_logger=``, ``monitor=``, ``pylint=False``, ``package_suffixes=``
        (the table in ``headwater.top_options``).

    Raises
    ------
    FlowFileNotFound
        The flow file does not exist (a ``FileNotFoundError``).
    RunnerValueError
        An unknown keyword, or a value headwater does not support yet
        (``datastore="s3"``); a ``ValueError``.
    RunnerTypeError
        A value of the wrong type (``quiet="yes"``); a ``TypeError``.

    Examples
    --------
    >>> from headwater import Runner
    >>> with Runner("train.py", quiet=True) as runner:  # doctest: +SKIP
    ...     result = runner.run(epochs=5, tags=["nightly"])
    ...     result.status, result.run.data.best
    ('successful', 0.01)
    """

    def __init__(self, flow_file: str | os.PathLike[str], show_output: bool = True,
                 env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                 file_read_timeout: float = 3600, **top_level_kwargs: Any):
        self.cwd = os.path.abspath(os.fspath(cwd)) if cwd is not None else os.getcwd()
        if not os.path.isdir(self.cwd):
            raise RunnerError(f"The working directory {self.cwd!r} does not exist.")
        self.flow_file = os.path.join(self.cwd, os.fspath(flow_file))
        if not os.path.isfile(self.flow_file):
            raise FlowFileNotFound(f"The flow file {self.flow_file!r} does not exist.",
                              hint="Pass the path of your flow's .py file (relative paths start at cwd).")
        self.show_output = show_output
        self.file_read_timeout = file_read_timeout
        top = dict(top_level_kwargs)
        if top.get("datastore_root") is not None:
            # A relative path starts at cwd; a URL root is passed on as given.
            top["datastore_root"] = normalize_root(top["datastore_root"], cwd=self.cwd)
        self._flow_cls: type | None = None
        # Options a flow decorator adds (@project's branch=, production=) need the flow class:
        # loaded here only when a keyword is not one of the CLI's own top-level options.
        flow_options = flow_decorator_options(self.flow_cls) if set(top) - set(TOP_LEVEL) else None
        self._top_argv = render_top_level(top, flow_options)
        self.env: dict[str, str] = {**os.environ, **(env or {})}
        self.datastore_root = self._resolve_root(top.get("datastore"), top.get("datastore_root"))
        # Explicit, so the run writes where ExecutingRun.run reads, whatever the cwd.
        self.env["HEADWATER_DATASTORE_ROOT"] = self.datastore_root
        self._tmpdir: str | None = None
        self._counter = itertools.count()
        self._executions: list[ExecutingRun] = []

    def _resolve_root(self, kind: str | None, given: str | None) -> str:
        """The root the run writes to, as the CLI will resolve ``--datastore``/``--datastore-root``."""
        from ..config import load_settings

        settings = load_settings(environ=self.env, cwd=self.cwd)
        try:
            return settings.with_datastore(kind or settings.datastore, given, cwd=self.cwd).datastore_root
        except HeadwaterException as e:
            raise RunnerValueError(e.message, hint=e.hint) from None

    def __repr__(self) -> str:
        return f"Runner({self.flow_file!r})"

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.cleanup()

    @property
    def flow_cls(self) -> type:
        """The flow's class, imported in this process once (for its parameters and name)."""
        if self._flow_cls is None:
            from .flowfile import load_flow_class

            self._flow_cls = load_flow_class(self.flow_file)
        return self._flow_cls

    # ---- blocking ------------------------------------------------------------------------
    def run(self, **kwargs: Any) -> ExecutingRun:
        """Run the flow and wait for it to end.

        Parameters
        ----------
        **kwargs
            Run options (``tags=[...]``, ``max_workers=``, ``max_num_splits=``,
            ``decospecs=[...]`` for ``run --with``, ``run_id_file=`` to also
            write the run id to a file) and flow parameters by name (``alpha=5``;
            ``-`` in a name is ``_``).

        Returns
        -------
        ExecutingRun
            Finished: ``status`` is ``"successful"`` or ``"failed"`` (a failing
            flow does not raise here).

        Raises
        ------
        RunnerValueError
            Before anything runs: an unknown argument (the message lists the
            valid ones) or a missing required parameter; a ``ValueError``.
        RunnerTypeError
            Before anything runs: a value of the wrong type (the CLI's own
            message); a ``TypeError``. Both are also ``ParameterError``.
        """
        return self._execute(self._argv("run", kwargs))

    def resume(self, **kwargs: Any) -> ExecutingRun:
        """Resume a run and wait for it to end.

        Parameters
        ----------
        **kwargs
            ``origin_run_id=`` (default: your latest run), ``step_to_rerun=``
            (default: the failed step), ``tags=[...]``, ``max_workers=``,
            ``max_num_splits=``, ``decospecs=[...]``, ``run_id_file=``.
            Parameters come from the origin run.

        Returns
        -------
        ExecutingRun
            Finished, as for :meth:`run`.
        """
        return self._execute(self._argv("resume", kwargs))

    # ---- asyncio -----------------------------------------------------------------------------
    async def async_run(self, **kwargs: Any) -> ExecutingRun:
        """Start the flow; return as soon as the run is recorded (its id is known).

        Same arguments as :meth:`run`. ``await result.wait()`` for the end;
        ``result.stream_log("stdout")`` follows its output.
        """
        return await self._execute_async(self._argv("run", kwargs))

    async def async_resume(self, **kwargs: Any) -> ExecutingRun:
        """Start a resume; return as soon as the new run is recorded. Same arguments as :meth:`resume`."""
        return await self._execute_async(self._argv("resume", kwargs))

    # ---- cleanup --------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Delete the temp files (run-id files and captured output).

        Finished runs keep their ``stdout``/``stderr`` in memory; a run still in
        progress keeps its files until it ends.
        """
        for ex in self._executions:
            ex._release()
        self._forget_dir_if_empty()

    def _forget_dir_if_empty(self) -> None:
        if self._tmpdir is not None and all(ex._released for ex in self._executions):
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    # ---- mechanics ----------------------------------------------------------------------------------
    def _call(self, args: list[str]) -> CommandResult:
        """Internal (the Deployer's commands): run ``python flow_file [top-level options] *args`` to its
        end, its output shown (``show_output``) and captured."""
        files = self._new_files()
        tees = self._tees(files)
        argv = [sys.executable, self.flow_file, *self._top_argv, *args]
        try:
            process = ThreadedProcess(argv, env=self.env, cwd=self.cwd, tees=tees, on_drained=lambda: None)
        except BaseException:
            _discard(tees, files)
            raise
        try:
            rc = process.wait_blocking()
            with open(files.stdout, encoding="utf-8", errors="replace") as out, \
                    open(files.stderr, encoding="utf-8", errors="replace") as err:
                return CommandResult(argv, rc, out.read(), err.read())
        finally:
            files.remove()

    def _argv(self, command: str, kwargs: dict[str, Any]) -> list[str]:
        if command not in COMMANDS:
            raise RunnerError(f"Unknown command {command!r}.")
        argv = render_command(command, kwargs, self.flow_cls, self.env)
        if argv:  # nothing given, nothing to check: the common case costs no click import
            check_with_cli(self.flow_cls, command, argv)
        return [sys.executable, self.flow_file, *self._top_argv, command, *argv]

    def _new_files(self) -> RunFiles:
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="headwater-runner-")
        base = os.path.join(self._tmpdir, str(next(self._counter)))
        return RunFiles(attributes=base + ".attributes", stdout=base + ".stdout", stderr=base + ".stderr")

    def _tees(self, files: RunFiles) -> tuple[LogTee, LogTee]:
        show = self.show_output
        return (LogTee(files.stdout, sys.stdout if show else None),
                LogTee(files.stderr, sys.stderr if show else None))

    def _wrap(self, process: Any, files: RunFiles, argv: list[str], holder: list[ExecutingRun]) -> ExecutingRun:
        ex = ExecutingRun(self, process, files, flow_name=self.flow_cls.__name__,
                          datastore_root=self.datastore_root, command=argv)
        holder.append(ex)
        self._executions.append(ex)
        return ex

    def _execute(self, argv: list[str]) -> ExecutingRun:
        files = self._new_files()
        argv = argv + ["--runner-attribute-file", files.attributes]
        holder: list[ExecutingRun] = []
        tees = self._tees(files)
        try:
            process = ThreadedProcess(argv, env=self.env, cwd=self.cwd, tees=tees,
                                      on_drained=lambda: holder and holder[0]._drained())
        except BaseException:
            _discard(tees, files)
            raise
        ex = self._wrap(process, files, argv, holder)
        process.wait_blocking()
        return ex

    async def _execute_async(self, argv: list[str]) -> ExecutingRun:
        files = self._new_files()
        argv = argv + ["--runner-attribute-file", files.attributes]
        holder: list[ExecutingRun] = []
        tees = self._tees(files)
        try:
            process = await AsyncProcess.start(argv, env=self.env, cwd=self.cwd, tees=tees,
                                               on_drained=lambda: holder and holder[0]._drained())
        except BaseException:
            _discard(tees, files)
            raise
        ex = self._wrap(process, files, argv, holder)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.file_read_timeout
        delay = 0.002
        try:
            while ex.run_id is None and not process.drained:
                if loop.time() >= deadline:
                    await process.stop()
                    raise RunnerError(
                        f"The run of {self.flow_cls.__name__} was not recorded within {self.file_read_timeout} s; "
                        "it was stopped.",
                        hint="Raise file_read_timeout= if starting the run legitimately takes this long.")
                await process.wait(delay)
                delay = min(delay * 2, 0.05)
        except asyncio.CancelledError:
            await asyncio.shield(process.stop())
            raise
        return ex


@dataclass(frozen=True)
class CommandResult:
    """A flow command run to its end by ``Runner._call``: its argv, exit status and output."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def _discard(tees: tuple[LogTee, LogTee], files: RunFiles) -> None:
    """Undo ``_tees`` for a process that could not be started."""
    for tee in tees:
        tee.close()
    files.remove()
