"""Internal (runner layer): the run's subprocess, its captured output, and stopping it.

Two drivers with one surface: ``ThreadedProcess`` (``subprocess.Popen`` plus a
reader thread per pipe; works under a running event loop, as in a notebook) for
the blocking ``run()``, and ``AsyncProcess`` (asyncio subprocess) for
``async_run()``. Each pipe goes to a log file as it arrives and, when output is
shown, to our own stdout/stderr line by line.

The child gets its own process group, so stopping it (timeout, Ctrl-C) reaches
its task processes too: SIGINT first (the run records itself as failed and
shuts its workers down, exactly as after Ctrl-C in a terminal), SIGKILL if it
is still there after a grace period.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any, TextIO

#: Seconds a stopped run gets to record its end before its whole process group is killed.
STOP_GRACE_S = 5.0
#: Seconds to wait for the pipes to close once the run process has exited.
DRAIN_GRACE_S = 5.0
_CHUNK = 65536
_POSIX = os.name == "posix"


class LogTee:
    """Writes one output stream of the child to its log file, and echoes whole lines."""

    def __init__(self, path: str, echo: TextIO | None):
        self._file: IO[bytes] = open(path, "wb")
        self._echo = echo
        self._partial = b""

    def feed(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()  # readers (stream_log) tail the file
        if self._echo is None:
            return
        *lines, self._partial = (self._partial + data).split(b"\n")
        if lines:
            self._show(b"\n".join(lines) + b"\n")

    def close(self) -> None:
        if self._echo is not None and self._partial:
            self._show(self._partial + b"\n")
            self._partial = b""
        self._file.close()

    def _show(self, data: bytes) -> None:
        try:
            self._echo.write(data.decode("utf-8", "replace"))  # type: ignore[union-attr]
            self._echo.flush()  # type: ignore[union-attr]
        except (OSError, ValueError):  # our own stream went away: keep capturing to the file
            self._echo = None


def _signal_group(pid: int, sig: int) -> None:
    try:
        if _POSIX:
            os.killpg(pid, sig)
        else:  # no process groups: the run process alone
            os.kill(pid, signal.SIGTERM if sig == signal.SIGINT else sig)
    except (ProcessLookupError, PermissionError):
        pass


def _popen_kwargs(env: dict[str, str], cwd: str) -> dict[str, Any]:
    return dict(env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=_POSIX)


class ThreadedProcess:
    """The run process driven by threads (for the blocking ``run()``/``resume()``)."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], cwd: str, tees: tuple[LogTee, LogTee],
                 on_drained: Callable[[], None]):
        self._popen = subprocess.Popen(list(argv), **_popen_kwargs(env, cwd))
        self.pid = self._popen.pid
        self._on_drained = on_drained
        self._drained = threading.Event()
        pipes = (self._popen.stdout, self._popen.stderr)
        self._threads = [threading.Thread(target=self._pump, args=(pipe, tee), daemon=True,
                                          name=f"headwater-runner-{self.pid}-{i}")
                         for i, (pipe, tee) in enumerate(zip(pipes, tees))]
        self._left = len(self._threads)
        self._lock = threading.Lock()
        for t in self._threads:
            t.start()

    @staticmethod
    def _read_all(pipe: IO[bytes], tee: LogTee) -> None:
        fd = pipe.fileno()
        try:
            while True:
                data = os.read(fd, _CHUNK)
                if not data:
                    break
                tee.feed(data)
        finally:
            tee.close()
            pipe.close()

    def _pump(self, pipe: IO[bytes], tee: LogTee) -> None:
        try:
            self._read_all(pipe, tee)
        finally:
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                self._drained.set()
                self._on_drained()

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    @property
    def drained(self) -> bool:
        """The process has exited and every byte it wrote is in the log files."""
        return self._drained.is_set() and self._popen.poll() is not None

    def wait_blocking(self) -> int:
        """Wait for the process and its output; Ctrl-C (or any exception) stops the run first."""
        try:
            rc = self._popen.wait()
        except BaseException:
            self.stop_blocking()
            raise
        # A straggler that kept our pipes open must not hang the caller.
        self._drained.wait(DRAIN_GRACE_S)
        return rc

    def stop_blocking(self, grace: float = STOP_GRACE_S) -> None:
        if self._popen.poll() is not None:
            return
        _signal_group(self.pid, signal.SIGINT)
        try:
            self._popen.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(self.pid, signal.SIGKILL)
            self._popen.wait()

    async def wait(self, timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self.drained:
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def stop(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.stop_blocking)


class AsyncProcess:
    """The run process driven by the running event loop (for ``async_run()``/``async_resume()``)."""

    def __init__(self, proc: asyncio.subprocess.Process, tees: tuple[LogTee, LogTee],
                 on_drained: Callable[[], None]):
        self._proc = proc
        self.pid = proc.pid
        self._on_drained = on_drained
        self._done = asyncio.ensure_future(self._run(tees))

    @classmethod
    async def start(cls, argv: Sequence[str], *, env: dict[str, str], cwd: str, tees: tuple[LogTee, LogTee],
                    on_drained: Callable[[], None]) -> AsyncProcess:
        proc = await asyncio.create_subprocess_exec(*argv, **_popen_kwargs(env, cwd))
        return cls(proc, tees, on_drained)

    async def _run(self, tees: tuple[LogTee, LogTee]) -> None:
        pumps = [asyncio.ensure_future(_pump(s, t))
                 for s, t in zip((self._proc.stdout, self._proc.stderr), tees)]
        try:
            await self._proc.wait()
            # A straggler that kept our pipes open must not hang the caller.
            await asyncio.wait(pumps, timeout=DRAIN_GRACE_S)
        finally:
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._on_drained()

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    @property
    def drained(self) -> bool:
        return self._done.done()

    async def wait(self, timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        if self._proc.returncode is None:
            _signal_group(self.pid, signal.SIGINT)
            try:
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), grace)
            except asyncio.TimeoutError:
                _signal_group(self.pid, signal.SIGKILL)
        await asyncio.shield(self._done)


async def _pump(stream: asyncio.StreamReader | None, tee: LogTee) -> None:
    try:
        while stream is not None:
            data = await stream.read(_CHUNK)
            if not data:
                break
            tee.feed(data)
    finally:
        tee.close()
