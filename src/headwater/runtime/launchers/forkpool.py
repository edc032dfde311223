"""The warm fork pool: a zygote forked before any thread starts forks one child per task.

Each task gets a fresh copy of the already-imported world in about a
millisecond instead of a new interpreter. The zygote relays each child's
TaskResult (read from a per-child pipe) and exit status to the scheduler over
one pipe, length-prefixed, so messages never interleave.

Neither side ever blocks on a write: the run process and the zygote each queue
outgoing messages and write them as the pipe accepts them, from the same select
loop that reads, so a large command crossing a large result cannot deadlock.
The zygote kills every task it started as soon as it loses the run process
(EOF, EPIPE, the run's pidfd, an error of its own); each task also checks that
the run process lives before it commits (``runtime.owner``).
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

from ..owner import RunGoneError, process_token
from ..taskspec import TaskResult, TaskSpec
from .admission import LocalMachine
from .base import Finished, Launcher, TaskContext, redirect_output, run_task

_LEN = struct.Struct("<I")


def _send(fd: int, obj: Any) -> None:
    """Blocking write of one message: only a task child uses it, towards a zygote that always reads."""
    data = pickle.dumps(obj, protocol=5)
    view = memoryview(_LEN.pack(len(data)) + data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _Outbox:
    """Length-prefixed pickles queued for a non-blocking fd, written as far as the pipe accepts.

    ``flush`` raises ``BrokenPipeError`` once the reader is gone.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        os.set_blocking(fd, False)

    def push(self, obj: Any) -> None:
        data = pickle.dumps(obj, protocol=5)
        self.buf += _LEN.pack(len(data))
        self.buf += data
        self.flush()

    def flush(self) -> None:
        while self.buf:
            try:
                n = os.write(self.fd, self.buf)
            except BlockingIOError:
                return
            del self.buf[:n]

    @property
    def pending(self) -> bool:
        return bool(self.buf)


def _pidfd(pid: int) -> int:
    """A pidfd for ``pid`` (readable once it exits), or -1 where the platform has none."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return -1


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


def _zygote_main(ctx: TaskContext, cmd_r: int, evt_w: int, run_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the scheduler decides when tasks die
    run_fd = _pidfd(run_pid)
    if os.getppid() != run_pid:  # the run process died before the pidfd was taken
        return
    _warm_up(ctx)
    children: dict[int, _Child] = {}  # pid -> child
    try:
        _serve(ctx, cmd_r, _Outbox(evt_w), run_fd, children)
    except BrokenPipeError:  # the run process is gone: nobody reads the events any more
        pass
    finally:
        # However the zygote stops (the run process finished, died or closed the pipe, or an
        # error here), no task may outlive it and commit behind the run's back.
        for child in children.values():
            kill_task_tree(child.pid)


def _serve(ctx: TaskContext, cmd_r: int, out: _Outbox, run_fd: int, children: dict[int, _Child]) -> None:
    """The zygote's loop: spawn a child per command, relay results; return when the run is gone."""
    sel = selectors.DefaultSelector()
    cmd = _Reader(cmd_r)
    sel.register(cmd_r, selectors.EVENT_READ, None)
    if run_fd >= 0:
        sel.register(run_fd, selectors.EVENT_READ, ("run", None))
    writing = False  # evt_w is registered for EVENT_WRITE while messages wait
    # A child is reported as soon as its result arrives; tearing down its address
    # space (slow on some VMs) happens off the critical path. A child that dies
    # without a result is reported when its pidfd says it exited.
    while True:
        if out.pending != writing:
            if writing:
                sel.unregister(out.fd)
            else:
                sel.register(out.fd, selectors.EVENT_WRITE, ("flush", None))
            writing = not writing
        for sk, _ in sel.select():
            what = sk.data
            if what is None:
                for spec, out_path, err_path in cmd.read():
                    child = _spawn(spec, ctx, out_path, err_path, (cmd_r, out.fd, run_fd))
                    children[child.pid] = child
                    sel.register(child.reader.fd, selectors.EVENT_READ, ("result", child))
                    if child.pidfd >= 0:
                        sel.register(child.pidfd, selectors.EVENT_READ, ("exit", child))
                    out.push(("started", spec.key, child.pid))
                if cmd.eof:  # the run process closed the pipe: it finished, or it was killed
                    return
                continue
            kind, child = what
            if kind == "run":  # the run process exited, even if a process it forked holds the pipe
                return
            if kind == "flush":
                out.flush()
                continue
            # One select() batch can hold both events of a child; the first one
            # handled may already have closed the other's fd.
            if (kind == "result" and not child.reader_open) or (kind == "exit" and child.pidfd < 0):
                continue
            if kind == "result":
                msgs = child.reader.read()
                if msgs and not child.reported:
                    child.reported = True
                    result = msgs[0]
                    out.push(("done", child.key, child.attempt, result, 0 if _ok(result) else 1))
                if child.reader.eof:
                    sel.unregister(child.reader.fd)
                    os.close(child.reader.fd)
                    child.reader_open = False
                    if child.pidfd < 0:  # no pidfd on this platform: reap now
                        _reap(child, children, out)
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
                    out.push(("done", child.key, child.attempt, msgs[0], 0 if _ok(msgs[0]) else 1))
                sel.unregister(child.reader.fd)
                os.close(child.reader.fd)
                child.reader_open = False
            os.close(child.pidfd)
            child.pidfd = -1
            _reap(child, children, out)


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


def _spawn(spec: TaskSpec, ctx: TaskContext, out_path: str, err_path: str, zygote_fds: tuple[int, ...]) -> _Child:
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        for fd in zygote_fds:
            if fd >= 0:
                os.close(fd)
        _child_main(spec, ctx, out_path, err_path, w)
    os.close(w)
    try:
        os.setpgid(pid, pid)  # also here, so a kill right after the fork finds the group
    except OSError:
        pass
    os.set_blocking(r, False)
    return _Child(pid, spec.key, spec.attempt, r, _pidfd(pid))


def _reap(child: _Child, children: dict[int, _Child], out: _Outbox) -> None:
    _, status = os.waitpid(child.pid, 0)
    children.pop(child.pid, None)
    if not child.reported:
        child.reported = True
        out.push(("done", child.key, child.attempt, None, os.waitstatus_to_exitcode(status)))


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
    except RunGoneError as e:  # the run died under the task: nothing committed, say why in its log
        sys.stderr.write(f"{e}\n")
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
        self.admission = LocalMachine.from_description(ctx.machine)
        self.zygote_pid: int | None = None
        self.pids: dict[str, int] = {}
        self._out: _Outbox | None = None
        self._writing = False  # the command pipe is registered for EVENT_WRITE while commands wait
        self._doomed: set[str] = set()  # killed before the zygote said it started
        self._evt: _Reader | None = None
        self._sel = selectors.DefaultSelector()
        self._owner = ""

    def start(self) -> None:
        cmd_r, cmd_w = os.pipe()
        evt_r, evt_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        run_pid = os.getpid()
        self._owner = process_token()
        pid = os.fork()
        if pid == 0:
            os.close(cmd_w)
            os.close(evt_r)
            try:
                _zygote_main(self.ctx, cmd_r, evt_w, run_pid)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(evt_w)
        os.set_blocking(evt_r, False)
        self.zygote_pid = pid
        self._out = _Outbox(cmd_w)
        self._evt = _Reader(evt_r)
        self._sel.register(evt_r, selectors.EVENT_READ, "events")

    def launch(self, spec: TaskSpec, stdout_path: str, stderr_path: str) -> int:
        # Each task gets a child of its own, and commits only while this process lives.
        spec = dataclasses.replace(spec, dedicated_process=True, run_owner=self._owner)
        self._write(lambda out: out.push((spec, stdout_path, stderr_path)))
        self.pids[spec.key] = -1
        return -1

    def _write(self, act: Any) -> None:
        """Queue or flush commands; never blocks (the zygote may be busy writing to us)."""
        assert self._out is not None
        try:
            act(self._out)
        except BrokenPipeError:
            raise RuntimeError("The fork pool's zygote process died unexpectedly.") from None
        if self._out.pending != self._writing:
            if self._writing:
                self._sel.unregister(self._out.fd)
            else:
                self._sel.register(self._out.fd, selectors.EVENT_WRITE, "commands")
            self._writing = not self._writing

    def poll(self, timeout: float) -> list[Finished]:
        assert self._evt is not None
        out: list[Finished] = []
        ready = self._sel.select(timeout)
        if any(key.data == "commands" for key, _ in ready):
            self._write(_Outbox.flush)
        if not any(key.data == "events" for key, _ in ready):
            return out
        for msg in self._evt.read():
            if msg[0] == "started":
                self.pids[msg[1]] = msg[2]
                if msg[1] in self._doomed:
                    self._doomed.discard(msg[1])
                    kill_task_tree(msg[2])
            else:
                _, key, attempt, data, code = msg
                self.pids.pop(key, None)
                self._doomed.discard(key)
                result = TaskResult.from_json(data.decode()) if data else None
                out.append(Finished(key, attempt, result, code))
        if self._evt.eof and not out:
            raise RuntimeError("The fork pool's zygote process died unexpectedly.")
        return out

    def kill(self, task_key: str) -> None:
        pid = self.pids.get(task_key)
        if pid is None:
            return
        if pid > 0:
            kill_task_tree(pid)
        else:  # its command is still on its way to the zygote
            self._doomed.add(task_key)

    def shutdown(self) -> None:
        for key in list(self.pids):
            self.kill(key)
        if self._out is not None:
            if self._writing:
                self._sel.unregister(self._out.fd)
                self._writing = False
            os.close(self._out.fd)  # commands not sent yet are dropped: their tasks never start
            self._out = None
        if self.zygote_pid:
            # The zygote exits once it sees the pipe close; drain events so it never waits on us.
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
