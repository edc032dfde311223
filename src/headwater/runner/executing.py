"""``ExecutingRun``: a run started by a ``Runner``, while it runs and after it ends (runner layer)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..client import Run
    from .runner import Runner

_STREAMS = ("stdout", "stderr")
_POLL_S = 0.02


class _Process(Protocol):
    pid: int

    @property
    def returncode(self) -> int | None: ...

    @property
    def drained(self) -> bool: ...

    async def wait(self, timeout: float | None) -> bool: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class RunFiles:
    """Where one execution's run attributes (``--runner-attribute-file``: JSON with the
    run id) and captured output live (in the Runner's temp dir)."""

    attributes: str
    stdout: str
    stderr: str

    def log(self, stream: str) -> str:
        return self.stdout if stream == "stdout" else self.stderr

    def remove(self) -> None:
        for path in (self.attributes, self.stdout, self.stderr):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


class ExecutingRun:
    """A run started by :class:`Runner` (``run()``, ``resume()``, ``async_run()``, ``async_resume()``).

    Attributes
    ----------
    runner : Runner
        The Runner that started it.

    Examples
    --------
    >>> with Runner("flow.py") as runner:  # doctest: +SKIP
    ...     result = runner.run(alpha=5)
    ...     print(result.status, result.run.data.score)
    successful 0.93
    """

    def __init__(self, runner: Runner, process: _Process, files: RunFiles, *, flow_name: str,
                 datastore_root: str, command: list[str]):
        self.runner = runner
        self._process = process
        self._files = files
        self._flow_name = flow_name
        self._root = datastore_root
        self.command = command  #: the argv of the run process
        self._run_id: str | None = None
        self._run: Run | None = None
        self._timed_out = False
        self._snapshot: dict[str, bytes] | None = None
        self._released = False
        self._release_when_drained = False

    def __repr__(self) -> str:
        rid = self.run_id or "?"
        return f"ExecutingRun({self._flow_name}/{rid}, status={self.status!r})"

    def __enter__(self) -> ExecutingRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.runner.cleanup()

    # ---- what the run is -------------------------------------------------------------
    @property
    def run_id(self) -> str | None:
        """The run's id, once the run process has recorded the run (``None`` before, or if it never did)."""
        if self._run_id is None and not self._released:
            try:
                with open(self._files.attributes) as f:
                    text = f.read().strip()
            except FileNotFoundError:
                return None
            self._run_id = json.loads(text)["run_id"] if text else None
        return self._run_id

    @property
    def run(self) -> Run | None:
        """The client ``Run``, read from the store the run process writes to.

        ``None`` when the process ended before recording a run (an invalid graph,
        a bad IncludeFile); its ``stderr`` says why.
        """
        if self._run is None:
            rid = self.run_id
            if rid is None:
                return None
            from ..client.core import open_run

            self._run = open_run(f"{self._flow_name}/{rid}", self._root)
        return self._run

    @property
    def status(self) -> str:
        """``"running"``, ``"successful"``, ``"failed"`` or ``"timeout"`` (stopped by ``wait(timeout=)``)."""
        if self._timed_out:
            return "timeout"
        rc = self._process.returncode
        if rc is None:
            return "running"
        return "successful" if rc == 0 else "failed"

    @property
    def returncode(self) -> int | None:
        """The run process's exit status (``None`` while it runs; negative: killed by that signal)."""
        return self._process.returncode

    @property
    def stdout(self) -> str:
        """Everything the run process wrote to stdout so far (task output, console lines)."""
        return self._read("stdout")

    @property
    def stderr(self) -> str:
        """Everything the run process wrote to stderr so far (banner, system messages, errors)."""
        return self._read("stderr")

    def _read(self, stream: str) -> str:
        return self._bytes(stream).decode("utf-8", "replace")

    def _bytes(self, stream: str) -> bytes:
        if stream not in _STREAMS:
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        if self._snapshot is not None:
            return self._snapshot[stream]
        try:
            with open(self._files.log(stream), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    # ---- waiting and streaming -------------------------------------------------------------
    async def wait(self, timeout: float | None = None, stream: str | None = None) -> ExecutingRun:
        """Wait for the run to end.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; past them the run is stopped (its process group gets
            SIGINT, then SIGKILL after a grace period) and ``status`` is
            ``"timeout"``.
        stream : {"stdout", "stderr"}, optional
            Also print that stream's lines here as they come.

        Returns
        -------
        ExecutingRun
            ``self``.
        """
        printer = asyncio.ensure_future(self._print(stream)) if stream is not None else None
        try:
            if not await self._process.wait(timeout):
                self._timed_out = True
                await self._process.stop()
        finally:
            if printer is not None:
                await printer
        return self

    async def _print(self, stream: str) -> None:
        out = sys.stdout if stream == "stdout" else sys.stderr
        async for _, line in self.stream_log(stream):
            print(line, file=out, flush=True)

    async def stream_log(self, stream: str = "stdout", position: int | None = None) -> AsyncIterator[tuple[int, str]]:
        """Yield ``(position, line)`` for each line of ``stream`` as the run writes it, until it ends.

        Parameters
        ----------
        stream : {"stdout", "stderr"}
            Which output to follow.
        position : int, optional
            Byte offset to start from: a ``position`` yielded earlier resumes
            right after that line. Default: the beginning.

        Yields
        ------
        tuple of (int, str)
            The byte offset just after the line, and the line without its newline.
        """
        if stream not in _STREAMS:
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        f = self._open_log(stream)
        try:
            f.seek(position or 0)
            while True:
                drained = self._process.drained  # read before the data: then nothing can follow it
                line = f.readline()
                if line.endswith(b"\n"):
                    yield f.tell(), line[:-1].decode("utf-8", "replace")
                elif line and drained:  # the last line, without a newline
                    yield f.tell(), line.decode("utf-8", "replace")
                elif drained:
                    return
                else:
                    f.seek(-len(line), os.SEEK_CUR)
                    await asyncio.sleep(_POLL_S)
        finally:
            f.close()

    def _open_log(self, stream: str) -> IO[bytes]:
        if self._snapshot is not None:
            return io.BytesIO(self._snapshot[stream])
        try:
            return open(self._files.log(stream), "rb")
        except FileNotFoundError:
            return io.BytesIO(self._bytes(stream))

    # ---- temp files (Runner.cleanup) -----------------------------------------------------------
    def _release(self) -> None:
        """Keep the output in memory and delete the temp files (deferred until the run ends)."""
        if self._released:
            return
        if not self._process.drained:
            self._release_when_drained = True
            return
        self._do_release()

    def _do_release(self) -> None:
        if self._released:
            return
        _ = self.run_id  # read before the file goes
        self._snapshot = {s: self._bytes(s) for s in _STREAMS}
        self._released = True
        self._files.remove()
        self.runner._forget_dir_if_empty()

    def _drained(self) -> None:
        """Called by the process driver once the output is complete."""
        if self._release_when_drained:
            self._do_release()
