"""``parallel_map`` and ``parallel_imap_unordered``: run a function over items in forked processes.

A utility for step code (public API, exported by ``headwater``). Each item runs in
its own forked child, so closures and lambdas work and nothing is pickled on the
way in; each result comes back pickled through a temporary file (no size limit).
POSIX only, like ``os.fork``.
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import sys
import tempfile
import traceback
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, TypeVar

from .exceptions import HeadwaterException

A = TypeVar("A")
R = TypeVar("R")


class MulticoreException(HeadwaterException):
    """A call of the function given to ``parallel_map`` raised (or its process died)."""

    headline = "A parallel_map worker failed"


class _Worker:
    __slots__ = ("pid", "index", "output", "signal_fd")

    def __init__(self, pid: int, index: int, output: str, signal_fd: int) -> None:
        self.pid = pid
        self.index = index
        self.output = output
        self.signal_fd = signal_fd


def _spawn(func: Callable[[Any], Any], arg: Any, index: int, dir: str | None) -> _Worker:
    fd, output = tempfile.mkstemp(prefix="parallel_map_", dir=dir)
    os.close(fd)
    try:
        read_end, write_end = os.pipe()
    except OSError:
        os.unlink(output)
        raise
    # Flush first, or the child would print the parent's buffered output again.
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        pid = os.fork()
    except OSError:  # e.g. EAGAIN at the process limit: leave nothing behind
        os.close(read_end)
        os.close(write_end)
        os.unlink(output)
        raise
    if pid:
        os.close(write_end)
        return _Worker(pid, index, output, read_end)
    # Child: whatever happens, leave through os._exit so no finally block or
    # atexit handler of the parent runs twice.
    code = 1
    try:
        os.close(read_end)
        try:
            payload: tuple[bool, Any] = (True, func(arg))
        except BaseException as e:  # reported to the parent, which raises
            payload = (False, (type(e).__name__, str(e), traceback.format_exc()))
        with open(output, "wb") as f:
            try:
                pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as e:
                f.seek(0)
                f.truncate()
                why = f"its result cannot be pickled ({type(e).__name__}: {e})"
                pickle.dump((False, (type(e).__name__, why, "")), f, protocol=pickle.HIGHEST_PROTOCOL)
        code = 0
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _collect(worker: _Worker) -> Any:
    """Reap a finished worker and return its result (raising if it failed)."""
    _, status = os.waitpid(worker.pid, 0)
    try:
        with open(worker.output, "rb") as f:
            ok, value = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        code = os.waitstatus_to_exitcode(status)
        why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        raise MulticoreException(
            f"The worker for item {worker.index} died without a result ({why}).",
            hint="Check the worker's output above; a crash in native code or os._exit ends it this way.",
        ) from None
    finally:
        _remove(worker.output)
    if not ok:
        name, message, trace = value
        if trace:
            sys.stderr.write(trace)
            sys.stderr.flush()
        raise MulticoreException(
            f"The function raised {name} on item {worker.index}: {message}",
            hint="The worker's traceback is printed above; fix the function or the item.",
        )
    return value


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _stop(workers: dict[int, _Worker]) -> None:
    """Kill and reap every worker still running (after one failed or the caller stopped)."""
    for w in workers.values():
        try:
            os.kill(w.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for w in workers.values():
        try:
            os.waitpid(w.pid, 0)
        except ChildProcessError:
            pass
        os.close(w.signal_fd)
        _remove(w.output)
    workers.clear()


def _imap(func: Callable[[Any], Any], iterable: Iterable[Any], max_parallel: int | None,
          dir: str | None) -> Iterator[tuple[int, Any]]:
    """(index, result) pairs in the order the workers finish."""
    if max_parallel is None:
        max_parallel = os.cpu_count() or 1
    if max_parallel < 1:
        raise MulticoreException(
            f"max_parallel={max_parallel} must be at least 1.", hint="Pass max_parallel=None for one per CPU."
        )
    items = enumerate(iterable)
    workers: dict[int, _Worker] = {}
    sel = selectors.DefaultSelector()
    try:
        for index, arg in islice(items, max_parallel):
            w = _spawn(func, arg, index, dir)
            workers[w.signal_fd] = w
            sel.register(w.signal_fd, selectors.EVENT_READ)
        while workers:
            for key, _ in sel.select():
                # The pipe reads EOF once the child has exited (it never writes to it).
                w = workers.pop(key.fd)
                sel.unregister(key.fd)
                os.close(key.fd)
                result = _collect(w)
                for index, arg in islice(items, 1):
                    nw = _spawn(func, arg, index, dir)
                    workers[nw.signal_fd] = nw
                    sel.register(nw.signal_fd, selectors.EVENT_READ)
                yield w.index, result
    finally:
        sel.close()
        _stop(workers)


def parallel_imap_unordered(
    func: Callable[[A], R],
    iterable: Iterable[A],
    max_parallel: int | None = None,
    dir: str | None = None,
) -> Iterator[R]:
    """Call ``func`` on every item in forked processes; yield results as they finish.

    Parameters
    ----------
    func : Callable[[A], R]
        A function of one argument (a lambda or closure is fine: nothing is pickled
        on the way in). Its result must be picklable.
    iterable : Iterable[A]
        The arguments; read lazily, ``max_parallel`` ahead.
    max_parallel : int, optional
        How many processes run at once (default: the number of CPUs).
    dir : str, optional
        Where the temporary result files go (default: the system temp dir).

    Yields
    ------
    R
        One result per item, in the order the calls finish.

    Raises
    ------
    MulticoreException
        When a call raises or its process dies; the remaining workers are killed.

    Examples
    --------
    >>> sorted(parallel_imap_unordered(lambda x: x * x, range(4)))
    [0, 1, 4, 9]
    """
    for _, result in _imap(func, iterable, max_parallel, dir):
        yield result


def parallel_map(
    func: Callable[[A], R],
    iterable: Iterable[A],
    max_parallel: int | None = None,
    dir: str | None = None,
) -> list[R]:
    """Call ``func`` on every item in forked processes; return the results in item order.

    Parameters are those of ``parallel_imap_unordered``.

    Returns
    -------
    list[R]
        ``[func(x) for x in iterable]``, computed in parallel.

    Raises
    ------
    MulticoreException
        When a call raises or its process dies; the remaining workers are killed.

    Examples
    --------
    >>> parallel_map(lambda x: x + 1, [1, 2, 3], max_parallel=2)
    [2, 3, 4]
    """
    pairs = sorted(_imap(func, iterable, max_parallel, dir), key=lambda p: p[0])
    return [result for _, result in pairs]
