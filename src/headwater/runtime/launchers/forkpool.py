"""The warm fork pool: a zygote forked before any thread starts forks one child per task.

Each task gets a fresh copy of the already-imported world in about a
millisecond instead of a new interpreter. The zygote relays each child's
TaskResult (read from a per-child pipe) and exit status to the scheduler over
one pipe, length-prefixed, so messages never interleave.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import selectors
import signal
import struct
import sys
from typing import Any

from ..taskspec import TaskResult, TaskSpec
from .base import Finished, Launcher, TaskContext, redirect_output, run_task

_LEN = struct.Struct("<I")


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=5)
    view = memoryview(_LEN.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _Reader:
    """Incremental decoder of length-prefixed pickles from a non-blocking fd."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.eof = False
        self.idle = False  # the last read found nothing waiting

    def read(self) -> list[Any]:
        self.idle = False
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            chunk = None
            self.idle = True
        if chunk == b"":
            self.eof = True
        elif chunk:
            self.buf += chunk
        out = []
        while len(self.buf) >= 4:
            (n,) = _LEN.unpack_from(self.buf)
            if len(self.buf) < 4 + n:
                break
            out.append(pickle.loads(bytes(self.buf[4 : 4 + n])))
            del self.buf[: 4 + n]
        return out


def _warm_up(ctx: TaskContext) -> None:
    """Import and exercise the task path once so every child starts warm.

    Work done here is shared copy-on-write by all children; work left to a
    child is paid per task, plus the page faults of touching fresh pages.
    """
    import gc

    from ...store import Datastore, codec  # noqa: F401  (import cost paid once)
    from .. import executor  # noqa: F401
    from ..hooks import step_plan

    codec.encode({"warm": [1, 2.0, "x"]})
    executor.graph_info(ctx.graph)
    executor.parameter_names(ctx.flow_cls)
    executor.flow_fields(ctx.flow_cls)
    for name in ctx.graph.sorted_nodes:
        try:
            step_plan(ctx.flow_cls, name)
        except Exception:  # a bad decorator fails the step's tasks, with its own message, not the pool
            pass
    # Objects alive now never change: keep the children's GC from writing to
    # (and so copying) every page that holds them.
    gc.collect()
    gc.freeze()


def _zygote_main(ctx: TaskContext, cmd_r: int, evt_w: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the scheduler decides when tasks die
    _warm_up(ctx)
    sel = selectors.DefaultSelector()
    cmd = _Reader(cmd_r)
    sel.register(cmd_r, selectors.EVENT_READ, None)
    # A child is reported as soon as its result arrives; tearing down its address
    # space (slow on some VMs) happens off the critical path. A child that dies
    # without a result is reported when its pidfd says it exited.
    children: dict[int, _Child] = {}  # pid -> child
    while True:
        if cmd.eof and not children:
            break
        for sk, _ in sel.select():
            what = sk.data
            if what is None:
                for spec, out_path, err_path in cmd.read():
                    child = _spawn(spec, ctx, out_path, err_path, cmd_r, evt_w)
                    children[child.pid] = child
                    sel.register(child.reader.fd, selectors.EVENT_READ, ("result", child))
                    if child.pidfd >= 0:
                        sel.register(child.pidfd, selectors.EVENT_READ, ("exit", child))
                    _send(evt_w, ("started", spec.key, child.pid))
                if cmd.eof:
                    # The run process closed the pipe: it finished, or it was killed.
                    # Either way no task may outlive it and commit behind its back.
                    sel.unregister(cmd_r)
                    for child in children.values():
                        kill_task_tree(child.pid)
                continue
            kind, child = what
            # One select() batch can hold both events of a child; the first one
            # handled may already have closed the other's fd.
            if (kind == "result" and not child.reader_open) or (kind == "exit" and child.pidfd < 0):
                continue
            if kind == "result":
                msgs = child.reader.read()
                if msgs and not child.reported:
                    child.reported = True
                    result = msgs[0]
                    _send(evt_w, ("done", child.key, child.attempt, result, 0 if _ok(result) else 1))
                if child.reader.eof:
                    sel.unregister(child.reader.fd)
                    os.close(child.reader.fd)
                    child.reader_open = False
                    if child.pidfd < 0:  # no pidfd on this platform: reap now
                        _reap(child, children, evt_w, 0)
                continue
            # kind == "exit": the child's pidfd became readable
            sel.unregister(child.pidfd)
            if child.reader_open:
                # The child is dead, so all it wrote is already in the pipe. Do not
                # wait for EOF: a grandchild it forked may still hold the write end.
                msgs = child.reader.read()
                while not msgs and not child.reader.eof and not child.reader.idle:
                    msgs = child.reader.read()
                if msgs and not child.reported:
                    child.reported = True
                    _send(evt_w, ("done", child.key, child.attempt, msgs[0], 0 if _ok(msgs[0]) else 1))
                sel.unregister(child.reader.fd)
                os.close(child.reader.fd)
                child.reader_open = False
            os.close(child.pidfd)
            child.pidfd = -1
            _reap(child, children, evt_w, 0)
    os._exit(0)


class _Child:
    __slots__ = ("pid", "key", "attempt", "reader", "pidfd", "reported", "reader_open")

    def __init__(self, pid: int, key: str, attempt: int, fd: int, pidfd: int) -> None:
        self.pid, self.key, self.attempt = pid, key, attempt
        self.reader = _Reader(fd)
        self.pidfd = pidfd
        self.reported = False
        self.reader_open = True


def kill_task_tree(pid: int) -> None:
    """SIGKILL a task and every process it started (each task leads its own process group)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _ok(result_json: bytes) -> bool:
    return b'"ok": true' in result_json[:200] or b'"ok":true' in result_json[:200]


def _spawn(spec: TaskSpec, ctx: TaskContext, out_path: str, err_path: str, cmd_r: int, evt_w: int) -> _Child:
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(cmd_r)
        os.close(evt_w)
        _child_main(spec, ctx, out_path, err_path, w)
    os.close(w)
    try:
        os.setpgid(pid, pid)  # also here, so a kill right after the fork finds the group
    except OSError:
        pass
    os.set_blocking(r, False)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    return _Child(pid, spec.key, spec.attempt, r, pidfd)


def _reap(child: _Child, children: dict[int, _Child], evt_w: int, flags: int) -> None:
    _, status = os.waitpid(child.pid, flags)
    children.pop(child.pid, None)
    if not child.reported:
        child.reported = True
        _send(evt_w, ("done", child.key, child.attempt, None, os.waitstatus_to_exitcode(status)))


def _child_main(spec: TaskSpec, ctx: TaskContext, out_path: str, err_path: str, result_w: int) -> None:
    code = 1
    try:
        # Its own process group: a timeout or a failing sibling kills the task and
        # whatever it spawned. Ctrl-C reaches the run process, which kills the tasks.
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        redirect_output(out_path, err_path)
        result = run_task(spec, ctx)
        _send(result_w, result.to_json().encode())
        code = 0 if result.ok else 1
    except BaseException:  # an internal error: keep its traceback in the task's stderr
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class ForkPoolLauncher(Launcher):
    """Default local launcher (POSIX): zygote + fork per task."""

    name = "fork"

    def __init__(self, ctx: TaskContext) -> None:
        super().__init__(ctx)
        self.zygote_pid: int | None = None
        self.pids: dict[str, int] = {}
        self._cmd_w = -1
        self._evt: _Reader | None = None
        self._sel = selectors.DefaultSelector()

    def start(self) -> None:
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(cmd_w)
            os.close(evt_r)
            try:
                _zygote_main(self.ctx, cmd_r, evt_w)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(evt_w)
        os.set_blocking(evt_r, False)
        self.zygote_pid = pid
        self._cmd_w = cmd_w
        self._evt = _Reader(evt_r)
        self._sel.register(evt_r, selectors.EVENT_READ)

    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        spec = dataclasses.replace(spec, dedicated_process=True)  # each task gets a child of its own
        _send(self._cmd_w, (spec, stdout_path, stderr_path))
        self.pids[spec.key] = -1
        return -1

    def poll(self, timeout: float) -> list[Finished]:
        assert self._evt is not None
        out: list[Finished] = []
        if not self._sel.select(timeout):
            return out
        for msg in self._evt.read():
            if msg[0] == "started":
                self.pids[msg[1]] = msg[2]
            else:
                _, key, attempt, data, code = msg
                self.pids.pop(key, None)
                result = TaskResult.from_json(data.decode()) if data else None
                out.append(Finished(key, attempt, result, code))
        if self._evt.eof and not out:
            raise RuntimeError("The fork pool's zygote process died unexpectedly.")
        return out

    def kill(self, task_key: str) -> None:
        pid = self.pids.get(task_key, -1)
        if pid > 0:
            kill_task_tree(pid)

    def shutdown(self) -> None:
        for key in list(self.pids):
            self.kill(key)
        if self._cmd_w >= 0:
            os.close(self._cmd_w)
            self._cmd_w = -1
        if self.zygote_pid:
            # The zygote exits once its children are reaped; drain events so it never blocks.
            while True:
                try:
                    pid, _ = os.waitpid(self.zygote_pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid:
                    break
                if self._sel.select(0.05) and self._evt is not None:
                    self._evt.read()
            self.zygote_pid = None
        if self._evt is not None:
            self._sel.close()
            os.close(self._evt.fd)
            self._evt = None
